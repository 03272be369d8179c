//! Report aggregate: every transition and every refusal, as given/when/then.

mod common;

use chrono::Duration;
use common::{given, given_nothing, t, uuid};
use precinct_domain::crime_type::{CrimeTypeCode, CrimeTypeFacts};
use precinct_domain::dispatch::{AssignmentDecision, RankedCandidate};
use precinct_domain::ids::*;
use precinct_domain::report::*;
use precinct_domain::routing::{RoutingDecision, RoutingRule};
use precinct_domain::values::*;
use precinct_domain::{fold, Aggregate, DomainError, ErrorKind};

use ReportStatus as S;

// ----- fixtures -------------------------------------------------------------------

fn report_id() -> ReportId {
    ReportId::new(uuid(1))
}
fn station() -> StationId {
    StationId::new(uuid(10))
}
fn patrol() -> PatrolId {
    PatrolId::new(uuid(20))
}
fn other_patrol() -> PatrolId {
    PatrolId::new(uuid(21))
}
fn staff() -> AccountId {
    AccountId::new(uuid(30))
}
fn citizen() -> AccountId {
    AccountId::new(uuid(31))
}

fn routing() -> RoutingDecision {
    RoutingDecision {
        station_id: station(),
        rule: RoutingRule::PrecinctArea,
        matched_keyword: None,
        distance_m: None,
    }
}

fn location() -> ReportLocation {
    ReportLocation::new(
        GeoPoint::parse(7.07, 125.61).expect("valid point"),
        Some("Davao City".into()),
        Some("Davao del Sur".into()),
    )
}

fn personal() -> PersonalDetails {
    PersonalDetails {
        description: "Two men broke the shop window".into(),
        street: Some("12 Rizal St".into()),
        contact: None,
        erased: false,
    }
}

fn submit() -> ReportCommand {
    ReportCommand::Submit {
        report_id: report_id(),
        title: "Shop break-in".into(),
        crime_types: vec!["Burglary".into()],
        catalogue: vec![],
        location: location(),
        occurred_at: Some(t(-30)),
        media_urls: vec!["https://media.example/window.jpg".into()],
        reporter: Reporter::User {
            account_id: citizen(),
        },
        routing: routing(),
        personal: personal(),
        at: t(0),
    }
}

fn submitted() -> ReportEvent {
    ReportSubmitted {
        report_id: report_id(),
        title: "Shop break-in".into(),
        crime_types: vec!["Burglary".into()],
        crime_type_codes: vec![CrimeTypeCode::other()],
        location: location(),
        occurred_at: Some(t(-30)),
        media_urls: vec!["https://media.example/window.jpg".into()],
        reporter: Reporter::User {
            account_id: citizen(),
        },
        station_id: station(),
        routing: routing(),
        priority: Priority::Medium,
        personal: personal(),
        at: t(0),
    }
    .into()
}

fn assigned_to(patrol_id: PatrolId, minute: i64) -> ReportEvent {
    ReportAssigned {
        patrol_id,
        auto: None,
        at: t(minute),
    }
    .into()
}
fn assigned(minute: i64) -> ReportEvent {
    assigned_to(patrol(), minute)
}
fn accepted(minute: i64) -> ReportEvent {
    AssignmentAccepted {
        patrol_id: patrol(),
        at: t(minute),
    }
    .into()
}
fn responding(minute: i64) -> ReportEvent {
    ReportResponding {
        patrol_id: patrol(),
        at: t(minute),
    }
    .into()
}
fn resolved(minute: i64) -> ReportEvent {
    ReportResolved {
        patrol_id: patrol(),
        resolution_notes: "Suspects arrested".into(),
        at: t(minute),
    }
    .into()
}
fn approved(minute: i64) -> ReportEvent {
    ClosureApproved {
        reviewer_id: staff(),
        at: t(minute),
    }
    .into()
}

/// The shortest history that leaves the report in `status`.
fn history(status: ReportStatus) -> Vec<ReportEvent> {
    let path = [
        submitted(),
        assigned(10),
        accepted(12),
        responding(14),
        resolved(16),
        approved(18),
    ];
    let rejected = ReportRejected {
        justification: "Duplicate".into(),
        by: staff(),
        at: t(5),
        public_reason: None,
    };
    let withdrawn = ReportWithdrawn {
        reason: None,
        at: t(5),
    };
    match status {
        S::New => path[..1].to_vec(),
        S::Assigned => path[..2].to_vec(),
        S::Accepted => path[..3].to_vec(),
        S::Responding => path[..4].to_vec(),
        S::Resolved => path[..5].to_vec(),
        S::Closed => path.to_vec(),
        S::Rejected => vec![submitted(), rejected.into()],
        S::Withdrawn => vec![submitted(), withdrawn.into()],
    }
}

fn invalid(field: &'static str, e: ValueError) -> ReportError {
    ReportError::Invalid {
        field,
        reason: e.to_string(),
    }
}

fn illegal(from: ReportStatus, action: &'static str) -> ReportError {
    ReportError::IllegalTransition { from, action }
}

const OPEN: &[ReportStatus] = &[S::New, S::Assigned, S::Accepted, S::Responding, S::Resolved];

/// Every command but `Submit` and `RecordSlaBreach`, with a valid payload, the
/// `action` name it reports in `IllegalTransition`, and the statuses that allow it.
fn transitions() -> Vec<(ReportCommand, &'static str, &'static [ReportStatus])> {
    let at = t(100);
    vec![
        (
            ReportCommand::Amend {
                catalogue: vec![],
                changes: ReportChanges {
                    title: Some("Shop break-in, two suspects".into()),
                    ..ReportChanges::default()
                },
                personal: None,
                by: AmendedBy::Reporter,
                at,
            },
            "amend",
            OPEN,
        ),
        (
            ReportCommand::Triage {
                priority: Priority::High,
                at,
            },
            "triage",
            OPEN,
        ),
        (
            ReportCommand::Assign {
                patrol_id: other_patrol(),
                decision: None,
                at,
            },
            "assign",
            &[S::New],
        ),
        (ReportCommand::Accept { at }, "accept", &[S::Assigned]),
        (
            ReportCommand::Decline {
                reason: "Too far".into(),
                at,
            },
            "decline",
            &[S::Assigned],
        ),
        (ReportCommand::Respond { at }, "respond to", &[S::Accepted]),
        (
            ReportCommand::AddNote {
                note_id: NoteId::new(uuid(40)),
                note: "Called the owner".into(),
                author_id: staff(),
                at,
            },
            "add a note to",
            OPEN,
        ),
        (
            ReportCommand::PostPublicUpdate {
                update_id: UpdateId::new(uuid(45)),
                message: "Officers are on their way.".into(),
                author_id: staff(),
                at,
            },
            "post a public update to",
            OPEN,
        ),
        (
            ReportCommand::AttachEvidence {
                evidence_id: EvidenceId::new(uuid(50)),
                url: "https://evidence.example/cctv.mp4".into(),
                media_type: MediaType::Video,
                captured_at: None,
                description: None,
                author_id: staff(),
                at,
            },
            "attach evidence to",
            &[S::Accepted, S::Responding, S::Resolved],
        ),
        (
            ReportCommand::Resolve {
                resolution_notes: "Done".into(),
                at,
            },
            "resolve",
            &[S::Responding],
        ),
        (
            ReportCommand::ApproveClosure {
                reviewer_id: staff(),
                at,
            },
            "approve closure of",
            &[S::Resolved],
        ),
        (
            ReportCommand::RejectClosure {
                reviewer_id: staff(),
                reason: "Owner not informed".into(),
                at,
            },
            "reject closure of",
            &[S::Resolved],
        ),
        (
            ReportCommand::RejectInvalid {
                justification: "Not a crime".into(),
                public_reason: None,
                by: staff(),
                at,
            },
            "reject",
            &[S::New, S::Assigned],
        ),
        (
            ReportCommand::Withdraw { reason: None, at },
            "withdraw",
            OPEN,
        ),
    ]
}

// ----- the transition table --------------------------------------------------------

#[test]
fn every_command_is_refused_in_every_status_that_does_not_allow_it() {
    for (cmd, action, allowed) in transitions() {
        for &status in ReportStatus::ALL {
            let outcome = given::<Report>(history(status)).when(cmd.clone());
            if allowed.contains(&status) {
                assert_eq!(outcome.events().len(), 1, "{action} from {status}");
            } else {
                outcome.then_err(illegal(status, action));
            }
        }
    }
}

#[test]
fn every_command_on_a_missing_report_is_not_found() {
    let mut commands: Vec<ReportCommand> = transitions().into_iter().map(|(c, _, _)| c).collect();
    commands.push(ReportCommand::RecordSlaBreach {
        kind: SlaKind::Accept,
        sla: Duration::minutes(15),
        at: t(100),
    });
    commands.push(warn(SlaKind::Accept, 15, 80, 100));
    commands.push(escalate(EscalationAction::Requeue, None, 100));
    for cmd in commands {
        given_nothing::<Report>()
            .when(cmd)
            .then_err(ReportError::NotFound);
    }
}

