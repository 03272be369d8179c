//! Model-based read-model test (issue 21 item 1; docs/reliability.md): random command
//! histories (proptest) run through the real server — HTTP → JetStream → projectors →
//! PostgreSQL — and then every event read model is compared, row by row and column by
//! column, with a reference built in memory from the same events read back from the log:
//! the domain's own fold (`Aggregate::apply`) per stream, and the envelope for the audit
//! trail. The same comparison runs again after a rebuild into a fresh database.
//!
//! The reference shares no code with the projections (they are SQL written by hand; the
//! fold is the write side's), so a projection that drops, doubles or misplaces an event
//! shows up as a row that differs from it. Commands are drawn at random and sent as they
//! are: the ones the server refuses append nothing, the ones it accepts are what the
//! read models must show.
//!
//! Bounded for CI: `PRECINCT_MODEL_CASES` histories (default 2) of up to
//! `PRECINCT_MODEL_STEPS` commands (default 40); `PRECINCT_MODEL_SEED` (hex, 64 digits)
//! repeats a run (the seed is printed).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::TryStreamExt;
use precinct_eventlog::RecordedEvent;
use precinct_tests::app::TestApp;
use precinct_tests::client::{Call, NewReport};
use precinct_tests::reference::{actual, compare, reference};
use precinct_tests::world::{Spec, StationSpec};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use reqwest::Method;
use serde_json::json;

const LAT: f64 = 7.07;
const LON: f64 = 125.61;
/// Reports are referred to by index, modulo how many exist.
const SLOTS: usize = 8;

