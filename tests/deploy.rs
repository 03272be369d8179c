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
