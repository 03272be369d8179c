//! One realistic sample of every event type, for round-trip and schema tests.

use precinct_domain::account::*;
use precinct_domain::admin_guard::*;
use precinct_domain::dispatch::{AssignmentDecision, ExcludedCandidate, RankedCandidate};
use precinct_domain::email::*;
use precinct_domain::ids::*;
use precinct_domain::invite::*;
use precinct_domain::patrol::*;
use precinct_domain::report::*;
use precinct_domain::routing::{RoutingDecision, RoutingRule};
use precinct_domain::station::*;
use precinct_domain::values::*;
use precinct_domain::DomainEvent;
use serde_json::Value;

use super::{t, uuid};

pub const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

pub fn report_events() -> Vec<ReportEvent> {
    let mut events = report_event_per_type();
    // Second samples for the shapes the first ones do not show.
    events.extend([
        ReportSubmitted {
            report_id: ReportId::new(uuid(2)),
            title: "Phishing e-mail".into(),
            crime_types: vec!["Phishing".into(), "Online Fraud".into()],
            crime_type_codes: vec![
                precinct_domain::crime_type::CrimeTypeCode::parse("FRAUD").expect("valid"),
                precinct_domain::crime_type::CrimeTypeCode::other(),
            ],
            location: ReportLocation::new(
                GeoPoint::parse(-90.0, 180.0).expect("valid"),
                None,
                None,
            ),
            occurred_at: None,
            media_urls: vec![],
            reporter: Reporter::User {
                account_id: AccountId::new(uuid(31)),
            },
            station_id: StationId::new(uuid(11)),
            routing: RoutingDecision {
                station_id: StationId::new(uuid(11)),
                rule: RoutingRule::DivisionKeyword,
                matched_keyword: Some("phishing".into()),
                distance_m: None,
            },
            priority: Priority::Medium,
            personal: PersonalDetails {
                description: "Got a fake bank e-mail".into(),
                street: None,
                contact: Some("maria@example.org".into()),
                erased: false,
            },
            at: t(0),
        }
        .into(),
        ReportAmended {
            crime_type_codes: None,
            changes: ReportChanges::default(),
            personal: Some(PersonalChanges {
                description: Some("More detail".into()),
                street: Some("1 Main St".into()),
                contact: Some("0917".into()),
            }),
            by: Some(AmendedBy::Reporter),
            at: t(1),
        }
        .into(),
        // A rejection with a public reason for the reporter.
        ReportRejected {
            justification: "Known prank caller".into(),
            by: AccountId::new(uuid(30)),
            at: t(2),
            public_reason: Some("We could not confirm what you reported.".into()),
        }
        .into(),
        ReportAmended {
            crime_type_codes: Some(vec![precinct_domain::crime_type::CrimeTypeCode::other()]),
            changes: ReportChanges {
                crime_types: Some(vec!["Theft".into()]),
                occurred_at: Some(t(-5)),
                media_urls: Some(vec![]),
                ..ReportChanges::default()
            },
            personal: None,
            by: Some(AmendedBy::Staff),
            at: t(1),
        }
        .into(),
        ReportAssigned {
            patrol_id: PatrolId::new(uuid(20)),
            auto: None,
            at: t(3),
        }
        .into(),
        EvidenceAttached {
            evidence_id: EvidenceId::new(uuid(51)),
            url: "http://evidence.example/statement.pdf".into(),
            media_type: MediaType::Document,
            captured_at: None,
            description: Some("Signed statement".into()),
            author_id: AccountId::new(uuid(30)),
            at: t(7),
        }
        .into(),
        ReportWithdrawn {
            reason: Some("Found it".into()),
            at: t(9),
        }
        .into(),
    ]);
    events
}

