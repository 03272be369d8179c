//! The event log against a real nats-server: optimistic concurrency, atomic commands,
//! idempotent retries, read-back order, and durability across a `kill -9`.

use std::sync::Arc;

use chrono::Utc;
use futures::StreamExt;
use precinct_eventlog::{
    Actor, AppendError, CommandMeta, EventLog, ExpectedVersion, LogConfig, NewEvent, StreamId,
    StreamWrite,
};
use precinct_tests::{nats::shared_url, nats::PrivateNats, unique_prefix};
use uuid::Uuid;

async fn shared_log() -> EventLog {
    EventLog::connect(&shared_url(), LogConfig::isolated(&unique_prefix()))
        .await
        .expect("connect to the shared NATS (run `make stack`)")
}

fn event(kind: &str, n: u64) -> NewEvent {
    NewEvent {
        event_type: kind.to_string(),
        schema_version: 1,
        occurred_at: Utc::now(),
        data: serde_json::json!({ "n": n }),
    }
}

fn meta() -> CommandMeta {
    CommandMeta::new(Uuid::new_v4(), Actor::System)
}

#[tokio::test]
async fn concurrent_appends_with_same_expected_version_one_wins() {
    let log = Arc::new(shared_log().await);
    let stream = StreamId::new("report", Uuid::new_v4());
    let first = log
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![event("A", 0)],
            &meta(),
        )
        .await
        .expect("first append");

    let mut tasks = Vec::new();
    for i in 0..16 {
        let log = log.clone();
        let stream = stream.clone();
        tasks.push(tokio::spawn(async move {
            log.append(
                &stream,
                ExpectedVersion::Exact(first.position),
                vec![event("B", i)],
                &meta(),
            )
            .await
        }));
    }
    let mut ok = 0;
    let mut conflicts = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(a) => {
                assert!(!a.duplicate);
                ok += 1
            }
            Err(AppendError::WrongExpectedVersion { .. }) => conflicts += 1,
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!((ok, conflicts), (1, 15));
    assert_eq!(log.read(&stream).await.expect("read").len(), 2);
}

#[tokio::test]
async fn no_stream_expectation_refuses_existing_stream() {
    let log = shared_log().await;
    let stream = StreamId::new("email", Uuid::new_v4());
    log.append(
        &stream,
        ExpectedVersion::NoStream,
        vec![event("A", 1)],
        &meta(),
    )
    .await
    .expect("first");
    let second = log
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![event("A", 2)],
            &meta(),
        )
        .await;
    assert!(matches!(
        second,
        Err(AppendError::WrongExpectedVersion { actual: Some(_) })
    ));
}

#[tokio::test]
async fn a_three_event_command_is_all_or_nothing() {
    let log = shared_log().await;
    let a = StreamId::new("report", Uuid::new_v4());
    let b = StreamId::new("patrol", Uuid::new_v4());
    let ok = log
        .append_multi(
            vec![
                StreamWrite {
                    stream: a.clone(),
                    expected: ExpectedVersion::NoStream,
                    events: vec![event("A1", 1), event("A2", 2)],
                },
                StreamWrite {
                    stream: b.clone(),
                    expected: ExpectedVersion::NoStream,
                    events: vec![event("B1", 3)],
                },
            ],
            &meta(),
        )
        .await
        .expect("atomic append");
    assert_eq!(ok.position - ok.first_position, 2, "consecutive positions");

    // A second 3-event command whose last stream expectation is stale: nothing lands.
    let a_version = log
        .read(&a)
        .await
        .expect("read a")
        .last()
        .map(|e| e.position())
        .unwrap_or(0);
    let refused = log
        .append_multi(
            vec![
                StreamWrite {
                    stream: a.clone(),
                    expected: ExpectedVersion::Exact(a_version),
                    events: vec![event("A3", 4), event("A4", 5)],
                },
                StreamWrite {
                    stream: b.clone(),
                    expected: ExpectedVersion::NoStream, // stale: b exists
                    events: vec![event("B2", 6)],
                },
            ],
            &meta(),
        )
        .await;
    assert!(matches!(
        refused,
        Err(AppendError::WrongExpectedVersion { .. })
    ));
    assert_eq!(log.read(&a).await.expect("read a").len(), 2);
    assert_eq!(log.read(&b).await.expect("read b").len(), 1);
    assert_eq!(log.head().await.expect("head"), ok.position);
}

