//! Changes to a report, given/when/then without servers: the patrol's workload follows
//! its reports in the same append (decline, resolve, reject and withdraw close an open
//! assignment; a rejected closure reopens it), who may make each change as the report
//! and the accounts are now, and idempotent replays.

use crate::common::{events, Behind, World};
use chrono::Utc;
use precinct_app::commands::report::{
    self, amend, assignment, closure, desk, notes, submit, withdraw, Change,
};
use precinct_app::{AppError, Denied, Principal, Refusal, Unavailable};
use precinct_domain::ids::ReportId;
use precinct_domain::patrol::{AssignmentOutcome, Patrol, PatrolEvent, StatusCause};
use precinct_domain::report::{
    AmendedBy, Report, ReportChanges, ReportCommand, ReportError, ReportEvent, ReportLocation,
    Reporter, MAX_AMENDMENTS,
};
use precinct_domain::values::{GeoPoint, MediaType, PatrolStatus, Priority, ReportStatus, Role};

fn closed(w: &World, mark: u64, outcome: AssignmentOutcome) {
    let patrol = w.events_since::<Patrol>(w.patrol.as_uuid(), mark);
    match patrol.as_slice() {
        [PatrolEvent::PatrolAssignmentClosed(c), PatrolEvent::PatrolStatusChanged(s)] => {
            assert_eq!(c.outcome, outcome);
            assert_eq!(
                (s.status, s.cause),
                (PatrolStatus::Available, StatusCause::Released)
            );
        }
        other => panic!("expected the assignment closed and the patrol released: {other:?}"),
    }
}

/// A report the patrol has accepted and is responding to.
async fn responding(w: &World) -> ReportId {
    let id = w.given_assigned(w.patrol).await;
    w.given_steps(
        id,
        vec![
            ReportCommand::Accept { at: Utc::now() },
            ReportCommand::Respond { at: Utc::now() },
        ],
    )
    .await;
    id
}

#[tokio::test]
async fn a_decline_sends_the_report_back_and_closes_the_patrols_assignment() {
    let w = World::new().await;
    let id = w.given_assigned(w.patrol).await;
    let mark = w.mark();

    let out = assignment::decline(
        &w.app,
        &w.officer,
        &w.meta(&w.officer),
        id,
        "flat tyre".into(),
    )
    .await
    .expect("decline");

    assert_eq!(out.report.status, ReportStatus::New);
    assert_eq!(out.report.patrol_id, None);
    assert_eq!(
        w.appended_since(mark),
        events(&[
            ("report", "AssignmentDeclined"),
            ("patrol", "PatrolAssignmentClosed"),
            ("patrol", "PatrolStatusChanged"),
        ])
    );
    closed(&w, mark, AssignmentOutcome::Declined);
    let patrol: Patrol = w.state(w.patrol.as_uuid()).await;
    assert_eq!(patrol.declines, 1);
}

#[tokio::test]
async fn accepting_and_responding_leave_the_patrol_as_it_is() {
    let w = World::new().await;
    let id = w.given_assigned(w.patrol).await;
    let mark = w.mark();
    assignment::accept(&w.app, &w.partner, &w.meta(&w.partner), id)
        .await
        .expect("accept");
    assignment::respond(&w.app, &w.officer, &w.meta(&w.officer), id)
        .await
        .expect("respond");
    assert_eq!(
        w.appended_since(mark),
        events(&[
            ("report", "AssignmentAccepted"),
            ("report", "ReportResponding")
        ])
    );
}

