//! `as_of` from stored snapshots (ADR 0022) against the fold of the whole stream, at the
//! application layer: every time asked about — at each event, between two, before the
//! first, now — gets the answer [`App::load_as_of`] gives, whichever snapshots exist; and
//! the snapshots stored are the ones the design says (the newest boundary, and the one
//! before the time asked about), each the state after its first `events` events.
//!
//! Integration test: it talks to the real NATS of `make test` (`NATS_URL`), because the
//! vault that seals snapshots keeps its keys in a JetStream bucket; the log is a fresh,
//! isolated stream there. The snapshot store is a map in memory with the PostgreSQL
//! store's semantics (`precinct_readmodel::snapshots::around`); the PostgreSQL store and
//! the HTTP path are `tests/e2e/snapshots.rs`'s.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use precinct_app::as_of::SNAPSHOT_EVERY;
use precinct_app::ports::{Snapshot, Snapshots, SnapshotsAround};
use precinct_app::{App, AppError};
use precinct_domain::ids::{AccountId, NoteId, ReportId, StationId};
use precinct_domain::report::{PersonalDetails, Report, ReportCommand, ReportLocation, Reporter};
use precinct_domain::routing::{RoutingDecision, RoutingRule};
use precinct_domain::values::GeoPoint;
use precinct_eventlog::{Actor, CommandMeta, EventLog, LogConfig, StreamId};
use precinct_vault::{MasterKeys, Vault};
use uuid::Uuid;

/// Snapshots of one report, by `events`.
#[derive(Default)]
struct Store(Mutex<BTreeMap<u32, Snapshot>>);

impl Store {
    fn stored(&self) -> Vec<(u32, u64)> {
        let m = self.0.lock().expect("lock");
        m.values().map(|s| (s.events, s.position)).collect()
    }

    /// Makes every stored snapshot unreadable (as a changed state shape would).
    fn spoil(&self) {
        let mut m = self.0.lock().expect("lock");
        for s in m.values_mut() {
            s.sealed = serde_json::json!("unreadable");
        }
    }
}

impl Snapshots for Store {
    async fn around(&self, _id: Uuid, at: DateTime<Utc>) -> Result<SnapshotsAround, AppError> {
        let m = self.0.lock().expect("lock");
        let base = m.values().rfind(|s| s.max_occurred_at <= at).cloned();
        let after = base.as_ref().map_or(0, |b| b.events);
        Ok(SnapshotsAround {
            latest: m.values().next_back().cloned(),
            next_events: m.keys().find(|e| **e > after).copied(),
            base,
        })
    }

    async fn save(&self, _id: Uuid, snapshots: Vec<Snapshot>) -> Result<(), AppError> {
        let mut m = self.0.lock().expect("lock");
        for s in snapshots {
            m.insert(s.events, s);
        }
        Ok(())
    }
}

/// An app with a vault on an isolated log of the shared NATS.
async fn app() -> App {
    app_and_raw_log().await.0
}

/// [`app`], and the same log read without the vault (as the stream holds it).
pub(crate) async fn app_and_raw_log() -> (App, EventLog) {
    let url = std::env::var("NATS_URL")
        .expect("NATS_URL: this test needs the NATS server `make test` starts");
    let prefix = format!("asof{}", &Uuid::new_v4().simple().to_string()[..12]);
    let cfg = LogConfig::isolated(&prefix);
    let raw = EventLog::connect(&url, cfg.clone()).await.expect("connect");
    let vault = Vault::open(&raw, &cfg.keys_bucket, 1, MasterKeys::random("k1"))
        .await
        .expect("key bucket");
    let log = raw.clone().with_opener(Arc::new(vault.clone()));
    (App::with_vault(log, vault), raw)
}

/// A report of a citizen with `notes` notes after it, one command each.
pub(crate) async fn report_with_notes(app: &App, notes: usize) -> ReportId {
    report_with_notes_of(app, notes, 0).await
}

/// Report `id`'s stream as the log holds it.
async fn events_of(app: &App, id: ReportId) -> Vec<precinct_eventlog::RecordedEvent> {
    app.log()
        .read(&StreamId::new("report", id.as_uuid()))
        .await
        .expect("read")
}

