//! Value types parse their input and refuse what breaks their rules.

use std::str::FromStr;

use precinct_domain::ids::*;
use precinct_domain::values::place::{EARTH_RADIUS_M, POLYGON_POSITIONS_MAX};
use precinct_domain::values::*;
use serde_json::json;

#[test]
fn emails_are_trimmed_lower_cased_and_shaped() {
    let email = Email::parse("  Maria.Santos@Example.ORG ").expect("valid");
    assert_eq!(email.as_str(), "maria.santos@example.org");
    for bad in [
        "",
        "maria",
        "@example.org",
        "maria@",
        "maria@localhost",
        "maria@@example.org",
        "ma ria@example.org",
        "maria@example..org",
        "maria@.example.org",
    ] {
        assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
    }
    let long = format!("{}@example.org", "a".repeat(243));
    assert_eq!(
        Email::parse(&long),
        Err(ValueError::TooLong { max: 254, len: 255 })
    );
    assert_eq!(
        serde_json::from_value::<Email>(json!("A@B.CO")).expect("valid"),
        Email::parse("a@b.co").expect("valid")
    );
    assert!(serde_json::from_value::<Email>(json!("nope")).is_err());
}

/// Review of issue 13, N7: an address that displays as another one (`adm\u{200b}in@`,
/// `\u{202e}admin@`, a Cyrillic `а`) would be a second account with a twin's name.
/// Addresses are ASCII; an internationalised domain is written as punycode.
#[test]
fn emails_are_ascii_so_that_no_address_can_look_like_another() {
    for bad in [
        "adm\u{200b}in@example.org",
        "\u{202e}admin@example.org",
        "admin\u{2060}@example.org",
        "\u{0430}dmin@example.org",
        "admin@ex\u{0430}mple.org",
        "admin@example.org\u{feff}",
        "admi\u{0301}n@example.org",
        "jos\u{e9}@example.org",
        "admin@b\u{fc}cher.example",
        "\"admin\"@example.org",
        "ad min@example.org",
        ".admin@example.org",
        "admin.@example.org",
        "ad..min@example.org",
        "admin@-example.org",
        "admin@example-.org",
        "admin@exa_mple.org",
        "admin@example.123",
        "admin@[192.0.2.1]",
    ] {
        assert_eq!(Email::parse(bad), Err(ValueError::Email), "{bad:?}");
    }
    for good in [
        "o'brien+tag@example.org",
        "first.last@sub.example.org",
        "x_y-z@xn--bcher-kva.example",
        "a@b.co",
    ] {
        assert!(Email::parse(good).is_ok(), "{good:?}");
    }
    let label = "a".repeat(64);
    assert!(
        Email::parse(&format!("x@{label}.org")).is_err(),
        "labels ≤ 63"
    );
    // Addresses already in the log keep decoding (and can sign in): they were facts
    // when they were accepted.
    let old: Email = serde_json::from_value(json!("José@Example.org")).expect("stored");
    assert_eq!(old.as_str(), "josé@example.org");
    assert_eq!(Email::parse_existing(" José@Example.org "), Ok(old));
}

#[test]
fn latitudes_and_longitudes_are_finite_and_in_range() {
    assert!(Latitude::parse(90.0).is_ok() && Latitude::parse(-90.0).is_ok());
    assert_eq!(Latitude::parse(90.5), Err(ValueError::Latitude(90.5)));
    assert!(Latitude::parse(f64::NAN).is_err());
    assert!(Longitude::parse(-180.0).is_ok());
    assert_eq!(Longitude::parse(181.0), Err(ValueError::Longitude(181.0)));
    assert!(Longitude::parse(f64::INFINITY).is_err());
    assert_eq!(GeoPoint::parse(91.0, 0.0), Err(ValueError::Latitude(91.0)));
    assert_eq!(
        GeoPoint::parse(0.0, -181.0),
        Err(ValueError::Longitude(-181.0))
    );
}

