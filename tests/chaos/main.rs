//! `precinct-chaos`: the long fault campaign of `make chaos` (tests/src/chaos).
//!
//! Runs the long single-node campaign (private nats-server and PostgreSQL, every fault
//! kind), then — when `PRECINCT_CHAOS_CLUSTER_URL` names a node of the local 3-node
//! cluster (`deploy/local/cluster.sh up`) — the cluster campaign, which kills one node at
//! a time. Prints each campaign's table, then as its LAST line
//! `faults: N, acknowledged: A, lost: L, duplicated: D, violations: V, result: PASS|FAIL`
//! (summed over the campaigns); the exit status follows `result`: non-zero when anything
//! was lost or duplicated, when any check failed, when a campaign could not run, or when
//! a campaign injected fewer faults than its minimum (20 for the single-node one).
//!
//! Knobs: `PRECINCT_CHAOS_SEED` (default: from the clock; printed), `PRECINCT_CHAOS_FAULTS`
//! (single-node campaign, default 60), `PRECINCT_CHAOS_CAMPAIGNS` (`single,cluster`;
//! `cluster-short` instead of `cluster` is `make test`'s pass: each node killed once),
//! `PRECINCT_CHAOS_KEEP=1` (keep every campaign's logs, not only a failed one's). Needs `PRECINCT_NATS_BIN` (the pinned
//! nats-server) and the `precinct` binary next to this one or in `PRECINCT_BIN`.

use precinct_tests::chaos::{self, Cluster, Settings};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    let seed = chaos::seed_from_env();
    let asked = std::env::var("PRECINCT_CHAOS_CAMPAIGNS").ok();
    let only = asked.clone().unwrap_or_else(|| "single,cluster".into());
    let mut campaigns = Vec::new();
    let mut missing_cluster = false;
    if only.split(',').any(|c| c == "single") {
        let mut long = Settings::long(seed);
        if let Some(n) = std::env::var("PRECINCT_CHAOS_FAULTS")
            .ok()
            .and_then(|s| s.parse().ok())
        {
            long.plan.count = n;
        }
        campaigns.push(long);
    }
    let cluster = only
        .split(',')
        .find(|c| *c == "cluster" || *c == "cluster-short");
    match (cluster, std::env::var("PRECINCT_CHAOS_CLUSTER_URL")) {
        (None, _) => eprintln!("chaos: PRECINCT_CHAOS_CAMPAIGNS={only}: no cluster campaign"),
        (Some(kind), Ok(url)) => {
            let script = precinct_tests::repo_root().join("deploy/local/cluster.sh");
            let cluster = Cluster { url, script };
            campaigns.push(if kind == "cluster-short" {
                Settings::cluster_short(seed, cluster)
            } else {
                Settings::cluster(seed, cluster)
            });
        }
        (Some(_), Err(_)) => {
            println!("chaos: PRECINCT_CHAOS_CLUSTER_URL is not set; no cluster campaign");
            // Named explicitly and impossible: a failed run, not a silently skipped one.
            missing_cluster = asked.is_some();
        }
    }
    if campaigns.is_empty() {
        println!("chaos: PRECINCT_CHAOS_CAMPAIGNS={only}: no campaign to run");
    }
    let (mut faults, mut acknowledged, mut lost, mut duplicated, mut mismatches, mut violations) =
        (0, 0, 0, 0, 0, 0);
    let mut ok = true;
    for settings in &campaigns {
        match chaos::run(settings).await {
            Ok(summary) => {
                println!("{}", summary.report());
                faults += summary.fault_count();
                acknowledged += summary.verdict.acknowledged;
                lost += summary.verdict.lost;
                duplicated += summary.verdict.duplicated;
                mismatches += summary.verdict.read_model_mismatches;
                violations += summary.verdict.violations.len();
                ok &= summary.passed();
            }
            Err(e) => {
                println!("== chaos campaign {}: could not run: {e:#}", settings.name);
                ok = false;
            }
        }
    }
    // One verdict decides both the last line and the exit status.
    let passed = ok
        && !missing_cluster
        && !campaigns.is_empty()
        && lost == 0
        && duplicated == 0
        && mismatches == 0
        && violations == 0;
    println!(
        "{}",
        chaos::last_line(
            faults,
            acknowledged,
            lost,
            duplicated,
            mismatches,
            violations,
            passed
        )
    );
    if passed {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
