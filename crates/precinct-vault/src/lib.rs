//! Precinct's vault: envelope encryption of personal data before it enters the
//! immutable log, and erasure by crypto-shredding.
//!
//! Each *data subject* (a reporter account, or one anonymous report) has its own random
//! 256-bit data key. Data keys are stored **wrapped** (AES-256-GCM) by a master key that
//! comes from configuration and carries a key id, in a JetStream KV bucket
//! (`PRECINCT_KEYS`). A personal field of an event is replaced by a *sealed* value
//! `{"sealed": "A256GCM", "subject": .., "key_ref": .., "nonce": .., "ct": ..}`.
//! Erasing a subject purges its data key: every sealed value of that subject becomes
//! unrecoverable while the log itself stays untouched. Rotating the master key re-wraps
//! every data key; the log is not rewritten.
//!
//! Only the purge (or delete) marker that erasure leaves in the bucket means *erased*.
//! A subject with no record at all is not erased: a sealed value names a key that was
//! written before the value was appended, so a missing key means the read was answered
//! by a replica that does not have it yet (direct gets are served by any replica of the
//! bucket's stream). Whatever does not open a value — no record, a marker, another key
//! generation — is therefore confirmed with the stream leader (`STREAM.MSG.GET`, as the
//! event log confirms its reads), and a key the leader does not have either is
//! [`VaultError::NoKey`], a transient error: readers retry, projections back off.
//!
//! What it is not: it does not know which fields are personal (the domain says, per
//! event type) nor who may read them (the API's views decide).
//!
//! Main types: [`Vault`], [`MasterKeys`], [`Opened`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_nats::jetstream::{self, kv};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The marker of a sealed value.
pub const SEALED: &str = "A256GCM";
/// How long a process trusts a cached data key before reading the bucket again. An
/// erasure in another process takes effect here within this time.
pub const CACHE_TTL: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("key store unavailable: {0}")]
    Store(String),
    #[error("master key {0:?} is not configured")]
    UnknownMasterKey(String),
    #[error("invalid master key configuration: {0}")]
    Config(String),
    #[error("crypto failure: {0}")]
    Crypto(String),
    /// The key store has no record of the subject's key (neither a key nor an erasure):
    /// not visible yet, or not written. Not an erasure; retry later.
    #[error("no data key for subject {0} in the key store (not erased); retry")]
    NoKey(Uuid),
}

impl VaultError {
    /// True when the same operation may succeed later (the key store is unreachable or
    /// does not show the key yet): readers should retry, not treat the value as erased.
    pub fn is_transient(&self) -> bool {
        matches!(self, VaultError::Store(_) | VaultError::NoKey(_))
    }
}

/// The master key in use and the previous ones (for reading keys wrapped before a
/// rotation). Never printed.
#[derive(Clone)]
pub struct MasterKeys {
    current_id: String,
    keys: HashMap<String, [u8; 32]>,
}

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKeys")
            .field("current_id", &self.current_id)
            .field("known", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn parse_key(spec: &str) -> Result<(String, [u8; 32]), VaultError> {
    let (id, hexkey) = spec
        .split_once(':')
        .ok_or_else(|| VaultError::Config("expected <key-id>:<64 hex digits>".into()))?;
    let bytes = hex::decode(hexkey.trim()).map_err(|e| VaultError::Config(e.to_string()))?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| VaultError::Config("a master key is 32 bytes (64 hex digits)".into()))?;
    if id.trim().is_empty() {
        return Err(VaultError::Config("empty key id".into()));
    }
    Ok((id.trim().to_string(), key))
}