/// One command of a history. Indices pick a report, a patrol or an account of the world.
#[derive(Debug, Clone)]
enum Op {
    Submit {
        anonymous: bool,
        citizen: usize,
    },
    Triage {
        report: usize,
        priority: usize,
    },
    Dispatch {
        report: usize,
        patrol: usize,
    },
    Accept {
        report: usize,
    },
    Decline {
        report: usize,
    },
    Respond {
        report: usize,
    },
    Resolve {
        report: usize,
    },
    ApproveClosure {
        report: usize,
    },
    RejectClosure {
        report: usize,
    },
    Reject {
        report: usize,
    },
    Withdraw {
        report: usize,
    },
    Note {
        report: usize,
        supervisor: bool,
    },
    Evidence {
        report: usize,
    },
    /// Erases the reporter of a report (its account, or the anonymous report itself).
    Erase {
        report: usize,
    },
    Deactivate {
        citizen: usize,
    },
    Reactivate {
        citizen: usize,
    },
    /// Moves the spare staff account between PATROL and DISPATCHER.
    ChangeRole {
        dispatcher: bool,
    },
    PatrolStatus {
        patrol: usize,
        off_duty: bool,
    },
    PatrolRename {
        patrol: usize,
        n: u8,
    },
    StationRename {
        n: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let r = 0..SLOTS;
    prop_oneof![
        6 => (any::<bool>(), 0..2usize).prop_map(|(anonymous, citizen)| Op::Submit { anonymous, citizen }),
        2 => (r.clone(), 0..4usize).prop_map(|(report, priority)| Op::Triage { report, priority }),
        4 => (r.clone(), 0..2usize).prop_map(|(report, patrol)| Op::Dispatch { report, patrol }),
        3 => r.clone().prop_map(|report| Op::Accept { report }),
        1 => r.clone().prop_map(|report| Op::Decline { report }),
        3 => r.clone().prop_map(|report| Op::Respond { report }),
        3 => r.clone().prop_map(|report| Op::Resolve { report }),
        2 => r.clone().prop_map(|report| Op::ApproveClosure { report }),
        1 => r.clone().prop_map(|report| Op::RejectClosure { report }),
        1 => r.clone().prop_map(|report| Op::Reject { report }),
        1 => r.clone().prop_map(|report| Op::Withdraw { report }),
        4 => (r.clone(), any::<bool>()).prop_map(|(report, supervisor)| Op::Note { report, supervisor }),
        3 => r.clone().prop_map(|report| Op::Evidence { report }),
        1 => r.clone().prop_map(|report| Op::Erase { report }),
        1 => (0..2usize).prop_map(|citizen| Op::Deactivate { citizen }),
        1 => (0..2usize).prop_map(|citizen| Op::Reactivate { citizen }),
        1 => any::<bool>().prop_map(|dispatcher| Op::ChangeRole { dispatcher }),
        1 => (0..2usize, any::<bool>()).prop_map(|(patrol, off_duty)| Op::PatrolStatus { patrol, off_duty }),
        1 => (0..2usize, any::<u8>()).prop_map(|(patrol, n)| Op::PatrolRename { patrol, n }),
        1 => any::<u8>().prop_map(|n| Op::StationRename { n }),
    ]
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_models_equal_a_reference_fold_of_the_log_live_and_rebuilt() {
    let cases = env_usize("PRECINCT_MODEL_CASES", 2) as u32;
    let steps = env_usize("PRECINCT_MODEL_STEPS", 40);
    let seed: [u8; 32] = match std::env::var("PRECINCT_MODEL_SEED") {
        Ok(hex) => {
            let mut s = [0u8; 32];
            for (i, b) in s.iter_mut().enumerate() {
                *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2).unwrap_or("00"), 16).unwrap_or(0);
            }
            s
        }
        Err(_) => rand::random(),
    };
    let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    println!("model: {cases} case(s) of up to {steps} commands; PRECINCT_MODEL_SEED={hex}");
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            // Every case starts a server: shrink a little, not for long.
            max_shrink_iters: 16,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
    );
    let handle = tokio::runtime::Handle::current();
    let result = runner.run(
        // A short lifecycle first (two submissions, an assignment, its acceptance,
        // evidence and a note), so that every case holds the events the commands after
        // it build on; the random commands then interleave with it.
        &proptest::collection::vec(op(), 1..=steps).prop_map(|ops| {
            let prefix = [
                Op::Submit {
                    anonymous: false,
                    citizen: 0,
                },
                Op::Submit {
                    anonymous: true,
                    citizen: 0,
                },
                Op::Dispatch {
                    report: 0,
                    patrol: 0,
                },
                Op::Accept { report: 0 },
                Op::Evidence { report: 0 },
                Op::Note {
                    report: 1,
                    supervisor: true,
                },
            ];
            prefix.into_iter().chain(ops).collect::<Vec<_>>()
        }),
        move |ops| {
            tokio::task::block_in_place(|| handle.block_on(one_history(ops)))
                .map_err(|e| TestCaseError::fail(format!("{e:#}")))
        },
    );
    if let Err(e) = result {
        panic!("PRECINCT_MODEL_SEED={hex}: {e}");
    }
}

/// The accounts, patrols and reports a history acts on.
struct World {
    app: TestApp,
    admin: String,
    station: String,
    dispatcher: String,
    supervisor: String,
    officers: Vec<String>,
    patrols: Vec<String>,
    citizens: Vec<(String, String)>,
    spare: String,
    reports: Vec<Submitted>,
    assigned: HashMap<String, usize>,
}

struct Submitted {
    id: String,
    /// The citizen who submitted it, or None (anonymous).
    by: Option<usize>,
}

async fn world() -> World {
    let app = TestApp::spawn().await.expect("spawn");
    let spec = Spec {
        stations: vec![StationSpec::new("PS1 Model", LAT, LON)
            .dispatchers(1)
            .supervisors(1)
            .crews(&["M-1", "M-2"])],
        citizens: 2,
    };
    let built = app.world(&spec).await;
    let st = &built.stations[0];
    let (spare, _) = app
        .account(&built.admin.token, "PATROL", Some(st.id()))
        .await;
    World {
        admin: built.admin.token.clone(),
        station: st.id().to_string(),
        dispatcher: st.dispatchers[0].token.clone(),
        supervisor: st.supervisors[0].token.clone(),
        officers: st.crews.iter().map(|c| c.officer.token.clone()).collect(),
        patrols: st.crews.iter().map(|c| c.patrol.clone()).collect(),
        citizens: built
            .citizens
            .iter()
            .map(|c| (c.id.clone(), c.token.clone()))
            .collect(),
        spare,
        reports: Vec::new(),
        assigned: HashMap::new(),
        app,
    }
}