// ----- submit -----------------------------------------------------------------------

#[test]
fn submit_creates_a_new_report_with_medium_priority_routed_to_its_station() {
    let report = given_nothing::<Report>()
        .when(submit())
        .then_events(vec![submitted()]);
    assert!(report.version_exists());
    assert_eq!(report.status, S::New);
    assert_eq!(report.priority, Priority::Medium);
    assert_eq!(report.station_id, station());
    assert_eq!(report.personal, personal());
    assert!(report.is_reported_by(citizen()));
    assert!(!report.is_reported_by(staff()));
    assert_eq!(report.submitted_at, t(0));
}

#[test]
fn submit_normalises_text_and_drops_duplicate_crime_types() {
    let ReportCommand::Submit {
        report_id,
        routing,
        at,
        ..
    } = submit()
    else {
        unreachable!("submit() builds a Submit command")
    };
    let hash = TokenHash::parse(&"AB".repeat(32)).expect("valid hash");
    let events = given_nothing::<Report>()
        .when(ReportCommand::Submit {
            report_id,
            title: "  Shop break-in ".into(),
            crime_types: vec![" Burglary".into(), "burglary ".into(), "Vandalism".into()],
            catalogue: vec![CrimeTypeFacts {
                code: CrimeTypeCode::parse("BURGLARY").expect("code"),
                names: vec!["Break-in".into()],
                keywords: vec![],
                active: true,
            }],
            location: ReportLocation {
                city: Some("  ".into()),
                ..location()
            },
            occurred_at: None,
            media_urls: vec![],
            reporter: Reporter::Anonymous {
                tracking_token_hash: hash.clone(),
            },
            routing,
            personal: PersonalDetails {
                description: " Window broken ".into(),
                street: Some("".into()),
                contact: Some(" 0917 ".into()),
                erased: false,
            },
            at,
        })
        .events();
    let ReportEvent::ReportSubmitted(e) = &events[0] else {
        panic!("expected ReportSubmitted, got {events:?}")
    };
    assert_eq!(e.title, "Shop break-in");
    assert_eq!(e.crime_types, vec!["Burglary", "Vandalism"]);
    // "Burglary" is the code BURGLARY; "Vandalism" matches nothing: OTHER.
    assert_eq!(
        e.crime_type_codes,
        vec![
            CrimeTypeCode::parse("BURGLARY").expect("code"),
            CrimeTypeCode::other()
        ]
    );
    assert_eq!(e.location.city, None);
    assert_eq!(e.personal.description, "Window broken");
    assert_eq!(e.personal.street, None);
    assert_eq!(e.personal.contact.as_deref(), Some("0917"));
    let report: Report = fold(&events);
    assert!(report.has_tracking_token_hash(&hash));
}

#[test]
fn submit_twice_is_refused() {
    given::<Report>([submitted()])
        .when(submit())
        .then_err(ReportError::AlreadyExists);
}

fn submit_with(edit: impl FnOnce(&mut ReportCommand)) -> ReportCommand {
    let mut cmd = submit();
    edit(&mut cmd);
    cmd
}

#[test]
fn submit_refuses_invalid_fields() {
    let cases: Vec<(ReportCommand, ReportError)> = vec![
        (
            submit_with(|c| {
                if let ReportCommand::Submit { title, .. } = c {
                    *title = "   ".into();
                }
            }),
            invalid("title", ValueError::Blank),
        ),
        (
            submit_with(|c| {
                if let ReportCommand::Submit { title, .. } = c {
                    *title = "x".repeat(201);
                }
            }),
            invalid("title", ValueError::TooLong { max: 200, len: 201 }),
        ),
        (
            submit_with(|c| {
                if let ReportCommand::Submit { crime_types, .. } = c {
                    crime_types.clear();
                }
            }),
            invalid("crime_types", ValueError::TooFew { min: 1 }),
        ),
        (
            submit_with(|c| {
                if let ReportCommand::Submit { crime_types, .. } = c {
                    *crime_types = vec!["Theft".into(), " ".into()];
                }
            }),
            invalid("crime_types", ValueError::Blank),
        ),
        (
            submit_with(|c| {
                if let ReportCommand::Submit { crime_types, .. } = c {
                    *crime_types = (0..21).map(|i| format!("type {i}")).collect();
                }
            }),
            invalid("crime_types", ValueError::TooMany { max: 20, len: 21 }),
        ),
        (
            submit_with(|c| {
                if let ReportCommand::Submit { media_urls, .. } = c {
                    *media_urls = vec!["ftp://files.example/x.jpg".into()];
                }
            }),
            invalid("media_urls", ValueError::Url),
        ),
        (
            submit_with(|c| {
                if let ReportCommand::Submit { personal, .. } = c {
                    personal.description = String::new();
                }
            }),
            invalid("description", ValueError::Blank),
        ),
        (
            submit_with(|c| {
                if let ReportCommand::Submit { personal, .. } = c {
                    personal.street = Some("s".repeat(301));
                }
            }),
            invalid("street", ValueError::TooLong { max: 300, len: 301 }),
        ),
        (
            submit_with(|c| {
                if let ReportCommand::Submit { location, .. } = c {
                    location.state = Some("s".repeat(101));
                }
            }),
            invalid("location.state", ValueError::TooLong { max: 100, len: 101 }),
        ),
        (
            submit_with(|c| {
                if let ReportCommand::Submit { occurred_at, .. } = c {
                    *occurred_at = Some(t(1));
                }
            }),
            ReportError::Invalid {
                field: "occurred_at",
                reason: "must not be in the future".into(),
            },
        ),
    ];
    for (cmd, err) in cases {
        assert!(err.is_validation() && !err.is_conflict());
        given_nothing::<Report>().when(cmd).then_err(err);
    }
}

/// Issue 13: `occurred_at: -5000-01-01` was accepted, and the read side could not store
/// the event. Every caller-supplied time is held to the storable range.
#[test]
fn caller_supplied_times_outside_the_storable_range_are_refused() {
    let ancient = "-5000-01-01T00:00:00Z"
        .parse::<chrono::DateTime<chrono::Utc>>()
        .expect("chrono reads it");
    let before_1900 = "1899-12-31T23:59:59Z"
        .parse::<chrono::DateTime<chrono::Utc>>()
        .expect("valid");
    let far_future = "+200000-01-01T00:00:00Z"
        .parse::<chrono::DateTime<chrono::Utc>>()
        .expect("chrono reads it");
    for bad in [ancient, before_1900, far_future] {
        let out_of_range = ReportError::Invalid {
            field: "occurred_at",
            reason: ValueError::TimeOutOfRange.to_string(),
        };
        given_nothing::<Report>()
            .when(submit_with(|c| {
                if let ReportCommand::Submit { occurred_at, .. } = c {
                    *occurred_at = Some(bad);
                }
            }))
            .then_err(out_of_range.clone());
        given::<Report>(history(S::New))
            .when(ReportCommand::Amend {
                catalogue: vec![],
                changes: ReportChanges {
                    occurred_at: Some(bad),
                    ..ReportChanges::default()
                },
                personal: None,
                by: AmendedBy::Reporter,
                at: t(3),
            })
            .then_err(out_of_range);
        given::<Report>(history(S::Accepted))
            .when(ReportCommand::AttachEvidence {
                evidence_id: EvidenceId::new(uuid(50)),
                url: "https://evidence.example/a.jpg".into(),
                media_type: MediaType::Photo,
                captured_at: Some(bad),
                description: None,
                author_id: staff(),
                at: t(15),
            })
            .then_err(ReportError::Invalid {
                field: "captured_at",
                reason: ValueError::TimeOutOfRange.to_string(),
            });
    }
}

#[test]
fn a_device_clock_slightly_ahead_is_tolerated() {
    let ahead = t(0) + Duration::seconds(20);
    let report = given_nothing::<Report>()
        .when(submit_with(|c| {
            if let ReportCommand::Submit { occurred_at, .. } = c {
                *occurred_at = Some(ahead);
            }
        }))
        .events();
    assert!(
        matches!(&report[..], [ReportEvent::ReportSubmitted(e)] if e.occurred_at == Some(ahead))
    );
    let too_far = t(0) + Duration::seconds(31);
    given_nothing::<Report>()
        .when(submit_with(|c| {
            if let ReportCommand::Submit { occurred_at, .. } = c {
                *occurred_at = Some(too_far);
            }
        }))
        .then_err(ReportError::Invalid {
            field: "occurred_at",
            reason: ValueError::Future.to_string(),
        });
}

fn amended(i: i64, by: Option<AmendedBy>) -> ReportEvent {
    ReportAmended {
        crime_type_codes: None,
        changes: ReportChanges {
            title: Some(format!("v{i}")),
            ..ReportChanges::default()
        },
        personal: None,
        by,
        at: t(i),
    }
    .into()
}