impl MasterKeys {
    /// `current`: `<id>:<hex>`; `previous`: comma-separated `<id>:<hex>` (may be empty).
    pub fn parse(current: &str, previous: &str) -> Result<Self, VaultError> {
        let (current_id, key) = parse_key(current)?;
        let mut keys = HashMap::from([(current_id.clone(), key)]);
        for spec in previous.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (id, key) = parse_key(spec)?;
            keys.entry(id).or_insert(key);
        }
        Ok(Self { current_id, keys })
    }

    /// A random master key (tests, or a development process without configuration).
    pub fn random(id: &str) -> Self {
        let key: [u8; 32] = rand::random();
        Self {
            current_id: id.into(),
            keys: HashMap::from([(id.into(), key)]),
        }
    }

    pub fn current_id(&self) -> &str {
        &self.current_id
    }

    /// A new random current key `id`, keeping every known key as a previous one (what
    /// an operator does by setting a new PRECINCT_MASTER_KEY and moving the old one to
    /// PRECINCT_MASTER_KEYS_PREVIOUS).
    pub fn rotated(&self, id: &str) -> Self {
        let mut keys = self.keys.clone();
        keys.insert(id.into(), rand::random());
        Self {
            current_id: id.into(),
            keys,
        }
    }

    /// Only the current key (after a rotation, the previous ones can be retired).
    pub fn current_only(&self) -> Self {
        Self {
            current_id: self.current_id.clone(),
            keys: self
                .keys
                .iter()
                .filter(|(id, _)| **id == self.current_id)
                .map(|(id, k)| (id.clone(), *k))
                .collect(),
        }
    }

    fn cipher(&self, id: &str) -> Result<Aes256Gcm, VaultError> {
        let key = self
            .keys
            .get(id)
            .ok_or_else(|| VaultError::UnknownMasterKey(id.into()))?;
        Aes256Gcm::new_from_slice(key).map_err(|e| VaultError::Crypto(e.to_string()))
    }
}

/// A data key as stored: wrapped by master key `kid`.
#[derive(Debug, Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    /// Random id of this data key: a sealed value names the key it was sealed with, so a
    /// key created after an erasure never "opens" older values.
    key_ref: String,
    nonce: String,
    wrapped: String,
}

#[derive(Clone)]
struct DataKey {
    key_ref: String,
    key: [u8; 32],
}

/// A sealed value, as it sits in an event payload.
#[derive(Debug, Serialize, Deserialize)]
struct Sealed {
    sealed: String,
    subject: Uuid,
    key_ref: String,
    nonce: String,
    ct: String,
}

/// What the key store holds for a subject.
#[derive(Clone)]
enum KeyState {
    /// The subject's current data key.
    Live(DataKey),
    /// The last record is a purge or delete marker: the key was destroyed.
    Erased,
    /// No record at all.
    Absent,
}

/// The operation a KV record stands for, from its headers: a put unless it is a marker
/// (`KV-Operation: DEL|PURGE`, or a marker the server wrote itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Record {
    Put,
    Marker,
}

fn record_of(headers: &async_nats::HeaderMap) -> Record {
    match headers.get("KV-Operation").map(|v| v.as_str()) {
        Some("DEL") | Some("PURGE") => Record::Marker,
        Some(_) => Record::Put,
        None if headers.get("Nats-Marker-Reason").is_some() => Record::Marker,
        None => Record::Put,
    }
}

/// A cached lookup (only keys and erasures are cached: never an absence).
#[derive(Clone)]
struct Cached {
    state: KeyState,
    at: Instant,
}

type KeyCache = std::sync::Arc<Mutex<HashMap<Uuid, Cached>>>;

/// The result of opening a sealed value.
#[derive(Debug, Clone, PartialEq)]
pub enum Opened {
    Plain(Value),
    /// The subject's key was destroyed: the value is gone for good.
    Erased,
}

/// Seals and opens personal data. Cheap to clone.
#[derive(Clone)]
pub struct Vault {
    kv: kv::Store,
    master: MasterKeys,
    cache: KeyCache,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("master", &self.master)
            .finish()
    }
}

fn rand_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::Rng::fill(&mut rand::thread_rng(), &mut b[..]);
    b
}

