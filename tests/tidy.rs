//! Tidy: the rules of docs/ARCHITECTURE.md that a machine can check, so that the
//! document only states invariants that hold and names only files that exist. No
//! servers: it reads the workspace's manifests (through `cargo metadata`), its sources
//! and its documents.
//!
//! - Layers: the domain depends on nothing but a few pure crates (no runtime, database,
//!   broker, web framework or randomness) and reads no clock; async-nats is a
//!   dependency of the event log and the vault only; the API holds no SQL driver and
//!   does not reach into the projector workers; the application layer knows neither
//!   HTTP nor the read side; only the API, the binary and the bench know axum.
//! - Commands run in the application layer only; the read side never appends.
//! - Every source file opens with a `//!` line saying what it is.
//! - docs/ARCHITECTURE.md has a section per crate (and none for a crate that is gone),
//!   links every decision record, and every path it names exists.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The workspace root (this file is `tests/tidy.rs`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// One crate of the workspace.
struct Crate {
    /// Its folder, relative to the workspace root (`crates/precinct-api`, `tests`).
    dir: String,
    /// Its normal dependencies (not dev, not build), by crate name.
    deps: Vec<String>,
}

/// Every crate of the workspace, by name.
fn workspace() -> BTreeMap<String, Crate> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let workspace_root = PathBuf::from(meta["workspace_root"].as_str().expect("workspace_root"));
    let mut crates = BTreeMap::new();
    for package in meta["packages"].as_array().expect("packages") {
        let name = package["name"].as_str().expect("package name").to_string();
        let manifest = PathBuf::from(package["manifest_path"].as_str().expect("manifest_path"));
        let dir = manifest
            .parent()
            .and_then(|d| d.strip_prefix(&workspace_root).ok())
            .unwrap_or_else(|| panic!("{name} is outside the workspace root"))
            .to_string_lossy()
            .replace('\\', "/");
        let deps = package["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["kind"].is_null())
            .map(|d| d["name"].as_str().expect("dependency name").to_string())
            .collect();
        crates.insert(name, Crate { dir, deps });
    }
    crates
}

/// What the pure domain may depend on: data, errors, ids, geometry. A new dependency of
/// the domain is a decision: add it here only if it does no I/O, reads no clock and
/// draws no random numbers.
const DOMAIN_MAY_USE: &[&str] = &[
    "chrono",
    "geo",
    "serde",
    "serde_json",
    "thiserror",
    "unicode-properties",
    "uuid",
];

/// (crate, dependencies it must not have, why).
const FORBIDDEN: &[(&str, &[&str], &str)] = &[
    (
        "precinct-retry",
        &[
            "precinct-domain",
            "precinct-eventlog",
            "precinct-vault",
            "precinct-readmodel",
            "precinct-app",
            "precinct-projections",
            "precinct-api",
            "sqlx",
        ],
        "the back-off sits below every crate that retries",
    ),
    (
        "precinct-eventlog",
        &[
            "precinct-domain",
            "precinct-app",
            "precinct-readmodel",
            "precinct-projections",
            "sqlx",
            "axum",
        ],
        "the event log knows JetStream, not the domain, PostgreSQL or HTTP",
    ),
    (
        "precinct-vault",
        &["precinct-domain", "precinct-app", "sqlx", "axum"],
        "the vault seals what it is given; which fields are personal is the domain's",
    ),
    (
        "precinct-readmodel",
        &[
            "precinct-eventlog",
            "precinct-vault",
            "precinct-app",
            "precinct-projections",
            "axum",
        ],
        "the read models know PostgreSQL and the domain's values only, not NATS or HTTP",
    ),
    (
        "precinct-app",
        &[
            "precinct-readmodel",
            "precinct-projections",
            "precinct-api",
            "sqlx",
            "axum",
        ],
        "the application layer knows the log; read-model facts come through its ports",
    ),
    (
        "precinct-projections",
        &["precinct-app", "precinct-api", "axum"],
        "projectors write read models; they run no command and serve no HTTP",
    ),
    (
        "precinct-api",
        &["sqlx", "precinct-projections"],
        "the API reads through precinct-readmodel and writes through precinct-app",
    ),
];

/// Crates that may depend on async-nats: the event log, and the vault (its key-value
/// bucket). The e2e tests keep it as a dev-dependency, which this test does not see.
const MAY_KNOW_NATS: &[&str] = &["precinct-eventlog", "precinct-vault"];

/// Crates that may depend on axum: the API, the binary that serves it, and the bench
/// (its raw axum ceiling).
const MAY_KNOW_AXUM: &[&str] = &["precinct-api", "precinct", "precinct-bench"];