#[tokio::test]
async fn a_retried_command_id_has_one_effect() {
    let log = shared_log().await;
    let stream = StreamId::new("report", Uuid::new_v4());
    let m = meta();
    let events = vec![event("A", 1), event("B", 2), event("C", 3)];
    let first = log
        .append(&stream, ExpectedVersion::NoStream, events.clone(), &m)
        .await
        .expect("first");
    assert!(!first.duplicate);
    // Retry with the same expectation (the client never saw the ack) ...
    let again = log
        .append(&stream, ExpectedVersion::NoStream, events.clone(), &m)
        .await
        .expect("retry");
    assert!(again.duplicate);
    assert_eq!(
        (again.first_position, again.position),
        (first.first_position, first.position)
    );
    // ... and with no expectation at all (de-duplicated by Nats-Msg-Id).
    let any = log
        .append(&stream, ExpectedVersion::Any, events, &m)
        .await
        .expect("retry any");
    assert!(any.duplicate);
    assert_eq!(any.position, first.position);
    assert_eq!(log.read(&stream).await.expect("read").len(), 3);
}

#[tokio::test]
async fn read_back_order_equals_append_order() {
    let log = shared_log().await;
    let stream = StreamId::new("report", Uuid::new_v4());
    let other = StreamId::new("report", Uuid::new_v4());
    let mut version = 0;
    // More than one direct-get batch (256) to exercise paging.
    for chunk in 0..6u64 {
        let events: Vec<_> = (0..50).map(|i| event("E", chunk * 50 + i)).collect();
        let a = log
            .append(
                &stream,
                ExpectedVersion::from_version(version),
                events,
                &meta(),
            )
            .await
            .expect("append");
        version = a.position;
        log.append(
            &other,
            ExpectedVersion::Any,
            vec![event("noise", chunk)],
            &meta(),
        )
        .await
        .expect("noise");
    }
    let read = log.read(&stream).await.expect("read");
    let ns: Vec<u64> = read
        .iter()
        .map(|e| e.data["n"].as_u64().unwrap_or(u64::MAX))
        .collect();
    assert_eq!(ns, (0..300).collect::<Vec<_>>());
    assert!(read.windows(2).all(|w| w[0].position() < w[1].position()));
    assert!(read.iter().all(|e| e.envelope.aggregate_id == stream.id));

    // The global log has everything in position order.
    let all: Vec<_> = log
        .read_all(1)
        .await
        .expect("read_all")
        .map(|r| r.expect("event"))
        .collect()
        .await;
    assert_eq!(all.len(), 306);
    assert!(all
        .windows(2)
        .all(|w| w[0].position() + 1 == w[1].position()));
    // read_after gives only the tail.
    let tail = log
        .read_after(&stream, read[249].position())
        .await
        .expect("tail");
    assert_eq!(tail.len(), 50);
}

#[tokio::test]
async fn envelope_carries_metadata() {
    let log = shared_log().await;
    let stream = StreamId::new("report", Uuid::new_v4());
    let actor = Actor::User {
        id: Uuid::new_v4(),
        role: "DISPATCHER".into(),
    };
    let m = CommandMeta {
        command_id: Uuid::new_v4(),
        correlation_id: Uuid::new_v4(),
        causation_id: Some(Uuid::new_v4()),
        actor: actor.clone(),
        request_hash: Some(precinct_eventlog::RequestHash([7; 32])),
    };
    let appended = log
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![event("ReportTriaged", 7)],
            &m,
        )
        .await
        .expect("append");
    let read = log.read(&stream).await.expect("read");
    let e = &read[0].envelope;
    assert_eq!(e.position, appended.position);
    assert_eq!(e.event_type, "ReportTriaged");
    assert_eq!(e.schema_version, 1);
    assert_eq!(
        (e.aggregate_type.as_str(), e.aggregate_id),
        ("report", stream.id)
    );
    assert_eq!(e.actor, actor);
    assert_eq!(
        (e.command_id, e.correlation_id, e.causation_id),
        (m.command_id, m.correlation_id, m.causation_id)
    );
    assert_eq!(e.request_hash, m.request_hash);
    // A retry of the command finds the original and the request it came from.
    let again = log
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![event("ReportTriaged", 7)],
            &m,
        )
        .await
        .expect("a duplicate is not an error");
    assert!(again.duplicate);
    assert_eq!(again.position, appended.position);
    assert_eq!(again.original_request, m.request_hash);
}

