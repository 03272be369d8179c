//! Workload 5: queries over the projected reports (after seeding): the station's queue,
//! the public list with `near=`, workloads, and `as_of` on a report with 50 events.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use precinct_tests::client::{Call, Client};

use crate::load::{closed_loop, LoadResult};
use crate::world::{report, World, LAT, LON};

/// A report with `events` events (submitted, then notes by the desk), and a moment in
/// the middle of its history.
pub async fn report_with_history(
    api: &Client,
    world: &World,
    events: usize,
) -> anyhow::Result<(String, DateTime<Utc>)> {
    let citizen = &world.citizens[0].token;
    let r = api.run(&report(7, LAT, LON), Some(citizen)).await?;
    let id = r["id"].as_str().unwrap_or_default().to_string();
    let mut middle = Utc::now();
    for i in 1..events {
        let note = format!("Follow-up note {i}: witness called back");
        api.run(&Call::note(&id, &note), Some(&world.dispatcher.token))
            .await?;
        if i == events / 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            middle = Utc::now();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    Ok((id, middle))
}

pub struct QueryCase {
    pub name: &'static str,
    pub call: Call,
    pub token: Option<String>,
}

pub fn cases(world: &World, as_of_id: &str, as_of: DateTime<Utc>) -> Vec<QueryCase> {
    let desk = Some(world.dispatcher.token.clone());
    vec![
        QueryCase {
            name: "queue",
            call: Call::queue(),
            token: desk.clone(),
        },
        QueryCase {
            name: "near",
            call: Call::near(LAT, LON, 500),
            token: None,
        },
        QueryCase {
            name: "workloads",
            call: Call::workloads(None, None),
            token: desk.clone(),
        },
        QueryCase {
            name: "as_of",
            call: Call::report_as_of(as_of_id, as_of),
            token: desk,
        },
    ]
}

pub async fn run_case(
    api: &Client,
    case: &QueryCase,
    connections: usize,
    duration: Duration,
    max_ops: u64,
) -> LoadResult {
    let shared = Arc::new((api.clone(), case.call.clone(), case.token.clone()));
    closed_loop(connections, duration, max_ops, move |_, _| {
        let shared = shared.clone();
        async move {
            let (api, call, token) = &*shared;
            let status = api.status(call, token.as_deref()).await?;
            if !status.is_success() {
                anyhow::bail!("HTTP {status}");
            }
            Ok(())
        }
    })
    .await
}
