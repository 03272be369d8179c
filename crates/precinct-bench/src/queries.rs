//! Workload 5: queries over the projected reports (after seeding): the station's queue,
//! the public list with `near=`, workloads, and `as_of` on a report with 50 events.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use crate::load::{closed_loop, Http, LoadResult};
use crate::world::{report_body, World, LAT, LON};

/// A report with `events` events (submitted, then notes by the desk), and a moment in
/// the middle of its history.
pub async fn report_with_history(
    http: &Http,
    world: &World,
    events: usize,
) -> anyhow::Result<(String, DateTime<Utc>)> {
    let citizen = &world.citizens[0].token;
    let r = http
        .post("/crimes", Some(citizen), &report_body(7, LAT, LON))
        .await?
        .ok("submit")?;
    let id = r["id"].as_str().unwrap_or_default().to_string();
    let mut middle = Utc::now();
    for i in 1..events {
        http.post(
            &format!("/crimes/{id}/notes"),
            Some(&world.dispatcher.token),
            &json!({"note": format!("Follow-up note {i}: witness called back")}),
        )
        .await?
        .ok("note")?;
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
    pub path: String,
    pub token: Option<String>,
}

pub fn cases(world: &World, as_of_id: &str, as_of: DateTime<Utc>) -> Vec<QueryCase> {
    let desk = Some(world.dispatcher.token.clone());
    let at = as_of.to_rfc3339_opts(SecondsFormat::Micros, true);
    vec![
        QueryCase {
            name: "queue",
            path: "/queues/reports".into(),
            token: desk.clone(),
        },
        QueryCase {
            name: "near",
            path: format!("/crimes?near={LAT},{LON}&radius_m=500"),
            token: None,
        },
        QueryCase {
            name: "workloads",
            path: "/workloads".into(),
            token: desk.clone(),
        },
        QueryCase {
            name: "as_of",
            path: format!("/crimes/{as_of_id}?as_of={}", at.replace('+', "%2B")),
            token: desk,
        },
    ]
}

pub async fn run_case(
    http: &Http,
    case: &QueryCase,
    connections: usize,
    duration: Duration,
    max_ops: u64,
) -> LoadResult {
    let url = format!("{}{}", http.base, case.path);
    let (client, token) = (http.client.clone(), case.token.clone());
    closed_loop(connections, duration, max_ops, move |_, _| {
        let mut req = client.get(url.clone());
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        async move {
            let res = req.send().await?;
            let status = res.status();
            let _ = res.bytes().await?;
            if !status.is_success() {
                anyhow::bail!("HTTP {status}");
            }
            Ok(())
        }
    })
    .await
}
