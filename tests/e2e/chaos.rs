//! The short fault campaign (tests/src/chaos): ≥ 20 faults of every kind — `kill -9` and
//! SIGSTOP of nats-server, of `precinct` and of PostgreSQL, `pg_ctl stop -m immediate` —
//! under concurrent HTTP load, then the checker. Needs the `precinct` binary next to the
//! test binary (`cargo nextest run --workspace` builds it) and PostgreSQL 15 server
//! binaries. The long campaign and the cluster campaign are `make chaos`.

use precinct_tests::chaos::{self, Settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_short_campaign_loses_and_duplicates_nothing() {
    let summary = chaos::run(&Settings::short(chaos::seed_from_env()))
        .await
        .expect("the campaign runs");
    let v = &summary.verdict;
    eprintln!("{}", summary.report());
    eprintln!(
        "{}",
        chaos::last_line(
            summary.fault_count(),
            v.acknowledged,
            v.lost,
            v.duplicated,
            v.read_model_mismatches,
            v.violations.len(),
            summary.passed()
        )
    );
    assert!(
        summary.fault_count() >= 20,
        "only {} faults",
        summary.fault_count()
    );
    assert!(
        v.lifecycle_acknowledged > 0,
        "no command but the set-up was acknowledged"
    );
    assert_eq!(
        v.read_model_mismatches, 0,
        "read models against the reference"
    );
    assert_eq!((v.lost, v.duplicated), (0, 0), "lost / duplicated");
    assert!(v.violations.is_empty(), "violations: {:#?}", v.violations);
}