#[tokio::test]
async fn resolving_closes_the_assignment_as_finished_and_a_rejected_closure_reopens_it() {
    let w = World::new().await;
    let id = responding(&w).await;
    let mark = w.mark();
    let out = assignment::resolve(
        &w.app,
        &w.officer,
        &w.meta(&w.officer),
        id,
        "returned".into(),
    )
    .await
    .expect("resolve");
    assert_eq!(out.report.status, ReportStatus::Resolved);
    closed(&w, mark, AssignmentOutcome::Finished);

    let mark = w.mark();
    let out = closure::reject(
        &w.app,
        &w.supervisor,
        &w.meta(&w.supervisor),
        id,
        "no photo".into(),
    )
    .await
    .expect("reject the closure");
    assert_eq!(out.report.status, ReportStatus::Responding);
    assert_eq!(
        w.appended_since(mark),
        events(&[
            ("report", "ClosureRejected"),
            ("patrol", "PatrolAssignmentOpened"),
            ("patrol", "PatrolStatusChanged"),
        ])
    );
    let patrol: Patrol = w.state(w.patrol.as_uuid()).await;
    assert_eq!(patrol.status, PatrolStatus::Busy);
    assert!(patrol.open_assignments.contains(&id));
}

#[tokio::test]
async fn approving_a_closure_touches_only_the_report() {
    let w = World::new().await;
    let id = responding(&w).await;
    assignment::resolve(
        &w.app,
        &w.officer,
        &w.meta(&w.officer),
        id,
        "returned".into(),
    )
    .await
    .expect("resolve");
    let mark = w.mark();
    let out = closure::approve(&w.app, &w.supervisor, &w.meta(&w.supervisor), id)
        .await
        .expect("approve");
    assert_eq!(out.report.status, ReportStatus::Closed);
    assert_eq!(
        w.appended_since(mark),
        events(&[("report", "ClosureApproved")])
    );
}

#[tokio::test]
async fn only_reviewers_of_the_station_review_closures() {
    let w = World::new().await;
    let id = responding(&w).await;
    assignment::resolve(
        &w.app,
        &w.officer,
        &w.meta(&w.officer),
        id,
        "returned".into(),
    )
    .await
    .expect("resolve");
    let err = closure::approve(&w.app, &w.dispatcher, &w.meta(&w.dispatcher), id)
        .await
        .expect_err("a dispatcher does not review");
    assert!(matches!(err, AppError::Forbidden(Denied::Role)), "{err:?}");
    let other_supervisor = Principal {
        station_id: Some(w.other_station),
        ..w.supervisor
    };
    let err = closure::approve(&w.app, &other_supervisor, &w.meta(&other_supervisor), id)
        .await
        .expect_err("another station's supervisor does not see it");
    assert!(matches!(err, AppError::NotFound), "{err:?}");
    // The decision itself refuses a desk that is no reviewer, whichever entry point
    // asked for the change (mutation testing: only the wrappers' check was tested).
    let mark = w.mark();
    for change in [
        Change::ApproveClosure,
        Change::RejectClosure("not enough".into()),
    ] {
        let err = report::change(
            &w.app,
            &w.dispatcher,
            &w.meta(&w.dispatcher),
            id,
            vec![change],
        )
        .await
        .expect_err("a dispatcher does not review");
        assert!(matches!(err, AppError::Forbidden(Denied::Role)), "{err:?}");
    }
    assert_eq!(w.mark(), mark, "nothing appended");
}

#[tokio::test]
async fn rejecting_an_assigned_report_as_invalid_cancels_the_patrols_assignment() {
    let w = World::new().await;
    let id = w.given_assigned(w.patrol).await;
    let mark = w.mark();
    let out = desk::reject(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        id,
        "a prank".into(),
        Some("We could not confirm it.".into()),
    )
    .await
    .expect("reject");
    assert_eq!(out.report.status, ReportStatus::Rejected);
    assert_eq!(
        w.appended_since(mark)[0],
        ("report".into(), "ReportRejected".into())
    );
    closed(&w, mark, AssignmentOutcome::Cancelled);
}

#[tokio::test]
async fn rejecting_a_new_report_touches_no_patrol() {
    let w = World::new().await;
    let id = w.given_report().await;
    let mark = w.mark();
    desk::reject(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        id,
        "dup".into(),
        None,
    )
    .await
    .expect("reject");
    assert_eq!(
        w.appended_since(mark),
        events(&[("report", "ReportRejected")])
    );
}

