//! The shipped deployments (`deploy/k8s`, `deploy/compose`) read as an operator would
//! start them: every role of the binary runs in some process, and every process that
//! listens for HTTP is probed, and every variable the binary reads is documented. No
//! servers; the files are parsed, not run.

use std::path::{Path, PathBuf};

use precinct::Roles;
use serde_yaml_ng::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository root")
        .to_path_buf()
}

/// Every YAML document of a file (Kubernetes files hold several).
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap_or_else(|e| panic!("{path:?}: {e}")))
        .collect()
}

/// One process as a manifest starts it.
#[derive(Debug)]
struct Process {
    name: String,
    roles: Roles,
    /// Has an HTTP readiness check (probe or health check).
    probed: bool,
}

/// The roles of `precinct <args…>`, if the command is `serve` (`--roles` or the default).
fn roles_of(args: &[String]) -> Option<Roles> {
    if args.first().map(String::as_str) != Some("serve") {
        return None;
    }
    let roles = args
        .iter()
        .position(|a| a == "--roles")
        .and_then(|i| args.get(i + 1))
        .map(|r| Roles::parse(r).unwrap_or_else(|e| panic!("{args:?}: {e}")))
        .unwrap_or(Roles::ALL);
    Some(roles)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn kubernetes() -> Vec<Process> {
    let mut found = Vec::new();
    let dir = repo().join("deploy/k8s");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("deploy/k8s")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for file in files {
        for doc in documents(&file) {
            if !matches!(doc["kind"].as_str(), Some("Deployment" | "StatefulSet")) {
                continue;
            }
            let name = doc["metadata"]["name"].as_str().unwrap_or("?").to_string();
            let containers = doc["spec"]["template"]["spec"]["containers"]
                .as_sequence()
                .cloned()
                .unwrap_or_default();
            for c in containers {
                if let Some(roles) = roles_of(&strings(&c["args"])) {
                    found.push(Process {
                        name: format!("k8s {name}"),
                        roles,
                        probed: !c["readinessProbe"].is_null(),
                    });
                }
            }
        }
    }
    found
}

fn compose() -> Vec<Process> {
    let file = repo().join("deploy/compose/docker-compose.yml");
    let doc = documents(&file).into_iter().next().expect("one document");
    let services = doc["services"].as_mapping().cloned().unwrap_or_default();
    services
        .iter()
        .filter_map(|(name, service)| {
            let roles = roles_of(&strings(&service["command"]))?;
            Some(Process {
                name: format!("compose {}", name.as_str().unwrap_or("?")),
                roles,
                probed: !service["healthcheck"].is_null(),
            })
        })
        .collect()
}

fn check(deployment: &str, processes: &[Process]) {
    assert!(
        !processes.is_empty(),
        "{deployment}: no `precinct serve` found"
    );
    let any = |f: fn(&Roles) -> bool| processes.iter().any(|p| f(&p.roles));
    for (role, served) in [
        ("api", any(|r| r.api)),
        ("projector", any(|r| r.projector)),
        ("sla", any(|r| r.sla)),
        ("live", any(|r| r.live)),
    ] {
        assert!(
            served,
            "{deployment}: no process runs the {role} role: {processes:#?}"
        );
    }
    for p in processes {
        if p.roles.api || p.roles.live {
            assert!(
                p.probed,
                "{}: serves HTTP without a readiness check",
                p.name
            );
        }
    }
}

#[test]
fn every_role_runs_somewhere_in_kubernetes() {
    check("deploy/k8s", &kubernetes());
}

#[test]
fn every_role_runs_somewhere_in_compose() {
    check("deploy/compose", &compose());
}

#[test]
fn a_manifest_without_the_live_role_is_caught() {
    // The check itself can fail: the shape the review found (no process with `live`).
    let shipped_before = vec![
        Process {
            name: "api".into(),
            roles: Roles::parse("api").expect("roles"),
            probed: true,
        },
        Process {
            name: "projector".into(),
            roles: Roles::parse("projector,sla").expect("roles"),
            probed: false,
        },
    ];
    let caught = std::panic::catch_unwind(|| check("before", &shipped_before));
    assert!(
        caught.is_err(),
        "a deployment without `live` passed the check"
    );
}

/// Every environment variable the binary reads is in the configuration table of
/// `docs/operations.md` (a variable an operator cannot find does not exist for them).
#[test]
fn every_variable_the_binary_reads_is_documented() {
    let root = repo();
    let ops = std::fs::read_to_string(root.join("docs/operations.md")).expect("operations.md");
    let table: String = ops
        .split("## Configuration")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Configuration section")
        .lines()
        .filter(|l| l.starts_with('|'))
        .collect::<Vec<_>>()
        .join("\n");
    let mut read = std::collections::BTreeSet::new();
    let src = root.join("crates/precinct/src");
    for entry in std::fs::read_dir(&src).expect("src") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("source");
        // String literals naming a variable: "PRECINCT_…" and "…_URL".
        for quoted in text.split('"').skip(1).step_by(2) {
            let name_like = !quoted.is_empty()
                && quoted
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if name_like && (quoted.starts_with("PRECINCT_") || quoted.ends_with("_URL")) {
                read.insert(quoted.to_string());
            }
        }
    }
    assert!(read.len() > 20, "found only {read:?}");
    let missing: Vec<_> = read
        .iter()
        .filter(|v| !table.contains(&format!("`{v}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "read by the binary, missing from the table in docs/operations.md: {missing:?}"
    );
}

/// The metric names an expression uses (`precinct_…`, `process_…`), without the
/// `_bucket`/`_sum`/`_count` of a histogram's series.
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let rest: String = bytes[i..].iter().collect();
        let starts = (rest.starts_with("precinct_") || rest.starts_with("process_"))
            && (i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_'));
        if starts {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            i += name.len();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name)
                .to_string();
            out.push(family);
        } else {
            i += 1;
        }
    }
    out
}