fn report_event_per_type() -> Vec<ReportEvent> {
    let patrol = PatrolId::new(uuid(20));
    let staff = AccountId::new(uuid(30));
    let location = ReportLocation::new(
        GeoPoint::parse(7.0731, 125.6128).expect("valid point"),
        Some("Davao City".into()),
        None,
    );
    vec![
        ReportSubmitted {
            report_id: ReportId::new(uuid(1)),
            title: "Stolen bicycle".into(),
            crime_types: vec!["Theft".into()],
            crime_type_codes: vec![],
            location: location.clone(),
            occurred_at: Some(t(-60)),
            media_urls: vec!["https://media.example/1.jpg".into()],
            reporter: Reporter::Anonymous {
                tracking_token_hash: TokenHash::parse(HASH).expect("valid hash"),
            },
            station_id: StationId::new(uuid(10)),
            routing: RoutingDecision {
                station_id: StationId::new(uuid(10)),
                rule: RoutingRule::NearestPrecinct,
                matched_keyword: None,
                distance_m: Some(1234.5),
            },
            priority: Priority::Medium,
            personal: PersonalDetails {
                description: "Taken from the rack at noon".into(),
                street: Some("12 Rizal St".into()),
                contact: None,
                erased: false,
            },
            at: t(0),
        }
        .into(),
        ReportAmended {
            crime_type_codes: None,
            changes: ReportChanges {
                title: Some("Stolen red bicycle".into()),
                location: Some(location),
                ..ReportChanges::default()
            },
            personal: Some(PersonalChanges {
                contact: Some("+63 900 000 0000".into()),
                ..PersonalChanges::default()
            }),
            // Recorded before amendments said who made them.
            by: None,
            at: t(1),
        }
        .into(),
        ReportTriaged {
            priority: Priority::High,
            at: t(2),
        }
        .into(),
        ReportAssigned {
            patrol_id: patrol,
            auto: Some(AssignmentDecision {
                patrol_id: patrol,
                candidates: vec![
                    RankedCandidate {
                        patrol_id: patrol,
                        rank: 1,
                        open_assignments: 0,
                        declines: 0,
                        last_assigned_at: None,
                        distance_m: Some(350.0),
                        reason: "fewer open assignments than the next candidate (0 < 1)".into(),
                    },
                    RankedCandidate {
                        patrol_id: PatrolId::new(uuid(21)),
                        rank: 2,
                        open_assignments: 1,
                        declines: 0,
                        last_assigned_at: Some(t(-30)),
                        distance_m: None,
                        reason: "last eligible patrol".into(),
                    },
                ],
                excluded: vec![ExcludedCandidate {
                    patrol_id: PatrolId::new(uuid(22)),
                    reason: "status is OFF_DUTY".into(),
                }],
            }),
            at: t(3),
        }
        .into(),
        AssignmentAccepted {
            patrol_id: patrol,
            at: t(4),
        }
        .into(),
        AssignmentDeclined {
            patrol_id: patrol,
            reason: "Out of area".into(),
            at: t(4),
        }
        .into(),
        ReportResponding {
            patrol_id: patrol,
            at: t(5),
        }
        .into(),
        NoteAdded {
            note_id: NoteId::new(uuid(40)),
            note: "Witness spoken to".into(),
            author_id: staff,
            at: t(6),
        }
        .into(),
        PublicUpdatePosted {
            update_id: UpdateId::new(uuid(45)),
            message: "Officers are on their way.".into(),
            author_id: staff,
            at: t(6),
        }
        .into(),
        EvidenceAttached {
            evidence_id: EvidenceId::new(uuid(50)),
            url: "https://evidence.example/cctv.mp4".into(),
            media_type: MediaType::Video,
            captured_at: Some(t(-50)),
            description: None,
            author_id: staff,
            at: t(7),
        }
        .into(),
        ReportResolved {
            patrol_id: patrol,
            resolution_notes: "Bicycle recovered".into(),
            at: t(8),
        }
        .into(),
        ClosureApproved {
            reviewer_id: staff,
            at: t(9),
        }
        .into(),
        ClosureRejected {
            reviewer_id: staff,
            reason: "Owner not informed".into(),
            at: t(9),
        }
        .into(),
        ReportRejected {
            justification: "Prank".into(),
            by: staff,
            at: t(9),
            public_reason: None,
        }
        .into(),
        ReportWithdrawn {
            reason: None,
            at: t(9),
        }
        .into(),
        SlaBreached {
            kind: SlaKind::Accept,
            patrol_id: patrol,
            since: t(3),
            deadline: t(18),
            at: t(20),
        }
        .into(),
        AssignmentWithdrawn {
            patrol_id: patrol,
            reason: "Needed at a collision".into(),
            by: Some(staff),
            at: t(21),
        }
        .into(),
        precinct_domain::report::SlaWarned {
            kind: SlaKind::Respond,
            patrol_id: patrol,
            since: t(3),
            deadline: t(18),
            at: t(15),
        }
        .into(),
        precinct_domain::report::SlaEscalated {
            kind: SlaKind::Accept,
            action: precinct_domain::values::EscalationAction::Reassign,
            patrol_id: patrol,
            to_patrol_id: Some(PatrolId::new(uuid(40))),
            since: t(3),
            at: t(25),
        }
        .into(),
        AssignmentWithdrawn {
            patrol_id: patrol,
            reason: "Not accepted within the service level".into(),
            by: None,
            at: t(25),
        }
        .into(),
        ReportTransferred {
            from_station_id: StationId::new(uuid(10)),
            station_id: StationId::new(uuid(11)),
            reason: "Inside the harbour division's area".into(),
            by: staff,
            at: t(22),
        }
        .into(),
        ReportReopened {
            reason: "The owner found more damage".into(),
            by: staff,
            at: t(23),
        }
        .into(),
        ReportMarkedDuplicate {
            primary_id: ReportId::new(uuid(2)),
            by: staff,
            at: t(24),
        }
        .into(),
        DuplicateAttached {
            duplicate_id: ReportId::new(uuid(3)),
            by: staff,
            at: t(25),
        }
        .into(),
        DuplicateUnmarked {
            primary_id: ReportId::new(uuid(2)),
            by: staff,
            at: t(26),
        }
        .into(),
        DuplicateDetached {
            duplicate_id: ReportId::new(uuid(3)),
            by: staff,
            at: t(27),
        }
        .into(),
        ReportLinked {
            other_id: ReportId::new(uuid(4)),
            by: staff,
            at: t(28),
        }
        .into(),
        ReportUnlinked {
            other_id: ReportId::new(uuid(4)),
            by: staff,
            at: t(29),
        }
        .into(),
        PatrolNotified {
            patrol_id: PatrolId::new(uuid(20)),
            by: staff,
            at: t(30),
        }
        .into(),
    ]
}