#[tokio::test]
async fn an_admin_withdrawing_an_assigned_report_cancels_the_assignment() {
    let w = World::new().await;
    let id = w.given_assigned(w.patrol).await;
    let mark = w.mark();
    let out = withdraw::withdraw(&w.app, &w.admin, &w.meta(&w.admin), id, Some("dup".into()))
        .await
        .expect("withdraw");
    assert_eq!(out.report.status, ReportStatus::Withdrawn);
    closed(&w, mark, AssignmentOutcome::Cancelled);
}

#[tokio::test]
async fn the_reporter_withdraws_only_while_new_and_staff_never() {
    let w = World::new().await;
    let new = w.given_report().await;
    let mark = w.mark();
    withdraw::withdraw(&w.app, &w.citizen, &w.meta(&w.citizen), new, None)
        .await
        .expect("the reporter withdraws a NEW report");
    assert_eq!(
        w.appended_since(mark),
        events(&[("report", "ReportWithdrawn")])
    );

    let assigned = w.given_assigned(w.patrol).await;
    let err = withdraw::withdraw(&w.app, &w.citizen, &w.meta(&w.citizen), assigned, None)
        .await
        .expect_err("not NEW any more");
    assert!(
        matches!(err, AppError::Refused(Refusal::WithdrawAfterNew)),
        "{err:?}"
    );
    let err = withdraw::withdraw(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        assigned,
        None,
    )
    .await
    .expect_err("staff do not withdraw");
    assert!(
        matches!(err, AppError::Forbidden(Denied::Withdraw)),
        "{err:?}"
    );
    let stranger = Principal {
        id: precinct_domain::ids::AccountId::new(uuid::Uuid::new_v4()),
        ..w.citizen
    };
    let err = withdraw::withdraw(&w.app, &stranger, &w.meta(&stranger), assigned, None)
        .await
        .expect_err("another citizen does not see it");
    assert!(matches!(err, AppError::NotFound), "{err:?}");
}

#[tokio::test]
async fn only_a_serving_member_of_the_assigned_patrol_takes_its_steps() {
    let w = World::new().await;
    let id = w.given_assigned(w.patrol).await;
    // A PATROL of the station outside the crew sees the report but may not accept it.
    let err = assignment::accept(&w.app, &w.other_officer, &w.meta(&w.other_officer), id)
        .await
        .expect_err("not in the crew");
    assert!(
        matches!(err, AppError::Forbidden(Denied::NotAMember)),
        "{err:?}"
    );
    // A crew member moved to another station (the account as it is now) no longer serves.
    let moved = Principal {
        station_id: Some(w.other_station),
        ..w.officer
    };
    let err = assignment::accept(&w.app, &moved, &w.meta(&moved), id)
        .await
        .expect_err("moved away");
    assert!(matches!(err, AppError::NotFound), "{err:?}");
    // A crew member who is no longer a PATROL: sees nothing of the report.
    let promoted = Principal {
        role: Role::Dispatcher,
        ..w.officer
    };
    let err = assignment::accept(&w.app, &promoted, &w.meta(&promoted), id)
        .await
        .expect_err("not a PATROL any more");
    assert!(
        matches!(err, AppError::Forbidden(Denied::NotAMember)),
        "{err:?}"
    );
    // The desk may not take the patrol's steps either.
    let err = assignment::decline(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        id,
        "x".into(),
    )
    .await
    .expect_err("the desk is not the patrol");
    assert!(
        matches!(err, AppError::Forbidden(Denied::NotAMember)),
        "{err:?}"
    );
    // The report's state decides too: a NEW report cannot be accepted by anyone.
    let new = w.given_report().await;
    let err = assignment::accept(&w.app, &w.officer, &w.meta(&w.officer), new)
        .await
        .expect_err("nothing assigned");
    assert!(
        matches!(err, AppError::Forbidden(Denied::NotAMember)),
        "{err:?}"
    );
}