impl Vault {
    /// Opens (creating if needed) the key bucket `bucket`, on the log's connection.
    pub async fn open(
        log: &precinct_eventlog::EventLog,
        bucket: &str,
        replicas: usize,
        master: MasterKeys,
    ) -> Result<Self, VaultError> {
        let kv = log
            .key_value(kv::Config {
                bucket: bucket.into(),
                description: "Precinct data keys (wrapped); purge = erasure".into(),
                history: 1,
                storage: jetstream::stream::StorageType::File,
                num_replicas: replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| VaultError::Store(e.to_string()))?;
        Ok(Self {
            kv,
            master,
            cache: Default::default(),
        })
    }

    fn cached(&self, subject: Uuid) -> Option<KeyState> {
        let cache = self.cache.lock().ok()?;
        cache
            .get(&subject)
            .filter(|c| c.at.elapsed() < CACHE_TTL)
            .map(|c| c.state.clone())
    }

    fn remember(&self, subject: Uuid, state: &KeyState) {
        if matches!(state, KeyState::Absent) {
            return;
        }
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() > 100_000 {
                cache.retain(|_, c| c.at.elapsed() < CACHE_TTL);
            }
            cache.insert(
                subject,
                Cached {
                    state: state.clone(),
                    at: Instant::now(),
                },
            );
        }
    }

    /// The subject's key state: from the cache, else a direct get (any replica), else —
    /// when that does not show a key — the stream leader. `.1`: the leader was asked.
    async fn load(&self, subject: Uuid) -> Result<(KeyState, bool), VaultError> {
        if let Some(k) = self.cached(subject) {
            return Ok((k, false));
        }
        let entry = self
            .kv
            .entry(subject.to_string())
            .await
            .map_err(|e| VaultError::Store(e.to_string()))?;
        match entry {
            Some(e) if e.operation == kv::Operation::Put => {
                let state = KeyState::Live(self.unwrap_key(&e.value)?);
                self.remember(subject, &state);
                Ok((state, false))
            }
            // A marker or nothing: a lagging replica may answer either for a key the
            // leader has. Only the leader's answer counts.
            _ => Ok((self.load_from_leader(subject).await?.0, true)),
        }
    }

    /// The subject's key state as the bucket stream's leader has it (`STREAM.MSG.GET`
    /// is answered by the leader only), with the record's revision (0: none).
    async fn load_from_leader(&self, subject: Uuid) -> Result<(KeyState, u64), VaultError> {
        let name = format!("{}{}", self.kv.prefix, subject);
        match self.kv.stream.get_last_raw_message_by_subject(&name).await {
            Ok(msg) => {
                let state = match record_of(&msg.headers) {
                    Record::Put => KeyState::Live(self.unwrap_key(&msg.payload)?),
                    Record::Marker => KeyState::Erased,
                };
                self.remember(subject, &state);
                Ok((state, msg.sequence))
            }
            Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => {
                Ok((KeyState::Absent, 0))
            }
            Err(e) => Err(VaultError::Store(e.to_string())),
        }
    }