pub fn patrol_events() -> Vec<PatrolEvent> {
    vec![
        PatrolRegistered {
            patrol_id: PatrolId::new(uuid(20)),
            call_sign: "Alpha-1".into(),
            station_id: StationId::new(uuid(10)),
            officer_ids: vec![AccountId::new(uuid(31)), AccountId::new(uuid(32))],
            at: t(0),
        }
        .into(),
        PatrolUpdated {
            call_sign: Some("Alpha-2".into()),
            officer_ids: None,
            at: t(1),
        }
        .into(),
        PatrolUpdated {
            call_sign: None,
            officer_ids: Some(vec![]),
            at: t(1),
        }
        .into(),
        PatrolStatusChanged {
            status: PatrolStatus::Busy,
            cause: StatusCause::Dispatched,
            at: t(2),
        }
        .into(),
        PatrolAssignmentOpened {
            report_id: ReportId::new(uuid(1)),
            at: t(2),
        }
        .into(),
        PatrolAssignmentClosed {
            report_id: ReportId::new(uuid(1)),
            outcome: AssignmentOutcome::Finished,
            at: t(3),
        }
        .into(),
        PatrolAssignmentClosed {
            report_id: ReportId::new(uuid(1)),
            outcome: AssignmentOutcome::Withdrawn,
            at: t(4),
        }
        .into(),
    ]
}

