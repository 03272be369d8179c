//! The guarantees of running a command (`App::run`, ADR 0002 and 0012), without servers:
//! an idempotent retry answers the original outcome; a key reused with another body is
//! refused; a refusal is answered only once the command id is still absent; a
//! concurrent change reruns the decision on fresh state (commuting commands land, a
//! conflicting one gets the domain's refusal); an unknown append outcome is retried
//! into the original; a failed read is answered as it is; an SLA breach is recorded once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::World;
use chrono::Utc;
use precinct_app::commands::report::{desk, notes};
use precinct_app::commands::sla::record_breach;
use precinct_app::AppError;
use precinct_domain::ids::ReportId;
use precinct_domain::patrol::{Patrol, PatrolCommand};
use precinct_domain::report::{Report, ReportCommand, ReportError};
use precinct_domain::values::{Priority, ReportStatus, SlaKind};
use precinct_eventlog::{Actor, CommandMeta, EventStore, ReadError, RequestHash};
use uuid::Uuid;

/// Both sides of a dispatch of `report` to the world's patrol, inside one command.
async fn dispatch_in(
    uow: &mut precinct_app::UnitOfWork<'_, precinct_eventlog::MemoryLog>,
    w_patrol: Uuid,
    report: Uuid,
) -> Result<(), AppError> {
    let at = uow.now();
    uow.execute::<Report>(
        report,
        ReportCommand::Assign {
            patrol_id: precinct_domain::ids::PatrolId::new(w_patrol),
            decision: None,
            at,
        },
    )
    .await?;
    uow.execute::<Patrol>(
        w_patrol,
        PatrolCommand::OpenAssignment {
            report_id: ReportId::new(report),
            at,
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_retry_refused_because_its_first_attempt_landed_meanwhile_answers_the_original() {
    let w = World::new().await;
    let report = w.given_report().await.as_uuid();
    let patrol = w.patrol.as_uuid();
    let meta = CommandMeta::new(Uuid::new_v4(), Actor::System);
    let mut first = None;
    let mut decisions = 0;
    let retry = w
        .app
        .run::<Report>(&meta, report, async |uow| {
            decisions += 1;
            // This attempt has read the report without the command id; now the first
            // attempt of the same command lands...
            if first.is_none() {
                let landed = w
                    .app
                    .run::<Report>(&meta, report, async |inner| {
                        dispatch_in(inner, patrol, report).await
                    })
                    .await?;
                first = Some(landed);
            }
            // ...and this attempt reads the patrol after it: the decision refuses.
            dispatch_in(uow, patrol, report).await
        })
        .await;
    let first = first.expect("the first attempt ran");
    assert_eq!(decisions, 1, "the refusal is not retried as a conflict");
    let retry = retry.expect("the original outcome, not the refusal");
    assert!(retry.duplicate);
    assert_eq!(retry.position, first.position);
    assert_eq!(
        retry.state::<Report>(report).map(|r| r.status),
        Some(ReportStatus::Assigned)
    );
    assert_eq!(w.mark(), first.position, "appended once");

    // Another command on the same state is still refused, with the domain's own error.
    let other = CommandMeta::new(Uuid::new_v4(), Actor::System);
    let refused = w
        .app
        .run::<Report>(&other, report, async |uow| {
            dispatch_in(uow, patrol, report).await
        })
        .await
        .expect_err("refused");
    assert_eq!(
        refused.domain_error::<ReportError>(),
        Some(&ReportError::IllegalTransition {
            from: ReportStatus::Assigned,
            action: "assign"
        })
    );
}

#[tokio::test]
async fn a_key_reused_with_another_body_is_refused_and_its_retry_is_the_original() {
    let w = World::new().await;
    let report = w.given_report().await;
    let command_id = Uuid::new_v4();
    let with = |hash: u8| CommandMeta {
        request_hash: Some(RequestHash([hash; 32])),
        ..CommandMeta::new(command_id, w.dispatcher.actor())
    };
    let first = desk::triage(&w.app, &w.dispatcher, &with(1), report, Priority::High)
        .await
        .expect("first");
    let head = w.mark();
    let err = desk::triage(&w.app, &w.dispatcher, &with(2), report, Priority::Low)
        .await
        .expect_err("another body under the same key");
    assert!(matches!(err, AppError::KeyReused), "{err:?}");
    assert_eq!(w.mark(), head, "nothing appended");
    let retry = desk::triage(&w.app, &w.dispatcher, &with(1), report, Priority::High)
        .await
        .expect("the same request again");
    assert_eq!(retry.position, first.position);
    assert_eq!(retry.report.priority, Priority::High);
}

#[tokio::test]
async fn a_concurrent_change_reruns_the_decision_on_fresh_state() {
    let w = World::new().await;
    let report = w.given_report().await.as_uuid();
    let meta = CommandMeta::new(Uuid::new_v4(), Actor::System);
    let mut decisions = 0;
    let out = w
        .app
        .run::<Report>(&meta, report, async |uow| {
            decisions += 1;
            let at = uow.now();
            uow.execute::<Report>(
                report,
                ReportCommand::Triage {
                    priority: Priority::High,
                    at,
                },
            )
            .await?;
            if decisions == 1 {
                // Another process changes the report after this decision read it.
                w.given::<Report>(
                    report,
                    ReportCommand::Triage {
                        priority: Priority::Low,
                        at: Utc::now(),
                    },
                )
                .await;
            }
            Ok(())
        })
        .await
        .expect("decided again and landed");
    assert_eq!(decisions, 2, "the stale decision ran again");
    assert!(!out.duplicate);
    let r: Report = w.state(report).await;
    assert_eq!(
        r.priority,
        Priority::High,
        "the rerun landed after the other change"
    );
}

#[tokio::test]
async fn a_conflicting_concurrent_change_gets_the_domains_refusal_on_the_rerun() {
    let w = World::new().await;
    let report = w.given_report().await.as_uuid();
    let patrol = w.patrol.as_uuid();
    // Another process (its own turns) dispatches the same report.
    let elsewhere = precinct_app::App::new(w.log.clone());
    let meta = CommandMeta::new(Uuid::new_v4(), Actor::System);
    let mut decisions = 0;
    let err = w
        .app
        .run::<Report>(&meta, report, async |uow| {
            decisions += 1;
            dispatch_in(uow, patrol, report).await?;
            if decisions == 1 {
                // ...and lands after this attempt decided, before it appends.
                let rival = CommandMeta::new(Uuid::new_v4(), Actor::System);
                elsewhere
                    .run::<Report>(&rival, report, async |inner| {
                        dispatch_in(inner, patrol, report).await
                    })
                    .await?;
            }
            Ok(())
        })
        .await
        .expect_err("the second dispatch");
    assert_eq!(decisions, 2, "decided again on fresh state, then refused");
    assert_eq!(
        err.domain_error::<ReportError>(),
        Some(&ReportError::IllegalTransition {
            from: ReportStatus::Assigned,
            action: "assign"
        }),
        "{err:?}"
    );
    let p: Patrol = w.state(patrol).await;
    assert_eq!(p.open_assignments.len(), 1, "one dispatch landed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commuting_commands_under_contention_all_land_once() {
    let w = World::new().await;
    let report = w.given_assigned(w.patrol).await;
    let mark = w.mark();
    let landed = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (app, by, landed) = (w.app.clone(), w.dispatcher, landed.clone());
        tasks.push(tokio::spawn(async move {
            let meta = CommandMeta::new(Uuid::new_v4(), by.actor());
            notes::add_note(&app, &by, &meta, report, format!("note {i}"))
                .await
                .map(|_| landed.fetch_add(1, Ordering::SeqCst))
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("every note lands");
    }
    assert_eq!(landed.load(Ordering::SeqCst), 20);
    let r: Report = w.state(report.as_uuid()).await;
    assert_eq!(r.notes.len(), 20);
    assert_eq!(w.appended_since(mark).len(), 20, "each once");
}

/// A triage whose first append meets `fault`: it must land once, and answer it.
async fn triage_lands_once_after(fault: impl FnOnce(&precinct_eventlog::MemoryLog)) {
    let w = World::new().await;
    let report = w.given_report().await;
    fault(&w.log);
    let mark = w.mark();
    let out = desk::triage(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        report,
        Priority::Critical,
    )
    .await
    .expect("the retry finds or lands the command");
    assert_eq!(w.appended_since(mark).len(), 1, "appended once");
    assert_eq!(out.position, w.mark());
    assert_eq!(out.report.priority, Priority::Critical);
}

#[tokio::test]
async fn an_append_whose_outcome_was_lost_is_retried_into_the_original() {
    triage_lands_once_after(|log| log.lose_next_acks(1)).await;
}

#[tokio::test]
async fn an_append_the_server_never_stored_is_decided_again_and_lands_once() {
    triage_lands_once_after(|log| log.fail_next_appends(1)).await;
}

#[tokio::test]
async fn a_refusal_caused_by_a_failed_read_is_answered_as_it_is() {
    let w = World::new().await;
    let report = w.given_assigned(w.patrol).await;
    let log = w.log.clone();
    let meta = CommandMeta::new(Uuid::new_v4(), w.officer.actor());
    let err = w
        .app
        .run::<Report>(&meta, report.as_uuid(), async move |uow| {
            // The primary stream was read; the patrol's read fails.
            log.fail_next_reads(1);
            uow.load::<Patrol>(w_patrol(&log).await).await?;
            Ok(())
        })
        .await
        .expect_err("the read failed");
    assert!(
        matches!(err, AppError::Read(ReadError::Transport(_))),
        "{err:?}"
    );
}

/// The id of the first patrol in `log`.
async fn w_patrol(log: &precinct_eventlog::MemoryLog) -> Uuid {
    log.all()
        .into_iter()
        .find(|e| e.envelope.aggregate_type == "patrol")
        .map(|e| e.envelope.aggregate_id)
        .expect("a patrol")
}

#[tokio::test]
async fn an_sla_breach_is_recorded_once_and_not_after_the_patrol_accepted() {
    let w = World::new().await;
    let report = w.given_assigned(w.patrol).await.as_uuid();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let sla = Duration::from_millis(1);
    assert!(record_breach(&w.app, report, SlaKind::Accept, sla)
        .await
        .expect("record"));
    let head = w.mark();
    assert!(
        !record_breach(&w.app, report, SlaKind::Accept, sla)
            .await
            .expect("again"),
        "recorded already"
    );
    assert_eq!(w.mark(), head);
    let accepted = w.given_assigned(w.patrol).await;
    w.given::<Report>(accepted.as_uuid(), ReportCommand::Accept { at: Utc::now() })
        .await;
    assert!(
        !record_breach(&w.app, accepted.as_uuid(), SlaKind::Accept, sla)
            .await
            .expect("nothing to record"),
    );
    // The log records it as Precinct itself, under the derived command id.
    let breach = w
        .log
        .read(&precinct_eventlog::StreamId::new("report", report))
        .await
        .expect("read")
        .into_iter()
        .find(|e| e.envelope.event_type == "SlaBreached")
        .expect("breach");
    assert_eq!(breach.envelope.actor, Actor::System);
}

#[tokio::test]
async fn a_command_whose_aggregate_never_stops_changing_gives_up_after_the_deadline() {
    let w = World::new().await;
    let report = w.given_report().await.as_uuid();
    let meta = CommandMeta::new(Uuid::new_v4(), Actor::System);
    let mut decisions = 0;
    let started = std::time::Instant::now();
    // Every decision is overtaken by another process's change before it appends.
    let run = w.app.run::<Report>(&meta, report, async |uow| {
        decisions += 1;
        let at = uow.now();
        uow.execute::<Report>(
            report,
            ReportCommand::Triage {
                priority: Priority::High,
                at,
            },
        )
        .await?;
        w.given::<Report>(
            report,
            ReportCommand::Triage {
                priority: if decisions % 2 == 0 {
                    Priority::Low
                } else {
                    Priority::Medium
                },
                at: Utc::now(),
            },
        )
        .await;
        Ok(())
    });
    let err = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("gave up within the bound")
        .expect_err("never landed");
    assert!(matches!(err, AppError::Contention), "{err:?}");
    // At least eight decisions and five seconds (ADR 0012) before giving up.
    assert!(decisions >= 8, "{decisions} decisions");
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(5), "gave up after {took:?}");
    let r: Report = w.state(report).await;
    assert_ne!(r.priority, Priority::High, "the command never landed");
}

type Told = Arc<std::sync::Mutex<Vec<(Uuid, u64)>>>;

/// An app on `w`'s log whose account-change hook records what it is told.
fn telling_app(w: &World) -> (precinct_app::App<precinct_eventlog::MemoryLog>, Told) {
    let told = Told::default();
    let hook = told.clone();
    let app = precinct_app::App::new(w.log.clone())
        .on_account_change(move |id, position| hook.lock().expect("lock").push((id, position)));
    (app, told)
}

/// The ADMIN deactivates `account` through `app`'s unit of work.
async fn deactivate(
    app: &precinct_app::App<precinct_eventlog::MemoryLog>,
    w: &World,
    account: Uuid,
) -> Result<precinct_app::Outcome, AppError> {
    let meta = CommandMeta::new(Uuid::new_v4(), w.admin.actor());
    app.run::<precinct_domain::account::Account>(&meta, account, async |uow| {
        let at = uow.now();
        uow.execute::<precinct_domain::account::Account>(
            account,
            precinct_domain::account::AccountCommand::Deactivate { at },
        )
        .await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn each_account_change_is_told_with_its_position_and_remembered_for_its_author() {
    let w = World::new().await;
    let (app, told) = telling_app(&w);
    // A change to a report is nobody's account change,
    let report = w.given_report().await;
    let out = desk::triage(
        &app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        report,
        Priority::Low,
    )
    .await
    .expect("triage");
    assert!(told.lock().expect("lock").is_empty());
    // and its author's last write is remembered (read-your-own-writes, ADR 0014);
    assert_eq!(
        app.last_write_of(w.dispatcher.id.as_uuid()),
        Some(out.position)
    );
    assert_eq!(app.last_write_of(w.citizen.id.as_uuid()), None);
    // a change to an account is told, with the position of its event.
    let account = w.citizen.id.as_uuid();
    let out = deactivate(&app, &w, account).await.expect("deactivate");
    assert_eq!(*told.lock().expect("lock"), vec![(account, out.position)]);
    assert_eq!(app.last_write_of(w.admin.id.as_uuid()), Some(out.position));
}

#[tokio::test]
async fn a_stream_the_command_only_read_is_not_checked_when_it_appends() {
    let w = World::new().await;
    let report = w.given_report().await.as_uuid();
    let patrol = w.patrol.as_uuid();
    let meta = CommandMeta::new(Uuid::new_v4(), Actor::System);
    let mut decisions = 0;
    let out = w
        .app
        .run::<Report>(&meta, report, async |uow| {
            decisions += 1;
            let at = uow.now();
            uow.execute::<Report>(
                report,
                ReportCommand::Triage {
                    priority: Priority::High,
                    at,
                },
            )
            .await?;
            // The patrol is read and decided on, and the decision changes nothing there
            // (its status again is a no-op)...
            let p: Patrol = uow.load(patrol).await?;
            uow.execute::<Patrol>(
                patrol,
                PatrolCommand::SetStatus {
                    status: p.status,
                    at,
                },
            )
            .await?;
            if decisions == 1 {
                // ...while another process changes it.
                w.given::<Patrol>(
                    patrol,
                    PatrolCommand::Update {
                        call_sign: Some("UNIT-MOVED".into()),
                        officer_ids: None,
                        at: Utc::now(),
                    },
                )
                .await;
            }
            Ok(())
        })
        .await
        .expect("lands");
    assert_eq!(
        decisions, 1,
        "the patrol's change is no conflict: nothing was written there"
    );
    let shown = format!("{out:?}");
    assert!(
        shown.contains(&format!("position: {}", out.position)),
        "{shown}"
    );
    assert!(shown.contains("duplicate: false"), "{shown}");
    let app = precinct_app::App::new(w.log.clone()).on_account_change(|_, _| {});
    assert!(format!("{app:?}").contains("AccountChanges"));
}

#[tokio::test]
async fn an_append_the_store_refuses_for_good_is_answered_at_once() {
    let w = World::new().await;
    let report = w.given_report().await.as_uuid();
    let meta = CommandMeta::new(Uuid::new_v4(), Actor::System);
    let mut decisions = 0;
    // More events than one atomic batch may hold: no retry can land it.
    let err = w
        .app
        .run::<Report>(&meta, report, async |uow| {
            decisions += 1;
            let author = precinct_domain::ids::AccountId::new(Uuid::new_v4());
            let at = uow.now();
            let notes = (0..=precinct_eventlog::log::MAX_BATCH)
                .map(|i| {
                    precinct_domain::report::ReportEvent::NoteAdded(
                        precinct_domain::report::NoteAdded {
                            note_id: precinct_domain::ids::NoteId::new(Uuid::new_v4()),
                            note: format!("note {i}"),
                            author_id: author,
                            at,
                        },
                    )
                })
                .collect();
            uow.emit::<Report>(report, notes)?;
            Ok(())
        })
        .await
        .expect_err("too large");
    assert!(
        matches!(
            err,
            AppError::Append(precinct_eventlog::AppendError::TooLarge(_))
        ),
        "{err:?}"
    );
    assert_eq!(decisions, 1, "decided once, not retried");
}

#[tokio::test]
async fn a_retry_that_finds_its_account_change_landed_still_tells_it() {
    let w = World::new().await;
    let (app, told) = telling_app(&w);
    let account = w.citizen.id.as_uuid();
    // The deactivation lands, but its acknowledgement is lost on the way:
    w.log.lose_next_acks(1);
    let out = deactivate(&app, &w, account)
        .await
        .expect("found by the retry");
    assert!(out.duplicate);
    // the process that made the change is told of it all the same.
    assert_eq!(*told.lock().expect("lock"), vec![(account, out.position)]);
}