    fn unwrap_key(&self, bytes: &[u8]) -> Result<DataKey, VaultError> {
        let stored: StoredKey =
            serde_json::from_slice(bytes).map_err(|e| VaultError::Crypto(e.to_string()))?;
        let cipher = self.master.cipher(&stored.kid)?;
        let nonce = B64
            .decode(&stored.nonce)
            .map_err(|e| VaultError::Crypto(e.to_string()))?;
        let wrapped = B64
            .decode(&stored.wrapped)
            .map_err(|e| VaultError::Crypto(e.to_string()))?;
        let plain = cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &wrapped,
                    aad: stored.key_ref.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Crypto("cannot unwrap a data key".into()))?;
        let key: [u8; 32] = plain
            .try_into()
            .map_err(|_| VaultError::Crypto("bad data key length".into()))?;
        Ok(DataKey {
            key_ref: stored.key_ref,
            key,
        })
    }

    fn wrap_key(&self, key: &DataKey) -> Result<Vec<u8>, VaultError> {
        let cipher = self.master.cipher(&self.master.current_id)?;
        let nonce = rand_bytes::<12>();
        let wrapped = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &key.key,
                    aad: key.key_ref.as_bytes(),
                },
            )
            .map_err(|e| VaultError::Crypto(e.to_string()))?;
        serde_json::to_vec(&StoredKey {
            kid: self.master.current_id.clone(),
            key_ref: key.key_ref.clone(),
            nonce: B64.encode(nonce),
            wrapped: B64.encode(wrapped),
        })
        .map_err(|e| VaultError::Crypto(e.to_string()))
    }

    /// The subject's data key, created on first use (concurrent creators agree: the KV
    /// `create` is compare-and-set, the loser reads the winner's key from the leader).
    /// After an erasure a new key (new `key_ref`) replaces the purge marker, also by
    /// compare-and-set.
    async fn key_for_sealing(&self, subject: Uuid) -> Result<DataKey, VaultError> {
        if let (KeyState::Live(k), _) = self.load(subject).await? {
            return Ok(k);
        }
        let key = DataKey {
            key_ref: hex::encode(rand_bytes::<8>()),
            key: rand_bytes::<32>(),
        };
        let bytes = self.wrap_key(&key)?;
        if self
            .kv
            .create(subject.to_string(), bytes.clone().into())
            .await
            .is_ok()
        {
            self.remember(subject, &KeyState::Live(key.clone()));
            return Ok(key);
        }
        // Someone else created it first, or there is a marker `create` did not see (its
        // fallback read may be answered by a lagging replica): ask the leader.
        self.forget(subject);
        match self.load_from_leader(subject).await? {
            (KeyState::Live(k), _) => Ok(k),
            (KeyState::Erased, revision) => {
                match self
                    .kv
                    .update(subject.to_string(), bytes.into(), revision)
                    .await
                {
                    Ok(_) => {
                        self.remember(subject, &KeyState::Live(key.clone()));
                        Ok(key)
                    }
                    // A concurrent creator replaced the marker first.
                    Err(e) => match self.load_from_leader(subject).await? {
                        (KeyState::Live(k), _) => Ok(k),
                        _ => Err(VaultError::Store(format!("cannot create a data key: {e}"))),
                    },
                }
            }
            (KeyState::Absent, _) => Err(VaultError::Store(
                "cannot create a data key: the key store refused it".into(),
            )),
        }
    }

    fn forget(&self, subject: Uuid) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(&subject);
        }
    }

    /// Seals `value` for `subject`.
    pub async fn seal(&self, subject: Uuid, value: &Value) -> Result<Value, VaultError> {
        let key = self.key_for_sealing(subject).await?;
        Self::seal_with(subject, key, value)
    }

    /// Seals `value` for `subject` with the data key it has now, never creating one:
    /// `None` when the subject has no live key (erased, or none yet). For copies of
    /// values the subject's key already sealed (a report's snapshots, ADR 0022): once
    /// the key is destroyed they must not be sealed again under a new one.
    pub async fn seal_existing(
        &self,
        subject: Uuid,
        value: &Value,
    ) -> Result<Option<Value>, VaultError> {
        match self.load(subject).await? {
            (KeyState::Live(key), _) => Self::seal_with(subject, key, value).map(Some),
            _ => Ok(None),
        }
    }

    fn seal_with(subject: Uuid, key: DataKey, value: &Value) -> Result<Value, VaultError> {
        let cipher =
            Aes256Gcm::new_from_slice(&key.key).map_err(|e| VaultError::Crypto(e.to_string()))?;
        let nonce = rand_bytes::<12>();
        let plain = serde_json::to_vec(value).map_err(|e| VaultError::Crypto(e.to_string()))?;
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: subject.as_bytes(),
                },
            )
            .map_err(|e| VaultError::Crypto(e.to_string()))?;
        serde_json::to_value(Sealed {
            sealed: SEALED.into(),
            subject,
            key_ref: key.key_ref,
            nonce: B64.encode(nonce),
            ct: B64.encode(ct),
        })
        .map_err(|e| VaultError::Crypto(e.to_string()))
    }

    /// Is this JSON value a sealed one?
    pub fn is_sealed(value: &Value) -> bool {
        value.get("sealed").and_then(Value::as_str) == Some(SEALED)
    }

    /// Opens a sealed value (an unsealed value is returned as it is).
    pub async fn open_value(&self, value: &Value) -> Result<Opened, VaultError> {
        if !Self::is_sealed(value) {
            return Ok(Opened::Plain(value.clone()));
        }
        let sealed: Sealed =
            serde_json::from_value(value.clone()).map_err(|e| VaultError::Crypto(e.to_string()))?;
        let state = match self.load(sealed.subject).await? {
            (KeyState::Live(k), _) if k.key_ref == sealed.key_ref => KeyState::Live(k),
            (state, true) => state,
            // Not the key that sealed the value, or an erasure, known from the cache: the
            // value may predate an erasure (a newer key replaced the marker) or the cache
            // may be behind a key created after one. The leader decides.
            (_, false) => self.load_from_leader(sealed.subject).await?.0,
        };
        let key = match state {
            KeyState::Live(k) if k.key_ref == sealed.key_ref => k,
            // Another generation of the subject's key: this value's key was destroyed.
            KeyState::Live(_) => return Ok(Opened::Erased),
            // Only a marker (confirmed by the leader) means erased.
            KeyState::Erased => return Ok(Opened::Erased),
            KeyState::Absent => return Err(VaultError::NoKey(sealed.subject)),
        };
        let cipher =
            Aes256Gcm::new_from_slice(&key.key).map_err(|e| VaultError::Crypto(e.to_string()))?;
        let nonce = B64
            .decode(&sealed.nonce)
            .map_err(|e| VaultError::Crypto(e.to_string()))?;
        let ct = B64
            .decode(&sealed.ct)
            .map_err(|e| VaultError::Crypto(e.to_string()))?;
        let plain = cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ct,
                    aad: sealed.subject.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Crypto("sealed value does not authenticate".into()))?;
        serde_json::from_slice(&plain)
            .map(Opened::Plain)
            .map_err(|e| VaultError::Crypto(e.to_string()))
    }

    /// HMAC-SHA256 of `input` under the data key of `key_subject` (created on first use,
    /// like any subject's key; never erased by the API, since it is nobody's subject).
    /// For lookup ids derived from personal data (an e-mail's reservation stream): they
    /// cannot be recomputed from the log alone, and master-key rotation does not change
    /// them (it re-wraps the same data key).
    pub async fn keyed_digest(
        &self,
        key_subject: Uuid,
        input: &[u8],
    ) -> Result<[u8; 32], VaultError> {
        use hmac::{Hmac, Mac};
        let key = self.key_for_sealing(key_subject).await?;
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key.key)
            .map_err(|e| VaultError::Crypto(e.to_string()))?;
        mac.update(input);
        Ok(mac.finalize().into_bytes().into())
    }

    /// Destroys the subject's data key. Idempotent.
    pub async fn erase(&self, subject: Uuid) -> Result<(), VaultError> {
        self.kv
            .purge(subject.to_string())
            .await
            .map_err(|e| VaultError::Store(e.to_string()))?;
        self.remember(subject, &KeyState::Erased);
        Ok(())
    }

    /// Does the subject still have a data key?
    pub async fn has_key(&self, subject: Uuid) -> Result<bool, VaultError> {
        self.forget(subject);
        Ok(matches!(self.load(subject).await?.0, KeyState::Live(_)))
    }

    /// Re-wraps every data key with the current master key; returns how many changed.
    /// The log is not touched.
    pub async fn rotate(&self) -> Result<usize, VaultError> {
        let mut keys = self
            .kv
            .keys()
            .await
            .map_err(|e| VaultError::Store(e.to_string()))?;
        let mut names = Vec::new();
        while let Some(k) = keys.next().await {
            names.push(k.map_err(|e| VaultError::Store(e.to_string()))?);
        }
        let mut changed = 0;
        for name in names {
            let Some(entry) = self
                .kv
                .entry(name.clone())
                .await
                .map_err(|e| VaultError::Store(e.to_string()))?
            else {
                continue;
            };
            if entry.operation != kv::Operation::Put {
                continue;
            }
            let stored: StoredKey = serde_json::from_slice(&entry.value)
                .map_err(|e| VaultError::Crypto(e.to_string()))?;
            if stored.kid == self.master.current_id {
                continue;
            }
            let key = self.unwrap_key(&entry.value)?;
            let bytes = self.wrap_key(&key)?;
            self.kv
                .update(name, bytes.into(), entry.revision)
                .await
                .map_err(|e| VaultError::Store(e.to_string()))?;
            changed += 1;
        }
        Ok(changed)
    }
}