pub fn account_events() -> Vec<AccountEvent> {
    vec![
        AccountRegistered {
            account_id: AccountId::new(uuid(30)),
            email: Some(Email::parse("Officer@Example.org").expect("valid email")),
            name: Some("Maria Santos".into()),
            role: Role::Dispatcher,
            station_id: Some(StationId::new(uuid(10))),
            password_hash: PasswordHash::parse("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
                .expect("valid hash"),
            at: t(0),
            invite_id: Some(InviteId::new(uuid(60))),
        }
        .into(),
        AccountRoleChanged {
            role: Role::Admin,
            station_id: None,
            at: t(1),
        }
        .into(),
        AccountRegistered {
            account_id: AccountId::new(uuid(31)),
            email: Some(Email::parse("citizen@example.org").expect("valid email")),
            name: Some("Juan".into()),
            role: Role::Citizen,
            station_id: None,
            password_hash: PasswordHash::parse("$argon2id$x").expect("valid hash"),
            at: t(0),
            invite_id: None,
        }
        .into(),
        // As read after the account's data subject was erased: e-mail and name are gone.
        AccountRegistered {
            account_id: AccountId::new(uuid(32)),
            email: None,
            name: None,
            role: Role::Citizen,
            station_id: None,
            password_hash: PasswordHash::parse("$argon2id$x").expect("valid hash"),
            at: t(0),
            invite_id: None,
        }
        .into(),
        AccountDeactivated { at: t(2) }.into(),
        AccountReactivated { at: t(3) }.into(),
        AccountRenamed {
            name: Some("Maria S. Santos".into()),
            at: t(4),
        }
        .into(),
        // As read after erasure.
        AccountRenamed {
            name: None,
            at: t(4),
        }
        .into(),
        AccountPasswordChanged {
            password_hash: PasswordHash::parse("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
                .expect("valid hash"),
            changed_by: AccountId::new(uuid(31)),
            at: t(5),
        }
        .into(),
    ]
}

pub fn email_events() -> Vec<EmailEvent> {
    vec![
        EmailReserved {
            account_id: AccountId::new(uuid(30)),
            at: t(0),
        }
        .into(),
        EmailReleased {
            account_id: AccountId::new(uuid(30)),
            at: t(1),
        }
        .into(),
    ]
}

pub fn subject_events() -> Vec<precinct_domain::subject::SubjectEvent> {
    vec![precinct_domain::subject::DataSubjectErased {
        subject_id: uuid(30),
        erased_by: AccountId::new(uuid(31)),
        at: t(5),
    }
    .into()]
}

pub fn station_events() -> Vec<StationEvent> {
    vec![
        StationCreated {
            station_id: StationId::new(uuid(10)),
            name: "Sta. Ana Precinct".into(),
            kind: StationKind::Precinct,
            latitude: Some(Latitude::parse(7.07).expect("valid")),
            longitude: Some(Longitude::parse(125.61).expect("valid")),
            area: Some(
                Polygon::parse(vec![vec![
                    [125.60, 7.06],
                    [125.62, 7.06],
                    [125.62, 7.08],
                    [125.60, 7.08],
                    [125.60, 7.06],
                ]])
                .expect("valid polygon"),
            ),
            crime_types: vec![],
            at: t(0),
        }
        .into(),
        StationCreated {
            station_id: StationId::new(uuid(11)),
            name: "Cybercrime Division".into(),
            kind: StationKind::Division,
            latitude: None,
            longitude: None,
            area: None,
            crime_types: vec!["cybercrime".into(), "phishing".into()],
            at: t(0),
        }
        .into(),
        precinct_domain::station::StationUpdated {
            station_id: StationId::new(uuid(10)),
            name: "Sta. Ana Precinct".into(),
            latitude: None,
            longitude: None,
            area: Some(
                Polygon::parse(vec![vec![
                    [125.60, 7.06],
                    [125.63, 7.06],
                    [125.63, 7.08],
                    [125.60, 7.08],
                    [125.60, 7.06],
                ]])
                .expect("valid polygon"),
            ),
            crime_types: vec![],
            contact_phone: Some(
                precinct_domain::values::PhoneNumber::parse("+63 82 227-1234").expect("valid"),
            ),
            changed: vec![
                precinct_domain::station::StationField::Point,
                precinct_domain::station::StationField::Area,
                precinct_domain::station::StationField::ContactPhone,
            ],
            at: t(10),
        }
        .into(),
        precinct_domain::station::StationDeactivated {
            station_id: StationId::new(uuid(11)),
            at: t(20),
        }
        .into(),
        precinct_domain::station::StationReactivated {
            station_id: StationId::new(uuid(11)),
            at: t(30),
        }
        .into(),
        precinct_domain::station::StationSlaPolicySet {
            station_id: StationId::new(uuid(10)),
            policy: serde_json::from_value(serde_json::json!({
                "deadlines": { "CRITICAL": { "accept_secs": 120, "respond_secs": 600 } },
                "warn_at_percent": 75,
                "notify_supervisors": true,
                "unaccepted": { "action": "REQUEUE", "after_secs": 300 }
            }))
            .expect("a valid policy"),
            at: t(30),
        }
        .into(),
    ]
}

pub fn invite_events() -> Vec<InviteEvent> {
    vec![
        InviteCreated {
            invite_id: InviteId::new(uuid(60)),
            code_hash: TokenHash::parse(HASH).expect("valid hash"),
            email: Some(Email::parse("new.officer@example.org").expect("valid email")),
            role: Role::Patrol,
            station_id: Some(StationId::new(uuid(10))),
            expires_at: t(60 * 24 * 7),
            created_by: AccountId::new(uuid(30)),
            at: t(0),
        }
        .into(),
        InviteAccepted {
            account_id: AccountId::new(uuid(33)),
            at: t(10),
        }
        .into(),
    ]
}

pub fn crime_type_events() -> Vec<precinct_domain::crime_type::CrimeTypeEvent> {
    use precinct_domain::crime_type::*;
    let code = CrimeTypeCode::parse("THEFT").expect("valid");
    let names: std::collections::BTreeMap<String, String> = [
        ("en".to_owned(), "Theft".to_owned()),
        ("fil".to_owned(), "Pagnanakaw".to_owned()),
    ]
    .into();
    vec![
        CrimeTypeCreated {
            code: code.clone(),
            names: names.clone(),
            default_priority: Priority::High,
            keywords: vec!["stolen".into(), "theft".into()],
            service_code: Some("theft-001".into()),
            group: Some("Property".into()),
            at: t(0),
        }
        .into(),
        CrimeTypeCreated {
            code: CrimeTypeCode::parse("GRAFFITI").expect("valid"),
            names: [("en".to_owned(), "Graffiti".to_owned())].into(),
            default_priority: Priority::Low,
            keywords: vec![],
            service_code: None,
            group: None,
            at: t(1),
        }
        .into(),
        CrimeTypeUpdated {
            code: code.clone(),
            names,
            default_priority: Priority::Medium,
            keywords: vec!["stolen".into()],
            service_code: None,
            group: Some("Property".into()),
            changed: vec![
                CrimeTypeField::DefaultPriority,
                CrimeTypeField::Keywords,
                CrimeTypeField::ServiceCode,
            ],
            at: t(2),
        }
        .into(),
        CrimeTypeRetired { code, at: t(3) }.into(),
    ]
}

pub fn webhook_events() -> Vec<precinct_domain::webhook::WebhookEvent> {
    use precinct_domain::ids::{StationId, WebhookId};
    use precinct_domain::values::Polygon;
    use precinct_domain::webhook::*;
    let id = WebhookId::new(uuid(60));
    let area = Polygon::parse(vec![vec![
        [125.0, 7.0],
        [125.1, 7.0],
        [125.1, 7.1],
        [125.0, 7.0],
    ]])
    .expect("valid");
    vec![
        WebhookCreated {
            webhook_id: id,
            url: "https://hooks.example.org/precinct".into(),
            filter: Filter {
                event_types: vec!["ReportSubmitted".into(), "ReportResolved".into()],
                station_id: Some(StationId::new(uuid(61))),
                area: Some(area),
            },
            personal_data: false,
            secret: serde_json::json!("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            created_by: AccountId::new(uuid(30)),
            at: t(0),
        }
        .into(),
        WebhookUpdated {
            webhook_id: id,
            url: "https://hooks.example.org/precinct/v2".into(),
            filter: Filter {
                event_types: vec![],
                station_id: Some(StationId::new(uuid(61))),
                area: None,
            },
            personal_data: true,
            enabled: true,
            at: t(1),
        }
        .into(),
        WebhookSecretRotated {
            webhook_id: id,
            secret: serde_json::json!("whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXk="),
            previous_valid_until: t(60 * 24),
            at: t(2),
        }
        .into(),
        WebhookDisabled {
            webhook_id: id,
            reason: "10 failed attempts in a row at position 42: HTTP 500".into(),
            at_position: 42,
            at: t(3),
        }
        .into(),
        WebhookReplayRequested {
            webhook_id: id,
            from_position: 17,
            at: t(4),
        }
        .into(),
        WebhookDeleted {
            webhook_id: id,
            at: t(5),
        }
        .into(),
    ]
}

pub fn reporter_contact_events() -> Vec<precinct_domain::reporter_contact::ReporterContactEvent> {
    use precinct_domain::reporter_contact::EmailUpdatesRequested;
    vec![EmailUpdatesRequested {
        report_id: precinct_domain::ids::ReportId::new(uuid(1)),
        subject_id: uuid(1),
        email: Some("reporter@example.org".into()),
        at: t(0),
    }
    .into()]
}

pub fn device_events() -> Vec<precinct_domain::device::DeviceEvent> {
    use precinct_domain::device::*;
    let account = AccountId::new(uuid(30));
    let device = DeviceId::new(uuid(70));
    vec![
        DeviceRegistered {
            account_id: account,
            device_id: device,
            kind: DeviceKind::WebPush,
            endpoint: serde_json::json!("https://push.example.org/wpush/v2/gAAAAABk"),
            keys: serde_json::json!({
                "p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
                "auth": "BTBZMqHH6r4Tts7J_aSIgg"
            }),
            at: t(0),
        }
        .into(),
        DeviceRemoved {
            account_id: account,
            device_id: device,
            reason: RemovalReason::Expired,
            status: Some(410),
            at: t(1),
        }
        .into(),
    ]
}

pub fn admin_guard_events() -> Vec<AdminGuardEvent> {
    vec![
        AdminLeft {
            account_id: AccountId::new(uuid(31)),
            exit: AdminExit::Deactivated,
            at: t(0),
        }
        .into(),
        AdminLeft {
            account_id: AccountId::new(uuid(32)),
            exit: AdminExit::Erased,
            at: t(1),
        }
        .into(),
    ]
}

fn as_samples<E: DomainEvent>(events: Vec<E>) -> Vec<(&'static str, Value)> {
    events
        .iter()
        .map(|e| (e.event_type(), e.to_data()))
        .collect()
}

/// `(event_type, data)` for every sample.
pub fn all() -> Vec<(&'static str, Value)> {
    let mut all = as_samples(report_events());
    all.extend(as_samples(patrol_events()));
    all.extend(as_samples(account_events()));
    all.extend(as_samples(email_events()));
    all.extend(as_samples(subject_events()));
    all.extend(as_samples(station_events()));
    all.extend(as_samples(invite_events()));
    all.extend(as_samples(crime_type_events()));
    all.extend(as_samples(webhook_events()));
    all.extend(as_samples(reporter_contact_events()));
    all.extend(as_samples(device_events()));
    all.extend(as_samples(admin_guard_events()));
    all
}