#[tokio::test]
async fn notes_and_updates_come_from_the_patrol_or_the_desk_evidence_from_the_patrol() {
    let w = World::new().await;
    let id = responding(&w).await;
    let mark = w.mark();
    notes::add_note(
        &w.app,
        &w.officer,
        &w.meta(&w.officer),
        id,
        "on scene".into(),
    )
    .await
    .expect("the patrol notes");
    notes::add_note(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        id,
        "called".into(),
    )
    .await
    .expect("the desk notes");
    notes::post_public_update(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        id,
        "soon".into(),
    )
    .await
    .expect("the desk writes to the reporter");
    let evidence = notes::Evidence {
        url: "https://media.example/a.jpg".into(),
        media_type: MediaType::Photo,
        captured_at: None,
        description: None,
    };
    notes::attach_evidence(
        &w.app,
        &w.partner,
        &w.meta(&w.partner),
        id,
        evidence.clone(),
    )
    .await
    .expect("the patrol attaches evidence");
    assert_eq!(
        w.appended_since(mark),
        events(&[
            ("report", "NoteAdded"),
            ("report", "NoteAdded"),
            ("report", "PublicUpdatePosted"),
            ("report", "EvidenceAttached"),
        ])
    );
    let err = notes::attach_evidence(&w.app, &w.dispatcher, &w.meta(&w.dispatcher), id, evidence)
        .await
        .expect_err("evidence is the patrol's");
    assert!(
        matches!(err, AppError::Forbidden(Denied::NotAMember)),
        "{err:?}"
    );
    let err = notes::add_note(
        &w.app,
        &w.other_officer,
        &w.meta(&w.other_officer),
        id,
        "x".into(),
    )
    .await
    .expect_err("neither the patrol nor the desk");
    assert!(matches!(err, AppError::Forbidden(Denied::Role)), "{err:?}");
    let err = notes::add_note(&w.app, &w.citizen, &w.meta(&w.citizen), id, "x".into())
        .await
        .expect_err("the reporter writes no internal notes");
    assert!(matches!(err, AppError::Forbidden(Denied::Role)), "{err:?}");
}

#[tokio::test]
async fn a_replayed_note_is_the_original_with_the_same_id_and_position() {
    let w = World::new().await;
    let id = responding(&w).await;
    let meta = w.meta(&w.officer);
    let first = notes::add_note(&w.app, &w.officer, &meta, id, "on scene".into())
        .await
        .expect("note");
    let head = w.mark();
    let again = notes::add_note(&w.app, &w.officer, &meta, id, "on scene".into())
        .await
        .expect("replay");
    assert_eq!(again.position, first.position);
    assert_eq!(again.report.notes, first.report.notes, "the same note id");
    assert_eq!(again.report.notes.len(), 1);
    assert_eq!(w.mark(), head, "appended once");
}

#[tokio::test]
async fn triage_and_amendments_belong_to_the_desk_and_the_reporter_while_new() {
    let w = World::new().await;
    let id = w.given_report().await;
    let err = desk::triage(&w.app, &w.officer, &w.meta(&w.officer), id, Priority::High)
        .await
        .expect_err("a PATROL does not triage");
    assert!(matches!(err, AppError::Forbidden(Denied::Role)), "{err:?}");
    let err = desk::triage(
        &w.app,
        &w.other_dispatcher,
        &w.meta(&w.other_dispatcher),
        id,
        Priority::High,
    )
    .await
    .expect_err("another station's desk does not see it");
    assert!(matches!(err, AppError::NotFound), "{err:?}");
    let out = desk::triage(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        id,
        Priority::High,
    )
    .await
    .expect("triage");
    assert_eq!(out.report.priority, Priority::High);

    let retitle = |title: &str| Change::Amend {
        catalogue: vec![],
        changes: ReportChanges {
            title: Some(title.into()),
            ..Default::default()
        },
        personal: None,
    };
    amend::amend(
        &w.app,
        &w.citizen,
        &w.meta(&w.citizen),
        id,
        vec![retitle("Two bikes")],
        &w.facts(),
    )
    .await
    .expect("the reporter amends while NEW");
    // A status move in an amendment is staff's.
    let err = amend::amend(
        &w.app,
        &w.citizen,
        &w.meta(&w.citizen),
        id,
        vec![Change::Triage(Priority::Low)],
        &w.facts(),
    )
    .await
    .expect_err("a citizen moves no priority");
    assert!(
        matches!(err, AppError::Forbidden(Denied::StatusOrPriority)),
        "{err:?}"
    );
    // Once assigned, the reporter's amendment is a conflict; the desk still amends.
    let assigned = w.given_assigned(w.patrol).await;
    let err = amend::amend(
        &w.app,
        &w.citizen,
        &w.meta(&w.citizen),
        assigned,
        vec![retitle("x")],
        &w.facts(),
    )
    .await
    .expect_err("not NEW");
    assert!(
        matches!(err, AppError::Refused(Refusal::AmendAfterNew)),
        "{err:?}"
    );
    amend::amend(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        assigned,
        vec![retitle("Stolen e-bike")],
        &w.facts(),
    )
    .await
    .expect("the desk amends");
}