/// Every read of the log opens sealed top-level fields; an erased one reads as `null`.
impl precinct_eventlog::Opener for Vault {
    fn open<'a>(
        &'a self,
        data: &'a mut Value,
    ) -> futures::future::BoxFuture<'a, Result<(), precinct_eventlog::ReadError>> {
        Box::pin(async move {
            let Some(fields) = data.as_object_mut() else {
                return Ok(());
            };
            for value in fields.values_mut() {
                if !Self::is_sealed(value) {
                    continue;
                }
                // A key store that cannot be read, or that does not show the key yet, is a
                // read failure to retry (a projector backs off and reads again), never an
                // erasure. A value that does not authenticate is treated like an erased
                // one: the data is unreadable either way, and a projection must not stop
                // on it.
                let opened = match self.open_value(value).await {
                    Ok(o) => o,
                    Err(e) if e.is_transient() => {
                        return Err(precinct_eventlog::ReadError::Transport(e.to_string()))
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "sealed value unreadable; treated as erased");
                        Opened::Erased
                    }
                };
                *value = match opened {
                    Opened::Plain(v) => v,
                    Opened::Erased => Value::Null,
                };
            }
            Ok(())
        })
    }
}

/// An [`Opener`](precinct_eventlog::Opener) for readers that never need personal data:
/// every sealed top-level field reads as `null` (as if erased) without touching the key
/// store. The account view uses it to follow accounts without one key lookup per
/// account.
#[derive(Debug, Clone, Copy, Default)]
pub struct Redacted;

