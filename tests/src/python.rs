//! The Python the e2e tests run independent implementations with (Standard Webhooks,
//! Web Push decryption, the SMTP sink): the venv `deploy/local/stack.sh` fills.

use std::path::PathBuf;

/// `PRECINCT_TEST_PYTHON`, else the `python` beside `PRECINCT_NATS_BIN` (the same
/// venv), else the checkout's `.data/venv`.
pub fn venv_python() -> PathBuf {
    if let Ok(p) = std::env::var("PRECINCT_TEST_PYTHON") {
        return p.into();
    }
    if let Ok(nats) = std::env::var("PRECINCT_NATS_BIN") {
        let p = PathBuf::from(nats).with_file_name("python");
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.data/venv/bin/python")
}

/// One signed message: (body, `webhook-id`, `webhook-timestamp`, `webhook-signature`).
pub type Signed<'a> = (&'a str, &'a str, &'a str, &'a str);

/// Runs the script `tests/<script>` with `input` as JSON on stdin; its JSON answer.
/// `package` names what the script needs, for the message when it cannot run.
pub fn run_json(script: &str, input: &serde_json::Value, package: &str) -> serde_json::Value {
    use std::io::Write;
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(script);
    let mut child = std::process::Command::new(venv_python())
        .arg(&path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} (make test's set-up installs {package}: \
                 bash deploy/local/stack.sh up): {e}",
                venv_python().display()
            )
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect(script);
    assert!(
        out.status.success(),
        "{script} failed (is {package} installed? bash deploy/local/stack.sh up): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script answers JSON")
}

/// Verifies `messages` under `secret` with the `standardwebhooks` package
/// (tests/webhooks/verify.py), independent of Precinct's signing code: one answer each.
pub fn standard_webhooks_verify(secret: &str, messages: &[Signed<'_>]) -> Vec<bool> {
    let input = serde_json::json!({
        "secret": secret,
        "messages": messages.iter().map(|(body, id, timestamp, signature)| serde_json::json!({
            "body": body,
            "headers": {"webhook-id": id, "webhook-timestamp": timestamp,
                "webhook-signature": signature},
        })).collect::<Vec<_>>(),
    });
    run_json("webhooks/verify.py", &input, "standardwebhooks")["valid"]
        .as_array()
        .expect("valid")
        .iter()
        .map(|v| v.as_bool().expect("bool"))
        .collect()
}
