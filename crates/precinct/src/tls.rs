//! HTTPS without a proxy: a [`TlsListener`] that axum serves like a TCP listener
//! (rustls with the ring provider; no OpenSSL), HTTP/2 and HTTP/1.1 by ALPN.
//!
//! Handshakes run in their own tasks, so a client that opens a connection and says
//! nothing never holds up the accept loop or anyone else's handshake. Each is bounded
//! in time ([`HandshakeLimits::timeout`]), one client address (an IPv6 one by its /64)
//! has at most [`HandshakeLimits::per_address`] under way — further connections from
//! it are closed at once — and the process at most [`MAX_HANDSHAKES`]. So idle
//! connections from one address can no longer take every handshake slot and lock every
//! other client out (review of issue 13, N4): filling them needs
//! `MAX_HANDSHAKES / per_address` addresses, each renewing its connections every
//! `timeout`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;

/// Handshakes in progress at once in the process; more connections wait in the
/// kernel's backlog.
pub const MAX_HANDSHAKES: usize = 256;

/// How long a handshake may take, and how many one client address may have under way
/// (`PRECINCT_TLS_HANDSHAKE_TIMEOUT_SECS`, `PRECINCT_TLS_HANDSHAKES_PER_ADDRESS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeLimits {
    /// A handshake that takes longer is dropped (default 5 s: a TLS 1.3 handshake is
    /// one round trip, 1.2 two; even a poor mobile link needs well under a second).
    pub timeout: Duration,
    /// Handshakes one client address (IPv6: its /64) may have under way; connections
    /// beyond them are closed at once (default 8: a browser opens at most 6 to a host).
    pub per_address: usize,
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            per_address: 8,
        }
    }
}

/// Reads the certificate chain and key (PEM) into a server configuration: TLS 1.2 and
/// 1.3 with rustls' safe defaults, ALPN `h2` and `http/1.1` (axum serves both: its
/// `http2` feature is on in the workspace, and a test runs the binary built alone).
pub fn server_config(files: &TlsFiles) -> anyhow::Result<Arc<ServerConfig>> {
    let certs = read_certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).with_context(|| {
        format!(
            "PRECINCT_TLS_KEY: no private key in {}",
            files.key.display()
        )
    })?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("PRECINCT_TLS_CERT and PRECINCT_TLS_KEY do not make a usable pair")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("PRECINCT_TLS_CERT: cannot read {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("PRECINCT_TLS_CERT: bad PEM in {}", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "PRECINCT_TLS_CERT: no certificate in {}",
        path.display()
    );
    Ok(certs)
}

/// TLS connections, handshake done, with their peer address.
pub struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("local", &self.local)
            .finish()
    }
}

/// Handshakes under way per client address key.
#[derive(Debug)]
struct AddressSlots {
    max: usize,
    taken: Mutex<HashMap<String, usize>>,
}

/// One handshake's place in its address's count, given back on drop.
struct AddressSlot {
    slots: Arc<AddressSlots>,
    key: String,
}

impl AddressSlots {
    fn take(self: &Arc<Self>, key: String) -> Option<AddressSlot> {
        let mut taken = self.taken.lock().ok()?;
        let n = taken.entry(key.clone()).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            slots: self.clone(),
            key,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Ok(mut taken) = self.slots.taken.lock() {
            if let Some(n) = taken.get_mut(&self.key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    taken.remove(&self.key);
                }
            }
        }
    }
}

impl TlsListener {
    /// Starts accepting on `tcp`; the accept task ends when the listener is dropped.
    pub fn new(
        tcp: TcpListener,
        config: Arc<ServerConfig>,
        limits: HandshakeLimits,
    ) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, accepted) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        let per_address = Arc::new(AddressSlots {
            max: limits.per_address.max(1),
            taken: Mutex::new(HashMap::new()),
        });
        tokio::spawn(async move {
            loop {
                let Ok(permit) = handshakes.clone().acquire_owned().await else {
                    return;
                };
                let (tcp_stream, peer) = tokio::select! {
                    _ = tx.closed() => return,
                    accepted = tcp.accept() => match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of file descriptors and the like: wait, do not spin.
                            tracing::warn!(error = %e, "TLS listener: accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                let key = precinct_api::throttle::addr_key(Some(peer.ip()));
                let Some(slot) = per_address.take(key) else {
                    // This address has its share of handshakes under way: closed at once
                    // (dropping the stream), and its global slot freed.
                    tracing::debug!(%peer, "TLS handshake refused: too many from this address");
                    continue;
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    // The handshake's places, held until it is done.
                    let places = (permit, slot);
                    match tokio::time::timeout(limits.timeout, acceptor.accept(tcp_stream)).await {
                        Ok(Ok(tls)) => {
                            drop(places);
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { accepted, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(conn) => conn,
            // The accept task only stops when this listener is dropped, or on a
            // semaphore that is never closed: wait for shutdown.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_share_of_handshakes() {
        let slots = Arc::new(AddressSlots {
            max: 2,
            taken: Mutex::new(HashMap::new()),
        });
        let a = slots.take("198.51.100.7".into()).expect("first");
        let _b = slots.take("198.51.100.7".into()).expect("second");
        assert!(slots.take("198.51.100.7".into()).is_none());
        assert!(slots.take("198.51.100.8".into()).is_some(), "per address");
        drop(a);
        assert!(slots.take("198.51.100.7".into()).is_some(), "given back");
    }
}