fn amend_title(title: &str, by: AmendedBy, at: i64) -> ReportCommand {
    ReportCommand::Amend {
        catalogue: vec![],
        changes: ReportChanges {
            title: Some(title.into()),
            ..ReportChanges::default()
        },
        personal: None,
        by,
        at: t(at),
    }
}

/// Issue 13, item 7: a reporter could amend their report without end, and every read
/// of it (`as_of`, history) grew with it. The review of its fix, N10: the cap was
/// shared with staff, so a reporter who used it up blocked the desk's corrections.
#[test]
fn a_reporters_amendments_are_capped_but_not_the_desks() {
    let mut events = history(S::New);
    events.extend((1..MAX_AMENDMENTS as i64).map(|i| amended(i, Some(AmendedBy::Reporter))));
    // The reporter's fiftieth amendment is taken…
    let fiftieth = given::<Report>(events.clone())
        .when(amend_title("one more", AmendedBy::Reporter, 100))
        .then_events(vec![ReportAmended {
            crime_type_codes: None,
            changes: ReportChanges {
                title: Some("one more".into()),
                ..ReportChanges::default()
            },
            personal: None,
            by: Some(AmendedBy::Reporter),
            at: t(100),
        }
        .into()]);
    assert_eq!(fiftieth.reporter_amendments, MAX_AMENDMENTS);
    events.push(amended(100, Some(AmendedBy::Reporter)));
    // …the fifty-first is refused…
    let err = ReportError::TooManyAmendments {
        max: MAX_AMENDMENTS,
    };
    assert!(err.is_conflict());
    given::<Report>(events.clone())
        .when(amend_title("one too many", AmendedBy::Reporter, 101))
        .then_err(err.clone());
    // …while staff still correct it, beyond fifty amendments in all.
    let corrected = given::<Report>(events.clone())
        .when(amend_title("Bicycle theft", AmendedBy::Staff, 101))
        .then_events(vec![ReportAmended {
            crime_type_codes: None,
            changes: ReportChanges {
                title: Some("Bicycle theft".into()),
                ..ReportChanges::default()
            },
            personal: None,
            by: Some(AmendedBy::Staff),
            at: t(101),
        }
        .into()]);
    assert_eq!(
        (corrected.amendments, corrected.reporter_amendments),
        (MAX_AMENDMENTS + 1, MAX_AMENDMENTS)
    );
    events.push(amended(101, Some(AmendedBy::Staff)));
    // The desk's correction gives the reporter nothing back.
    given::<Report>(events.clone())
        .when(amend_title("still one too many", AmendedBy::Reporter, 102))
        .then_err(err);
    // Other changes go on.
    given::<Report>(events)
        .when(ReportCommand::Triage {
            priority: Priority::High,
            at: t(102),
        })
        .then_events(vec![ReportTriaged {
            priority: Priority::High,
            at: t(102),
        }
        .into()]);
}

/// N10: staff amendments are bounded by the report's history only; they never use up
/// the reporter's amendments.
#[test]
fn staff_amendments_do_not_count_against_the_reporters_cap() {
    let mut events = history(S::New);
    events.extend((1..=2 * MAX_AMENDMENTS as i64).map(|i| amended(i, Some(AmendedBy::Staff))));
    let report = given::<Report>(events)
        .when(amend_title("my own words", AmendedBy::Reporter, 300))
        .events();
    assert!(
        matches!(&report[..], [ReportEvent::ReportAmended(e)] if e.by == Some(AmendedBy::Reporter)),
        "{report:?}"
    );
}

/// N10: amendments recorded before they said who made them all counted against the one
/// shared cap; they still count as the reporter's (never fewer refusals than before).
#[test]
fn amendments_recorded_before_their_author_count_as_the_reporters() {
    let mut events = history(S::New);
    events.extend((1..=MAX_AMENDMENTS as i64).map(|i| amended(i, None)));
    given::<Report>(events.clone())
        .when(amend_title("one too many", AmendedBy::Reporter, 100))
        .then_err(ReportError::TooManyAmendments {
            max: MAX_AMENDMENTS,
        });
    given::<Report>(events)
        .when(amend_title("Bicycle theft", AmendedBy::Staff, 100))
        .events();
    // Such an event decodes without the field.
    let legacy: ReportAmended =
        serde_json::from_value(serde_json::json!({"changes": {"title": "x"}, "at": t(1)}))
            .expect("decodes");
    assert_eq!(legacy.by, None);
}

/// Issue 13, item 7: one report's history is bounded, so every read of it is. A full
/// report refuses what only adds to it, but can still be worked to its end.
#[test]
fn a_full_report_refuses_additions_but_can_still_end() {
    let mut events = history(S::Responding);
    let notes = MAX_REPORT_EVENTS as usize - events.len();
    events.extend((0..notes).map(|i| -> ReportEvent {
        NoteAdded {
            note_id: NoteId::new(uuid(1_000 + i as u128)),
            note: "update".into(),
            author_id: staff(),
            at: t(20),
        }
        .into()
    }));
    let full = ReportError::HistoryFull {
        max: MAX_REPORT_EVENTS,
    };
    assert!(full.is_conflict());
    let state = given::<Report>(events.clone());
    assert_eq!(state.state().events, MAX_REPORT_EVENTS);
    for cmd in [
        ReportCommand::AddNote {
            note_id: NoteId::new(uuid(9)),
            note: "one more".into(),
            author_id: staff(),
            at: t(21),
        },
        ReportCommand::AttachEvidence {
            evidence_id: EvidenceId::new(uuid(9)),
            url: "https://evidence.example/a.jpg".into(),
            media_type: MediaType::Photo,
            captured_at: None,
            description: None,
            author_id: staff(),
            at: t(21),
        },
        ReportCommand::Triage {
            priority: Priority::Low,
            at: t(21),
        },
        ReportCommand::PostPublicUpdate {
            update_id: UpdateId::new(uuid(9)),
            message: "we are on it".into(),
            author_id: staff(),
            at: t(21),
        },
        // Staff amendments too: the history bounds them.
        ReportCommand::Amend {
            catalogue: vec![],
            changes: ReportChanges {
                title: Some("x".into()),
                ..ReportChanges::default()
            },
            personal: None,
            by: AmendedBy::Staff,
            at: t(21),
        },
    ] {
        given::<Report>(events.clone())
            .when(cmd)
            .then_err(full.clone());
    }
    // Resolving and closing still work.
    let resolved = given::<Report>(events.clone())
        .when(ReportCommand::Resolve {
            resolution_notes: "Done".into(),
            at: t(22),
        })
        .events();
    events.extend(resolved);
    given::<Report>(events.clone())
        .when(ReportCommand::RejectClosure {
            reviewer_id: staff(),
            reason: "again".into(),
            at: t(23),
        })
        .then_err(full);
    given::<Report>(events)
        .when(ReportCommand::ApproveClosure {
            reviewer_id: staff(),
            at: t(23),
        })
        .then_events(vec![ClosureApproved {
            reviewer_id: staff(),
            at: t(23),
        }
        .into()]);
}

// ----- amend ------------------------------------------------------------------------

#[test]
fn amend_replaces_given_fields_and_keeps_personal_data_apart() {
    let burglary = CrimeTypeCode::parse("BURGLARY").expect("code");
    let report = given::<Report>(history(S::New))
        .when(ReportCommand::Amend {
            catalogue: vec![CrimeTypeFacts {
                code: burglary.clone(),
                names: vec!["Break-in".into()],
                keywords: vec![],
                active: true,
            }],
            changes: ReportChanges {
                title: Some(" Shop break-in at night ".into()),
                crime_types: Some(vec!["Burglary".into(), "Vandalism".into()]),
                ..ReportChanges::default()
            },
            personal: Some(PersonalChanges {
                contact: Some("0917 000 0000".into()),
                ..PersonalChanges::default()
            }),
            by: AmendedBy::Reporter,
            at: t(3),
        })
        .then_events(vec![ReportAmended {
            // The new crime types resolve on the catalogue, as at submission.
            crime_type_codes: Some(vec![burglary.clone(), CrimeTypeCode::other()]),
            changes: ReportChanges {
                title: Some("Shop break-in at night".into()),
                crime_types: Some(vec!["Burglary".into(), "Vandalism".into()]),
                ..ReportChanges::default()
            },
            personal: Some(PersonalChanges {
                contact: Some("0917 000 0000".into()),
                ..PersonalChanges::default()
            }),
            by: Some(AmendedBy::Reporter),
            at: t(3),
        }
        .into()]);
    assert_eq!(report.title, "Shop break-in at night");
    assert_eq!(report.crime_types, vec!["Burglary", "Vandalism"]);
    assert_eq!(
        report.crime_type_codes,
        vec![burglary, CrimeTypeCode::other()]
    );
    assert_eq!(report.personal.contact.as_deref(), Some("0917 000 0000"));
    assert_eq!(report.personal.description, personal().description);
    assert_eq!(report.location, location());
    assert_eq!(report.updated_at, t(3));
}

