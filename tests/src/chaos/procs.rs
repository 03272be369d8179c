//! The real `precinct` binary as a child process (spawn, `kill -9`, SIGSTOP/SIGCONT,
//! restart with the same environment), and sending signals to processes we started.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};

/// `kill -<sig> <pid>`. Only ever called with pids of processes the campaign started.
pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The `precinct` binary: next to the running executable (`target/<profile>/deps/..`
/// for a test, `target/<profile>` for the chaos binary), else `PRECINCT_BIN`.
pub fn precinct_bin() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("current_exe")?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let sibling = dir.join("precinct");
    if sibling.is_file() {
        return Ok(sibling);
    }
    if let Ok(p) = std::env::var("PRECINCT_BIN") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!(
        "the precinct binary is neither at {} nor in PRECINCT_BIN; build it first \
         (`cargo build -p precinct`; `cargo nextest run --workspace` builds it too)",
        sibling.display()
    )
}

/// One `precinct serve --roles …` child. Killed (SIGKILL) on drop.
pub struct PrecinctProc {
    pub roles: String,
    bin: PathBuf,
    env: Vec<(String, String)>,
    /// The HTTP port (fixed across restarts so clients keep their base URL); None for
    /// a process without the api role.
    pub port: Option<u16>,
    log: PathBuf,
    child: Option<Child>,
}

impl PrecinctProc {
    /// Spawns and waits until it is ready (listening, for an API process).
    pub fn start(
        roles: &str,
        env: Vec<(String, String)>,
        port: Option<u16>,
        log: PathBuf,
    ) -> anyhow::Result<Self> {
        let mut me = Self {
            roles: roles.to_string(),
            bin: precinct_bin()?,
            env,
            port,
            log,
            child: None,
        };
        me.spawn()?;
        Ok(me)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut cmd = Command::new(&self.bin);
        cmd.args(["serve", "--roles", &self.roles])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        if let Some(p) = self.port {
            cmd.env("PRECINCT_HTTP_ADDR", format!("127.0.0.1:{p}"));
        }
        // Its PostgreSQL sessions carry its name, so the campaign can tell which
        // process holds which projection's advisory lock.
        if let Some((_, url)) = self.env.iter().find(|(k, _)| k == "DATABASE_URL") {
            let sep = if url.contains('?') { '&' } else { '?' };
            cmd.env(
                "DATABASE_URL",
                format!("{url}{sep}application_name={}", self.application_name()),
            );
        }
        self.child = Some(cmd.spawn().context("spawn precinct")?);
        match self.port {
            // It listens only once NATS, PostgreSQL, migrations and the admin are done.
            Some(p) => {
                if let Err(e) = super::pg::wait_listening(p, Duration::from_secs(60)) {
                    bail!(
                        "precinct {} did not start: {e} (log {})",
                        self.roles,
                        self.log.display()
                    );
                }
            }
            None => std::thread::sleep(Duration::from_millis(300)),
        }
        if let Some(status) = self.exited() {
            bail!(
                "precinct {} exited at start ({status}); log {}",
                self.roles,
                self.log.display()
            );
        }
        Ok(())
    }

    /// The `application_name` of its PostgreSQL sessions: `precinct-<roles>`, commas
    /// as dashes.
    pub fn application_name(&self) -> String {
        format!("precinct-{}", self.roles.replace(',', "-"))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `kill -9`, reaped.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn()
    }

    /// Some(status) when the process ended by itself.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(status))) => Some(status.to_string()),
            Some(Err(e)) => Some(e.to_string()),
            _ => None,
        }
    }

    /// SIGTERM and wait (bounded) for the graceful shutdown; then SIGKILL.
    pub fn stop(&mut self) {
        if let Some(pid) = self.pid() {
            signal(pid, "CONT");
            signal(pid, "TERM");
            for _ in 0..100 {
                if self.exited().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        self.kill();
    }
}

impl Drop for PrecinctProc {
    fn drop(&mut self) {
        self.kill();
    }
}