#[tokio::test]
async fn subscribe_sees_live_appends_in_order() {
    let log = shared_log().await;
    let stream = StreamId::new("patrol", Uuid::new_v4());
    let mut live = log.subscribe(0).await.expect("subscribe");
    for i in 0..5 {
        log.append(&stream, ExpectedVersion::Any, vec![event("P", i)], &meta())
            .await
            .expect("append");
    }
    for i in 0..5u64 {
        let e = tokio::time::timeout(std::time::Duration::from_secs(5), live.next())
            .await
            .expect("in time")
            .expect("item")
            .expect("event");
        assert_eq!(e.data["n"], i);
        assert_eq!(e.position(), i + 1);
    }
}

#[tokio::test]
async fn kill_9_of_nats_loses_no_acknowledged_append() {
    let mut server = PrivateNats::start().expect("start private nats");
    let cfg = LogConfig::isolated(&unique_prefix());
    let log = EventLog::connect(&server.url(), cfg.clone())
        .await
        .expect("connect");
    let mut acked = Vec::new();
    for i in 0..200u64 {
        let stream = StreamId::new("report", Uuid::new_v4());
        let a = log
            .append(
                &stream,
                ExpectedVersion::NoStream,
                vec![event("A", i), event("B", i)],
                &meta(),
            )
            .await
            .expect("append");
        acked.push((stream, a.position));
    }
    server.kill();
    drop(log);
    server.restart().expect("restart");
    let log = EventLog::connect(&server.url(), cfg)
        .await
        .expect("reconnect");
    assert_eq!(log.head().await.expect("head"), 400);
    for (stream, position) in acked {
        let events = log.read(&stream).await.expect("read");
        assert_eq!(events.len(), 2, "stream {stream} lost events");
        assert_eq!(events[1].position(), position);
    }
}

