//! Snapshots for `as_of` (ADR 0022): a report's state stored every 10 events, sealed
//! under its data subject's key. `as_of` from them equals the fold of the whole stream at
//! every point of the history, across the boundaries; after an erasure neither a
//! snapshot nor `as_of` shows the erased data.

use chrono::{DateTime, Duration, Utc};
use precinct_eventlog::StreamId;
use precinct_tests::app::{TestApp, METRICS_TOKEN};
use precinct_tests::client::{Call, Res};
use reqwest::StatusCode;
use serde_json::json;

const LAT: f64 = 7.07;
const LON: f64 = 125.61;
/// What the citizen's report holds of them (`NewReport::bike`).
const SECRETS: [&str; 3] = ["blue bike", "1 Main St", "+63 900"];

struct Setup {
    app: TestApp,
    admin: String,
    dispatcher: String,
    citizen_id: String,
    report: String,
    /// Position of the report's last event.
    last: u64,
}

/// A citizen's report with `notes` notes by the desk after it (`notes + 1` events).
async fn report_with_notes(notes: usize) -> Setup {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    let station = app.precinct(&admin, "PS1", LAT, LON).await;
    let (_, dispatcher) = app.account(&admin, "DISPATCHER", Some(&station)).await;
    let (citizen_id, citizen) = app.account(&admin, "CITIZEN", None).await;
    let report = app.report(Some(&citizen), LAT, LON, &["Theft"]).await;
    let mut last = report.position();
    for i in 1..=notes {
        let r = app
            .send(
                &Call::note(&report.id(), &format!("Follow-up {i}: a witness called")),
                Some(&dispatcher),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        last = r.position();
    }
    Setup {
        app,
        admin,
        dispatcher,
        citizen_id,
        report: report.id(),
        last,
    }
}

impl Setup {
    async fn as_of(&self, at: DateTime<Utc>) -> Res {
        let r = self
            .app
            .send(
                &Call::report_as_of(&self.report, at).min_position(self.last),
                Some(&self.dispatcher),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "as_of {at}: {}", r.body);
        r
    }

    /// Makes every stored snapshot of the report unreadable: the next `as_of` folds the
    /// whole stream.
    async fn spoil_snapshots(&self) {
        sqlx::query(
            "UPDATE report_snapshots SET state = '\"unreadable\"' WHERE report_id = $1::uuid",
        )
        .bind(&self.report)
        .execute(&self.app.pool)
        .await
        .expect("update");
    }

    async fn snapshots(&self) -> Vec<(i32, String)> {
        sqlx::query_as(
            "SELECT events, state::text FROM report_snapshots WHERE report_id = $1::uuid ORDER BY events",
        )
        .bind(&self.report)
        .fetch_all(&self.app.pool)
        .await
        .expect("report_snapshots")
    }

    /// When each of the report's events occurred.
    async fn event_times(&self) -> Vec<DateTime<Utc>> {
        let stream = StreamId::new("report", self.report.parse().expect("uuid"));
        self.app
            .log
            .read(&stream)
            .await
            .expect("read")
            .iter()
            .map(|e| e.envelope.occurred_at)
            .collect()
    }
}

async fn as_of_from_snapshots(app: &TestApp) -> f64 {
    let (_, text) = precinct_tests::prometheus::scrape(app, Some(METRICS_TOKEN)).await;
    precinct_tests::prometheus::sample(&text, "precinct_as_of_total{start=\"snapshot\"}")
        .unwrap_or(0.0)
}

#[tokio::test]
async fn as_of_from_snapshots_equals_the_fold_of_the_whole_stream_at_every_point() {
    // Given a report of 25 events
    let s = report_with_notes(24).await;
    let times = s.event_times().await;
    assert_eq!(times.len(), 25);
    // …asked about at each of its events, between them, and now (`as_of` is sent in
    // microseconds: a microsecond after an event is the first time that includes it)
    let just_after = |t: DateTime<Utc>| t + Duration::microseconds(1);
    let mut ats = Vec::new();
    for w in times.windows(2) {
        ats.push(just_after(w[0]));
        ats.push(w[0] + (w[1] - w[0]) / 2);
    }
    ats.push(just_after(times[24]));
    ats.push(Utc::now() + Duration::seconds(1));

    // When the first as_of reads the whole stream, it stores the newest snapshot (after
    // 20 events); a read before it stores the one after 10
    s.as_of(Utc::now()).await;
    let stored: Vec<i32> = s.snapshots().await.into_iter().map(|(n, _)| n).collect();
    assert_eq!(stored, vec![20]);
    s.as_of(just_after(times[14])).await;
    let stored: Vec<i32> = s.snapshots().await.into_iter().map(|(n, _)| n).collect();
    assert_eq!(stored, vec![10, 20]);
    // …and the next ones start from them
    let used_before = as_of_from_snapshots(&s.app).await;
    let mut from_snapshots = Vec::new();
    for at in &ats {
        let r = s.as_of(*at).await;
        from_snapshots.push(r.body);
    }
    assert_eq!(
        as_of_from_snapshots(&s.app).await - used_before,
        ats.len() as f64,
        "every read started from a snapshot"
    );

    // Then each answer is the one the whole stream gives: with every snapshot made
    // unreadable before each read, as_of folds the log from the start.
    for (at, expected) in ats.iter().zip(&from_snapshots) {
        s.spoil_snapshots().await;
        let used = as_of_from_snapshots(&s.app).await;
        let r = s.as_of(*at).await;
        assert_eq!(
            as_of_from_snapshots(&s.app).await,
            used,
            "read the whole stream"
        );
        assert_eq!(&r.body, expected, "as_of {at}");
    }
    // The answers differ over time (the check compares something).
    assert_ne!(from_snapshots[0], from_snapshots[from_snapshots.len() - 1]);
}

#[tokio::test]
async fn after_erasure_neither_a_snapshot_nor_as_of_shows_the_erased_data() {
    // Given a report of 15 events read as_of once: one snapshot, sealed
    let s = report_with_notes(14).await;
    let later = || Utc::now() + Duration::seconds(1);
    let r = s.as_of(later()).await;
    let text = r.body.to_string();
    for secret in SECRETS {
        assert!(
            text.contains(secret),
            "{secret} not shown before erasure: {text}"
        );
    }
    let stored = s.snapshots().await;
    assert_eq!(stored.len(), 1);
    for secret in SECRETS {
        assert!(
            !stored[0].1.contains(secret),
            "{secret} stored in the clear"
        );
    }
    let sealed_before = stored[0].1.clone();
    let middle = s.event_times().await[12];

    // When the reporter is erased
    let erased = s
        .app
        .delete(
            &format!("/admin/data-subjects/{}", s.citizen_id),
            Some(&s.admin),
        )
        .await;
    assert_eq!(erased.status, StatusCode::OK, "{}", erased.body);
    s.app.caught_up(erased.position()).await;

    // Then the snapshots are gone, as_of shows nothing of the erased data, and no
    // snapshot is stored again
    assert!(s.snapshots().await.is_empty(), "the erasure deleted them");
    for at in [middle, later()] {
        let r = s.as_of(at).await;
        assert_eq!(r.body["personal_data_erased"], true, "{}", r.body);
        let text = r.body.to_string();
        for secret in SECRETS {
            assert!(
                !text.contains(secret),
                "{secret} shown after erasure: {text}"
            );
        }
    }
    assert!(
        s.snapshots().await.is_empty(),
        "a snapshot was stored again"
    );

    // And a copy of the old snapshot put back (a backup restored) opens to nothing: its
    // key is destroyed
    sqlx::query(
        "INSERT INTO report_snapshots (report_id, events, position, max_occurred_at, subject, state)
         SELECT $1::uuid, 10, 0, '2000-01-01Z', $2::uuid, $3::jsonb",
    )
    .bind(&s.report)
    .bind(&s.citizen_id)
    .bind(&sealed_before)
    .execute(&s.app.pool)
    .await
    .expect("insert");
    let r = s.as_of(later()).await;
    let text = r.body.to_string();
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "{secret} shown from an old snapshot: {text}"
        );
    }
    assert_eq!(r.body["personal_data_erased"], json!(true));
}

