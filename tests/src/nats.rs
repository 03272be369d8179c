//! The shared NATS server, and private nats-server processes for fault tests.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// URL of the shared NATS server started by `make test`.
pub fn shared_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:14222".into())
}

/// Path of the pinned nats-server binary (>= 2.12; never Debian's 2.9).
pub fn nats_bin() -> anyhow::Result<PathBuf> {
    let path = match std::env::var("PRECINCT_NATS_BIN") {
        Ok(p) => PathBuf::from(p),
        Err(_) => crate::repo_root().join(".data/venv/bin/nats-server"),
    };
    if !path.exists() {
        bail!(
            "nats-server not found at {} (run `make stack` or set PRECINCT_NATS_BIN)",
            path.display()
        );
    }
    Ok(path)
}

/// A free TCP port on 127.0.0.1 (free when asked; nothing holds it afterwards).
pub fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A nats-server process owned by one test, with its own port and store directory,
/// running JetStream with `sync_interval: always`. Killed on drop.
pub struct PrivateNats {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
}

impl PrivateNats {
    pub fn start() -> anyhow::Result<Self> {
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!("precinct-nats-{}", crate::unique_prefix()));
        std::fs::create_dir_all(&dir)?;
        let conf = format!(
            "listen: 127.0.0.1:{port}\njetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n}}\n",
            dir.join("js").display()
        );
        std::fs::write(dir.join("nats.conf"), conf)?;
        let mut me = Self {
            child: None,
            port,
            dir,
        };
        me.spawn()?;
        Ok(me)
    }

    /// Where this server keeps its JetStream files.
    pub fn store_dir(&self) -> PathBuf {
        self.dir.join("js")
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's pid while it runs (for SIGSTOP/SIGCONT in fault tests).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let child = Command::new(nats_bin()?)
            .arg("-c")
            .arg(self.dir.join("nats.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawn nats-server")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("nats-server did not listen on {} within 10 s", self.port)
    }

    /// `kill -9`: no chance to flush anything.
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

    /// SIGTERM, and waits (bounded, 10 s) for the server to write what it holds and exit;
    /// `kill -9` if it does not.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut c) = self.child.take() else {
            return Ok(());
        };
        crate::chaos::procs::signal(c.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if c.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        bail!("nats-server did not stop within 10 s of SIGTERM")
    }

    /// Starts the server again on the same port and store (after `stop` or `kill`).
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.child.is_none(), "nats-server still runs");
        self.spawn()
    }

    /// Copies the store of a stopped server to `to` (a directory that does not exist).
    pub fn copy_store(&self, to: &std::path::Path) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.child.is_none(),
            "copy the store of a stopped server only"
        );
        copy_dir(&self.store_dir(), to)
    }

    /// Puts back, in place of this stopped server's store, a copy made by `copy_store`:
    /// the server comes back as it was then, as if it had lost everything since.
    pub fn restore_store(&self, from: &std::path::Path) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.child.is_none(),
            "restore the store of a stopped server only"
        );
        std::fs::remove_dir_all(self.store_dir())?;
        copy_dir(from, &self.store_dir())
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