#[test]
fn points_serialise_as_latitude_and_longitude() {
    let p = GeoPoint::parse(7.07, 125.61).expect("valid");
    assert_eq!(
        serde_json::to_value(p).expect("serialises"),
        json!({"latitude": 7.07, "longitude": 125.61})
    );
    assert_eq!(
        serde_json::from_value::<GeoPoint>(json!({"latitude": 7.07, "longitude": 125.61}))
            .expect("valid"),
        p
    );
    assert!(
        serde_json::from_value::<GeoPoint>(json!({"latitude": 97.0, "longitude": 1.0})).is_err()
    );
}

#[test]
fn great_circle_distances() {
    let a = GeoPoint::parse(0.0, 0.0).expect("valid");
    let b = GeoPoint::parse(1.0, 0.0).expect("valid");
    assert!((a.distance_m(&b) - 111_195.0).abs() < 10.0);
    assert_eq!(a.distance_m(&a), 0.0);
    let antipode = GeoPoint::parse(0.0, 180.0).expect("valid");
    assert!((a.distance_m(&antipode) - std::f64::consts::PI * 6_371_008.8).abs() < 1.0);
}

fn ring() -> Vec<[f64; 2]> {
    vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]
}

#[test]
fn polygons_are_closed_rings_of_valid_positions() {
    let polygon = Polygon::parse(vec![ring()]).expect("valid");
    assert!(polygon.contains(&GeoPoint::parse(0.5, 0.5).expect("valid")));
    assert!(!polygon.contains(&GeoPoint::parse(1.5, 0.5).expect("valid")));
    let c = polygon.centroid().expect("centroid");
    assert!((c.latitude() - 0.5).abs() < 1e-9 && (c.longitude() - 0.5).abs() < 1e-9);
    assert!((polygon.area_deg2() - 1.0).abs() < 1e-9);

    assert!(Polygon::parse(vec![]).is_err());
    assert!(
        Polygon::parse(vec![ring()[..3].to_vec()]).is_err(),
        "too few positions"
    );
    let mut open = ring();
    open.pop();
    open.push([0.5, 0.0]);
    assert!(Polygon::parse(vec![open]).is_err(), "not closed");
    let mut far = ring();
    far[1] = [200.0, 0.0];
    assert!(Polygon::parse(vec![far]).is_err(), "longitude out of range");
    let mut north = ring();
    north[2] = [1.0, 95.0];
    assert!(
        Polygon::parse(vec![north]).is_err(),
        "latitude out of range"
    );
}

