//! The shipped deployments (`deploy/k8s`, `deploy/compose`) read as an operator would
//! start them: every role of the binary runs in some process; every process serves HTTP
//! somewhere reachable (its API, or its operations listener, ADR 0025), is probed there
//! (readiness and liveness) and is scraped there by Prometheus; and every variable the
//! binary reads is documented. No servers; the files are parsed, not run.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use precinct::{OpsAddr, Roles};
use serde_yaml_ng::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository root")
        .to_path_buf()
}

/// Every YAML document of a file (Kubernetes files hold several), merge keys applied.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| {
            let mut v: Value =
                serde::Deserialize::deserialize(d).unwrap_or_else(|e| panic!("{path:?}: {e}"));
            v.apply_merge().unwrap_or_else(|e| panic!("{path:?}: {e}"));
            v
        })
        .collect()
}

/// One process as a manifest starts it.
#[derive(Debug, Clone)]
struct Process {
    name: String,
    roles: Roles,
    /// The ports it serves HTTP on, reachable from outside the process (its API
    /// listener and its operations listener, as its environment configures them).
    serves: Vec<u16>,
    /// The port its HTTP readiness check asks (probe or health check).
    readiness: Option<u16>,
    /// The port its HTTP liveness check asks (Compose has one health check: the same).
    liveness: Option<u16>,
    /// The port Prometheus scrapes `/metrics` on (annotations or labels).
    scraped: Option<u16>,
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

/// The ports a process with `roles` and environment `env` serves HTTP on, by the
/// binary's own rules (`PRECINCT_HTTP_ADDR` for the API, `PRECINCT_OPS_ADDR` and its
/// default for the operations listener); loopback addresses reach no prober or scraper.
fn served_ports(roles: &Roles, env: &BTreeMap<String, String>) -> Vec<u16> {
    let reachable = |addr: SocketAddr| (!addr.ip().is_loopback()).then_some(addr.port());
    let listens = roles.api || roles.live;
    let mut ports = Vec::new();
    if listens {
        let http: SocketAddr = env
            .get("PRECINCT_HTTP_ADDR")
            .map_or("127.0.0.1:8080", String::as_str)
            .parse()
            .expect("PRECINCT_HTTP_ADDR");
        ports.extend(reachable(http));
    }
    let ops = OpsAddr::parse(env.get("PRECINCT_OPS_ADDR").map(String::as_str))
        .expect("PRECINCT_OPS_ADDR");
    ports.extend(ops.resolve(listens).and_then(reachable));
    ports
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

/// A scalar as text (`"9464"`, `9464` and `true` alike).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The port Prometheus scrapes from `prometheus.io/*` annotations or labels: only when
/// `scrape` is `"true"` and the path, if given, is `/metrics`.
fn scrape_port(meta: &Value) -> Option<u16> {
    if text(&meta["prometheus.io/scrape"]).as_deref() != Some("true") {
        return None;
    }
    if let Some(path) = text(&meta["prometheus.io/path"]) {
        if path != "/metrics" {
            return None;
        }
    }
    text(&meta["prometheus.io/port"])?.parse().ok()
}

/// Every ConfigMap of `deploy/k8s` by name: its data.
fn config_maps(docs: &[Value]) -> BTreeMap<String, BTreeMap<String, String>> {
    docs.iter()
        .filter(|d| d["kind"].as_str() == Some("ConfigMap"))
        .map(|d| {
            let name = d["metadata"]["name"].as_str().unwrap_or("?").to_string();
            let data = d["data"]
                .as_mapping()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.as_str()?.to_string(), text(v)?)))
                        .collect()
                })
                .unwrap_or_default();
            (name, data)
        })
        .collect()
}

/// The port an `httpGet` probe of container `c` asks (named ports resolved).
fn probe_port(c: &Value, probe: &str) -> Option<u16> {
    let port = &c[probe]["httpGet"]["port"];
    if let Some(n) = port.as_u64() {
        return u16::try_from(n).ok();
    }
    let name = port.as_str()?;
    c["ports"].as_sequence()?.iter().find_map(|p| {
        (p["name"].as_str() == Some(name))
            .then(|| {
                p["containerPort"]
                    .as_u64()
                    .and_then(|n| u16::try_from(n).ok())
            })
            .flatten()
    })
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
    let docs: Vec<Value> = files.iter().flat_map(|f| documents(f)).collect();
    let maps = config_maps(&docs);
    for doc in &docs {
        if !matches!(doc["kind"].as_str(), Some("Deployment" | "StatefulSet")) {
            continue;
        }
        let name = doc["metadata"]["name"].as_str().unwrap_or("?").to_string();
        let template = &doc["spec"]["template"];
        let containers = template["spec"]["containers"]
            .as_sequence()
            .cloned()
            .unwrap_or_default();
        for c in containers {
            let Some(roles) = roles_of(&strings(&c["args"])) else {
                continue;
            };
            let mut env = BTreeMap::new();
            for from in c["envFrom"].as_sequence().into_iter().flatten() {
                if let Some(map) = from["configMapRef"]["name"].as_str() {
                    env.extend(maps.get(map).cloned().unwrap_or_default());
                }
            }
            for e in c["env"].as_sequence().into_iter().flatten() {
                if let (Some(k), Some(v)) = (e["name"].as_str(), text(&e["value"])) {
                    env.insert(k.to_string(), v);
                }
            }
            // Prometheus' pod role sees only declared container ports.
            let declared: Vec<u16> = c["ports"]
                .as_sequence()
                .into_iter()
                .flatten()
                .filter_map(|p| p["containerPort"].as_u64())
                .filter_map(|n| u16::try_from(n).ok())
                .collect();
            found.push(Process {
                name: format!("k8s {name}"),
                serves: served_ports(&roles, &env)
                    .into_iter()
                    .filter(|p| declared.contains(p))
                    .collect(),
                roles,
                readiness: probe_port(&c, "readinessProbe"),
                liveness: probe_port(&c, "livenessProbe"),
                scraped: scrape_port(&template["metadata"]["annotations"]),
            });
        }
    }
    found
}