#[test]
fn an_amendment_that_leaves_the_crime_types_alone_keeps_the_codes() {
    let before: Report = fold(&history(S::New));
    let report = given::<Report>(history(S::New))
        .when(ReportCommand::Amend {
            catalogue: vec![],
            changes: ReportChanges {
                title: Some("Retitled".into()),
                ..ReportChanges::default()
            },
            personal: None,
            by: AmendedBy::Staff,
            at: t(3),
        })
        .then_events(vec![ReportAmended {
            crime_type_codes: None,
            changes: ReportChanges {
                title: Some("Retitled".into()),
                ..ReportChanges::default()
            },
            personal: None,
            by: Some(AmendedBy::Staff),
            at: t(3),
        }
        .into()]);
    assert_eq!(report.crime_type_codes, before.crime_type_codes);
}

#[test]
fn amend_with_only_personal_changes_is_accepted() {
    given::<Report>(history(S::Assigned))
        .when(ReportCommand::Amend {
            catalogue: vec![],
            changes: ReportChanges::default(),
            personal: Some(PersonalChanges {
                street: Some("14 Rizal St".into()),
                ..PersonalChanges::default()
            }),
            by: AmendedBy::Reporter,
            at: t(11),
        })
        .then_events(vec![ReportAmended {
            crime_type_codes: None,
            changes: ReportChanges::default(),
            personal: Some(PersonalChanges {
                street: Some("14 Rizal St".into()),
                ..PersonalChanges::default()
            }),
            by: Some(AmendedBy::Reporter),
            at: t(11),
        }
        .into()]);
}

#[test]
fn amend_refuses_an_empty_change_set() {
    given::<Report>(history(S::New))
        .when(ReportCommand::Amend {
            catalogue: vec![],
            changes: ReportChanges::default(),
            personal: None,
            by: AmendedBy::Reporter,
            at: t(3),
        })
        .then_err(ReportError::NothingToChange);
    given::<Report>(history(S::New))
        .when(ReportCommand::Amend {
            catalogue: vec![],
            changes: ReportChanges::default(),
            personal: Some(PersonalChanges::default()),
            by: AmendedBy::Reporter,
            at: t(3),
        })
        .then_err(ReportError::NothingToChange);
}

#[test]
fn amend_refuses_invalid_fields() {
    given::<Report>(history(S::New))
        .when(ReportCommand::Amend {
            catalogue: vec![],
            changes: ReportChanges {
                title: Some(" ".into()),
                ..ReportChanges::default()
            },
            personal: None,
            by: AmendedBy::Reporter,
            at: t(3),
        })
        .then_err(invalid("title", ValueError::Blank));
    given::<Report>(history(S::New))
        .when(ReportCommand::Amend {
            catalogue: vec![],
            changes: ReportChanges::default(),
            personal: Some(PersonalChanges {
                description: Some("".into()),
                ..PersonalChanges::default()
            }),
            by: AmendedBy::Reporter,
            at: t(3),
        })
        .then_err(invalid("description", ValueError::Blank));
    given::<Report>(history(S::New))
        .when(ReportCommand::Amend {
            catalogue: vec![],
            changes: ReportChanges {
                media_urls: Some(vec!["javascript:alert(1)".into()]),
                ..ReportChanges::default()
            },
            personal: None,
            by: AmendedBy::Reporter,
            at: t(3),
        })
        .then_err(invalid("media_urls", ValueError::Url));
}

// ----- triage -----------------------------------------------------------------------

#[test]
fn triage_sets_the_priority_of_an_open_report() {
    let report = given::<Report>(history(S::Responding))
        .when(ReportCommand::Triage {
            priority: Priority::Critical,
            at: t(15),
        })
        .then_events(vec![ReportTriaged {
            priority: Priority::Critical,
            at: t(15),
        }
        .into()]);
    assert_eq!(report.priority, Priority::Critical);
}

#[test]
fn triage_of_a_closed_report_is_refused() {
    given::<Report>(history(S::Closed))
        .when(ReportCommand::Triage {
            priority: Priority::Low,
            at: t(20),
        })
        .then_err(illegal(S::Closed, "triage"));
}

// ----- assign / accept / decline / respond -----------------------------------------

#[test]
fn assign_moves_a_new_report_to_assigned() {
    let report = given::<Report>(history(S::New))
        .when(ReportCommand::Assign {
            patrol_id: patrol(),
            decision: None,
            at: t(10),
        })
        .then_events(vec![assigned(10)]);
    assert_eq!(report.status, S::Assigned);
    assert_eq!(report.patrol_id, Some(patrol()));
    assert_eq!(report.assigned_at, Some(t(10)));
}

fn decision_for(patrol_id: PatrolId) -> AssignmentDecision {
    AssignmentDecision {
        patrol_id,
        candidates: vec![RankedCandidate {
            patrol_id,
            rank: 1,
            open_assignments: 0,
            declines: 0,
            last_assigned_at: None,
            distance_m: None,
            reason: "only eligible patrol".into(),
        }],
        excluded: vec![],
    }
}

#[test]
fn automatic_assign_records_the_decision() {
    given::<Report>(history(S::New))
        .when(ReportCommand::Assign {
            patrol_id: patrol(),
            decision: Some(decision_for(patrol())),
            at: t(10),
        })
        .then_events(vec![ReportAssigned {
            patrol_id: patrol(),
            auto: Some(decision_for(patrol())),
            at: t(10),
        }
        .into()]);
}

#[test]
fn assign_refuses_a_decision_for_another_patrol() {
    given::<Report>(history(S::New))
        .when(ReportCommand::Assign {
            patrol_id: patrol(),
            decision: Some(decision_for(other_patrol())),
            at: t(10),
        })
        .then_err(ReportError::Invalid {
            field: "patrol_id",
            reason: "differs from the automatic-assignment decision".into(),
        });
}

#[test]
fn assign_twice_is_refused() {
    given::<Report>(history(S::Assigned))
        .when(ReportCommand::Assign {
            patrol_id: other_patrol(),
            decision: None,
            at: t(11),
        })
        .then_err(illegal(S::Assigned, "assign"));
}

#[test]
fn accept_moves_assigned_to_accepted() {
    let report = given::<Report>(history(S::Assigned))
        .when(ReportCommand::Accept { at: t(12) })
        .then_events(vec![accepted(12)]);
    assert_eq!(report.status, S::Accepted);
    assert_eq!(report.accepted_at, Some(t(12)));
}

#[test]
fn accept_of_a_new_report_is_refused() {
    given::<Report>(history(S::New))
        .when(ReportCommand::Accept { at: t(12) })
        .then_err(illegal(S::New, "accept"));
}

#[test]
fn decline_returns_the_report_to_the_queue() {
    let report = given::<Report>(history(S::Assigned))
        .when(ReportCommand::Decline {
            reason: " Out of our area ".into(),
            at: t(11),
        })
        .then_events(vec![AssignmentDeclined {
            patrol_id: patrol(),
            reason: "Out of our area".into(),
            at: t(11),
        }
        .into()]);
    assert_eq!(report.status, S::New);
    assert_eq!(report.patrol_id, None);
    assert_eq!(report.assigned_at, None);
    assert_eq!(report.declines, 1);
}

#[test]
fn decline_needs_a_reason() {
    given::<Report>(history(S::Assigned))
        .when(ReportCommand::Decline {
            reason: "".into(),
            at: t(11),
        })
        .then_err(invalid("reason", ValueError::Blank));
}

#[test]
fn decline_after_accepting_is_refused() {
    given::<Report>(history(S::Accepted))
        .when(ReportCommand::Decline {
            reason: "Changed my mind".into(),
            at: t(13),
        })
        .then_err(illegal(S::Accepted, "decline"));
}

#[test]
fn respond_moves_accepted_to_responding() {
    let report = given::<Report>(history(S::Accepted))
        .when(ReportCommand::Respond { at: t(14) })
        .then_events(vec![responding(14)]);
    assert_eq!(report.status, S::Responding);
    assert_eq!(report.responding_at, Some(t(14)));
}

#[test]
fn respond_before_accepting_is_refused() {
    given::<Report>(history(S::Assigned))
        .when(ReportCommand::Respond { at: t(14) })
        .then_err(illegal(S::Assigned, "respond to"));
}

// ----- notes and evidence ----------------------------------------------------------

#[test]
fn notes_are_added_while_open() {
    let note = NoteAdded {
        note_id: NoteId::new(uuid(40)),
        note: "Called the owner".into(),
        author_id: staff(),
        at: t(11),
    };
    let report = given::<Report>(history(S::Assigned))
        .when(ReportCommand::AddNote {
            note_id: note.note_id,
            note: "  Called the owner\n".into(),
            author_id: staff(),
            at: t(11),
        })
        .then_events(vec![note.clone().into()]);
    assert_eq!(report.notes, vec![note]);
}