#[tokio::test]
async fn group_commit_keeps_each_commands_own_outcome() {
    let log = Arc::new(shared_log().await);
    let contested = StreamId::new("report", Uuid::new_v4());
    let base = log
        .append(
            &contested,
            ExpectedVersion::NoStream,
            vec![event("A", 0)],
            &meta(),
        )
        .await
        .expect("base");
    let retried = meta();
    let retried_stream = StreamId::new("report", Uuid::new_v4());
    let original = log
        .append(
            &retried_stream,
            ExpectedVersion::NoStream,
            vec![event("R", 0)],
            &retried,
        )
        .await
        .expect("original");
    // 300 independent commands, 16 racing on one stream, and one retry, all at once.
    let mut tasks = Vec::new();
    for i in 0..300u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let s = StreamId::new("report", Uuid::new_v4());
            log.append(
                &s,
                ExpectedVersion::NoStream,
                vec![event("X", i), event("Y", i)],
                &meta(),
            )
            .await
            .map(|a| ("independent", a))
        }));
    }
    for i in 0..16u64 {
        let (log, s) = (log.clone(), contested.clone());
        tasks.push(tokio::spawn(async move {
            log.append(
                &s,
                ExpectedVersion::Exact(base.position),
                vec![event("C", i)],
                &meta(),
            )
            .await
            .map(|a| ("contested", a))
        }));
    }
    {
        let (log, s, m) = (log.clone(), retried_stream.clone(), retried.clone());
        tasks.push(tokio::spawn(async move {
            log.append(&s, ExpectedVersion::NoStream, vec![event("R", 0)], &m)
                .await
                .map(|a| ("retry", a))
        }));
    }
    let mut positions = std::collections::BTreeSet::new();
    let (mut independent, mut contested_ok, mut conflicts) = (0, 0, 0);
    for t in tasks {
        match t.await.expect("task") {
            Ok(("retry", a)) => {
                assert!(a.duplicate);
                assert_eq!(a.position, original.position);
            }
            Ok((kind, a)) => {
                assert!(!a.duplicate);
                for p in a.first_position..=a.position {
                    assert!(positions.insert(p), "position {p} given twice");
                }
                if kind == "independent" {
                    assert_eq!(a.position - a.first_position, 1);
                    independent += 1;
                } else {
                    contested_ok += 1;
                }
            }
            Err(AppendError::WrongExpectedVersion { .. }) => conflicts += 1,
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!((independent, contested_ok, conflicts), (300, 1, 15));
    // Every acknowledged event is where its ack said, in its own stream.
    assert_eq!(log.head().await.expect("head"), 2 + 600 + 1);
    assert_eq!(log.read(&contested).await.expect("read").len(), 2);
    assert_eq!(log.read(&retried_stream).await.expect("read").len(), 1);
    // Commands really shared batches (one fsync for many): count the batch ids stored.
    let stream = crate::store::jetstream(&shared_url())
        .await
        .get_stream(&log.config().stream)
        .await
        .expect("stream");
    let mut batches = std::collections::BTreeSet::new();
    for p in positions {
        let m = stream.direct_get(p).await.expect("message");
        if let Some(id) = m.headers.get("Nats-Batch-Id") {
            batches.insert(id.to_string());
        }
    }
    eprintln!("{} commands landed in {} batches", 301, batches.len());
    assert!(batches.len() < 301, "no command shared a batch");
}

#[tokio::test]
async fn the_last_position_of_an_aggregate_type_is_its_newest_event_on_any_stream() {
    let log = shared_log().await;
    assert_eq!(log.last_position_of(&["station"]).await.expect("read"), 0);
    let mut last_station = 0;
    for i in 0..6 {
        let (kind, id) = if i % 2 == 0 {
            ("station", Uuid::new_v4())
        } else {
            ("report", Uuid::new_v4())
        };
        let appended = log
            .append(
                &StreamId::new(kind, id),
                ExpectedVersion::NoStream,
                vec![event("E", i)],
                &meta(),
            )
            .await
            .expect("append");
        if kind == "station" {
            last_station = appended.position;
        }
    }
    // Streams of other types after it, and types that share a prefix, do not count.
    log.append(
        &StreamId::new("stationery", Uuid::new_v4()),
        ExpectedVersion::NoStream,
        vec![event("E", 9)],
        &meta(),
    )
    .await
    .expect("append");
    assert!(log.head().await.expect("head") > last_station);
    assert_eq!(
        log.last_position_of(&["station"]).await.expect("read"),
        last_station
    );
    assert_eq!(log.last_position_of(&["patrol"]).await.expect("read"), 0);
}

/// One run of the `EventStore` contract on `store`, reported as a transcript of
/// outcomes (positions relative to the first append) so that two stores can be compared.
async fn store_contract<S: precinct_eventlog::EventStore>(store: &S) -> Vec<String> {
    use precinct_eventlog::RequestHash;
    let mut out = Vec::new();
    let (a, b) = (
        StreamId::new("report", Uuid::new_v4()),
        StreamId::new("patrol", Uuid::new_v4()),
    );
    let write = |s: &StreamId, expected, n: usize| StreamWrite {
        stream: s.clone(),
        expected,
        events: (0..n).map(|i| event("E", i as u64)).collect(),
    };
    let first = CommandMeta {
        request_hash: Some(RequestHash([3; 32])),
        ..meta()
    };
    let landed = store
        .append_multi(
            vec![
                write(&a, ExpectedVersion::NoStream, 2),
                write(&b, ExpectedVersion::NoStream, 1),
            ],
            &first,
        )
        .await
        .expect("first");
    let base = landed.first_position - 1;
    let rel = |p: u64| p - base;
    out.push(format!(
        "multi: {}..{} dup={}",
        rel(landed.first_position),
        rel(landed.position),
        landed.duplicate
    ));
    let read = store.read(&a).await.expect("read");
    out.push(format!(
        "read a: {:?} sizes {:?} digests {:?}",
        read.iter().map(|e| rel(e.position())).collect::<Vec<_>>(),
        read.iter()
            .map(|e| e.envelope.command_size)
            .collect::<Vec<_>>(),
        read.iter()
            .map(|e| e.envelope.request_hash.is_some())
            .collect::<Vec<_>>()
    ));
    let retry = store
        .append_multi(vec![write(&a, ExpectedVersion::NoStream, 2)], &first)
        .await
        .expect("retry");
    out.push(format!(
        "retry: {}..{} dup={} digest={}",
        rel(retry.first_position),
        rel(retry.position),
        retry.duplicate,
        retry.original_request == first.request_hash
    ));
    let stale = store
        .append_multi(
            vec![
                write(&b, ExpectedVersion::Exact(base + 3), 1),
                write(&a, ExpectedVersion::Exact(base + 1), 1),
            ],
            &meta(),
        )
        .await;
    out.push(format!(
        "stale second stream: {}",
        matches!(stale, Err(AppendError::WrongExpectedVersion { .. }))
    ));
    let elsewhere = store
        .append_multi(
            vec![write(
                &StreamId::new("station", Uuid::new_v4()),
                ExpectedVersion::NoStream,
                1,
            )],
            &first,
        )
        .await;
    out.push(format!(
        "same id, first event elsewhere: {}",
        matches!(elsewhere, Err(AppendError::Rejected { .. }))
    ));
    let next = store
        .append_multi(
            vec![write(&a, ExpectedVersion::Exact(base + 2), 1)],
            &meta(),
        )
        .await
        .expect("next");
    out.push(format!(
        "next: {}..{}",
        rel(next.first_position),
        rel(next.position)
    ));
    let empty = store.read(&StreamId::new("report", Uuid::nil())).await;
    out.push(format!("no stream: {:?}", empty.map(|e| e.len()).ok()));
    out
}

/// The in-memory store of the application tests keeps the JetStream log's contract:
/// the same appends and reads give the same outcomes on both.
#[tokio::test]
async fn the_memory_store_answers_as_the_jetstream_log_does() {
    let jetstream = store_contract(&shared_log().await).await;
    let memory = store_contract(&precinct_eventlog::MemoryLog::new()).await;
    assert_eq!(
        jetstream,
        [
            "multi: 1..3 dup=false",
            "read a: [1, 2] sizes [Some(3), None] digests [true, false]",
            "retry: 1..3 dup=true digest=true",
            "stale second stream: true",
            "same id, first event elsewhere: true",
            "next: 4..4",
            "no stream: Some(0)",
        ]
    );
    assert_eq!(memory, jetstream);
}

/// ADR 0040: a handle that read a stream before reads only what came after it, and
/// answers exactly what a fresh read does — across appends by other connections (other
/// processes), pages of direct gets and interleaved streams.
#[tokio::test]
async fn a_stream_read_again_from_memory_equals_a_fresh_read() {
    let prefix = unique_prefix();
    let url = shared_url();
    let connect = |cache: u64| {
        let mut cfg = LogConfig::isolated(&prefix);
        cfg.stream_cache_bytes = cache;
        EventLog::connect(&url, cfg)
    };
    let cached = connect(16 << 20).await.expect("connect");
    let writer = connect(16 << 20).await.expect("connect");
    let fresh = connect(0).await.expect("connect");
    let stream = StreamId::new("report", Uuid::new_v4());
    let other = StreamId::new("report", Uuid::new_v4());
    assert!(cached.read(&stream).await.expect("read").is_empty());
    let mut n = 0;
    for round in 0..5u64 {
        // Another connection appends (more than a direct-get page, once), interleaved
        // with another stream...
        let count = if round == 2 { 300 } else { 3 };
        for _ in 0..count {
            writer
                .append(&stream, ExpectedVersion::Any, vec![event("E", n)], &meta())
                .await
                .expect("append");
            n += 1;
        }
        writer
            .append(
                &other,
                ExpectedVersion::Any,
                vec![event("noise", round)],
                &meta(),
            )
            .await
            .expect("noise");
        // ...and the handle that read before reads what a fresh one does.
        let again = cached.read(&stream).await.expect("read");
        let truth = fresh.read(&stream).await.expect("read");
        assert_eq!(again, truth, "round {round}");
        let ns: Vec<u64> = again
            .iter()
            .map(|e| e.data["n"].as_u64().unwrap_or(u64::MAX))
            .collect();
        assert_eq!(ns, (0..n).collect::<Vec<_>>(), "round {round}");
        // ...from memory: every event it read is kept for the next read.
        assert_eq!(cached.kept_events(&stream), again.len(), "round {round}");
        assert_eq!(fresh.kept_events(&stream), 0, "the cache is off there");
        // The expected version a command takes from it is the stream's real one.
        let version = again.last().map(|e| e.position()).unwrap_or(0);
        let stale = ExpectedVersion::from_version(version.saturating_sub(1));
        let refused = writer
            .append(&stream, stale, vec![event("late", 0)], &meta())
            .await;
        assert!(
            matches!(refused, Err(AppendError::WrongExpectedVersion { .. })),
            "{refused:?}"
        );
    }
}