/// Every family the binary exposes: the ones registered at start and the per-route HTTP
/// families.
fn exposed() -> Vec<&'static str> {
    let mut names: Vec<&str> = precinct_api::metrics::FAMILIES
        .iter()
        .map(|f| f.name)
        .collect();
    names.extend([
        "precinct_http_requests_total",
        "precinct_http_request_duration_seconds",
        "precinct_commands_total",
        "precinct_command_duration_seconds",
    ]);
    names
}

/// Every `expr` string anywhere in a JSON value.
fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

#[test]
fn the_alert_rules_and_the_dashboard_use_only_metrics_the_binary_exposes() {
    let exposed = exposed();
    let rules = documents(&repo().join("deploy/prometheus/alerts.yml"));
    let mut rule_exprs = Vec::new();
    for group in rules[0]["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            rule_exprs.push(rule["expr"].as_str().expect("expr").to_string());
        }
    }
    assert!(rule_exprs.len() >= 5, "{rule_exprs:?}");
    let text = std::fs::read_to_string(repo().join("deploy/grafana/precinct.json"))
        .expect("the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    let mut panel_exprs = Vec::new();
    exprs(&dashboard["panels"], &mut panel_exprs);
    assert!(
        panel_exprs.len() >= 20,
        "{} panel queries",
        panel_exprs.len()
    );
    for (what, list) in [("alerts.yml", &rule_exprs), ("precinct.json", &panel_exprs)] {
        for e in list.iter() {
            let names = metric_names(e);
            assert!(!names.is_empty(), "{what}: `{e}` uses no Precinct metric");
            for n in names {
                assert!(
                    exposed.contains(&n.as_str()),
                    "{what}: `{e}` uses {n}, which nothing exposes"
                );
            }
        }
    }
    // What the issue asks the rules to watch.
    let all = rule_exprs.join("\n");
    for needed in [
        "precinct_projection_lag_seconds",
        "precinct_sla_",
        "status=~\"5..\"",
        "precinct_appends_total",
        "precinct_live_dropped_clients_total",
    ] {
        assert!(all.contains(needed), "no alert rule on {needed}");
    }
}

#[test]
fn metric_names_are_found_in_promql() {
    assert_eq!(
        metric_names(
            "histogram_quantile(0.5, rate(precinct_append_duration_seconds_bucket{x=\"precinct_no\"}[5m])) / process_max_fds"
        ),
        vec![
            "precinct_append_duration_seconds".to_string(),
            "precinct_no".to_string(),
            "process_max_fds".to_string()
        ]
    );
}