#[test]
fn notes_refuse_blank_text_too_long_text_and_reused_ids() {
    given::<Report>(history(S::New))
        .when(ReportCommand::AddNote {
            note_id: NoteId::new(uuid(40)),
            note: " \n ".into(),
            author_id: staff(),
            at: t(3),
        })
        .then_err(invalid("note", ValueError::Blank));
    given::<Report>(history(S::New))
        .when(ReportCommand::AddNote {
            note_id: NoteId::new(uuid(40)),
            note: "n".repeat(10_001),
            author_id: staff(),
            at: t(3),
        })
        .then_err(invalid(
            "note",
            ValueError::TooLong {
                max: 10_000,
                len: 10_001,
            },
        ));
    let mut events = history(S::New);
    events.push(
        NoteAdded {
            note_id: NoteId::new(uuid(40)),
            note: "First".into(),
            author_id: staff(),
            at: t(2),
        }
        .into(),
    );
    given::<Report>(events)
        .when(ReportCommand::AddNote {
            note_id: NoteId::new(uuid(40)),
            note: "Second".into(),
            author_id: staff(),
            at: t(3),
        })
        .then_err(ReportError::DuplicateId { kind: "note" });
}

#[test]
fn public_updates_are_posted_while_open_and_kept_apart_from_notes() {
    let update = PublicUpdatePosted {
        update_id: UpdateId::new(uuid(45)),
        message: "Officers are on their way.".into(),
        author_id: staff(),
        at: t(11),
    };
    let report = given::<Report>(history(S::Accepted))
        .when(ReportCommand::PostPublicUpdate {
            update_id: update.update_id,
            message: " Officers are on their way.\n".into(),
            author_id: staff(),
            at: t(11),
        })
        .then_events(vec![update.clone().into()]);
    assert_eq!(report.public_updates, vec![update]);
    assert!(report.notes.is_empty());
    assert_eq!(report.updated_at, t(11));
}

#[test]
fn public_updates_refuse_blank_text_too_long_text_and_reused_ids() {
    let post = |message: String| ReportCommand::PostPublicUpdate {
        update_id: UpdateId::new(uuid(45)),
        message,
        author_id: staff(),
        at: t(3),
    };
    given::<Report>(history(S::New))
        .when(post(" \n ".into()))
        .then_err(invalid("message", ValueError::Blank));
    given::<Report>(history(S::New))
        .when(post("m".repeat(2_001)))
        .then_err(invalid(
            "message",
            ValueError::TooLong {
                max: 2_000,
                len: 2_001,
            },
        ));
    let mut events = history(S::New);
    events.push(
        PublicUpdatePosted {
            update_id: UpdateId::new(uuid(45)),
            message: "First".into(),
            author_id: staff(),
            at: t(2),
        }
        .into(),
    );
    given::<Report>(events)
        .when(post("Second".into()))
        .then_err(ReportError::DuplicateId {
            kind: "public update",
        });
}

fn attach(evidence: u128, url: &str) -> ReportCommand {
    ReportCommand::AttachEvidence {
        evidence_id: EvidenceId::new(uuid(evidence)),
        url: url.into(),
        media_type: MediaType::Photo,
        captured_at: Some(t(13)),
        description: Some(" Front door ".into()),
        author_id: staff(),
        at: t(15),
    }
}

#[test]
fn evidence_is_attached_once_a_patrol_has_accepted() {
    let expected = EvidenceAttached {
        evidence_id: EvidenceId::new(uuid(50)),
        url: "https://evidence.example/door.jpg".into(),
        media_type: MediaType::Photo,
        captured_at: Some(t(13)),
        description: Some("Front door".into()),
        author_id: staff(),
        at: t(15),
    };
    for status in [S::Accepted, S::Responding, S::Resolved] {
        let report = given::<Report>(history(status))
            .when(attach(50, "https://evidence.example/door.jpg"))
            .then_events(vec![expected.clone().into()]);
        assert_eq!(report.evidence, vec![expected.clone()]);
    }
}

#[test]
fn evidence_refuses_bad_urls_future_capture_times_and_reused_ids() {
    let long = format!("https://evidence.example/{}", "a".repeat(2048));
    for url in ["ftp://x.example/a", "https://", "not a url", long.as_str()] {
        given::<Report>(history(S::Accepted))
            .when(attach(50, url))
            .then_err(invalid("url", ValueError::Url));
    }
    given::<Report>(history(S::Accepted))
        .when(ReportCommand::AttachEvidence {
            evidence_id: EvidenceId::new(uuid(50)),
            url: "https://evidence.example/a.jpg".into(),
            media_type: MediaType::Photo,
            captured_at: Some(t(16)),
            description: None,
            author_id: staff(),
            at: t(15),
        })
        .then_err(ReportError::Invalid {
            field: "captured_at",
            reason: "must not be in the future".into(),
        });
    let mut events = history(S::Accepted);
    events.extend(
        given::<Report>(history(S::Accepted))
            .when(attach(50, "https://evidence.example/a.jpg"))
            .events(),
    );
    given::<Report>(events)
        .when(attach(50, "https://evidence.example/b.jpg"))
        .then_err(ReportError::DuplicateId { kind: "evidence" });
}

#[test]
fn evidence_before_acceptance_is_refused() {
    given::<Report>(history(S::Assigned))
        .when(attach(50, "https://evidence.example/door.jpg"))
        .then_err(illegal(S::Assigned, "attach evidence to"));
}

// ----- resolve and closure review --------------------------------------------------

#[test]
fn resolve_moves_responding_to_resolved_with_notes() {
    let report = given::<Report>(history(S::Responding))
        .when(ReportCommand::Resolve {
            resolution_notes: "Suspects arrested".into(),
            at: t(16),
        })
        .then_events(vec![resolved(16)]);
    assert_eq!(report.status, S::Resolved);
    assert_eq!(
        report.resolution_notes.as_deref(),
        Some("Suspects arrested")
    );
    assert_eq!(report.resolved_at, Some(t(16)));
}

#[test]
fn resolve_needs_notes() {
    given::<Report>(history(S::Responding))
        .when(ReportCommand::Resolve {
            resolution_notes: "  ".into(),
            at: t(16),
        })
        .then_err(invalid("resolution_notes", ValueError::Blank));
}

#[test]
fn resolve_before_responding_is_refused() {
    given::<Report>(history(S::Accepted))
        .when(ReportCommand::Resolve {
            resolution_notes: "Done".into(),
            at: t(16),
        })
        .then_err(illegal(S::Accepted, "resolve"));
}

#[test]
fn approve_closure_closes_a_resolved_report() {
    let report = given::<Report>(history(S::Resolved))
        .when(ReportCommand::ApproveClosure {
            reviewer_id: staff(),
            at: t(18),
        })
        .then_events(vec![approved(18)]);
    assert_eq!(report.status, S::Closed);
    assert!(!report.status.is_open());
}

#[test]
fn approve_closure_of_an_unresolved_report_is_refused() {
    given::<Report>(history(S::Responding))
        .when(ReportCommand::ApproveClosure {
            reviewer_id: staff(),
            at: t(18),
        })
        .then_err(illegal(S::Responding, "approve closure of"));
}

#[test]
fn reject_closure_sends_the_report_back_to_responding() {
    let report = given::<Report>(history(S::Resolved))
        .when(ReportCommand::RejectClosure {
            reviewer_id: staff(),
            reason: "Owner not informed".into(),
            at: t(18),
        })
        .then_events(vec![ClosureRejected {
            reviewer_id: staff(),
            reason: "Owner not informed".into(),
            at: t(18),
        }
        .into()]);
    assert_eq!(report.status, S::Responding);
    assert_eq!(report.resolution_notes, None);
    assert_eq!(report.resolved_at, None);
}

#[test]
fn reject_closure_needs_a_reason() {
    given::<Report>(history(S::Resolved))
        .when(ReportCommand::RejectClosure {
            reviewer_id: staff(),
            reason: "".into(),
            at: t(18),
        })
        .then_err(invalid("reason", ValueError::Blank));
}

#[test]
fn reject_closure_of_a_closed_report_is_refused() {
    given::<Report>(history(S::Closed))
        .when(ReportCommand::RejectClosure {
            reviewer_id: staff(),
            reason: "Too late".into(),
            at: t(20),
        })
        .then_err(illegal(S::Closed, "reject closure of"));
}

// ----- reject as invalid, withdraw --------------------------------------------------

#[test]
fn reject_as_invalid_from_new_or_assigned() {
    for status in [S::New, S::Assigned] {
        let report = given::<Report>(history(status))
            .when(ReportCommand::RejectInvalid {
                justification: " Prank call ".into(),
                public_reason: None,
                by: staff(),
                at: t(11),
            })
            .then_events(vec![ReportRejected {
                justification: "Prank call".into(),
                by: staff(),
                at: t(11),
                public_reason: None,
            }
            .into()]);
        assert_eq!(report.status, S::Rejected);
        assert_eq!(report.rejection_public_reason, None);
    }
}

