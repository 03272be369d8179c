//! Latency samples, percentiles, and CPU accounting from `/proc`.
//!
//! PostgreSQL's CPU is that of the postmaster's children that work for the run: the
//! backends of the run's databases (`bench_<ts>…`, told apart by their process title)
//! and the server-wide helpers (WAL writer, checkpointer, background writer,
//! autovacuum), followed by a sampler thread every [`PG_SAMPLE`]: a backend that
//! exits keeps the CPU it had at its last sample, so backends started and ended during
//! a phase count (at most one sample interval of each is missed).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Latency samples in microseconds (kept whole: a run records at most a few million).
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    micros: Vec<u32>,
}

impl Latencies {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            micros: Vec::with_capacity(n),
        }
    }

    pub fn record(&mut self, d: Duration) {
        self.micros
            .push(u32::try_from(d.as_micros()).unwrap_or(u32::MAX));
    }

    pub fn record_micros(&mut self, us: i64) {
        self.micros
            .push(u32::try_from(us.max(0)).unwrap_or(u32::MAX));
    }

    pub fn merge(&mut self, other: Latencies) {
        self.micros.extend(other.micros);
    }

    pub fn summary(mut self) -> Percentiles {
        self.micros.sort_unstable();
        let n = self.micros.len();
        let at = |q: f64| -> f64 {
            if n == 0 {
                return f64::NAN;
            }
            // Nearest rank.
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
            f64::from(self.micros[rank - 1]) / 1000.0
        };
        Percentiles {
            count: n as u64,
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

/// Percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Clock ticks per second for `/proc/<pid>/stat` (`getconf CLK_TCK`, almost always 100).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime of a process, in ticks; `None` if it is gone.
pub fn proc_ticks(pid: u32) -> Option<u64> {
    proc_stat(pid).map(|s| s.ticks)
}

/// The parent of a process.
pub fn proc_ppid(pid: u32) -> Option<u32> {
    proc_stat(pid).map(|s| s.ppid)
}

/// What the CPU accounting needs from one `/proc/<pid>/stat` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stat {
    comm: String,
    ppid: u32,
    /// utime + stime.
    ticks: u64,
    /// Start time since boot (ticks): with the pid, names one process (pids are reused).
    start: u64,
}

fn proc_stat(pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Parses one `/proc/<pid>/stat` line.
fn parse_stat(stat: &str) -> Option<Stat> {
    // The command name is in parentheses and may contain spaces.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // After the comm: state is field 3, ppid 4; utime and stime are fields 14 and 15;
    // starttime is field 22.
    let field = |n: usize| -> Option<u64> { rest.get(n - 3)?.parse().ok() };
    Some(Stat {
        comm,
        ppid: u32::try_from(field(4)?).ok()?,
        ticks: field(14)? + field(15)?,
        start: field(22).unwrap_or(0),
    })
}

/// Whether a child of the postmaster works for the run: a backend (or autovacuum or
/// parallel worker) of a database named `db_prefix…`, or a server-wide helper.
/// Backends' titles are `postgres: <user> <db> <host> <state>`.
fn pg_child_is_ours(cmdline: &str, db_prefix: &str) -> bool {
    let title = cmdline.trim_end_matches('\0').replace('\0', " ");
    let Some(title) = title.strip_prefix("postgres: ") else {
        return false;
    };
    // With `cluster_name` set (Debian's clusters: `15/main`), every title starts with it:
    // `postgres: 15/main: precinct bench_… 127.0.0.1(…) idle`.
    let title = match title.split_once(": ") {
        Some((cluster, rest)) if !cluster.contains(' ') => rest,
        _ => title,
    };
    const SHARED: [&str; 5] = [
        "checkpointer",
        "background writer",
        "walwriter",
        "autovacuum launcher",
        "logical replication launcher",
    ];
    if SHARED.iter().any(|h| title.starts_with(h)) || title.starts_with("parallel worker") {
        return true;
    }
    if let Some(db) = title.strip_prefix("autovacuum worker ") {
        return db.starts_with(db_prefix);
    }
    title
        .split_whitespace()
        .nth(1)
        .is_some_and(|db| db.starts_with(db_prefix))
}

/// Every numeric entry of `/proc`.
fn pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// How often the PostgreSQL sampler looks at the postmaster's children.
pub const PG_SAMPLE: Duration = Duration::from_millis(200);

#[derive(Debug, Default)]
struct PgState {
    /// (pid, start) → last ticks seen (`None`: not ours, not followed).
    seen: HashMap<(u32, u64), Option<u64>>,
    /// Ticks of our children that have exited, at their last sample.
    retired: u64,
}

/// The CPU of the PostgreSQL processes that work for the run, followed by a thread.
#[derive(Debug)]
pub struct PgCpu {
    postmaster: u32,
    db_prefix: String,
    state: Mutex<PgState>,
}

impl PgCpu {
    /// Follows the children of `postmaster` (and the postmaster itself) that work for
    /// the databases named `db_prefix…`, until the answer is dropped.
    pub fn follow(postmaster: u32, db_prefix: String) -> Arc<Self> {
        let me = Arc::new(Self {
            postmaster,
            db_prefix,
            state: Mutex::default(),
        });
        me.sample();
        let weak: Weak<Self> = Arc::downgrade(&me);
        std::thread::spawn(move || loop {
            std::thread::sleep(PG_SAMPLE);
            match weak.upgrade() {
                Some(me) => {
                    me.sample();
                }
                None => return,
            }
        });
        me
    }

    /// Reads the children now; answers the total ticks (exited ones at their last
    /// sample, plus the postmaster's own).
    fn sample(&self) -> u64 {
        let mut current = HashMap::new();
        let mut live = 0;
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for pid in pids() {
            let Some(stat) = proc_stat(pid) else { continue };
            let key = (pid, stat.start);
            let ours = match st.seen.get(&key) {
                Some(v) => v.is_some(),
                None => {
                    stat.ppid == self.postmaster
                        && std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                            .is_ok_and(|c| pg_child_is_ours(&c, &self.db_prefix))
                }
            };
            if ours {
                live += stat.ticks;
                current.insert(key, Some(stat.ticks));
            } else if stat.ppid == self.postmaster {
                current.insert(key, None);
            }
        }
        let gone: u64 = st
            .seen
            .iter()
            .filter(|(k, _)| !current.contains_key(k))
            .filter_map(|(_, v)| *v)
            .sum();
        st.retired += gone;
        st.seen = current;
        st.retired + live + proc_ticks(self.postmaster).unwrap_or(0)
    }
}

/// Whole-machine busy and total jiffies from `/proc/stat` (all CPUs).
fn machine_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Which processes a CPU sample covers.
#[derive(Debug, Clone, Copy)]
pub struct Pids {
    /// `precinct serve` (absent during the ceilings).
    pub server: Option<u32>,
    /// The second `precinct serve` of a split run (`--roles projector,sla,live`); its
    /// CPU is counted with the first's.
    pub server2: Option<u32>,
    /// The stack's nats-server.
    pub nats: Option<u32>,
}

/// One reading of the CPU counters.
#[derive(Debug, Clone, Copy)]
pub struct CpuSnap {
    at: Instant,
    server: Option<u64>,
    nats: Option<u64>,
    postgres: u64,
    bench: u64,
    machine: Option<(u64, u64)>,
}

/// CPU shares over an interval: CPU seconds / wall seconds / cores (1.0 = every core busy).
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct CpuShares {
    pub server: Option<f64>,
    pub nats: Option<f64>,
    pub postgres: f64,
    pub bench: f64,
    /// Everything on the machine (other processes included), from `/proc/stat`.
    pub machine: Option<f64>,
    /// CPU seconds of server + NATS + PostgreSQL (not the load generator) over the phase.
    pub system_cpu_secs: f64,
    /// The phase's wall seconds.
    pub wall_secs: f64,
}

#[derive(Debug, Clone)]
pub struct Cpu {
    pub pids: Pids,
    pub tick: f64,
    pub cores: f64,
    /// PostgreSQL's processes for the run, once its databases exist.
    pub pg: Option<Arc<PgCpu>>,
}

impl Cpu {
    pub fn snap(&self) -> CpuSnap {
        CpuSnap {
            at: Instant::now(),
            server: self
                .pids
                .server
                .and_then(proc_ticks)
                .map(|t| t + self.pids.server2.and_then(proc_ticks).unwrap_or(0)),
            nats: self.pids.nats.and_then(proc_ticks),
            postgres: self.pg.as_ref().map_or(0, |pg| pg.sample()),
            bench: proc_ticks(std::process::id()).unwrap_or(0),
            machine: machine_jiffies(),
        }
    }

    pub fn shares(&self, a: &CpuSnap, b: &CpuSnap) -> CpuShares {
        let wall = (b.at - a.at).as_secs_f64().max(1e-9);
        let share = |x: u64, y: u64| (y.saturating_sub(x)) as f64 / self.tick / wall / self.cores;
        let secs = |x: Option<u64>, y: Option<u64>| match (x, y) {
            (Some(x), Some(y)) => y.saturating_sub(x) as f64 / self.tick,
            _ => 0.0,
        };
        CpuShares {
            system_cpu_secs: secs(a.server, b.server)
                + secs(a.nats, b.nats)
                + secs(Some(a.postgres), Some(b.postgres)),
            wall_secs: wall,
            server: match (a.server, b.server) {
                (Some(x), Some(y)) => Some(share(x, y)),
                _ => None,
            },
            nats: match (a.nats, b.nats) {
                (Some(x), Some(y)) => Some(share(x, y)),
                _ => None,
            },
            postgres: share(a.postgres, b.postgres),
            bench: share(a.bench, b.bench),
            machine: match (a.machine, b.machine) {
                (Some((busy0, tot0)), Some((busy1, tot1))) if tot1 > tot0 => {
                    Some((busy1 - busy0) as f64 / (tot1 - tot0) as f64)
                }
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut l = Latencies::default();
        for ms in 1..=100 {
            l.record(Duration::from_millis(ms));
        }
        let p = l.summary();
        assert_eq!(p.count, 100);
        assert_eq!(p.p50_ms, 50.0);
        assert_eq!(p.p95_ms, 95.0);
        assert_eq!(p.p99_ms, 99.0);
        assert_eq!(p.max_ms, 100.0);
        assert!(Latencies::default().summary().p50_ms.is_nan());
    }

    #[test]
    fn proc_stat_with_spaces_in_the_name() {
        let line = "42 (tokio rt (1)) S 7 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 12345 0";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                comm: "tokio rt (1)".into(),
                ppid: 7,
                ticks: 300,
                start: 12345
            })
        );
    }

    #[test]
    fn postgres_children_of_the_run_and_of_others() {
        let ours = |t: &str| pg_child_is_ours(&format!("{t}\0"), "bench_2026");
        assert!(ours("postgres: precinct bench_2026 127.0.0.1(5000) idle"));
        assert!(ours(
            "postgres: precinct bench_2026_rebuild 127.0.0.1(5001) COMMIT"
        ));
        assert!(ours("postgres: walwriter "));
        assert!(ours("postgres: autovacuum worker bench_2026"));
        assert!(!ours("postgres: autovacuum worker test_x"));
        assert!(!ours("postgres: precinct test_abc 127.0.0.1(5002) idle"));
        assert!(!ours("/usr/lib/postgresql/15/bin/postgres -D /data"));
        // A cluster with `cluster_name` (Debian's `15/main`) puts it first.
        assert!(ours(
            "postgres: 15/main: postgres bench_2026 127.0.0.1(5003) idle"
        ));
        assert!(ours("postgres: 15/main: walwriter "));
        assert!(ours("postgres: 15/main: autovacuum worker bench_2026"));
        assert!(!ours(
            "postgres: 15/main: postgres test_x 127.0.0.1(5004) idle"
        ));
    }

    #[test]
    fn the_postgres_sampler_counts_itself_only_when_the_postmaster_is_its_parent() {
        // The bench's own pid as a "postmaster": its children here are none, so the
        // total is its own ticks, and it never goes down.
        let pg = PgCpu::follow(std::process::id(), "bench_none".into());
        let a = pg.sample();
        let b = pg.sample();
        assert!(b >= a);
    }
}