/// The normal dependencies of `krate` (which must be in the workspace: a rule about a
/// renamed crate fails rather than passing unchecked).
fn deps_of<'a>(crates: &'a BTreeMap<String, Crate>, krate: &str) -> &'a [String] {
    &crates
        .get(krate)
        .unwrap_or_else(|| panic!("no crate {krate} in the workspace"))
        .deps
}

#[test]
fn each_crate_depends_only_on_what_its_layer_allows() {
    let crates = workspace();
    let mut violations = Vec::new();
    for d in deps_of(&crates, "precinct-domain") {
        if !DOMAIN_MAY_USE.contains(&d.as_str()) {
            violations.push(format!(
                "precinct-domain depends on {d}: the domain is pure (no runtime, database, \
                 broker, web or randomness; see DOMAIN_MAY_USE)"
            ));
        }
    }
    for (krate, forbidden, why) in FORBIDDEN {
        for d in deps_of(&crates, krate) {
            if forbidden.contains(&d.as_str()) {
                violations.push(format!("{krate} depends on {d}: {why}"));
            }
        }
    }
    for (krate, c) in &crates {
        if !MAY_KNOW_NATS.contains(&krate.as_str()) && c.deps.iter().any(|d| d == "async-nats") {
            violations.push(format!(
                "{krate} depends on async-nats: only precinct-eventlog and precinct-vault know \
                 JetStream"
            ));
        }
        if !MAY_KNOW_AXUM.contains(&krate.as_str()) && c.deps.iter().any(|d| d == "axum") {
            violations.push(format!(
                "{krate} depends on axum: HTTP is the API's (and the binary's) business"
            ));
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

/// Every `.rs` file under `dir`, recursively (build output excluded).
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    dirs.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The lines of `file` that contain one of `patterns` outside a `//` comment, as
/// `path:line: text`.
fn code_lines_with(file: &Path, patterns: &[&str]) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let shown = file
        .strip_prefix(root())
        .unwrap_or(file)
        .display()
        .to_string();
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split("//").next().unwrap_or_default();
            patterns.iter().any(|p| code.contains(p))
        })
        .map(|(n, line)| format!("{shown}:{}: {}", n + 1, line.trim()))
        .collect()
}

#[test]
fn every_source_file_says_what_it_is_in_a_leading_doc_line() {
    let root = root();
    let mut files = rust_files(&root.join("crates"));
    files.extend(rust_files(&root.join("tests")));
    assert!(files.len() > 50, "found only {} source files", files.len());
    let missing: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            !text
                .lines()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.trim_start().starts_with("//!"))
        })
        .map(|f| f.strip_prefix(&root).unwrap_or(f).display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "source files without a leading `//!` line:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_domain_reads_no_clock_and_draws_no_random_numbers() {
    let files = rust_files(&root().join("crates/precinct-domain/src"));
    assert!(!files.is_empty(), "no domain sources found");
    let forbidden = [
        "Utc::now(",
        "Local::now(",
        "SystemTime::now(",
        "Instant::now(",
        "thread_rng(",
        "rand::",
        "OsRng",
        "Uuid::new_v4(",
    ];
    let found: Vec<String> = files
        .iter()
        .flat_map(|f| code_lines_with(f, &forbidden))
        .collect();
    assert!(
        found.is_empty(),
        "the domain must get times and ids inside commands:\n{}",
        found.join("\n")
    );
}

#[test]
fn commands_run_only_in_the_application_layer() {
    // A command's rules live in its file under crates/precinct-app/src/commands/: no
    // other crate (a route, a worker) runs a decision of its own. The e2e tests under
    // tests/ may, to stage races.
    let root = root();
    let app = root.join("crates/precinct-app");
    let files: Vec<PathBuf> = rust_files(&root.join("crates"))
        .into_iter()
        .filter(|f| !f.starts_with(&app))
        .collect();
    assert!(files.len() > 50, "found only {} source files", files.len());
    let found: Vec<String> = files
        .iter()
        .flat_map(|f| code_lines_with(f, &["run::<", "UnitOfWork"]))
        .collect();
    assert!(
        found.is_empty(),
        "commands run outside precinct-app (call a command of precinct_app::commands):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_read_side_never_appends_to_the_log() {
    let root = root();
    let mut files = rust_files(&root.join("crates/precinct-projections/src"));
    files.extend(rust_files(&root.join("crates/precinct-readmodel/src")));
    assert!(
        files.len() > 10,
        "found only {} read-side files",
        files.len()
    );
    let found: Vec<String> = files
        .iter()
        .flat_map(|f| {
            code_lines_with(
                f,
                &["append(", "append_multi(", "publish(", "RequestLogWriter"],
            )
        })
        .collect();
    assert!(
        found.is_empty(),
        "the read side writes to the log:\n{}",
        found.join("\n")
    );
}

fn architecture() -> String {
    std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).expect("docs/ARCHITECTURE.md")
}

