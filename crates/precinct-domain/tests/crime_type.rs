//! Crime-type catalogue: the aggregate's rules (codes, names, keywords, bounds, OTHER
//! built in, retirement) and how free text resolves to codes (ADR 0026).

mod common;

use std::collections::BTreeMap;

use common::{given, given_nothing, t};
use precinct_domain::crime_type::*;
use precinct_domain::values::Priority;
use precinct_domain::{DomainError, ErrorKind};

fn code(s: &str) -> CrimeTypeCode {
    CrimeTypeCode::parse(s).expect("valid code")
}

fn names(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn spec() -> CrimeTypeSpec {
    CrimeTypeSpec {
        names: names(&[("en", " Theft "), ("fil", "Pagnanakaw")]),
        default_priority: Priority::High,
        keywords: vec![" Stolen ".into(), "stolen".into(), "Snatch".into()],
        service_code: Some("theft-1".into()),
        group: Some("Property".into()),
    }
}

fn create() -> CrimeTypeCommand {
    CrimeTypeCommand::Create {
        code: code("THEFT"),
        spec: spec(),
        at: t(0),
    }
}

fn created() -> CrimeTypeEvent {
    CrimeTypeCreated {
        code: code("THEFT"),
        names: names(&[("en", "Theft"), ("fil", "Pagnanakaw")]),
        default_priority: Priority::High,
        keywords: vec!["stolen".into(), "snatch".into()],
        service_code: Some("theft-1".into()),
        group: Some("Property".into()),
        at: t(0),
    }
    .into()
}

#[test]
fn codes_parse_only_in_their_format() {
    for ok in [
        "OTHER",
        "AB",
        "CYBER_FRAUD",
        "A1",
        &format!("A{}", "B".repeat(31)),
    ] {
        assert_eq!(CrimeTypeCode::parse(ok).expect("valid").as_str(), ok);
    }
    for bad in [
        "",
        "A",
        "theft",
        "1ABC",
        "_ABC",
        "AB-C",
        "AB C",
        "ÄB",
        &format!("A{}", "B".repeat(32)),
    ] {
        let err = CrimeTypeCode::parse(bad).expect_err(bad);
        assert_eq!(err.field(), Some("code"), "{bad}");
        assert_eq!(err.kind(), ErrorKind::Invalid);
    }
}

#[test]
fn create_normalises_names_and_keywords() {
    given_nothing::<CrimeType>()
        .when(create())
        .then_events(vec![created()]);
}

#[test]
fn creating_an_existing_code_is_a_conflict_even_when_retired() {
    given::<CrimeType>([created()])
        .when(create())
        .then_err(CrimeTypeError::AlreadyExists);
    given::<CrimeType>([
        created(),
        CrimeTypeRetired {
            code: code("THEFT"),
            at: t(1),
        }
        .into(),
    ])
    .when(create())
    .then_err(CrimeTypeError::AlreadyExists);
    assert_eq!(CrimeTypeError::AlreadyExists.kind(), ErrorKind::Conflict);
}

#[test]
fn other_is_built_in() {
    given_nothing::<CrimeType>()
        .when(CrimeTypeCommand::Create {
            code: CrimeTypeCode::other(),
            spec: spec(),
            at: t(0),
        })
        .then_err(CrimeTypeError::BuiltIn);
    assert_eq!(CrimeTypeError::BuiltIn.kind(), ErrorKind::Conflict);
}

#[test]
fn bad_fields_are_refused_with_their_field() {
    let with = |edit: fn(&mut CrimeTypeSpec)| {
        let mut s = spec();
        edit(&mut s);
        CrimeTypeCommand::Create {
            code: code("THEFT"),
            spec: s,
            at: t(0),
        }
    };
    let cases: Vec<(CrimeTypeCommand, &str)> = vec![
        (with(|s| s.names = names(&[("fil", "Pagnanakaw")])), "names"),
        (with(|s| s.names = BTreeMap::new()), "names"),
        (with(|s| s.names = names(&[("en", "  ")])), "names"),
        (
            with(|s| s.names = names(&[("en", &"x".repeat(201))])),
            "names",
        ),
        (
            with(|s| s.names = names(&[("en", "Theft"), ("EN_us", "x")])),
            "names",
        ),
        (
            with(|s| {
                s.names = (0..21)
                    .map(|i| (format!("l{}", (b'a' + i as u8) as char), "x".to_string()))
                    .chain([("en".to_string(), "x".to_string())])
                    .collect()
            }),
            "names",
        ),
        (
            with(|s| s.keywords = (0..51).map(|i| format!("k{i}")).collect()),
            "keywords",
        ),
        (with(|s| s.keywords = vec![" ".into()]), "keywords"),
        (with(|s| s.keywords = vec!["k".repeat(101)]), "keywords"),
        (
            with(|s| s.service_code = Some("a b".into())),
            "service_code",
        ),
        (
            with(|s| s.service_code = Some("a".repeat(65))),
            "service_code",
        ),
        (
            with(|s| s.service_code = Some(String::new())),
            "service_code",
        ),
        (with(|s| s.group = Some("g".repeat(101))), "group"),
        (with(|s| s.group = Some(" ".into())), "group"),
    ];
    for (cmd, field) in cases {
        let err = given_nothing::<CrimeType>().when(cmd.clone()).err();
        assert_eq!(err.kind(), ErrorKind::Invalid, "{cmd:?}");
        assert_eq!(err.field(), Some(field), "{cmd:?}: {err}");
    }
}

/// The event creating THEFT from `spec` (the creation must be accepted).
fn created_from(spec: CrimeTypeSpec) -> CrimeTypeCreated {
    let events = given_nothing::<CrimeType>()
        .when(CrimeTypeCommand::Create {
            code: code("THEFT"),
            spec,
            at: t(0),
        })
        .events();
    match events.as_slice() {
        [CrimeTypeEvent::CrimeTypeCreated(e)] => e.clone(),
        _ => panic!("{events:?}"),
    }
}

#[test]
fn fifty_distinct_keywords_are_allowed_and_duplicates_do_not_count_twice() {
    let mut s = spec();
    s.keywords = (0..50).map(|i| format!("kw{i}")).collect();
    s.keywords.push("KW0".into());
    let e = created_from(s);
    assert_eq!(e.keywords.len(), 50);
}

#[test]
fn update_records_every_field_and_what_changed() {
    given::<CrimeType>([created()])
        .when(CrimeTypeCommand::Update {
            changes: CrimeTypeChanges {
                default_priority: Some(Priority::Critical),
                service_code: Some(None),
                ..CrimeTypeChanges::default()
            },
            at: t(5),
        })
        .then_events(vec![CrimeTypeUpdated {
            code: code("THEFT"),
            names: names(&[("en", "Theft"), ("fil", "Pagnanakaw")]),
            default_priority: Priority::Critical,
            keywords: vec!["stolen".into(), "snatch".into()],
            service_code: None,
            group: Some("Property".into()),
            changed: vec![CrimeTypeField::DefaultPriority, CrimeTypeField::ServiceCode],
            at: t(5),
        }
        .into()]);
}

#[test]
fn an_update_that_changes_nothing_records_nothing() {
    given::<CrimeType>([created()])
        .when(CrimeTypeCommand::Update {
            changes: CrimeTypeChanges {
                keywords: Some(vec!["STOLEN".into(), "snatch".into()]),
                default_priority: Some(Priority::High),
                ..CrimeTypeChanges::default()
            },
            at: t(5),
        })
        .then_no_events();
}

#[test]
fn an_update_is_checked_like_a_creation() {
    let err = given::<CrimeType>([created()])
        .when(CrimeTypeCommand::Update {
            changes: CrimeTypeChanges {
                names: Some(names(&[("fil", "Pagnanakaw")])),
                ..CrimeTypeChanges::default()
            },
            at: t(5),
        })
        .err();
    assert_eq!(err.field(), Some("names"));
}

#[test]
fn retire_once_then_nothing_and_a_missing_type_is_not_found() {
    let retired: CrimeTypeEvent = CrimeTypeRetired {
        code: code("THEFT"),
        at: t(2),
    }
    .into();
    let state = given::<CrimeType>([created()])
        .when(CrimeTypeCommand::Retire { at: t(2) })
        .then_events(vec![retired.clone()]);
    assert!(!state.active);
    given::<CrimeType>([created(), retired])
        .when(CrimeTypeCommand::Retire { at: t(3) })
        .then_no_events();
    given_nothing::<CrimeType>()
        .when(CrimeTypeCommand::Retire { at: t(3) })
        .then_err(CrimeTypeError::NotFound);
    given_nothing::<CrimeType>()
        .when(CrimeTypeCommand::Update {
            changes: CrimeTypeChanges::default(),
            at: t(3),
        })
        .then_err(CrimeTypeError::NotFound);
    assert_eq!(CrimeTypeError::NotFound.kind(), ErrorKind::NotFound);
}

#[test]
fn stream_ids_are_one_per_code() {
    assert_eq!(code("THEFT").stream_id(), code("THEFT").stream_id());
    assert_ne!(code("THEFT").stream_id(), code("THEFTS").stream_id());
}

fn facts(c: &str, names: &[&str], keywords: &[&str], active: bool) -> CrimeTypeFacts {
    CrimeTypeFacts {
        code: code(c),
        names: names.iter().map(|s| s.to_string()).collect(),
        keywords: keywords.iter().map(|s| s.to_string()).collect(),
        active,
    }
}

fn texts(t: &[&str]) -> Vec<String> {
    t.iter().map(|s| s.to_string()).collect()
}

#[test]
fn resolution_tries_code_then_name_then_keyword_then_other() {
    let catalogue = vec![
        facts("THEFT", &["Theft", "Pagnanakaw"], &["stolen"], true),
        facts("FRAUD", &["Fraud"], &["online fraud", "fraud"], true),
        facts("PHISHING", &["Phishing"], &["fraud"], true),
        facts("ROBBERY", &["Robbery"], &["stolen"], false),
    ];
    let cases: &[(&[&str], &[&str])] = &[
        (&["theft"], &["THEFT"]),
        (&[" pagnanakaw "], &["THEFT"]),
        (&["My bike was STOLEN"], &["THEFT"]),
        // The longest keyword wins; equal lengths: the lowest code.
        (&["online fraud scheme"], &["FRAUD"]),
        (&["a fraud"], &["FRAUD"]),
        // A retired type is skipped, by code, name and keyword.
        (&["robbery"], &["OTHER"]),
        (&["Graffiti"], &["OTHER"]),
        (&["Graffiti", "vandalism", "theft"], &["OTHER", "THEFT"]),
        (&["other"], &["OTHER"]),
    ];
    for (input, expected) in cases {
        let got = resolve(&catalogue, &texts(input));
        let expected: Vec<CrimeTypeCode> = expected.iter().map(|c| code(c)).collect();
        assert_eq!(got, expected, "{input:?}");
    }
    assert_eq!(
        resolve(&[], &texts(&["Theft"])),
        vec![CrimeTypeCode::other()]
    );
}

#[test]
fn resolution_is_independent_of_catalogue_order() {
    let a = facts("AAA", &[], &["car"], true);
    let b = facts("BBB", &[], &["car"], true);
    let input = texts(&["car theft"]);
    assert_eq!(resolve(&[a.clone(), b.clone()], &input), vec![code("AAA")]);
    assert_eq!(resolve(&[b, a], &input), vec![code("AAA")]);
}

// Boundaries found by mutation testing (docs/reliability.md).

#[test]
fn a_type_exists_once_created_and_gives_its_facts() {
    use precinct_domain::Aggregate as _;
    assert!(!given_nothing::<CrimeType>().state().version_exists());
    assert_eq!(given_nothing::<CrimeType>().state().facts(), None);
    let g = given::<CrimeType>([created()]);
    assert!(g.state().version_exists());
    assert_eq!(
        g.state().facts(),
        Some(facts(
            "THEFT",
            &["Theft", "Pagnanakaw"],
            &["stolen", "snatch"],
            true
        ))
    );
    assert_eq!(g.state().data_subject(), None, "a type holds nobody's data");
    assert_eq!(code("CYBER_FRAUD").to_string(), "CYBER_FRAUD");
}

#[test]
fn language_tags_need_a_short_lower_case_primary_and_subtags_of_two_to_eight() {
    let with_tag = |tag: &str| CrimeTypeCommand::Create {
        code: code("THEFT"),
        spec: CrimeTypeSpec {
            names: names(&[("en", "Theft"), (tag, "x")]),
            ..spec()
        },
        at: t(0),
    };
    for bad in ["e", "engl", "En", "en-x", "en-abcdefghi", "en-a_b", "en-"] {
        let err = given_nothing::<CrimeType>().when(with_tag(bad)).err();
        assert_eq!(err.field(), Some("names"), "{bad:?}: {err}");
    }
    // 36 and 35 characters, otherwise well formed.
    let err = given_nothing::<CrimeType>()
        .when(with_tag("en-abcdefgh-abcdefgh-abcdefgh-abcdef"))
        .err();
    assert_eq!(err.field(), Some("names"), "over 35 characters");
    for good in [
        "fil",
        "pt-BR",
        "zh-Hant-TW",
        "en-abcdefgh-abcdefgh-abcdefgh-abcde",
    ] {
        let events = given_nothing::<CrimeType>().when(with_tag(good)).events();
        assert_eq!(events.len(), 1, "{good:?}");
    }
}

#[test]
fn twenty_names_are_the_most_a_type_takes() {
    let mut s = spec();
    s.names = (0..19)
        .map(|i| (format!("l{}", (b'a' + i as u8) as char), "x".to_string()))
        .chain([("en".to_string(), "x".to_string())])
        .collect();
    assert_eq!(s.names.len(), NAMES_MAX);
    let e = created_from(s);
    assert_eq!(e.names.len(), NAMES_MAX);
}