/// The review of issue 13's fixes, N10: the amendment cap was shared, so a reporter who
/// used it up blocked the desk's corrections. Amendments say whose they are; the
/// reporter's are capped.
#[tokio::test]
async fn amendments_say_whose_they_are_and_only_the_reporters_are_capped() {
    let w = World::new().await;
    let id = w.given_report().await;
    let retitle = |title: String| {
        vec![Change::Amend {
            catalogue: vec![],
            changes: ReportChanges {
                title: Some(title),
                ..Default::default()
            },
            personal: None,
        }]
    };
    let by_of_last = |mark: u64| match w.events_since::<Report>(id.as_uuid(), mark).as_slice() {
        [ReportEvent::ReportAmended(e)] => e.by,
        other => panic!("expected one amendment: {other:?}"),
    };
    for i in 0..MAX_AMENDMENTS {
        let mark = w.mark();
        amend::amend(
            &w.app,
            &w.citizen,
            &w.meta(&w.citizen),
            id,
            retitle(format!("take {i}")),
            &w.facts(),
        )
        .await
        .expect("the reporter amends");
        assert_eq!(by_of_last(mark), Some(AmendedBy::Reporter));
    }
    let err = amend::amend(
        &w.app,
        &w.citizen,
        &w.meta(&w.citizen),
        id,
        retitle("more".into()),
        &w.facts(),
    )
    .await
    .expect_err("capped");
    assert_eq!(
        err.domain_error::<ReportError>(),
        Some(&ReportError::TooManyAmendments {
            max: MAX_AMENDMENTS
        }),
        "{err:?}"
    );
    let mark = w.mark();
    let out = amend::amend(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        id,
        retitle("Bicycle theft".into()),
        &w.facts(),
    )
    .await
    .expect("the desk still corrects it");
    assert_eq!(by_of_last(mark), Some(AmendedBy::Staff));
    assert_eq!(
        (out.report.amendments, out.report.reporter_amendments),
        (MAX_AMENDMENTS + 1, MAX_AMENDMENTS)
    );
}

#[tokio::test]
async fn an_amendment_with_a_status_move_is_one_command_and_closes_the_assignment() {
    let w = World::new().await;
    let id = w.given_assigned(w.patrol).await;
    let mark = w.mark();
    let out = amend::amend(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        id,
        vec![
            Change::Triage(Priority::Critical),
            Change::Reject {
                justification: "duplicate".into(),
                public_reason: None,
            },
        ],
        &w.facts(),
    )
    .await
    .expect("amend");
    assert_eq!(out.report.status, ReportStatus::Rejected);
    let appended = w.log.after(mark);
    assert!(
        appended
            .iter()
            .all(|e| e.envelope.command_id == appended[0].envelope.command_id),
        "one command"
    );
    assert_eq!(appended[0].envelope.command_size, Some(4));
    closed(&w, mark, AssignmentOutcome::Cancelled);
    // A later change that the state refuses stops the whole command: nothing appended.
    let mark = w.mark();
    let err = amend::amend(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        id,
        vec![Change::Triage(Priority::Low)],
        &w.facts(),
    )
    .await
    .expect_err("a rejected report is final");
    assert!(err.domain_error::<ReportError>().is_some(), "{err:?}");
    assert_eq!(w.mark(), mark);
}