#[test]
fn a_rejection_keeps_its_public_reason_apart_from_the_justification() {
    let report = given::<Report>(history(S::New))
        .when(ReportCommand::RejectInvalid {
            justification: "Known prank caller".into(),
            public_reason: Some("  We could not confirm what you reported. ".into()),
            by: staff(),
            at: t(11),
        })
        .then_events(vec![ReportRejected {
            justification: "Known prank caller".into(),
            by: staff(),
            at: t(11),
            public_reason: Some("We could not confirm what you reported.".into()),
        }
        .into()]);
    assert_eq!(
        report.rejection_public_reason.as_deref(),
        Some("We could not confirm what you reported.")
    );
    // A blank public reason is no reason (the reporter gets the neutral default).
    given::<Report>(history(S::New))
        .when(ReportCommand::RejectInvalid {
            justification: "Known prank caller".into(),
            public_reason: Some("   ".into()),
            by: staff(),
            at: t(11),
        })
        .then_events(vec![ReportRejected {
            justification: "Known prank caller".into(),
            by: staff(),
            at: t(11),
            public_reason: None,
        }
        .into()]);
    given::<Report>(history(S::New))
        .when(ReportCommand::RejectInvalid {
            justification: "Known prank caller".into(),
            public_reason: Some("r".repeat(2_001)),
            by: staff(),
            at: t(11),
        })
        .then_err(invalid(
            "public_reason",
            ValueError::TooLong {
                max: 2_000,
                len: 2_001,
            },
        ));
}

#[test]
fn reject_as_invalid_needs_a_justification() {
    given::<Report>(history(S::New))
        .when(ReportCommand::RejectInvalid {
            justification: "".into(),
            public_reason: None,
            by: staff(),
            at: t(3),
        })
        .then_err(invalid("justification", ValueError::Blank));
}

#[test]
fn reject_as_invalid_after_acceptance_is_refused() {
    given::<Report>(history(S::Accepted))
        .when(ReportCommand::RejectInvalid {
            justification: "Prank".into(),
            public_reason: None,
            by: staff(),
            at: t(13),
        })
        .then_err(illegal(S::Accepted, "reject"));
}

#[test]
fn withdraw_from_every_open_status() {
    for &status in OPEN {
        let report = given::<Report>(history(status))
            .when(ReportCommand::Withdraw {
                reason: Some(" Found my bike ".into()),
                at: t(30),
            })
            .then_events(vec![ReportWithdrawn {
                reason: Some("Found my bike".into()),
                at: t(30),
            }
            .into()]);
        assert_eq!(report.status, S::Withdrawn);
    }
    given::<Report>(history(S::New))
        .when(ReportCommand::Withdraw {
            reason: Some("   ".into()),
            at: t(30),
        })
        .then_events(vec![ReportWithdrawn {
            reason: None,
            at: t(30),
        }
        .into()]);
}

#[test]
fn withdraw_of_a_finished_report_is_refused() {
    for status in [S::Closed, S::Rejected, S::Withdrawn] {
        given::<Report>(history(status))
            .when(ReportCommand::Withdraw {
                reason: None,
                at: t(30),
            })
            .then_err(illegal(status, "withdraw"));
    }
}

// ----- SLA --------------------------------------------------------------------------

fn record(kind: SlaKind, sla_minutes: i64, minute: i64) -> ReportCommand {
    ReportCommand::RecordSlaBreach {
        kind,
        sla: Duration::minutes(sla_minutes),
        at: t(minute),
    }
}

fn breach(kind: SlaKind, since: i64, deadline: i64, at: i64) -> ReportEvent {
    SlaBreached {
        kind,
        patrol_id: patrol(),
        since: t(since),
        deadline: t(deadline),
        at: t(at),
    }
    .into()
}

#[test]
fn accept_sla_breach_is_recorded_after_the_deadline() {
    // Assigned at minute 10; 15 minutes to accept.
    let report = given::<Report>(history(S::Assigned))
        .when(record(SlaKind::Accept, 15, 26))
        .then_events(vec![breach(SlaKind::Accept, 10, 25, 26)]);
    assert_eq!(
        report.status,
        S::Assigned,
        "a breach does not change the status"
    );
    assert!(report.sla_breaches.contains_key(&SlaKind::Accept));
}

#[test]
fn accept_sla_breach_is_refused_before_or_at_the_deadline() {
    given::<Report>(history(S::Assigned))
        .when(record(SlaKind::Accept, 15, 25))
        .then_err(ReportError::SlaNotBreached);
}

#[test]
fn sla_breach_is_recorded_once_per_assignment_and_kind() {
    let mut events = history(S::Assigned);
    events.push(breach(SlaKind::Accept, 10, 25, 26));
    given::<Report>(events.clone())
        .when(record(SlaKind::Accept, 15, 40))
        .then_err(ReportError::SlaAlreadyRecorded);

    // Declined and assigned again: a new assignment, a new clock.
    events.push(
        AssignmentDeclined {
            patrol_id: patrol(),
            reason: "Busy".into(),
            at: t(41),
        }
        .into(),
    );
    events.push(assigned(50));
    given::<Report>(events)
        .when(record(SlaKind::Accept, 15, 66))
        .then_events(vec![breach(SlaKind::Accept, 50, 65, 66)]);
}

fn warn(kind: SlaKind, sla_minutes: i64, percent: u8, minute: i64) -> ReportCommand {
    ReportCommand::RecordSlaWarning {
        kind,
        sla: Duration::minutes(sla_minutes),
        percent,
        at: t(minute),
    }
}

fn warned(kind: SlaKind, since: i64, deadline: i64, at: i64) -> ReportEvent {
    SlaWarned {
        kind,
        patrol_id: patrol(),
        since: t(since),
        deadline: t(deadline),
        at: t(at),
    }
    .into()
}

fn escalate(action: EscalationAction, to: Option<PatrolId>, minute: i64) -> ReportCommand {
    ReportCommand::EscalateUnaccepted {
        action,
        after: Duration::minutes(5),
        to,
        at: t(minute),
    }
}

#[test]
fn a_warning_is_recorded_once_at_its_level_and_never_after_the_breach() {
    // Assigned at minute 10; 20 minutes to accept; warn at 50 %: minute 20.
    given::<Report>(history(S::Assigned))
        .when(warn(SlaKind::Accept, 20, 50, 19))
        .then_err(ReportError::SlaNotBreached);
    let mut events = history(S::Assigned);
    let after = given::<Report>(events.clone())
        .when(warn(SlaKind::Accept, 20, 50, 20))
        .then_events(vec![warned(SlaKind::Accept, 10, 30, 20)]);
    assert_eq!(after.status, S::Assigned, "a warning changes no status");
    events.push(warned(SlaKind::Accept, 10, 30, 20));
    given::<Report>(events.clone())
        .when(warn(SlaKind::Accept, 20, 50, 25))
        .then_err(ReportError::SlaAlreadyRecorded);
    // The breach still comes, once.
    given::<Report>(events)
        .when(record(SlaKind::Accept, 20, 31))
        .then_events(vec![breach(SlaKind::Accept, 10, 30, 31)]);
    // A breach recorded first (a worker that was down past both): no late warning.
    let mut late = history(S::Assigned);
    late.push(breach(SlaKind::Accept, 10, 30, 31));
    given::<Report>(late)
        .when(warn(SlaKind::Accept, 20, 50, 32))
        .then_err(ReportError::SlaAlreadyRecorded);
}

#[test]
fn a_warning_level_must_be_1_to_99_percent() {
    for percent in [0, 100, 150] {
        given::<Report>(history(S::Assigned))
            .when(warn(SlaKind::Accept, 20, percent, 29))
            .then_err(ReportError::Invalid {
                field: "percent",
                reason: "must be 1..=99".into(),
            });
    }
}

#[test]
fn the_resolve_clock_runs_from_acceptance_until_resolution() {
    // Accepted at minute 12; 60 minutes to resolve.
    for status in [S::Accepted, S::Responding] {
        given::<Report>(history(status))
            .when(record(SlaKind::Resolve, 60, 73))
            .then_events(vec![breach(SlaKind::Resolve, 12, 72, 73)]);
    }
    for status in [S::Assigned, S::Resolved, S::Closed] {
        given::<Report>(history(status))
            .when(record(SlaKind::Resolve, 60, 500))
            .then_err(ReportError::SlaNotBreached);
    }
}

