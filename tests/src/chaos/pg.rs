//! A private PostgreSQL cluster for one campaign: `initdb` into a temporary directory,
//! served on a free loopback port, stopped in immediate mode and paused on demand.
//!
//! It never touches the shared server on 5432 nor any process it did not start. As root
//! the cluster runs as the `postgres` user through `runuser` (PostgreSQL refuses root),
//! as `deploy/local/stack.sh` does. Settings are PostgreSQL's defaults (fsync on,
//! synchronous commit on), as recommended for production in docs/operations.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::procs::signal;

/// Where the PostgreSQL 15 server binaries live (`PRECINCT_PG_BINDIR` overrides).
fn pg_bin_dir() -> PathBuf {
    std::env::var("PRECINCT_PG_BINDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/usr/lib/postgresql/15/bin"))
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// One PostgreSQL cluster owned by a campaign. Stopped (immediately) and deleted on drop.
pub struct PrivatePg {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    as_root: bool,
}

impl PrivatePg {
    /// `initdb` under `parent` and start the server on a free port.
    pub fn start(parent: &Path) -> anyhow::Result<Self> {
        let bin = pg_bin_dir();
        if !bin.join("initdb").exists() {
            bail!(
                "PostgreSQL 15 server binaries not found in {} (set PRECINCT_PG_BINDIR)",
                bin.display()
            );
        }
        let dir = parent.join("pg");
        std::fs::create_dir_all(&dir)?;
        let as_root = running_as_root();
        if as_root {
            run(Command::new("chown").arg("postgres:").arg(&dir))?;
        }
        let port = crate::nats::free_port()?;
        let me = Self {
            port,
            dir,
            bin,
            as_root,
        };
        me.pg(&["initdb"])
            .arg("-D")
            .arg(me.data())
            .args(["-U", "postgres", "--auth=trust", "--encoding=UTF8"])
            .args(["--no-locale", "--no-sync"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("initdb")?
            .success()
            .then_some(())
            .context("initdb failed")?;
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
             max_connections = 200\n",
            me.dir.display()
        );
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(me.data().join("postgresql.conf"))?;
        std::io::Write::write_all(&mut f, conf.as_bytes())?;
        me.restart()?;
        Ok(me)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A command running `tool` of the PostgreSQL binaries as the cluster owner.
    fn pg(&self, tool: &[&str]) -> Command {
        let exe = self.bin.join(tool[0]);
        let mut c = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        c.args(&tool[1..]).current_dir("/").stdin(Stdio::null());
        c
    }

    /// URL of database `db` on this cluster.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// `pg_ctl start` and wait until it accepts connections (bounded).
    pub fn restart(&self) -> anyhow::Result<()> {
        let ok = self
            .pg(&["pg_ctl", "-w", "-t", "60", "start"])
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("postgres.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("pg_ctl start")?
            .success();
        if !ok {
            bail!(
                "pg_ctl start failed (see {})",
                self.dir.join("postgres.log").display()
            );
        }
        wait_listening(self.port, Duration::from_secs(30))
    }

    /// `pg_ctl stop -m immediate`: every server process quits without a checkpoint, as
    /// in a crash; the next start runs crash recovery.
    pub fn stop_immediate(&self) -> anyhow::Result<()> {
        run(self
            .pg(&["pg_ctl", "-w", "-t", "30", "-m", "immediate", "stop"])
            .arg("-D")
            .arg(self.data()))
    }

    /// The postmaster and every backend: SIGSTOP (`true`) or SIGCONT (`false`).
    pub fn pause(&self, stop: bool) -> anyhow::Result<()> {
        let pids = self.server_pids()?;
        let sig = if stop { "STOP" } else { "CONT" };
        for pid in pids {
            signal(pid, sig);
        }
        Ok(())
    }

    /// The postmaster (from postmaster.pid) and its children.
    fn server_pids(&self) -> anyhow::Result<Vec<u32>> {
        let text = std::fs::read_to_string(self.data().join("postmaster.pid"))
            .context("postmaster.pid")?;
        let master: u32 = text
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .context("postmaster.pid without a pid")?;
        let mut pids = vec![master];
        let out = Command::new("pgrep")
            .arg("-P")
            .arg(master.to_string())
            .output()
            .context("pgrep")?;
        pids.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.trim().parse::<u32>().ok()),
        );
        Ok(pids)
    }

    /// Runs one SQL statement through `psql` (as the superuser, on database `postgres`).
    pub fn sql(&self, statement: &str) -> anyhow::Result<()> {
        run(Command::new(self.bin.join("psql"))
            .arg(self.url("postgres"))
            .args(["-XqAt", "-v", "ON_ERROR_STOP=1", "-c", statement]))
    }

    /// Runs one query through `psql` and answers its rows, one line each, columns
    /// separated by `|`.
    pub fn query(&self, statement: &str) -> anyhow::Result<String> {
        let out = Command::new(self.bin.join("psql"))
            .arg(self.url("postgres"))
            .args(["-XqAt", "-v", "ON_ERROR_STOP=1", "-c", statement])
            .stdin(Stdio::null())
            .output()
            .context("run psql")?;
        if !out.status.success() {
            bail!(
                "psql failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The directory kept for a post-mortem (`postgres.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = self.pause(false);
        let _ = self.stop_immediate();
    }
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
pub fn wait_listening(port: u16, bound: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    bail!("nothing listens on 127.0.0.1:{port} after {bound:?}")
}