/// The section heading of a crate in folder `dir`: "### `crates/<name>`", "### `tests/`".
fn heading_of(dir: &str) -> String {
    if dir.contains('/') {
        format!("### `{dir}`")
    } else {
        format!("### `{dir}/`")
    }
}

#[test]
fn every_crate_has_its_section_in_the_architecture_document() {
    let doc = architecture();
    let headings: Vec<&str> = doc.lines().map(str::trim_end).collect();
    let crates = workspace();
    let expected: Vec<String> = crates.values().map(|c| heading_of(&c.dir)).collect();
    let missing: Vec<&String> = expected
        .iter()
        .filter(|h| !headings.contains(&h.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "crates without their section in docs/ARCHITECTURE.md (a heading line of its own): \
         {missing:?}"
    );
    let stale: Vec<&&str> = headings
        .iter()
        .filter(|l| l.starts_with("### `crates/") && !expected.iter().any(|h| h == *l))
        .collect();
    assert!(
        stale.is_empty(),
        "sections of docs/ARCHITECTURE.md for crates that are not in the workspace: {stale:?}"
    );
}

#[test]
fn the_architecture_document_links_every_decision_record() {
    let doc = architecture();
    let mut adrs: Vec<String> = std::fs::read_dir(root().join("docs/adr"))
        .expect("docs/adr")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .collect();
    adrs.sort();
    assert!(adrs.len() >= 10, "only {} decision records", adrs.len());
    let unlinked: Vec<&String> = adrs
        .iter()
        .filter(|n| !doc.contains(&format!("](adr/{n})")))
        .collect();
    assert!(
        unlinked.is_empty(),
        "decision records not linked from docs/ARCHITECTURE.md: {unlinked:?}"
    );
}

/// The inline code spans of a Markdown text outside fenced blocks, each with the crate
/// folder of the `### ` section it is in (None outside a crate's section).
fn code_spans(doc: &str) -> Vec<(Option<String>, String)> {
    let mut spans = Vec::new();
    let mut section: Option<String> = None;
    let mut in_fence = false;
    let mut open: Option<String> = None;
    for line in doc.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        if open.is_none() && (line.starts_with("## ") || line.starts_with("### ")) {
            section = line
                .trim_end()
                .strip_prefix("### `")
                .and_then(|h| h.strip_suffix('`'))
                .filter(|h| h.starts_with("crates/") || *h == "tests/")
                .map(|h| h.trim_end_matches('/').to_string());
        }
        for ch in line.chars() {
            if ch == '`' {
                match open.take() {
                    Some(span) => spans.push((section.clone(), span)),
                    None => open = Some(String::new()),
                }
            } else if let Some(span) = open.as_mut() {
                span.push(ch);
            }
        }
        if let Some(span) = open.as_mut() {
            span.push('\n');
        }
    }
    spans
}

#[test]
fn every_path_the_architecture_document_names_exists() {
    let root = root();
    let doc = architecture();
    let mut checked = 0;
    let mut missing = Vec::new();
    for (section, span) in code_spans(&doc) {
        // A path: no spaces or placeholders, not a URL path (`/crimes/{id}`), not build
        // output. It is relative to the repository, or to the crate whose section it is in.
        let placeholder = |c: char| c.is_whitespace() || "<>*{}|:".contains(c);
        if !span.contains('/')
            || span.contains(placeholder)
            || span.starts_with('/')
            || span.starts_with("target/")
        {
            continue;
        }
        let bases: Vec<PathBuf> = std::iter::once(root.clone())
            .chain(section.iter().map(|dir| root.join(dir)))
            .collect();
        let first = span.split('/').next().unwrap_or_default();
        // Only what starts in a folder of the repository (or of the crate) is a path
        // here; `application/problem+json` is not.
        if !bases.iter().any(|b| b.join(first).exists()) {
            continue;
        }
        checked += 1;
        if !bases.iter().any(|b| b.join(&span).exists()) {
            missing.push(match &section {
                Some(dir) => format!("{span} (in the section of {dir})"),
                None => span,
            });
        }
    }
    assert!(checked > 50, "checked only {checked} paths");
    let mut links = 0;
    for piece in doc.split("](").skip(1) {
        let target = piece.split(')').next().unwrap_or_default();
        if target.contains("://") || target.starts_with('#') {
            continue;
        }
        links += 1;
        let file = target.split('#').next().unwrap_or_default();
        if !root.join("docs").join(file).exists() {
            missing.push(format!("link ({target})"));
        }
    }
    assert!(links >= 10, "found only {links} links");
    assert!(
        missing.is_empty(),
        "docs/ARCHITECTURE.md names paths that do not exist:\n{}",
        missing.join("\n")
    );
}
