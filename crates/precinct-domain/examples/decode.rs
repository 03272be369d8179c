//! What decoding a report event costs: the way `from_parts` did it until issue 15 (a
//! `{type, data}` object around a clone of the payload, then `from_value`, which buffers
//! the payload again because the tag sorts after it) against `from_parts_ref`, over one
//! sample of every report event (`tests/common/samples.rs`). Prints microseconds per
//! event; bounded (20,000 rounds, three passes).
//!
//!     cargo run --release -p precinct-domain --example decode
#[path = "../tests/common/mod.rs"]
mod common;
use precinct_domain::report::ReportEvent;
use precinct_domain::DomainEvent;
use std::time::Instant;

fn main() {
    let events: Vec<(String, serde_json::Value)> = common::samples::report_events()
        .iter()
        .map(|e| (e.event_type().to_string(), e.to_data()))
        .collect();
    let rounds = 20_000;
    for pass in 0..3 {
        let t = Instant::now();
        let mut n = 0usize;
        for _ in 0..rounds {
            for (ty, data) in &events {
                let e: ReportEvent =
                    serde_json::from_value(serde_json::json!({ "type": ty, "data": data.clone() }))
                        .expect("decodes");
                n += std::hint::black_box(&e).event_type().len();
            }
        }
        let old = t.elapsed();
        let t = Instant::now();
        for _ in 0..rounds {
            for (ty, data) in &events {
                let e = ReportEvent::from_parts_ref(ty, data).expect("decodes");
                n += std::hint::black_box(&e).event_type().len();
            }
        }
        let new = t.elapsed();
        let per = (rounds * events.len()) as f64;
        println!(
            "pass {pass}: {} events x {rounds}: old {:.2} us/event, from_parts_ref {:.2} us/event ({:.1}x) [{n}]",
            events.len(),
            old.as_secs_f64() * 1e6 / per,
            new.as_secs_f64() * 1e6 / per,
            old.as_secs_f64() / new.as_secs_f64()
        );
    }
}