impl precinct_eventlog::Opener for Redacted {
    fn open<'a>(
        &'a self,
        data: &'a mut Value,
    ) -> futures::future::BoxFuture<'a, Result<(), precinct_eventlog::ReadError>> {
        Box::pin(async move {
            if let Some(fields) = data.as_object_mut() {
                for value in fields.values_mut() {
                    if Vault::is_sealed(value) {
                        *value = Value::Null;
                    }
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_keys_parse_and_refuse_bad_input() {
        let k = "k1:".to_string() + &"ab".repeat(32);
        let old = "k0:".to_string() + &"cd".repeat(32);
        let m = MasterKeys::parse(&k, &old).expect("parse");
        assert_eq!(m.current_id(), "k1");
        assert!(m.cipher("k0").is_ok());
        assert!(matches!(
            m.cipher("k9"),
            Err(VaultError::UnknownMasterKey(_))
        ));
        assert!(MasterKeys::parse("k1:abcd", "").is_err());
        assert!(MasterKeys::parse("nohex", "").is_err());
        assert!(!format!("{m:?}").contains("abab"));
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> async_nats::HeaderMap {
        let mut h = async_nats::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, *v);
        }
        h
    }

    #[test]
    fn only_a_delete_or_purge_marker_is_an_erasure_record() {
        assert_eq!(record_of(&headers(&[])), Record::Put);
        assert_eq!(
            record_of(&headers(&[
                ("KV-Operation", "PURGE"),
                ("Nats-Rollup", "sub")
            ])),
            Record::Marker
        );
        assert_eq!(
            record_of(&headers(&[("KV-Operation", "DEL")])),
            Record::Marker
        );
        assert_eq!(
            record_of(&headers(&[("Nats-Marker-Reason", "Purge")])),
            Record::Marker
        );
    }

    #[tokio::test]
    async fn redacted_reads_sealed_fields_as_null_and_keeps_the_rest() {
        use precinct_eventlog::Opener;
        let mut data = serde_json::json!({
            "email": {"sealed": SEALED, "subject": Uuid::nil(), "key_ref": "k", "nonce": "n", "ct": "c"},
            "name": "clear (an old event)",
            "role": "CITIZEN",
            "nested": {"sealed": "something else"},
        });
        Redacted.open(&mut data).await.expect("never fails");
        assert_eq!(
            data,
            serde_json::json!({
                "email": null,
                "name": "clear (an old event)",
                "role": "CITIZEN",
                "nested": {"sealed": "something else"},
            })
        );
    }

    #[test]
    fn a_missing_key_is_transient_not_an_erasure() {
        assert!(VaultError::NoKey(Uuid::nil()).is_transient());
        assert!(VaultError::Store("no responders".into()).is_transient());
        assert!(!VaultError::Crypto("bad tag".into()).is_transient());
        assert!(!VaultError::UnknownMasterKey("k0".into()).is_transient());
    }
}