impl World {
    fn report(&self, i: usize) -> Option<&Submitted> {
        (!self.reports.is_empty()).then(|| &self.reports[i % self.reports.len()])
    }

    /// The officer of the patrol the report was last assigned to (else the first).
    fn officer_of(&self, report: &str) -> &str {
        &self.officers[self.assigned.get(report).copied().unwrap_or(0)]
    }

    /// The call and the token that send `op`; None when there is nothing to act on.
    fn call(&self, op: &Op) -> Option<(Call, Option<String>)> {
        let desk = Some(self.dispatcher.clone());
        let with_report = |i: usize| self.report(i).map(|r| r.id.clone());
        Some(match op {
            Op::Submit { anonymous, citizen } => {
                let token = (!anonymous).then(|| self.citizens[*citizen].1.clone());
                (Call::submit(&NewReport::bike(LAT, LON)), token)
            }
            Op::Triage { report, priority } => {
                let p = ["LOW", "MEDIUM", "HIGH", "CRITICAL"][*priority];
                (Call::triage(&with_report(*report)?, p), desk)
            }
            Op::Dispatch { report, patrol } => (
                Call::dispatch(&with_report(*report)?, Some(&self.patrols[*patrol])),
                desk,
            ),
            Op::Accept { report } => {
                let id = with_report(*report)?;
                (Call::accept(&id), Some(self.officer_of(&id).to_string()))
            }
            Op::Decline { report } => {
                let id = with_report(*report)?;
                let who = Some(self.officer_of(&id).to_string());
                (Call::decline(&id, "another call"), who)
            }
            Op::Respond { report } => {
                let id = with_report(*report)?;
                (Call::respond(&id), Some(self.officer_of(&id).to_string()))
            }
            Op::Resolve { report } => {
                let id = with_report(*report)?;
                let who = Some(self.officer_of(&id).to_string());
                (Call::resolve(&id, "bike returned"), who)
            }
            Op::ApproveClosure { report } => (
                Call::approve_closure(&with_report(*report)?),
                Some(self.supervisor.clone()),
            ),
            Op::RejectClosure { report } => (
                Call::reject_closure(&with_report(*report)?, "not done"),
                Some(self.supervisor.clone()),
            ),
            Op::Reject { report } => (
                Call::reject(&with_report(*report)?, "a duplicate of another"),
                desk,
            ),
            Op::Withdraw { report } => {
                let r = self.report(*report)?;
                let by = self.citizens[r.by?].1.clone();
                (Call::withdraw(&r.id, Some("found it")), Some(by))
            }
            Op::Note { report, supervisor } => {
                let who = if *supervisor {
                    &self.supervisor
                } else {
                    &self.dispatcher
                };
                let id = with_report(*report)?;
                (Call::note(&id, "called the reporter"), Some(who.clone()))
            }
            Op::Evidence { report } => {
                let id = with_report(*report)?;
                let who = Some(self.officer_of(&id).to_string());
                (
                    Call::evidence(&id, "https://evidence.example/1.jpg", "PHOTO"),
                    who,
                )
            }
            Op::Erase { report } => {
                let r = self.report(*report)?;
                let subject = match r.by {
                    Some(c) => self.citizens[c].0.clone(),
                    None => r.id.clone(),
                };
                (
                    Call::new(
                        Method::DELETE,
                        format!("/admin/data-subjects/{subject}"),
                        None,
                    ),
                    Some(self.admin.clone()),
                )
            }
            Op::Deactivate { citizen } => (
                Call::deactivate(&self.citizens[*citizen].0),
                Some(self.admin.clone()),
            ),
            Op::Reactivate { citizen } => (
                Call::reactivate(&self.citizens[*citizen].0),
                Some(self.admin.clone()),
            ),
            Op::ChangeRole { dispatcher } => {
                let role = if *dispatcher { "DISPATCHER" } else { "PATROL" };
                (
                    Call::update_user(
                        &self.spare,
                        json!({"role": role, "station_id": self.station}),
                    ),
                    Some(self.admin.clone()),
                )
            }
            Op::PatrolStatus { patrol, off_duty } => {
                let status = if *off_duty { "OFF_DUTY" } else { "AVAILABLE" };
                (
                    Call::new(
                        Method::PUT,
                        format!("/patrols/{}/status", self.patrols[*patrol]),
                        Some(json!({"status": status})),
                    ),
                    desk,
                )
            }
            Op::PatrolRename { patrol, n } => (
                Call::new(
                    Method::PATCH,
                    format!("/patrols/{}", self.patrols[*patrol]),
                    Some(json!({"call_sign": format!("M-{n}")})),
                ),
                desk,
            ),
            Op::StationRename { n } => (
                Call::edit_station(&self.station, json!({"name": format!("PS1 Model {n}")})),
                Some(self.admin.clone()),
            ),
        })
    }
}