/// Runs one command on report `id` (as the system), built at the unit of work's time.
pub(crate) async fn run_report(
    app: &App,
    id: Uuid,
    command: impl Fn(DateTime<Utc>) -> ReportCommand,
) {
    app.run::<Report>(
        &CommandMeta::new(Uuid::new_v4(), Actor::System),
        id,
        async |uow| {
            let at = uow.now();
            uow.execute::<Report>(id, command(at)).await?;
            Ok(())
        },
    )
    .await
    .expect("command");
}

/// [`report_with_notes`], each note padded to at least `len` characters.
async fn report_with_notes_of(app: &App, notes: usize, len: usize) -> ReportId {
    let id = ReportId::new(Uuid::new_v4());
    let author = AccountId::new(Uuid::new_v4());
    let submit = ReportCommand::Submit {
        report_id: id,
        title: "Bicycle stolen".into(),
        crime_types: vec!["Theft".into()],
        catalogue: vec![],
        location: ReportLocation::new(GeoPoint::parse(7.07, 125.61).expect("point"), None, None),
        occurred_at: None,
        media_urls: vec![],
        reporter: Reporter::User {
            account_id: AccountId::new(Uuid::new_v4()),
        },
        routing: RoutingDecision {
            station_id: StationId::new(Uuid::new_v4()),
            rule: RoutingRule::NearestPrecinct,
            matched_keyword: None,
            distance_m: Some(0.0),
        },
        personal: PersonalDetails {
            description: "Taken from the rack by the blue door".into(),
            street: None,
            contact: None,
            erased: false,
        },
        at: Utc::now(),
    };
    let stream = id.as_uuid();
    run_report(app, stream, |_| submit.clone()).await;
    for i in 1..=notes {
        // Apart in time, so that a time between two events falls between them.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        run_report(app, stream, |at| ReportCommand::AddNote {
            note_id: NoteId::new(Uuid::new_v4()),
            note: format!("Follow-up {i}: a witness called{}", ".".repeat(len)),
            author_id: author,
            at,
        })
        .await;
    }
    id
}

#[tokio::test]
async fn as_of_from_snapshots_is_the_fold_of_the_whole_stream_at_every_time() {
    // Given a report of 25 events,
    let app = app().await;
    let id = report_with_notes(&app, 24).await;
    let events = events_of(&app, id).await;
    assert_eq!(events.len(), 25);
    let times: Vec<DateTime<Utc>> = events.iter().map(|e| e.envelope.occurred_at).collect();
    let position = |n: usize| events[n - 1].position();
    let mut ats = vec![times[0] - Duration::seconds(1)];
    for w in times.windows(2) {
        ats.push(w[0]);
        ats.push(w[0] + (w[1] - w[0]) / 2);
    }
    ats.push(times[24]);
    ats.push(Utc::now() + Duration::seconds(1));
    let store = Store::default();
    let whole = |at| app.load_as_of::<Report>(id.as_uuid(), at);
    let every = SNAPSHOT_EVERY as usize;

    // When the first read reads the whole stream, it stores the newest boundary (20
    // events) and the one before the time asked about (10, for a time after the 14th);
    let first = app
        .load_as_of_with::<Report>(id.as_uuid(), times[13], &store)
        .await
        .expect("as_of");
    assert!(!first.from_snapshot);
    assert_eq!(first.written, 2);
    assert_eq!(
        store.stored(),
        vec![(10, position(every)), (20, position(2 * every))]
    );
    assert_eq!(
        (first.now, first.then),
        whole(times[13]).await.expect("whole")
    );

    // then every read starts from a snapshot and answers what the whole stream says.
    let mut answers = Vec::new();
    for at in &ats {
        let got = app
            .load_as_of_with::<Report>(id.as_uuid(), *at, &store)
            .await
            .expect("as_of");
        assert!(got.from_snapshot, "at {at}");
        let want = whole(*at).await.expect("whole");
        assert_eq!((&got.now, &got.then), (&want.0, &want.1), "at {at}");
        answers.push(got.then);
    }
    // The answers differ over time (the comparison compares something): before the
    // report, after its first note and at the end.
    assert_eq!(answers[0], (Report::default(), 0));
    assert_eq!(answers[1].0.notes.len(), 0);
    assert_eq!(answers[3].0.notes.len(), 1);
    assert_eq!(answers[ats.len() - 1].0.notes.len(), 24);
    assert_eq!(answers[ats.len() - 1].1, position(25));

    // A snapshot that no longer opens is ignored: the whole stream is read again and
    // the snapshots written anew.
    store.spoil();
    let again = app
        .load_as_of_with::<Report>(id.as_uuid(), times[24], &store)
        .await
        .expect("as_of");
    assert!(!again.from_snapshot);
    assert_eq!(
        (again.now, again.then),
        whole(times[24]).await.expect("whole")
    );
}