// --- NATS accounts and permissions --------------------------------------------------------

/// Passwords for the users of `deploy/nats/accounts.conf` (nats-server refuses a config
/// whose variables are not set).
const NATS_USERS: &[(&str, &str)] = &[
    ("PRECINCT_NATS_PASSWORD", "service-password-0123"),
    ("SUBSCRIBER_NATS_PASSWORD", "subscriber-password-0123"),
    ("SYSTEM_NATS_PASSWORD", "system-password-0123"),
];

fn nats_server() -> std::process::Command {
    let bin = precinct_tests::nats::nats_bin().expect("the pinned nats-server (PRECINCT_NATS_BIN)");
    let mut cmd = std::process::Command::new(bin);
    for (k, v) in NATS_USERS {
        cmd.env(k, v);
    }
    cmd
}

/// A scratch directory of this test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "precinct-{name}-{}",
        precinct_tests::unique_prefix()
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// `nats-server -t -c <dir>/nats.conf`: the config parses (and every include with it).
fn config_test(dir: &Path) -> Result<(), String> {
    let out = nats_server()
        .env("POD_NAME", "nats-0")
        .arg("-t")
        .arg("-c")
        .arg(dir.join("nats.conf"))
        .output()
        .expect("run nats-server -t");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The node config with its paths moved into `dir` (the test does not own /data).
fn localized(conf: &str, dir: &Path) -> String {
    conf.replace("\"/data\"", &format!("\"{}\"", dir.join("js").display()))
        .replace(
            "\"/var/run/nats/nats.pid\"",
            &format!("\"{}\"", dir.join("nats.pid").display()),
        )
}

#[test]
fn the_nats_configs_of_the_manifests_parse_with_their_accounts() {
    let accounts =
        std::fs::read_to_string(repo().join("deploy/nats/accounts.conf")).expect("accounts.conf");
    // Compose: the three node files, each beside accounts.conf as mounted.
    for node in ["a", "b", "c"] {
        let conf = std::fs::read_to_string(repo().join(format!("deploy/nats/nats-{node}.conf")))
            .expect("node config");
        assert!(
            conf.contains("include \"accounts.conf\""),
            "nats-{node}.conf has no accounts"
        );
        let dir = scratch("nats-conf");
        std::fs::write(dir.join("nats.conf"), localized(&conf, &dir)).expect("write");
        std::fs::write(dir.join("accounts.conf"), &accounts).expect("write");
        config_test(&dir).unwrap_or_else(|e| panic!("nats-{node}.conf: {e}"));
        let _ = std::fs::remove_dir_all(&dir);
    }
    // Kubernetes: the ConfigMap's two files, as mounted in /etc/nats.
    let docs = documents(&repo().join("deploy/k8s/nats.yaml"));
    let map = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "nats-config")
        .expect("the nats-config ConfigMap");
    let conf = map["data"]["nats.conf"].as_str().expect("nats.conf");
    let k8s_accounts = map["data"]["accounts.conf"]
        .as_str()
        .expect("accounts.conf");
    assert_eq!(
        k8s_accounts, accounts,
        "the ConfigMap's accounts.conf differs from deploy/nats/accounts.conf"
    );
    let dir = scratch("nats-conf");
    std::fs::write(dir.join("nats.conf"), localized(conf, &dir)).expect("write");
    std::fs::write(dir.join("accounts.conf"), k8s_accounts).expect("write");
    config_test(&dir).unwrap_or_else(|e| panic!("deploy/k8s/nats.yaml: {e}"));
    // A config without the passwords is refused: no user without one.
    let out = std::process::Command::new(precinct_tests::nats::nats_bin().expect("nats-server"))
        .env_remove("PRECINCT_NATS_PASSWORD")
        .env("POD_NAME", "nats-0")
        .args(["-t", "-c"])
        .arg(dir.join("nats.conf"))
        .output()
        .expect("run nats-server -t");
    assert!(
        !out.status.success(),
        "a config without the service's password was accepted"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A nats-server on a free loopback port with the shipped accounts; killed on drop.
struct AccountsServer {
    child: std::process::Child,
    port: u16,
    dir: PathBuf,
}

impl AccountsServer {
    fn start() -> Self {
        let port = precinct_tests::nats::free_port().expect("port");
        let dir = scratch("nats-accounts");
        let accounts = std::fs::read_to_string(repo().join("deploy/nats/accounts.conf"))
            .expect("accounts.conf");
        std::fs::write(dir.join("accounts.conf"), accounts).expect("write");
        std::fs::write(
            dir.join("nats.conf"),
            format!(
                "listen: 127.0.0.1:{port}\njetstream {{ store_dir: \"{}\" }}\ninclude \"accounts.conf\"\n",
                dir.join("js").display()
            ),
        )
        .expect("write");
        let child = nats_server()
            .arg("-c")
            .arg(dir.join("nats.conf"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn nats-server");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nats-server did not listen"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Self { child, port, dir }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for AccountsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Connects as `user`; the server's errors (permission violations) go to the receiver.
async fn connect_as(
    server: &AccountsServer,
    user: &str,
    password: &str,
) -> (
    async_nats::Client,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
        .event_callback(move |e| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = e {
                    let _ = tx.send(e.to_string());
                }
            }
        })
        .connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("connect as {user}: {e}"));
    (client, rx)
}

/// The next server error (bounded wait).
async fn next_error(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("a server error within 10 s")
        .expect("the connection's events")
}

#[tokio::test]
async fn the_read_only_subscriber_receives_positions_and_patrol_events_and_can_publish_nothing() {
    use futures::StreamExt;
    let server = AccountsServer::start();
    let (service, _) = connect_as(&server, "precinct", NATS_USERS[0].1).await;
    let (reader, mut errors) = connect_as(&server, "subscriber", NATS_USERS[1].1).await;

    // It reads what the service publishes on positions and patrol events. (The client's
    // flush does not wait for the server to have the subscription: the service publishes
    // until the first message arrives, bounded.)
    for subject in ["positions.s1.p1", "events.patrol.p1"] {
        let mut sub = reader
            .subscribe(subject.replace("p1", ">"))
            .await
            .expect("subscribe");
        reader.flush().await.expect("flush");
        let mut got = None;
        for _ in 0..100 {
            service
                .publish(subject, "{}".into())
                .await
                .expect("publish");
            service.flush().await.expect("flush");
            if let Ok(m) =
                tokio::time::timeout(std::time::Duration::from_millis(100), sub.next()).await
            {
                got = m;
                break;
            }
        }
        let got = got.unwrap_or_else(|| {
            panic!(
                "nothing on {subject} within 10 s; server said: {:?}",
                errors.try_recv()
            )
        });
        assert_eq!(got.subject.as_str(), subject);
    }

    // It cannot publish, not even on its own subjects or the JetStream API.
    for subject in [
        "positions.s1.p1",
        "events.patrol.p1",
        "$JS.API.STREAM.NAMES",
    ] {
        reader.publish(subject, "x".into()).await.expect("queued");
        reader.flush().await.expect("flush");
        let e = next_error(&mut errors).await;
        assert!(
            e.to_lowercase()
                .contains("permissions violation for publish")
                && e.contains(subject),
            "publishing to {subject}: {e}"
        );
    }
    // Nor subscribe to reports, accounts or the request log.
    for subject in ["events.report.>", "events.account.>", "requests.log"] {
        let _sub = reader.subscribe(subject).await.expect("queued");
        reader.flush().await.expect("flush");
        let e = next_error(&mut errors).await;
        assert!(
            e.to_lowercase()
                .contains("permissions violation for subscription")
                && e.contains(subject),
            "subscribing to {subject}: {e}"
        );
    }
    // And nobody gets in without a user.
    let anonymous = async_nats::ConnectOptions::new()
        .connect(server.url())
        .await;
    assert!(anonymous.is_err(), "an anonymous connection was accepted");
    // The service connects as the binary does: its user in NATS_URL.
    let url = format!(
        "nats://precinct:{}@127.0.0.1:{}",
        NATS_USERS[0].1, server.port
    );
    let log =
        precinct_eventlog::EventLog::connect(&url, precinct_eventlog::LogConfig::isolated("acct"))
            .await
            .expect("the service connects with the user of its URL");
    assert!(log.is_connected());
}