#[tokio::test]
async fn submission_is_routed_on_a_fresh_station_map_and_its_id_derives_from_the_command() {
    let w = World::new().await;
    let new = submit::NewReport {
        title: "Bag snatched".into(),
        description: "Near the market".into(),
        crime_types: vec!["Theft".into()],
        location: ReportLocation::new(
            GeoPoint::parse(crate::common::LAT + 0.9, crate::common::LON + 0.9).expect("point"),
            None,
            None,
        ),
        street: None,
        occurred_at: None,
        media_urls: vec![],
        contact: None,
        notify_email: None,
    };
    let reporter = Reporter::User {
        account_id: w.citizen.id,
    };
    let meta = w.meta(&w.citizen);
    let out = submit::submit(&w.app, &meta, reporter.clone(), new.clone(), &w.facts())
        .await
        .expect("submit");
    assert_eq!(out.report.id, submit::report_id(&meta));
    assert_eq!(
        out.report.station_id, w.other_station,
        "the nearest precinct"
    );
    assert_eq!(out.report.status, ReportStatus::New);
    let again = submit::submit(&w.app, &meta, reporter.clone(), new.clone(), &w.facts())
        .await
        .expect("replay");
    assert_eq!(
        (again.report.id, again.position),
        (out.report.id, out.position)
    );

    let err = submit::submit(
        &w.app,
        &w.meta(&w.citizen),
        reporter.clone(),
        new.clone(),
        &w.facts().behind(Behind::Stations),
    )
    .await
    .expect_err("the station map is behind");
    assert!(
        matches!(err, AppError::Unavailable(Unavailable::StationMap)),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_report_no_station_can_take_is_refused_on_its_location() {
    struct NoStations;
    impl precinct_app::ports::StationMap for NoStations {
        async fn current(
            &self,
        ) -> Result<Option<Vec<precinct_domain::routing::StationFacts>>, AppError> {
            Ok(Some(vec![]))
        }
    }
    impl precinct_app::ports::CrimeTypes for NoStations {
        async fn catalogue(
            &self,
        ) -> Result<Option<Vec<precinct_domain::crime_type::CrimeTypeFacts>>, AppError> {
            Ok(Some(vec![]))
        }
    }
    let w = World::new().await;
    let new = submit::NewReport {
        title: "Bag snatched".into(),
        description: "Near the market".into(),
        crime_types: vec!["Theft".into()],
        location: ReportLocation::new(GeoPoint::parse(1.0, 1.0).expect("point"), None, None),
        street: None,
        occurred_at: None,
        media_urls: vec![],
        contact: None,
        notify_email: None,
    };
    let mark = w.mark();
    let err = submit::submit(
        &w.app,
        &w.meta(&w.citizen),
        Reporter::User {
            account_id: w.citizen.id,
        },
        new,
        &NoStations,
    )
    .await
    .expect_err("no station");
    assert!(
        matches!(err, AppError::Refused(Refusal::NoStationForLocation)),
        "{err:?}"
    );
    assert_eq!(err_field(&err), Some("location"));
    assert_eq!(w.mark(), mark);
}

fn err_field(e: &AppError) -> Option<&'static str> {
    match e {
        AppError::Refused(r) => r.field(),
        _ => None,
    }
}

#[tokio::test]
async fn an_address_for_news_goes_on_a_stream_of_its_own_under_the_reports_data_subject() {
    use precinct_domain::reporter_contact::{
        EmailUpdatesRequested, ReporterContact, ReporterContactEvent,
    };
    let w = World::new().await;
    let new = |notify: Option<&str>| submit::NewReport {
        title: "Bag snatched".into(),
        description: "Near the market".into(),
        crime_types: vec!["Theft".into()],
        location: ReportLocation::new(
            GeoPoint::parse(crate::common::LAT, crate::common::LON).expect("point"),
            None,
            None,
        ),
        street: None,
        occurred_at: None,
        media_urls: vec![],
        contact: None,
        notify_email: notify.map(|e| precinct_domain::values::Email::parse(e).expect("address")),
    };
    // Given a signed-in reporter who gives an address, when they submit, then the report
    // and its contact are appended together, the contact under the account's subject.
    let mark = w.mark();
    let out = submit::submit(
        &w.app,
        &w.meta(&w.citizen),
        Reporter::User {
            account_id: w.citizen.id,
        },
        new(Some("Me@Example.org")),
        &w.facts(),
    )
    .await
    .expect("submit");
    let id = out.report.id.as_uuid();
    assert_eq!(
        w.appended_since(mark),
        events(&[
            ("report", "ReportSubmitted"),
            ("reporter_contact", "EmailUpdatesRequested")
        ])
    );
    assert_eq!(
        w.events_since::<ReporterContact>(id, mark),
        vec![ReporterContactEvent::EmailUpdatesRequested(
            EmailUpdatesRequested {
                report_id: out.report.id,
                subject_id: w.citizen.id.as_uuid(),
                email: Some("me@example.org".into()),
                at: out.report.submitted_at,
            }
        )]
    );
    // Given an anonymous reporter, the subject is the report itself.
    let out = submit::submit(
        &w.app,
        &w.meta(&w.citizen),
        Reporter::Anonymous {
            tracking_token_hash: precinct_domain::values::TokenHash::parse(&"ab".repeat(32))
                .expect("hash"),
        },
        new(Some("anon@example.org")),
        &w.facts(),
    )
    .await
    .expect("submit");
    let id = out.report.id.as_uuid();
    let contact = w.state::<ReporterContact>(id).await;
    assert_eq!(contact.subject_id, Some(id));
    assert_eq!(contact.email.as_deref(), Some("anon@example.org"));
    // Without an address, nothing but the report.
    let mark2 = w.mark();
    submit::submit(
        &w.app,
        &w.meta(&w.citizen),
        Reporter::User {
            account_id: w.citizen.id,
        },
        new(None),
        &w.facts(),
    )
    .await
    .expect("submit");
    assert_eq!(
        w.appended_since(mark2),
        events(&[("report", "ReportSubmitted")])
    );
}

/// The checks routes make before they parse a request's fields (so that a caller
/// without the role gets 403, not a 422 on a body they may not send): each role is let
/// through by exactly the checks its work needs. Mutation testing found them tested
/// only through the commands, which check again on the report itself.
#[tokio::test]
async fn the_checks_made_before_the_fields_are_parsed_let_each_role_through_where_it_works() {
    use precinct_app::commands::report::{control, link, reopen};
    use precinct_app::commands::{account, bulk_dispatch};
    type Check = fn(&Principal) -> Result<(), AppError>;
    let checks: [(&str, Check); 6] = [
        ("control", control::may_control),
        ("triage", desk::may_triage),
        ("link", link::may_link),
        ("bulk dispatch", bulk_dispatch::may_dispatch),
        ("reopen", reopen::may_reopen),
        ("change role", account::may_change_role),
    ];
    let w = World::new().await;
    let callers = [
        ("citizen", w.citizen),
        ("officer", w.officer),
        ("dispatcher", w.dispatcher),
        ("supervisor", w.supervisor),
        ("admin", w.admin),
    ];
    let mut allowed = Vec::new();
    for (check, may) in checks {
        for (who, by) in callers {
            match may(&by) {
                Ok(()) => allowed.push(format!("{check}: {who}")),
                Err(AppError::Forbidden(Denied::Role)) => {}
                Err(other) => panic!("{check} for {who}: {other:?}"),
            }
        }
    }
    let desk =
        |check: &str| ["dispatcher", "supervisor", "admin"].map(|who| format!("{check}: {who}"));
    let mut expected: Vec<String> = ["control", "triage", "link", "bulk dispatch"]
        .into_iter()
        .flat_map(desk)
        .collect();
    expected
        .extend(["reopen: supervisor", "reopen: admin", "change role: admin"].map(String::from));
    assert_eq!(allowed, expected);
}