#[tokio::test]
async fn a_read_from_the_newest_snapshot_stores_the_boundaries_the_stream_passed_since() {
    // Given a report whose newest snapshot is at 10 events,
    let app = app().await;
    let id = report_with_notes(&app, 11).await;
    let store = Store::default();
    let first = app
        .load_as_of_with::<Report>(id.as_uuid(), Utc::now(), &store)
        .await
        .expect("as_of");
    assert_eq!(first.written, 1);
    assert_eq!(store.stored().len(), 1);
    // when the stream grows past 20 events and is read again as it is now,
    let more = 12;
    for _ in 0..more {
        run_report(&app, id.as_uuid(), |at| ReportCommand::AddNote {
            note_id: NoteId::new(Uuid::new_v4()),
            note: "One more".into(),
            author_id: AccountId::new(Uuid::new_v4()),
            at,
        })
        .await;
    }
    let events = events_of(&app, id).await;
    assert_eq!(events.len(), 24);
    let now = Utc::now();
    let got = app
        .load_as_of_with::<Report>(id.as_uuid(), now, &store)
        .await
        .expect("as_of");
    // it starts from the snapshot at 10, stores the one at 20, and answers the whole
    // stream's state with the last event's position.
    assert!(got.from_snapshot);
    assert_eq!(got.written, 1);
    assert_eq!(
        store.stored(),
        vec![(10, events[9].position()), (20, events[19].position())]
    );
    let want = app
        .load_as_of::<Report>(id.as_uuid(), now)
        .await
        .expect("whole");
    assert_eq!((&got.now, &got.then), (&want.0, &want.1));
    assert_eq!(got.now.1, events[23].position());
    assert_eq!(got.now.0.notes.len(), 23);
}

#[tokio::test]
async fn personal_fields_enter_the_log_sealed_and_read_back_opened() {
    let (app, raw) = app_and_raw_log().await;
    let id = report_with_notes(&app, 1).await;
    let stream = StreamId::new("report", id.as_uuid());
    let stored = raw.read(&stream).await.expect("raw read");
    let submitted = &stored[0];
    assert_eq!(submitted.envelope.event_type, "ReportSubmitted");
    assert!(
        Vault::is_sealed(&submitted.data["personal"]),
        "{}",
        submitted.data["personal"]
    );
    assert!(!submitted.data.to_string().contains("blue door"));
    // Fields that are not personal stay as they are (the note, the title).
    assert_eq!(submitted.data["title"], "Bicycle stolen");
    assert!(stored[1].data.to_string().contains("Follow-up 1"));
    // Read through the vault, the report is whole.
    let (report, _) = app.load::<Report>(id.as_uuid()).await.expect("load");
    assert_eq!(
        report.personal.description,
        "Taken from the rack by the blue door"
    );
}