#[test]
fn an_unaccepted_assignment_is_escalated_only_after_its_breach_and_the_delay() {
    // Assigned at 10, breached at 26; 5 more minutes: due at 31.
    given::<Report>(history(S::Assigned))
        .when(escalate(EscalationAction::Requeue, None, 100))
        .then_err(ReportError::SlaNotBreached);
    let mut breached = history(S::Assigned);
    breached.push(breach(SlaKind::Accept, 10, 25, 26));
    given::<Report>(breached.clone())
        .when(escalate(EscalationAction::Requeue, None, 30))
        .then_err(ReportError::SlaNotBreached);
    let requeued = given::<Report>(breached.clone())
        .when(escalate(EscalationAction::Requeue, None, 31))
        .then_events(vec![
            SlaEscalated {
                kind: SlaKind::Accept,
                action: EscalationAction::Requeue,
                patrol_id: patrol(),
                to_patrol_id: None,
                since: t(10),
                at: t(31),
            }
            .into(),
            AssignmentWithdrawn {
                patrol_id: patrol(),
                reason: "Not accepted within the service level".into(),
                by: None,
                at: t(31),
            }
            .into(),
        ]);
    assert_eq!(requeued.status, S::New);
    assert_eq!(requeued.patrol_id, None);
    assert_eq!(
        requeued.declines, 0,
        "an escalation is not the patrol's decline"
    );
    // Accepted meanwhile: nothing to escalate.
    let mut accepted = breached.clone();
    accepted.push(
        AssignmentAccepted {
            patrol_id: patrol(),
            at: t(29),
        }
        .into(),
    );
    given::<Report>(accepted)
        .when(escalate(EscalationAction::Requeue, None, 40))
        .then_err(ReportError::SlaNotBreached);
}

#[test]
fn a_reassigning_escalation_moves_the_report_or_requeues_it_without_another_patrol() {
    let mut breached = history(S::Assigned);
    breached.push(breach(SlaKind::Accept, 10, 25, 26));
    let moved = given::<Report>(breached.clone())
        .when(escalate(
            EscalationAction::Reassign,
            Some(other_patrol()),
            40,
        ))
        .then_events(vec![
            SlaEscalated {
                kind: SlaKind::Accept,
                action: EscalationAction::Reassign,
                patrol_id: patrol(),
                to_patrol_id: Some(other_patrol()),
                since: t(10),
                at: t(40),
            }
            .into(),
            AssignmentWithdrawn {
                patrol_id: patrol(),
                reason: "Not accepted within the service level".into(),
                by: None,
                at: t(40),
            }
            .into(),
            ReportAssigned {
                patrol_id: other_patrol(),
                auto: None,
                at: t(40),
            }
            .into(),
        ]);
    assert_eq!(moved.status, S::Assigned);
    assert_eq!(moved.patrol_id, Some(other_patrol()));
    assert!(
        moved.sla_breaches.is_empty(),
        "a new assignment, a new clock"
    );
    // No other patrol (or the same one): it becomes a requeue, and says so.
    for to in [None, Some(patrol())] {
        let events = given::<Report>(breached.clone())
            .when(escalate(EscalationAction::Reassign, to, 40))
            .events();
        assert_eq!(events.len(), 2, "{events:?}");
        let ReportEvent::SlaEscalated(e) = &events[0] else {
            panic!("{events:?}");
        };
        assert_eq!(e.action, EscalationAction::Requeue);
    }
}

#[test]
fn respond_sla_breach_counts_from_acceptance() {
    // Accepted at minute 12; 30 minutes to respond.
    let mut events = history(S::Accepted);
    given::<Report>(events.clone())
        .when(record(SlaKind::Respond, 30, 42))
        .then_err(ReportError::SlaNotBreached);
    let then = given::<Report>(events.clone()).when(record(SlaKind::Respond, 30, 43));
    events.extend(then.events());
    assert_eq!(events.last(), Some(&breach(SlaKind::Respond, 12, 42, 43)));
    given::<Report>(events)
        .when(record(SlaKind::Respond, 30, 50))
        .then_err(ReportError::SlaAlreadyRecorded);
}

#[test]
fn sla_breach_of_a_clock_that_is_not_running_is_refused() {
    for (status, kind) in [
        (S::New, SlaKind::Accept),
        (S::Accepted, SlaKind::Accept),
        (S::Assigned, SlaKind::Respond),
        (S::Responding, SlaKind::Respond),
        (S::Closed, SlaKind::Respond),
    ] {
        given::<Report>(history(status))
            .when(record(kind, 1, 500))
            .then_err(ReportError::SlaNotBreached);
    }
}

#[test]
fn sla_length_must_be_positive() {
    given::<Report>(history(S::Assigned))
        .when(record(SlaKind::Accept, 0, 500))
        .then_err(ReportError::Invalid {
            field: "sla",
            reason: "must be a positive duration".into(),
        });
}

// ----- full lifecycles --------------------------------------------------------------

/// Runs commands in order from nothing, asserting each succeeds; returns all events.
fn run(commands: Vec<ReportCommand>) -> (Report, Vec<ReportEvent>) {
    let mut events = Vec::new();
    for cmd in commands {
        let new = given::<Report>(events.clone()).when(cmd).events();
        events.extend(new);
    }
    (fold(&events), events)
}

fn types(events: &[ReportEvent]) -> Vec<&'static str> {
    use precinct_domain::DomainEvent;
    events.iter().map(|e| e.event_type()).collect()
}

#[test]
fn lifecycle_new_to_closed() {
    let (report, events) = run(vec![
        submit(),
        ReportCommand::Triage {
            priority: Priority::High,
            at: t(1),
        },
        ReportCommand::Assign {
            patrol_id: patrol(),
            decision: None,
            at: t(10),
        },
        ReportCommand::Accept { at: t(12) },
        ReportCommand::Respond { at: t(14) },
        ReportCommand::Resolve {
            resolution_notes: "Suspects arrested".into(),
            at: t(16),
        },
        ReportCommand::ApproveClosure {
            reviewer_id: staff(),
            at: t(18),
        },
    ]);
    assert_eq!(
        types(&events),
        [
            "ReportSubmitted",
            "ReportTriaged",
            "ReportAssigned",
            "AssignmentAccepted",
            "ReportResponding",
            "ReportResolved",
            "ClosureApproved"
        ]
    );
    assert_eq!(report.status, S::Closed);
    assert_eq!(report.priority, Priority::High);
    assert_eq!(report.patrol_id, Some(patrol()));
    assert_eq!(
        (
            report.assigned_at,
            report.accepted_at,
            report.responding_at,
            report.resolved_at
        ),
        (Some(t(10)), Some(t(12)), Some(t(14)), Some(t(16)))
    );
    assert_eq!(report.updated_at, t(18));
}

#[test]
fn lifecycle_decline_then_reassign() {
    let (report, events) = run(vec![
        submit(),
        ReportCommand::Assign {
            patrol_id: patrol(),
            decision: None,
            at: t(10),
        },
        ReportCommand::Decline {
            reason: "Out of area".into(),
            at: t(11),
        },
        ReportCommand::Assign {
            patrol_id: other_patrol(),
            decision: None,
            at: t(12),
        },
        ReportCommand::Accept { at: t(13) },
    ]);
    assert_eq!(events[3], assigned_to(other_patrol(), 12));
    assert_eq!(
        events[4],
        AssignmentAccepted {
            patrol_id: other_patrol(),
            at: t(13)
        }
        .into()
    );
    assert_eq!(report.status, S::Accepted);
    assert_eq!(report.patrol_id, Some(other_patrol()));
    assert_eq!(report.declines, 1);
}

#[test]
fn lifecycle_closure_rejected_then_resolved_again_and_approved() {
    let mut commands = vec![submit()];
    commands.extend([
        ReportCommand::Assign {
            patrol_id: patrol(),
            decision: None,
            at: t(10),
        },
        ReportCommand::Accept { at: t(12) },
        ReportCommand::Respond { at: t(14) },
        ReportCommand::Resolve {
            resolution_notes: "Suspects arrested".into(),
            at: t(16),
        },
        ReportCommand::RejectClosure {
            reviewer_id: staff(),
            reason: "Owner not informed".into(),
            at: t(18),
        },
        ReportCommand::Resolve {
            resolution_notes: "Suspects arrested; owner informed".into(),
            at: t(20),
        },
        ReportCommand::ApproveClosure {
            reviewer_id: staff(),
            at: t(22),
        },
    ]);
    let (report, events) = run(commands);
    assert_eq!(
        types(&events)[4..],
        [
            "ReportResolved",
            "ClosureRejected",
            "ReportResolved",
            "ClosureApproved"
        ]
    );
    assert_eq!(report.status, S::Closed);
    assert_eq!(
        report.resolution_notes.as_deref(),
        Some("Suspects arrested; owner informed")
    );
}

#[test]
fn state_is_the_fold_of_the_history() {
    let events = history(S::Resolved);
    let report: Report = fold(&events);
    assert_eq!(report.id, report_id());
    assert_eq!(report.status, S::Resolved);
    assert!(!Report::default().version_exists());
    assert_eq!(Report::TYPE, "report");
}

#[test]
fn errors_sort_into_not_found_conflict_and_invalid() {
    assert_eq!(ReportError::NotFound.kind(), ErrorKind::NotFound);
    for e in [
        ReportError::AlreadyExists,
        illegal(S::New, "accept"),
        ReportError::SlaNotBreached,
        ReportError::SlaAlreadyRecorded,
        ReportError::DuplicateId { kind: "note" },
    ] {
        assert!(e.is_conflict(), "{e:?}");
        assert_eq!(e.kind(), ErrorKind::Conflict);
    }
    let e = invalid("title", ValueError::Blank);
    assert!(e.is_validation());
    assert_eq!(e.field(), Some("title"));
    assert_eq!(e.to_string(), "title: must not be blank");
    assert!(ReportError::NothingToChange.is_validation());
    assert_eq!(
        illegal(S::Closed, "triage").to_string(),
        "cannot triage a report that is CLOSED"
    );
}