/// The port of the `http://host:port/…` URL in a Compose health check's command.
fn healthcheck_port(service: &Value) -> Option<u16> {
    strings(&service["healthcheck"]["test"])
        .iter()
        .find_map(|a| {
            let rest = a.strip_prefix("http://")?;
            let authority = rest.split('/').next()?;
            authority.rsplit_once(':')?.1.parse().ok()
        })
}

fn compose() -> Vec<Process> {
    let file = repo().join("deploy/compose/docker-compose.yml");
    let doc = documents(&file).into_iter().next().expect("one document");
    let services = doc["services"].as_mapping().cloned().unwrap_or_default();
    services
        .iter()
        .filter_map(|(name, service)| {
            let roles = roles_of(&strings(&service["command"]))?;
            let env = service["environment"]
                .as_mapping()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.as_str()?.to_string(), text(v)?)))
                        .collect()
                })
                .unwrap_or_default();
            let check = healthcheck_port(service);
            Some(Process {
                name: format!("compose {}", name.as_str().unwrap_or("?")),
                serves: served_ports(&roles, &env),
                roles,
                readiness: check,
                liveness: check,
                scraped: scrape_port(&service["labels"]),
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
        ("webhooks", any(|r| r.webhooks)),
    ] {
        assert!(
            served,
            "{deployment}: no process runs the {role} role: {processes:#?}"
        );
    }
    for p in processes {
        let name = &p.name;
        assert!(
            !p.serves.is_empty(),
            "{name}: serves HTTP on no reachable, declared port (no API, operations \
             listener off or on loopback): nothing can probe or scrape it: {p:#?}"
        );
        for (what, port) in [("readiness", p.readiness), ("liveness", p.liveness)] {
            let port = port.unwrap_or_else(|| panic!("{name}: no HTTP {what} check: {p:#?}"));
            assert!(
                p.serves.contains(&port),
                "{name}: its {what} check asks port {port}, which it does not serve: {p:#?}"
            );
        }
        let scraped = p.scraped.unwrap_or_else(|| {
            panic!(
                "{name}: Prometheus does not scrape its /metrics (no prometheus.io/scrape): {p:#?}"
            )
        });
        assert!(
            p.serves.contains(&scraped),
            "{name}: Prometheus scrapes port {scraped}, which it does not serve: {p:#?}"
        );
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

/// A process that the check accepts: serving, probing and scraped on `port`.
fn served(name: &str, roles: &str, port: u16) -> Process {
    Process {
        name: name.into(),
        roles: Roles::parse(roles).expect("roles"),
        serves: vec![port],
        readiness: Some(port),
        liveness: Some(port),
        scraped: Some(port),
    }
}

fn caught(processes: Vec<Process>) -> bool {
    std::panic::catch_unwind(|| check("before", &processes)).is_err()
}

#[test]
fn a_manifest_without_the_live_role_is_caught() {
    // The check itself can fail: the shape the review found (no process with `live`).
    let shipped_before = vec![
        served("api", "api", 8080),
        served("projector", "projector,sla", 9464),
    ];
    assert!(
        caught(shipped_before),
        "a deployment without `live` passed the check"
    );
    let fine = vec![
        served("api", "api,live", 8080),
        served("projector", "projector,sla,webhooks", 9464),
    ];
    assert!(!caught(fine), "a complete deployment failed the check");
    // Nor may the webhook deliverer be left out.
    let no_webhooks = vec![
        served("api", "api,live", 8080),
        served("projector", "projector,sla", 9464),
    ];
    assert!(
        caught(no_webhooks),
        "a deployment without `webhooks` passed the check"
    );
}

#[test]
fn a_process_without_probes_or_scraped_metrics_is_caught() {
    let api = served("api", "api,live", 8080);
    let projector = served("projector", "projector,sla", 9464);
    let mut cases: Vec<(&str, Process)> = Vec::new();
    // The shipped projector before ADR 0025: no probe, nothing scraped.
    let mut p = projector.clone();
    (p.readiness, p.liveness, p.scraped) = (None, None, None);
    cases.push(("no probes, not scraped", p));
    let mut p = projector.clone();
    p.liveness = None;
    cases.push(("no liveness probe", p));
    let mut p = projector.clone();
    p.scraped = None;
    cases.push(("probed but not scraped", p));
    let mut p = projector.clone();
    p.scraped = Some(8080);
    cases.push(("scraped on a port it does not serve", p));
    let mut p = projector.clone();
    p.readiness = Some(8080);
    cases.push(("probed on a port it does not serve", p));
    // PRECINCT_OPS_ADDR=off, or on loopback, in a projector: it serves nothing reachable.
    let off = BTreeMap::from([("PRECINCT_OPS_ADDR".to_string(), "off".to_string())]);
    let loopback = BTreeMap::from([(
        "PRECINCT_OPS_ADDR".to_string(),
        "127.0.0.1:9464".to_string(),
    )]);
    for env in [off, loopback] {
        let mut p = projector.clone();
        p.serves = served_ports(&p.roles, &env);
        cases.push(("operations listener off or on loopback", p));
    }
    for (what, p) in cases {
        assert!(
            caught(vec![api.clone(), p]),
            "a projector with {what} passed the check"
        );
    }
    // The binary's default: a projector serves its operations listener on 9464.
    assert_eq!(served_ports(&projector.roles, &BTreeMap::new()), vec![9464]);
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