#[tokio::test]
async fn a_read_before_the_only_snapshot_stores_the_boundary_before_its_time() {
    // Given a report of 25 events whose only snapshot is the newest (after 20),
    let app = app().await;
    let id = report_with_notes(&app, 24).await;
    let events = events_of(&app, id).await;
    let store = Store::default();
    let first = app
        .load_as_of_with::<Report>(id.as_uuid(), Utc::now(), &store)
        .await
        .expect("as_of");
    assert_eq!(first.written, 1);
    assert_eq!(store.stored(), vec![(20, events[19].position())]);
    // when it is asked about the time of its 14th event (before that snapshot),
    let at = events[13].envelope.occurred_at;
    let got = app
        .load_as_of_with::<Report>(id.as_uuid(), at, &store)
        .await
        .expect("as_of");
    // the read folds from the start up to the snapshot, answers the state then, and
    // stores the boundary before that time (10) for the next reads of it.
    assert!(got.from_snapshot);
    let want = app
        .load_as_of::<Report>(id.as_uuid(), at)
        .await
        .expect("whole");
    assert_eq!((&got.now, &got.then), (&want.0, &want.1));
    assert_eq!(got.then.1, events[13].position());
    assert_eq!(got.written, 1);
    assert_eq!(
        store.stored(),
        vec![(10, events[9].position()), (20, events[19].position())]
    );
}

#[tokio::test]
async fn a_read_between_two_snapshots_stores_the_boundary_between_them() {
    // Given a report of 35 events with snapshots after 10 and 30 events,
    let app = app().await;
    let id = report_with_notes(&app, 34).await;
    let events = events_of(&app, id).await;
    let store = Store::default();
    let at = |n: usize| events[n - 1].envelope.occurred_at;
    app.load_as_of_with::<Report>(id.as_uuid(), Utc::now(), &store)
        .await
        .expect("as_of");
    app.load_as_of_with::<Report>(id.as_uuid(), at(14), &store)
        .await
        .expect("as_of");
    let position = |n: usize| events[n - 1].position();
    assert_eq!(store.stored(), vec![(10, position(10)), (30, position(30))]);
    // when it is asked about the time of its 25th event,
    let got = app
        .load_as_of_with::<Report>(id.as_uuid(), at(25), &store)
        .await
        .expect("as_of");
    // it starts from the one after 10, answers the state then and stores the boundary
    // after 20 events, with the 20th event's position and the state it folded to.
    let want = app
        .load_as_of::<Report>(id.as_uuid(), at(25))
        .await
        .expect("whole");
    assert_eq!((&got.now, &got.then), (&want.0, &want.1));
    assert_eq!(got.written, 1);
    assert_eq!(
        store.stored(),
        vec![(10, position(10)), (20, position(20)), (30, position(30))]
    );
    store
        .0
        .lock()
        .expect("lock")
        .retain(|events, _| *events == 20);
    let from_20 = app
        .load_as_of_with::<Report>(id.as_uuid(), at(22), &store)
        .await
        .expect("as_of");
    let want = app
        .load_as_of::<Report>(id.as_uuid(), at(22))
        .await
        .expect("whole");
    assert_eq!((&from_20.now, &from_20.then), (&want.0, &want.1));
}

#[tokio::test]
async fn a_state_larger_than_the_limit_gets_no_snapshot() {
    // Given a report of 20 events whose notes are 5,000 characters each: the state
    // after 10 events is under 64 KiB, the state after 20 over it,
    let app = app().await;
    let id = report_with_notes_of(&app, 19, 5_000).await;
    let events = events_of(&app, id).await;
    let store = Store::default();
    // a read about the time of its 14th event (which would store both boundaries)
    let got = app
        .load_as_of_with::<Report>(id.as_uuid(), events[13].envelope.occurred_at, &store)
        .await
        .expect("as_of");
    let size = |r: &Report| serde_json::to_vec(r).expect("json").len();
    let (_, (after_ten, _)) = app
        .load_as_of::<Report>(id.as_uuid(), events[9].envelope.occurred_at)
        .await
        .expect("whole");
    assert!(size(&after_ten) < precinct_app::as_of::MAX_SNAPSHOT_BYTES);
    assert!(size(&got.now.0) > precinct_app::as_of::MAX_SNAPSHOT_BYTES);
    // stores the first and not the second.
    let stored: Vec<u32> = store.stored().into_iter().map(|(e, _)| e).collect();
    assert_eq!(stored, vec![10]);
}