/// Runs one history, then compares the live read models and a rebuild with the
/// reference.
async fn one_history(ops: Vec<Op>) -> anyhow::Result<()> {
    let mut w = world().await;
    let mut accepted = 0;
    for op in &ops {
        let Some((call, token)) = w.call(op) else {
            continue;
        };
        let res = w.app.send(&call, token.as_deref()).await;
        anyhow::ensure!(
            !res.status.is_server_error(),
            "{op:?}: {} {}",
            res.status,
            res.body
        );
        if !res.status.is_success() {
            continue;
        }
        accepted += 1;
        match op {
            Op::Submit { anonymous, citizen } => w.reports.push(Submitted {
                id: res.id(),
                by: (!anonymous).then_some(*citizen),
            }),
            Op::Dispatch { report, patrol } => {
                let id = w.report(*report).map(|r| r.id.clone()).unwrap_or_default();
                w.assigned.insert(id, *patrol);
            }
            _ => {}
        }
    }
    let head = w.app.log.head().await?;
    w.app.caught_up(head).await;
    let vault = precinct_vault::Vault::open(
        &w.app.log,
        &w.app.log.config().keys_bucket,
        1,
        w.app.config.master_keys.clone().expect("master keys"),
    )
    .await?;
    let log = w.app.log.clone().with_opener(Arc::new(vault));
    let events: Vec<RecordedEvent> = log.read_all(1).await?.try_collect().await?;
    anyhow::ensure!(
        events.len() as u64 == head,
        "read {} of {head}",
        events.len()
    );
    let expected = reference(&events)?;
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &events {
        *kinds.entry(e.envelope.event_type.as_str()).or_default() += 1;
    }
    println!(
        "model: {} commands, {accepted} accepted, {head} events, {} reports; {kinds:?}",
        ops.len(),
        expected.get("reports").map_or(0, BTreeMap::len)
    );
    let live = actual(&w.app.pool).await?;
    compare("live", &expected, &live)?;

    let (fresh, _) = precinct_tests::pg::fresh_database().await?;
    precinct_readmodel::migrate(&fresh).await?;
    precinct_projections::rebuild(&fresh, &log).await?;
    let rebuilt = actual(&fresh).await?;
    let verdict = compare("rebuilt", &expected, &rebuilt);
    // Every case starts a server and opens two databases: give their connections back
    // before the next case (the PostgreSQL server is shared with the rest of the suite).
    fresh.close().await;
    let pool = w.app.pool.clone();
    w.app.stop().await?;
    pool.close().await;
    verdict
}
