//! The one results table (Markdown, so it pastes into docs/performance.md) and
//! `results.json`.

use serde::Serialize;

use crate::stats::{CpuShares, Percentiles};

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Short id: `a`, `b′`, `1`, `3 lag`, …
    pub id: String,
    pub name: String,
    pub throughput: Option<f64>,
    pub unit: String,
    pub latency: Option<Percentiles>,
    pub cpu: CpuShares,
    /// Operations done in the phase (requests, events, rows), for CPU per operation.
    pub ops: Option<u64>,
    /// (ceiling id, Precinct figure / ceiling figure).
    pub ratio: Option<(String, f64)>,
    pub target: String,
    pub pass: Option<bool>,
    pub errors: u64,
    pub note: String,
}

impl Row {
    /// CPU milliseconds of server + NATS + PostgreSQL per operation of the phase.
    pub fn cpu_ms_per_op(&self) -> Option<f64> {
        let ops = self.ops.filter(|n| *n > 0)?;
        Some(self.cpu.system_cpu_secs * 1000.0 / ops as f64)
    }

    pub fn new(id: &str, name: &str) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            throughput: None,
            unit: String::new(),
            latency: None,
            cpu: CpuShares::default(),
            ops: None,
            ratio: None,
            target: String::new(),
            pass: None,
            errors: 0,
            note: String::new(),
        }
    }
}

fn ms(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

fn rate(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1}k", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("{:.0}%", x * 100.0))
}

/// The table, one line per row.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str("| # | workload | throughput | p50 ms | p95 ms | p99 ms | CPU server / nats / pg / bench (machine) | CPU ms/op | vs ceiling | target | ok |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---|---:|---:|---|:-:|\n");
    for r in rows {
        let thr = match r.throughput {
            Some(t) => format!("{} {}", rate(t), r.unit),
            None => "–".into(),
        };
        let (p50, p95, p99) = match &r.latency {
            Some(p) => (ms(p.p50_ms), ms(p.p95_ms), ms(p.p99_ms)),
            None => ("–".into(), "–".into(), "–".into()),
        };
        let cpu = format!(
            "{} / {} / {} / {} ({})",
            pct(r.cpu.server),
            pct(r.cpu.nats),
            pct(Some(r.cpu.postgres)),
            pct(Some(r.cpu.bench)),
            pct(r.cpu.machine)
        );
        let ratio = match &r.ratio {
            Some((c, x)) => format!("{x:.2}× {c}"),
            None => "–".into(),
        };
        let ok = match r.pass {
            Some(true) => "✅",
            Some(false) => "❌",
            None => "",
        };
        let mut name = r.name.clone();
        if r.errors > 0 {
            name.push_str(&format!(" ({} errors)", r.errors));
        }
        let per_op = match r.cpu_ms_per_op() {
            Some(v) if v < 0.1 => format!("{v:.3}"),
            Some(v) => ms(v),
            None => "–".into(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.id, name, thr, p50, p95, p99, cpu, per_op, ratio, r.target, ok
        ));
    }
    out
}

/// The notes under the table (one per row that has one).
pub fn notes(rows: &[Row]) -> String {
    rows.iter()
        .filter(|r| !r.note.is_empty())
        .map(|r| format!("- **{}** {}: {}\n", r.id, r.name, r.note))
        .collect()
}