// ----- boundaries found by mutation testing (docs/reliability.md) -------------------

fn submitted_anonymously(hash: TokenHash) -> ReportEvent {
    let ReportEvent::ReportSubmitted(mut e) = submitted() else {
        unreachable!("submitted() is a ReportSubmitted")
    };
    e.reporter = Reporter::Anonymous {
        tracking_token_hash: hash,
    };
    e.into()
}

#[test]
fn only_the_reports_own_tracking_token_opens_it() {
    // Given an anonymous report and a signed-in user's report,
    let own = TokenHash::parse(&"ab".repeat(32)).expect("valid hash");
    let other = TokenHash::parse(&"cd".repeat(32)).expect("valid hash");
    let anonymous = given::<Report>([submitted_anonymously(own.clone())]);
    let signed_in = given::<Report>([submitted()]);
    // then only the anonymous report's own token hash matches it,
    assert!(anonymous.state().has_tracking_token_hash(&own));
    assert!(!anonymous.state().has_tracking_token_hash(&other));
    // and no token opens a signed-in user's report (nor a report not yet submitted).
    assert!(!signed_in.state().has_tracking_token_hash(&own));
    assert!(!Report::default().has_tracking_token_hash(&own));
    // An anonymous report is nobody's account's.
    assert!(!anonymous.state().is_reported_by(citizen()));
}

#[test]
fn conflicts_and_not_found_are_not_validation_errors() {
    for e in [
        ReportError::NotFound,
        ReportError::AlreadyExists,
        illegal(S::New, "accept"),
        ReportError::SlaNotBreached,
        ReportError::HistoryFull { max: 1_000 },
        ReportError::SamePatrol,
    ] {
        assert!(!e.is_validation(), "{e:?}");
    }
    assert!(!ReportError::NotFound.is_conflict());
    assert!(!invalid("title", ValueError::Blank).is_conflict());
}

#[test]
fn a_refusal_for_duplicates_names_at_most_twenty_of_them() {
    let ids =
        |n: u128| -> Vec<ReportId> { (1..=n).map(|i| ReportId::new(uuid(1000 + i))).collect() };
    let twenty = ReportError::HasDuplicates {
        duplicates: ids(20),
    }
    .to_string();
    assert!(!twenty.contains("more"), "{twenty}");
    assert!(
        twenty.contains(&ReportId::new(uuid(1020)).to_string()),
        "{twenty}"
    );
    let twenty_five = ReportError::HasDuplicates {
        duplicates: ids(25),
    }
    .to_string();
    assert!(twenty_five.contains("and 5 more"), "{twenty_five}");
    assert!(twenty_five.contains(&ReportId::new(uuid(1020)).to_string()));
    assert!(!twenty_five.contains(&ReportId::new(uuid(1021)).to_string()));
    let twenty_one = ReportError::HasDuplicates {
        duplicates: ids(21),
    }
    .to_string();
    assert!(twenty_one.contains("and 1 more"), "{twenty_one}");
}

#[test]
fn a_submission_is_folded_into_every_field_of_the_state() {
    // Given a submission recorded in the log (any priority the event carries),
    let ReportEvent::ReportSubmitted(mut e) = submitted() else {
        unreachable!("submitted() is a ReportSubmitted")
    };
    e.priority = Priority::High;
    e.crime_types = vec!["Burglary".into(), "Vandalism".into()];
    e.at = t(3);
    // when it is folded, then the state holds what it says.
    let report = given::<Report>([e.clone().into()]).state().clone();
    assert_eq!(report.status, S::New);
    assert_eq!(report.priority, Priority::High);
    assert_eq!(report.title, "Shop break-in");
    assert_eq!(report.crime_types, vec!["Burglary", "Vandalism"]);
    assert_eq!(report.location, location());
    assert_eq!(report.occurred_at, Some(t(-30)));
    assert_eq!(report.media_urls, vec!["https://media.example/window.jpg"]);
    assert_eq!(report.station_id, station());
    assert_eq!(report.routing, Some(routing()));
    assert_eq!(report.personal, personal());
    assert_eq!(report.submitted_at, t(3));
    assert_eq!(report.updated_at, t(3));
    assert_eq!(report.events, 1);
}

#[test]
fn the_data_subject_is_the_reporters_account_or_the_anonymous_report_itself() {
    // Personal fields are sealed with this subject's key: a wrong subject would make
    // erasure shred the wrong key (or none).
    let signed_in = given::<Report>([submitted()]).state().clone();
    assert_eq!(signed_in.data_subject(), Some(citizen().as_uuid()));
    let hash = TokenHash::parse(&"ab".repeat(32)).expect("valid hash");
    let anonymous = given::<Report>([submitted_anonymously(hash)])
        .state()
        .clone();
    assert_eq!(anonymous.data_subject(), Some(report_id().as_uuid()));
    assert_eq!(Report::default().data_subject(), None);
}

#[test]
fn twenty_crime_types_and_twenty_media_links_are_the_most_a_report_takes() {
    let with = |crime_types: usize, media: usize| {
        let ReportCommand::Submit {
            report_id,
            location,
            occurred_at,
            reporter,
            routing,
            personal,
            at,
            ..
        } = submit()
        else {
            unreachable!("submit() builds a Submit command")
        };
        ReportCommand::Submit {
            report_id,
            title: "Shop break-in".into(),
            crime_types: (0..crime_types).map(|i| format!("Crime {i}")).collect(),
            location,
            occurred_at,
            media_urls: (0..media)
                .map(|i| format!("https://media.example/{i}.jpg"))
                .collect(),
            reporter,
            routing,
            personal,
            catalogue: vec![],
            at,
        }
    };
    // Given nothing, when submitting exactly 20 of each, then the report is created
    // with all of them;
    let events = given_nothing::<Report>().when(with(20, 20)).events();
    let ReportEvent::ReportSubmitted(e) = &events[0] else {
        panic!("expected ReportSubmitted, got {events:?}")
    };
    assert_eq!(e.crime_types.len(), 20);
    assert_eq!(e.media_urls.len(), 20);
    // one more of either is refused on its field.
    given_nothing::<Report>()
        .when(with(21, 1))
        .then_err(invalid(
            "crime_types",
            ValueError::TooMany { max: 20, len: 21 },
        ));
    given_nothing::<Report>()
        .when(with(1, 21))
        .then_err(invalid(
            "media_urls",
            ValueError::TooMany { max: 20, len: 21 },
        ));
    given_nothing::<Report>()
        .when(with(1, 25))
        .then_err(invalid(
            "media_urls",
            ValueError::TooMany { max: 20, len: 25 },
        ));
}

#[test]
fn a_report_location_gives_back_its_point() {
    let point = GeoPoint::new(
        Latitude::parse(7.07).expect("lat"),
        Longitude::parse(125.61).expect("lon"),
    );
    let location = ReportLocation::new(point, Some("Davao".into()), None);
    assert_eq!(location.point(), point);
}

/// The first sample `ReportSubmitted`, as its payload.
fn submitted_payload() -> serde_json::Value {
    use precinct_domain::DomainEvent;
    common::samples::report_events()
        .into_iter()
        .find(|e| e.event_type() == "ReportSubmitted")
        .expect("a sample submission")
        .to_data()
}

fn decode_submitted(data: serde_json::Value) -> ReportSubmitted {
    use precinct_domain::DomainEvent;
    match ReportEvent::from_parts("ReportSubmitted", data).expect("decodes") {
        ReportEvent::ReportSubmitted(s) => s,
        other => panic!("{other:?}"),
    }
}

#[test]
fn personal_details_whose_key_is_gone_read_as_erased() {
    let mut data = submitted_payload();
    data["personal"] = serde_json::Value::Null;
    let s = decode_submitted(data);
    assert!(s.personal.erased);
    assert_eq!(s.personal, PersonalDetails::erased());
    assert_eq!(s.personal.contact, None);
    assert!(!PersonalDetails::default().erased);
}

#[test]
fn a_submission_resolves_to_its_recorded_codes_or_to_other_before_the_catalogue() {
    let mut data = submitted_payload();
    data["crime_type_codes"] = serde_json::json!(["THEFT", "ROBBERY"]);
    let codes: Vec<String> = decode_submitted(data.clone())
        .resolved_codes()
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    assert_eq!(codes, ["THEFT", "ROBBERY"]);
    data.as_object_mut()
        .expect("an object")
        .remove("crime_type_codes");
    assert_eq!(
        decode_submitted(data).resolved_codes(),
        [CrimeTypeCode::other()]
    );
}