#[tokio::test]
async fn as_of_between_distant_snapshots_reads_on_until_past_its_time() {
    // Given a report of 35 events whose only snapshot is the newest (after 30 events)
    let s = report_with_notes(34).await;
    let times = s.event_times().await;
    assert_eq!(times.len(), 35);
    s.as_of(Utc::now()).await;
    let stored = || async {
        let n: Vec<i32> = s.snapshots().await.into_iter().map(|(n, _)| n).collect();
        n
    };
    assert_eq!(stored().await, vec![30]);
    let just_after = |t: DateTime<Utc>| t + Duration::microseconds(1);
    // When it is asked about after 15 events (nothing stored before: read from the
    // start, two intervals of 10), then after 28 (from the snapshot the first read
    // stored, after 10, and again two intervals)
    let used = as_of_from_snapshots(&s.app).await;
    let at_15 = s.as_of(just_after(times[14])).await.body;
    assert_eq!(stored().await, vec![10, 30]);
    let at_28 = s.as_of(just_after(times[27])).await.body;
    assert_eq!(stored().await, vec![10, 20, 30]);
    assert_eq!(as_of_from_snapshots(&s.app).await - used, 2.0);

    // Then each answer is the fold of the whole stream up to that time
    for (at, answer) in [(times[14], &at_15), (times[27], &at_28)] {
        s.spoil_snapshots().await;
        let whole = s.as_of(just_after(at)).await.body;
        assert_eq!(answer, &whole, "as_of {at}");
    }
    assert_ne!(at_15, at_28);
}
