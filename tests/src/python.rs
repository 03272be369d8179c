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
