//! Latency samples, percentiles, and CPU accounting from `/proc`.

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
#[derive(Debug, Clone, Copy, Serialize)]
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
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_ticks(&stat).map(|(_, t)| t)
}

/// (comm, utime + stime) from one `/proc/<pid>/stat` line.
fn parse_ticks(stat: &str) -> Option<(String, u64)> {
    // The command name is in parentheses and may contain spaces.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // After the comm: state is field 3; utime and stime are fields 14 and 15.
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// Ticks of every process whose command name is `comm` (e.g. all `postgres` backends).
pub fn ticks_by_comm(comm: &str) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut total = 0;
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{name}/stat")) {
            if let Some((c, t)) = parse_ticks(&stat) {
                if c == comm {
                    total += t;
                }
            }
        }
    }
    total
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
}

#[derive(Debug, Clone, Copy)]
pub struct Cpu {
    pub pids: Pids,
    pub tick: f64,
    pub cores: f64,
}

impl Cpu {
    pub fn snap(&self) -> CpuSnap {
        CpuSnap {
            at: Instant::now(),
            server: self.pids.server.and_then(proc_ticks),
            nats: self.pids.nats.and_then(proc_ticks),
            postgres: ticks_by_comm("postgres"),
            bench: proc_ticks(std::process::id()).unwrap_or(0),
            machine: machine_jiffies(),
        }
    }

    pub fn shares(&self, a: &CpuSnap, b: &CpuSnap) -> CpuShares {
        let wall = (b.at - a.at).as_secs_f64().max(1e-9);
        let share = |x: u64, y: u64| (y.saturating_sub(x)) as f64 / self.tick / wall / self.cores;
        CpuShares {
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
        let line = "42 (tokio rt (1)) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0";
        assert_eq!(parse_ticks(line), Some(("tokio rt (1)".into(), 300)));
    }
}