#[test]
fn self_intersecting_polygons_are_not_simple() {
    assert_eq!(
        Polygon::parse(vec![ring()]).expect("valid").check_simple(),
        Ok(())
    );
    // A bow tie: the ring crosses itself between (0,0)-(1,1) and (1,0)-(0,1).
    let bow_tie = Polygon::parse(vec![vec![
        [0.0, 0.0],
        [1.0, 1.0],
        [1.0, 0.0],
        [0.0, 1.0],
        [0.0, 0.0],
    ]])
    .expect("well-formed");
    assert!(matches!(
        bow_tie.check_simple(),
        Err(ValueError::Polygon(_))
    ));
    // A ring that touches itself at a vertex (a figure eight through (1,1)).
    let eight = Polygon::parse(vec![vec![
        [0.0, 0.0],
        [1.0, 0.0],
        [1.0, 1.0],
        [2.0, 1.0],
        [2.0, 2.0],
        [1.0, 2.0],
        [1.0, 1.0],
        [0.0, 1.0],
        [0.0, 0.0],
    ]])
    .expect("well-formed");
    assert!(eight.check_simple().is_err());
    // A spike: the ring runs back over itself.
    let spike = Polygon::parse(vec![vec![
        [0.0, 0.0],
        [1.0, 0.0],
        [2.0, 0.0],
        [1.0, 0.0],
        [1.0, 1.0],
        [0.0, 0.0],
    ]])
    .expect("well-formed");
    assert!(spike.check_simple().is_err());
    // A hole that crosses the exterior ring.
    let crossing_hole = Polygon::parse(vec![
        ring(),
        vec![[0.5, 0.5], [1.5, 0.5], [1.5, 0.8], [0.5, 0.8], [0.5, 0.5]],
    ])
    .expect("well-formed");
    assert!(crossing_hole.check_simple().is_err());
    // A hole inside, and repeated consecutive positions, are fine.
    let with_hole = Polygon::parse(vec![
        ring(),
        vec![[0.2, 0.2], [0.4, 0.2], [0.4, 0.4], [0.2, 0.4], [0.2, 0.2]],
    ])
    .expect("well-formed");
    assert_eq!(with_hole.check_simple(), Ok(()));
    // A hole that lies outside the exterior ring (review of issue 13), and a hole inside
    // another hole: neither is a hole of this area.
    let hole_outside = Polygon::parse(vec![
        ring(),
        vec![[2.0, 2.0], [2.5, 2.0], [2.5, 2.5], [2.0, 2.5], [2.0, 2.0]],
    ])
    .expect("well-formed");
    assert!(matches!(
        hole_outside.check_simple(),
        Err(ValueError::Polygon(_))
    ));
    let nested_holes = Polygon::parse(vec![
        ring(),
        vec![[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9], [0.1, 0.1]],
        vec![[0.2, 0.2], [0.4, 0.2], [0.4, 0.4], [0.2, 0.4], [0.2, 0.2]],
    ])
    .expect("well-formed");
    assert!(nested_holes.check_simple().is_err());
    let repeated = Polygon::parse(vec![vec![
        [0.0, 0.0],
        [1.0, 0.0],
        [1.0, 0.0],
        [1.0, 1.0],
        [0.0, 1.0],
        [0.0, 0.0],
    ]])
    .expect("well-formed");
    assert_eq!(repeated.check_simple(), Ok(()));
    // Well-formedness alone is what decoding checks: a stored bow tie still decodes.
    assert!(
        serde_json::from_value::<Polygon>(json!([[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]))
            .is_ok()
    );
}

#[test]
fn polygons_parse_from_geojson_and_serialise_as_coordinates() {
    let geometry = json!({"type": "Polygon", "coordinates": [ring()]});
    let polygon = Polygon::parse_geojson(&geometry).expect("valid");
    assert_eq!(polygon.to_geojson(), geometry);
    assert_eq!(
        serde_json::to_value(&polygon).expect("serialises"),
        json!([ring()])
    );
    assert!(Polygon::parse_geojson(&json!({"type": "Point", "coordinates": [0, 0]})).is_err());
    assert!(Polygon::parse_geojson(&json!({"type": "Polygon", "coordinates": "x"})).is_err());
    assert!(serde_json::from_value::<Polygon>(json!([[[0, 0], [1, 0], [0, 0]]])).is_err());
}

#[test]
fn urls_must_be_http_or_https_with_a_host() {
    for good in ["http://a.example", "HTTPS://media.example/x.jpg?s=1#f"] {
        assert!(HttpUrl::parse(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "ftp://a.example",
        "https://",
        "https:///path",
        "https://a b",
        "file:///etc/passwd",
    ] {
        assert!(HttpUrl::parse(bad).is_err(), "{bad:?}");
    }
    let long = format!("https://a.example/{}", "x".repeat(2048));
    assert_eq!(HttpUrl::parse(&long), Err(ValueError::Url));
}

/// Review of issue 13, N7: a link must go where it says: no invisible or
/// direction-changing characters anywhere, no look-alike host (a host is ASCII,
/// internationalised ones as punycode), no `user@` before the host.
#[test]
fn urls_refuse_invisible_characters_and_hosts_that_are_not_ascii() {
    for bad in [
        "https://media.example/x\u{200b}.jpg",
        "https://media.example/\u{202e}gpj.exe",
        "https://media.example/a?b=\u{2066}c",
        "https://media.example/#\u{feff}",
        "https://media.example/\u{ad}x",
        "https://m\u{0435}dia.example/x.jpg",
        "https://b\u{fc}cher.example/",
        "https://media\u{200d}.example/",
        "https://media.example%2Eevil.example/",
        "https://precinct.example@evil.example/x",
        "https://media.example:80x/",
        "https://[::1/x",
    ] {
        assert_eq!(HttpUrl::parse(bad), Err(ValueError::Url), "{bad:?}");
    }
    for good in [
        "https://xn--bcher-kva.example/caf%C3%A9.jpg",
        "https://media.example/café.jpg",
        "https://media.example:8443/a?b=c#d",
        "http://[2001:db8::1]:8080/x",
        "http://192.0.2.1/x",
        "https://media.example",
    ] {
        assert!(HttpUrl::parse(good).is_ok(), "{good:?}");
    }
}

#[test]
fn token_hashes_are_sha256_hex() {
    let upper = "AB".repeat(32);
    assert_eq!(
        TokenHash::parse(&upper).expect("valid").as_str(),
        "ab".repeat(32)
    );
    assert_eq!(TokenHash::parse("abc"), Err(ValueError::TokenHash));
    assert_eq!(
        TokenHash::parse(&"g".repeat(64)),
        Err(ValueError::TokenHash)
    );
}

#[test]
fn text_is_trimmed_and_bounded() {
    assert_eq!(
        NonEmptyText::parse("  hi  ", 2).expect("valid").as_str(),
        "hi"
    );
    assert_eq!(NonEmptyText::parse(" ", 2), Err(ValueError::Blank));
    assert_eq!(
        NonEmptyText::parse("ééé", 2),
        Err(ValueError::TooLong { max: 2, len: 3 }),
        "length counts characters, not bytes"
    );
    assert_eq!(optional_text(None, 5), Ok(None));
    assert_eq!(optional_text(Some("  "), 5), Ok(None));
    assert_eq!(optional_text(Some(" x "), 5), Ok(Some("x".into())));
}

#[test]
fn text_refuses_nul_and_other_control_characters() {
    // U+0000 cannot be stored by PostgreSQL: accepted, it would stop a projection.
    for bad in ["a\u{0}b", "a\u{1b}[31m", "a\u{7f}", "a\u{85}b"] {
        assert_eq!(
            NonEmptyText::parse(bad, 100),
            Err(ValueError::ControlCharacter),
            "{bad:?}"
        );
    }
    assert_eq!(
        optional_text(Some("x\u{0}"), 5),
        Err(ValueError::ControlCharacter)
    );
    assert!(NonEmptyText::parse("line one\n\tline two\r\nend", 100).is_ok());
}

#[test]
fn text_made_only_of_invisible_characters_is_blank() {
    // Zero-width spaces and joiners, word joiner, BOM, soft hyphen, Hangul fillers,
    // variation selectors, tag characters: nothing a reader can see.
    for bad in [
        "\u{200b}",
        "\u{200b}\u{200c}\u{200d}",
        " \u{2060}\u{feff} ",
        "\u{ad}\u{3164}\u{115f}",
        "\u{fe0f}\u{e0041}\u{34f}",
        "\u{200e}\u{200f}",
    ] {
        assert_eq!(
            NonEmptyText::parse(bad, 100),
            Err(ValueError::Invisible),
            "{bad:?}"
        );
        assert_eq!(optional_text(Some(bad), 100), Err(ValueError::Invisible));
    }
    // Invisible characters inside visible text are legitimate (emoji sequences, Persian).
    for good in [
        "👩\u{200d}💻 stolen laptop",
        "می\u{200c}خواهم",
        "a\u{200b}b",
    ] {
        assert!(NonEmptyText::parse(good, 100).is_ok(), "{good:?}");
    }
}

/// Review of issue 13: marks that combine with nothing (accents, enclosing circles)
/// draw no letter a reader could read.
#[test]
fn text_made_only_of_combining_marks_is_refused() {
    for bad in [
        "\u{0301}",
        "\u{0301}\u{0308}\u{20dd}",
        " \u{0300}\u{200b}\u{0327} ",
        "\u{0951}\u{093c}",
    ] {
        assert_eq!(
            NonEmptyText::parse(bad, 100),
            Err(ValueError::Invisible),
            "{bad:?}"
        );
    }
    for good in ["e\u{0301}", "क\u{093c}", "a\u{20dd}"] {
        assert!(NonEmptyText::parse(good, 100).is_ok(), "{good:?}");
    }
}

#[test]
fn text_refuses_bidirectional_overrides_and_isolates() {
    // "Trojan source": U+202E makes `gpj.exe` read as `exe.jpg`.
    for c in [
        '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}',
        '\u{2068}', '\u{2069}',
    ] {
        let text = format!("invoice{c}gpj.exe");
        assert_eq!(
            NonEmptyText::parse(&text, 100),
            Err(ValueError::BidiControl),
            "{c:?}"
        );
    }
    // Right-to-left text itself, and the plain direction marks, stay accepted.
    assert!(NonEmptyText::parse("سرقة دراجة", 100).is_ok());
    assert!(NonEmptyText::parse("bike \u{200f}سرقة", 100).is_ok());
}

#[test]
fn password_hashes_are_redacted_in_debug_output() {
    let hash = PasswordHash::parse("$argon2id$secret").expect("valid");
    assert_eq!(format!("{hash:?}"), "PasswordHash(<redacted>)");
    assert_eq!(hash.as_str(), "$argon2id$secret");
    assert_eq!(PasswordHash::parse(""), Err(ValueError::Blank));
}

#[test]
fn enums_use_screaming_snake_case_everywhere() {
    assert_eq!(
        serde_json::to_value(Role::Citizen).expect("ok"),
        json!("CITIZEN")
    );
    assert_eq!(
        serde_json::to_value(PatrolStatus::OffDuty).expect("ok"),
        json!("OFF_DUTY")
    );
    assert_eq!(
        serde_json::to_value(SlaKind::Respond).expect("ok"),
        json!("RESPOND")
    );
    assert_eq!(ReportStatus::Withdrawn.to_string(), "WITHDRAWN");
    assert_eq!(Role::from_str("dispatcher"), Ok(Role::Dispatcher));
    assert_eq!(MediaType::from_str("PHOTO"), Ok(MediaType::Photo));
    assert_eq!(
        StationKind::from_str(" Division "),
        Ok(StationKind::Division)
    );
    assert_eq!(
        Priority::from_str("URGENT"),
        Err(ValueError::UnknownVariant {
            kind: "Priority",
            value: "URGENT".into(),
            expected: "LOW, MEDIUM, HIGH, CRITICAL".into(),
        })
    );
    assert!(
        serde_json::from_value::<Role>(json!("citizen")).is_err(),
        "serde is exact"
    );
    for role in Role::ALL {
        assert_eq!(Role::from_str(role.as_str()), Ok(*role));
    }
}

#[test]
fn role_predicates() {
    assert!(!Role::Citizen.is_staff());
    assert!(Role::Patrol.is_staff() && Role::Admin.is_staff());
    let needs: Vec<Role> = Role::ALL
        .iter()
        .copied()
        .filter(|r| r.needs_station())
        .collect();
    assert_eq!(
        needs,
        vec![Role::Patrol, Role::Dispatcher, Role::Supervisor]
    );
    assert_eq!(Role::default(), Role::Citizen);
}

#[test]
fn priority_is_ordered() {
    assert!(Priority::Low < Priority::Medium && Priority::High < Priority::Critical);
    assert_eq!(Priority::Critical.rank(), 3);
    assert_eq!(Priority::default(), Priority::Medium);
}

#[test]
fn status_predicates() {
    use ReportStatus as S;
    let open: Vec<S> = S::ALL.iter().copied().filter(|s| s.is_open()).collect();
    assert_eq!(
        open,
        vec![S::New, S::Assigned, S::Accepted, S::Responding, S::Resolved]
    );
    let active: Vec<S> = S::ALL
        .iter()
        .copied()
        .filter(|s| s.is_active_assignment())
        .collect();
    assert_eq!(active, vec![S::Assigned, S::Accepted, S::Responding]);
}

#[test]
fn ids_parse_display_and_serialise_as_uuids() {
    let text = "6f1c8a52-3d4e-4b7a-9c21-5e0fd3a8b7c4";
    let id = ReportId::from_str(text).expect("valid");
    assert_eq!(id.to_string(), text);
    assert_eq!(serde_json::to_value(id).expect("ok"), json!(text));
    assert_eq!(id.as_uuid(), uuid::Uuid::parse_str(text).expect("valid"));
    assert!(PatrolId::from_str("nope").is_err());
    assert_eq!(
        serde_json::from_value::<StationId>(json!(text)).expect("valid"),
        StationId::new(id.as_uuid())
    );
}

#[test]
fn timestamps_stay_between_1900_and_9999() {
    let parse = |s: &str| {
        s.parse::<chrono::DateTime<chrono::Utc>>()
            .expect("chrono reads it")
    };
    for ok in [
        "1900-01-01T00:00:00Z",
        "2025-03-01T08:00:00Z",
        "9999-12-31T23:59:59.999999Z",
    ] {
        let t = Timestamp::parse(parse(ok)).expect(ok);
        assert_eq!(t.get(), parse(ok));
    }
    for bad in [
        "-5000-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "1899-12-31T23:59:59.999Z",
        "+10000-01-01T00:00:00Z",
    ] {
        assert_eq!(
            Timestamp::parse(parse(bad)),
            Err(ValueError::TimeOutOfRange),
            "{bad}"
        );
        assert!(
            serde_json::from_value::<Timestamp>(json!(bad)).is_err(),
            "{bad}"
        );
    }
    let now = parse("2025-03-01T08:00:00Z");
    assert!(Timestamp::past(now + chrono::Duration::seconds(30), now).is_ok());
    assert_eq!(
        Timestamp::past(now + chrono::Duration::seconds(31), now),
        Err(ValueError::Future)
    );
    assert_eq!(
        serde_json::to_value(Timestamp::parse(now).expect("valid")).expect("serialises"),
        json!("2025-03-01T08:00:00Z")
    );
}

// ----- boundaries found by mutation testing (docs/reliability.md) -------------------

#[test]
fn a_telephone_number_of_exactly_the_longest_length_is_accepted() {
    let longest = "1".repeat(phone::PHONE_MAX);
    assert_eq!(
        PhoneNumber::parse(&longest).expect("valid").as_str(),
        longest
    );
    assert_eq!(
        PhoneNumber::parse(&"1".repeat(phone::PHONE_MAX + 1)),
        Err(ValueError::TooLong {
            max: phone::PHONE_MAX,
            len: phone::PHONE_MAX + 1
        })
    );
}

#[test]
fn text_displays_as_its_trimmed_content() {
    let text = NonEmptyText::parse("  Shop break-in ", 100).expect("valid");
    assert_eq!(text.to_string(), "Shop break-in");
}

#[test]
fn urls_refuse_private_use_unassigned_and_other_format_characters_in_the_path() {
    // Not whitespace, not in the invisible list, not a bidirectional control: refused
    // for their Unicode category alone.
    for bad in [
        "https://media.example/x\u{e000}.jpg",  // private use
        "https://media.example/x\u{0378}.jpg",  // unassigned
        "https://media.example/x\u{0600}.jpg",  // format (Arabic number sign)
        "https://media.example/x\u{f0000}.jpg", // supplementary private use
        // Letters and symbols that draw nothing (the invisible list, not a format
        // character): Hangul fillers, the blank braille pattern.
        "https://media.example/x\u{3164}.jpg",
        "https://media.example/x\u{115f}.jpg",
        "https://media.example/x\u{2800}.jpg",
    ] {
        assert_eq!(HttpUrl::parse(bad), Err(ValueError::Url), "{bad:?}");
    }
}

#[test]
fn stored_addresses_keep_the_old_shape_rule_on_their_own() {
    // `parse_existing` (log decoding, sign-in look-ups) is checked alone here: `parse`
    // would refuse these by its stricter ASCII rule whatever `parse_existing` said.
    for bad in [
        "maria@localhost",
        "@example.org",
        "maria@example..org",
        "maria@.example.org",
        "maria@example.org.",
        "ma ria@example.org",
        "maria@exam\u{1}ple.org",
        "maria@example.org@evil.org",
    ] {
        assert!(
            Email::parse_existing(bad).is_err(),
            "{bad:?} should be refused"
        );
        assert!(
            serde_json::from_value::<Email>(json!(bad)).is_err(),
            "{bad:?} should not decode"
        );
    }
    // The longest address (254 characters) is accepted by both rules; one more is not.
    let longest = format!("{}@example.org", "a".repeat(242));
    assert_eq!(longest.chars().count(), 254);
    assert!(Email::parse_existing(&longest).is_ok());
    assert!(Email::parse(&longest).is_ok());
    let too_long = format!("{}@example.org", "a".repeat(243));
    assert_eq!(
        Email::parse_existing(&too_long),
        Err(ValueError::TooLong { max: 254, len: 255 })
    );
}

#[test]
fn urls_refuse_control_characters_that_are_not_whitespace() {
    for bad in [
        "https://media.example/x\u{7f}.jpg",
        "https://media.example/x\u{1}.jpg",
        "https://media.example/x\u{9b}.jpg",
    ] {
        assert_eq!(HttpUrl::parse(bad), Err(ValueError::Url), "{bad:?}");
    }
}

#[test]
fn urls_keep_their_text_up_to_the_longest_length() {
    let head = "https://media.example/";
    let longest = format!("{head}{}", "a".repeat(limits::URL_MAX - head.len()));
    let url = HttpUrl::parse(&format!(" {longest} ")).expect("2048 characters is allowed");
    assert_eq!(url.as_str(), longest);
    assert_eq!(url.to_string(), longest);
    assert_eq!(String::from(url.clone()), longest);
    assert_eq!(url.into_string(), longest);
    assert_eq!(HttpUrl::parse(&format!("{longest}a")), Err(ValueError::Url));
}

#[test]
fn emails_display_as_their_normalised_text() {
    let email = Email::parse(" Maria@Example.ORG ").expect("valid");
    assert_eq!(email.to_string(), "maria@example.org");
    assert_eq!(String::from(email), "maria@example.org");
}

#[test]
fn bracketed_hosts_are_ipv6_addresses_with_at_most_a_port_after_them() {
    for bad in [
        "http://[zz]/x",
        "http://[]/x",
        "http://[::1]x/",
        "http://[::1]:/x",
        "http://[::1]:80a/x",
        "http://[::1]:123456/x",
    ] {
        assert_eq!(HttpUrl::parse(bad), Err(ValueError::Url), "{bad:?}");
    }
    assert!(HttpUrl::parse("http://[::1]/x").is_ok());
    assert!(HttpUrl::parse("http://[::1]:65535/x").is_ok());
}

#[test]
fn token_hashes_display_lower_cased() {
    let hash = TokenHash::parse(&"AB".repeat(32)).expect("valid");
    assert_eq!(hash.to_string(), "ab".repeat(32));
    assert_eq!(String::from(hash), "ab".repeat(32));
}

#[test]
fn coordinates_keep_their_value() {
    let lat = Latitude::parse(7.07).expect("a latitude");
    let lon = Longitude::parse(-125.61).expect("a longitude");
    assert_eq!(lat.value(), 7.07);
    assert_eq!(lon.value(), -125.61);
    assert_eq!(f64::from(lat), 7.07);
    assert_eq!(f64::from(lon), -125.61);
}

#[test]
fn an_east_west_distance_away_from_the_equator_shrinks_with_the_latitude() {
    // Haversine at 60° N over 1° of longitude: 2 R asin(cos 60° sin 0.5°) ≈ 55,597 m
    // (half the equator's 111,195 m, less a little for the curve).
    let a = GeoPoint::new(
        Latitude::parse(60.0).expect("lat"),
        Longitude::parse(0.0).expect("lon"),
    );
    let b = GeoPoint::new(
        Latitude::parse(60.0).expect("lat"),
        Longitude::parse(1.0).expect("lon"),
    );
    let expected =
        2.0 * EARTH_RADIUS_M * (60f64.to_radians().cos() * 0.5f64.to_radians().sin()).asin();
    assert!(
        (a.distance_m(&b) - expected).abs() < 0.01,
        "{}",
        a.distance_m(&b)
    );
    assert!((expected - 55_597.0).abs() < 1.0, "{expected}");
    // And a diagonal one: north-east from the equator.
    let c = GeoPoint::new(
        Latitude::parse(1.0).expect("lat"),
        Longitude::parse(1.0).expect("lon"),
    );
    let origin = GeoPoint::new(
        Latitude::parse(0.0).expect("lat"),
        Longitude::parse(0.0).expect("lon"),
    );
    assert!(
        (origin.distance_m(&c) - 157_249.4).abs() < 1.0,
        "{}",
        origin.distance_m(&c)
    );
}

#[test]
fn a_polygon_holds_up_to_polygon_positions_max_positions() {
    let ring = |n: usize| -> Vec<[f64; 2]> {
        let mut r: Vec<[f64; 2]> = (0..n - 1)
            .map(|i| {
                let a = i as f64 / (n - 1) as f64 * std::f64::consts::TAU;
                [125.61 + 0.01 * a.cos(), 7.07 + 0.01 * a.sin()]
            })
            .collect();
        r.push(r[0]);
        r
    };
    assert!(Polygon::parse(vec![ring(POLYGON_POSITIONS_MAX)]).is_ok());
    assert!(Polygon::parse(vec![ring(POLYGON_POSITIONS_MAX + 1)]).is_err());
}

#[test]
fn a_ring_of_fewer_than_three_sides_encloses_no_area() {
    for ring in [
        vec![[0.0, 0.0]; 4],
        vec![[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 0.0]],
    ] {
        let p = Polygon::parse(vec![ring.clone()]).expect("parses");
        let err = p.check_simple().expect_err("no area");
        assert!(
            err.to_string().contains("encloses no area"),
            "{ring:?}: {err}"
        );
    }
}

fn square_ring(x: f64, y: f64, side: f64) -> Vec<[f64; 2]> {
    vec![
        [x, y],
        [x + side, y],
        [x + side, y + side],
        [x, y + side],
        [x, y],
    ]
}

#[test]
fn a_triangle_and_an_area_with_two_separate_holes_are_simple() {
    let triangle =
        Polygon::parse(vec![vec![[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]]).expect("parses");
    assert_eq!(triangle.check_simple(), Ok(()));
    let two_holes = Polygon::parse(vec![
        square_ring(0.0, 0.0, 10.0),
        square_ring(1.0, 1.0, 2.0),
        square_ring(5.0, 5.0, 2.0),
    ])
    .expect("parses");
    assert_eq!(two_holes.check_simple(), Ok(()));
}

#[test]
fn a_ring_whose_corner_touches_its_own_edge_from_above_is_not_simple() {
    // (2, 0) is a corner of the ring and lies on its first edge, (0, 0)–(4, 0): the
    // edges meeting there start exactly where the first edge's y-range ends.
    let pinched = Polygon::parse(vec![vec![
        [0.0, 0.0],
        [4.0, 0.0],
        [4.0, 2.0],
        [2.0, 0.0],
        [0.0, 2.0],
        [0.0, 0.0],
    ]])
    .expect("parses");
    let err = pinched.check_simple().expect_err("touches itself");
    assert!(
        err.to_string().contains("crosses or touches itself"),
        "{err}"
    );
    // Upside down: the corner (2, 2) touches the top edge from below, where the edges
    // meeting there end exactly where that edge's y-range starts.
    let from_below = Polygon::parse(vec![vec![
        [0.0, 2.0],
        [4.0, 2.0],
        [4.0, 0.0],
        [2.0, 2.0],
        [0.0, 0.0],
        [0.0, 2.0],
    ]])
    .expect("parses");
    let err = from_below.check_simple().expect_err("touches itself");
    assert!(
        err.to_string().contains("crosses or touches itself"),
        "{err}"
    );
}

#[test]
fn a_polygon_gives_back_its_coordinates_and_its_area() {
    let rings = vec![square_ring(0.0, 0.0, 2.0)];
    let p = Polygon::parse(rings.clone()).expect("parses");
    assert_eq!(p.coordinates(), &rings);
    assert!((p.area_deg2() - 4.0).abs() < 1e-12, "{}", p.area_deg2());
}
