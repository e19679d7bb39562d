//! `Idempotency-Key`: the answer of a keyed write is stored in the write's own transaction
//! and replayed, byte for byte, to every retry of the same request.
//!
//! A write claims its key before anything else (see [`super::begin_write`]):
//! - in this process, an in-flight set refuses a twin at once (409 `idempotency-key-in-use`);
//!   on SQLite, whose writers are serialised in one process, that is the whole story;
//! - on PostgreSQL, `pg_try_advisory_xact_lock` on a hash of (scope, key) does the same
//!   across every instance sharing the database, for as long as the transaction runs;
//! - then the committed row decides: the same request hash replays the stored answer, another
//!   one is 422 `idempotency-key-reused`, none lets the write run.
//!
//! Just before commit the rendered answer is inserted ([`super::commit_or_rollback`]). A write
//! that fails rolls back and stores nothing, so its retry runs again. Answers that carry
//! credentials (tokens) are sealed with AES-256-GCM under a key derived from `JWT_SECRET`.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use sha2::{Digest, Sha256};

use super::{Error, Result};
use crate::{
    entity::idempotency_key,
    repository::{self, idempotency_keys::NewKey},
    time::now,
};

/// The scope of requests made without a bearer token (sign-up, login, refresh, logout).
pub const ANONYMOUS: &str = "anonymous";
/// The longest key accepted.
pub const MAX_KEY_LENGTH: usize = 255;
/// Headers stored with an answer and replayed with it; every other header is the server's
/// own for each answer (request id, CORS, caching).
const REPLAYED_HEADERS: &[&str] = &[
    "content-type",
    "location",
    "etag",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
];
/// HKDF label of the key that seals stored answers; a new label would make a new key.
const SEAL_LABEL: &[u8] = b"event-manager idempotency-key answers v1";
/// Bytes of an AES-GCM nonce, stored in front of the ciphertext.
const NONCE_BYTES: usize = 12;
/// Rows the sweep deletes per statement.
const SWEEP_BATCH: u64 = 1000;

/// Whether `key` is a valid `Idempotency-Key`: 1 to 255 visible ASCII characters.
pub fn is_valid_key(key: &str) -> bool {
    (1..=MAX_KEY_LENGTH).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

/// Lower-case hex SHA-256 of `method`, `"\n"`, the path with its query, `"\n"`, the body: what
/// tells a retry from another request under the same key.
pub fn request_hash(method: &str, path_and_query: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b"\n");
    hasher.update(path_and_query.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key of one request: its scope (the caller's id or [`ANONYMOUS`]), the key, and the
/// hash of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    /// The caller's user id, or `anonymous`.
    pub scope: String,
    /// The key as sent.
    pub key: String,
    /// [`request_hash`] of the request.
    pub request_hash: String,
}

/// An answer as it goes on the wire: what is stored and replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// HTTP status.
    pub status: u16,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// The exact body bytes.
    pub body: Vec<u8>,
}

impl Rendered {
    fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Renders a write's result as its answer (supplied by the router: services know no HTTP).
pub type Render<T> = dyn Fn(&T) -> Rendered + Send + Sync;

/// A write asked to be idempotent: its key and how its result becomes its answer.
pub struct Keyed<'r, T> {
    /// The request's key.
    pub key: RequestKey,
    /// Renders the result before commit, so that exactly those bytes are stored and sent.
    pub render: &'r Render<T>,
    /// Whether the answer carries credentials and is stored sealed.
    pub sealed: bool,
}

/// What a keyed (or plain) write answers.
#[derive(Debug)]
pub enum Written<T> {
    /// The write ran and committed; `stored` is its answer when it carried a key.
    Fresh {
        /// The result.
        value: T,
        /// The answer stored for the key (to be sent as it is).
        stored: Option<Rendered>,
    },
    /// An earlier request with the same key and request committed this answer; nothing ran.
    Replayed(Rendered),
}

impl<T> Written<T> {
    /// A plain result, written without a key.
    pub fn plain(value: T) -> Self {
        Written::Fresh {
            value,
            stored: None,
        }
    }

    /// The same answer over another result type.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Written<U> {
        match self {
            Written::Fresh { value, stored } => Written::Fresh {
                value: f(value),
                stored,
            },
            Written::Replayed(answer) => Written::Replayed(answer),
        }
    }

    /// The result, unless this is a replay.
    pub fn value(&self) -> Option<&T> {
        match self {
            Written::Fresh { value, .. } => Some(value),
            Written::Replayed(_) => None,
        }
    }
}

/// Stored answers: claims, lookups, sealing and the sweep. Cheap to clone.
#[derive(Clone)]
pub struct Idempotency {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    /// Keys whose request runs in this process now.
    in_flight: Mutex<HashSet<(String, String)>>,
    ttl: chrono::Duration,
    cipher: Aes256Gcm,
}

impl Idempotency {
    /// Answers kept `ttl_seconds`; sealed under a key derived from `secret` (`JWT_SECRET`).
    pub fn new(db: DatabaseConnection, ttl_seconds: u64, secret: &[u8]) -> Self {
        let mut key = [0u8; 32];
        hkdf::Hkdf::<Sha256>::new(None, secret)
            .expand(SEAL_LABEL, &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let ttl = chrono::Duration::seconds(i64::try_from(ttl_seconds).unwrap_or(i64::MAX / 1000));
        Self {
            inner: Arc::new(Inner {
                db,
                in_flight: Mutex::new(HashSet::new()),
                ttl,
                cipher: Aes256Gcm::new(&key.into()),
            }),
        }
    }

    /// Claims `keyed` in this process for the whole service call: a second request with the
    /// same key while this one runs gets 409. Without a key, claims nothing.
    pub fn claim<'r, T>(&self, keyed: Option<Keyed<'r, T>>) -> Result<Claim<'r, T>> {
        let Some(keyed) = keyed else {
            return Ok(Claim::none());
        };
        let entry = (keyed.key.scope.clone(), keyed.key.key.clone());
        let fresh = self
            .inner
            .in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(entry);
        if !fresh {
            return Err(Error::IdempotencyKeyInUse);
        }
        Ok(Claim {
            held: Some(Held {
                keyed,
                store: self.clone(),
            }),
        })
    }

    /// Deletes the expired keys, in batches; returns how many went.
    pub async fn sweep(&self) -> Result<u64> {
        let now = now();
        let mut total = 0;
        loop {
            let deleted =
                repository::idempotency_keys::delete_expired(&self.inner.db, now, SWEEP_BATCH)
                    .await?;
            total += deleted;
            if deleted < SWEEP_BATCH {
                return Ok(total);
            }
        }
    }

    fn release(&self, key: &RequestKey) {
        self.inner
            .in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&(key.scope.clone(), key.key.clone()));
    }

    fn seal(&self, key: &RequestKey, body: &[u8]) -> Result<Vec<u8>> {
        let nonce: [u8; NONCE_BYTES] = rand::random();
        let aad = associated_data(key);
        let sealed = self
            .inner
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .map_err(|_| anyhow::anyhow!("sealing a stored answer failed"))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    fn open(&self, key: &RequestKey, stored: &[u8]) -> Result<Vec<u8>> {
        if stored.len() < NONCE_BYTES {
            return Err(anyhow::anyhow!("a sealed stored answer is too short").into());
        }
        let (nonce, sealed) = stored.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(anyhow::Error::from)?;
        let aad = associated_data(key);
        self.inner
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| {
                // Sealed under another JWT_SECRET: its tokens would be refused anyway.
                anyhow::anyhow!("a sealed stored answer cannot be opened (JWT_SECRET changed?)")
                    .into()
            })
    }
}

/// Binds a sealed body to its row: it cannot be opened as another key's answer.
fn associated_data(key: &RequestKey) -> Vec<u8> {
    format!("{}\n{}", key.scope, key.key).into_bytes()
}

/// The advisory lock of a key: the first 8 bytes of a SHA-256 of its scope and key.
fn lock_id(key: &RequestKey) -> i64 {
    let digest = Sha256::digest(format!("idempotency-key\n{}\n{}", key.scope, key.key));
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// A service call's hold on its key (nothing without a key). Released when dropped, after
/// the call's transaction has committed or rolled back.
pub struct Claim<'r, T> {
    held: Option<Held<'r, T>>,
}

struct Held<'r, T> {
    keyed: Keyed<'r, T>,
    store: Idempotency,
}

impl<T> Drop for Claim<'_, T> {
    fn drop(&mut self) {
        if let Some(held) = &self.held {
            held.store.release(&held.keyed.key);
        }
    }
}

impl<'r, T> Claim<'r, T> {
    /// No key: the write runs and stores nothing (background writes, `create-admin`).
    pub fn none() -> Self {
        Self { held: None }
    }

    /// A committed answer for this key, read without the lock: replayed (or 422) before a
    /// service spends work (a password hash) on a request that will not run. The lookup in
    /// the transaction still decides.
    pub async fn stored(&self) -> Result<Option<Written<T>>> {
        let Some(held) = &self.held else {
            return Ok(None);
        };
        let row = repository::idempotency_keys::find(
            &held.store.inner.db,
            &held.keyed.key.scope,
            &held.keyed.key.key,
        )
        .await?;
        Ok(held.judge(row)?.map(Written::Replayed))
    }

    /// `result`, unless it is an error and an answer for this key was committed meanwhile.
    /// Work a service does before its transaction (an email check, a version check) can be
    /// refused because a twin on another instance committed in between: the twin's answer
    /// is the answer of this retry.
    pub async fn unless_stored(&self, result: Result<Written<T>>) -> Result<Written<T>> {
        match result {
            Err(e) if self.held.is_some() => match self.stored().await? {
                Some(answer) => Ok(answer),
                None => Err(e),
            },
            other => other,
        }
    }

    /// First thing in a write transaction: takes the key across instances and looks up its
    /// answer. `Some` is the answer to replay (the caller rolls back).
    pub(super) async fn enter(&self, txn: &impl ConnectionTrait) -> Result<Option<Rendered>> {
        let Some(held) = &self.held else {
            return Ok(None);
        };
        let key = &held.keyed.key;
        if !repository::idempotency_keys::try_lock(txn, lock_id(key)).await? {
            return Err(Error::IdempotencyKeyInUse);
        }
        let row = repository::idempotency_keys::find(txn, &key.scope, &key.key).await?;
        if row
            .as_ref()
            .is_some_and(|r| r.expires_at <= now() || held.unreadable(r))
        {
            // Kept long enough, or sealed under a JWT_SECRET since replaced (its tokens would
            // be refused anyway): the key is free again.
            repository::idempotency_keys::delete(txn, &key.scope, &key.key).await?;
            return Ok(None);
        }
        held.judge(row)
    }

    /// Last thing before commit: renders the result and stores the answer when it is a
    /// success. Returns the answer to send (`None` without a key).
    pub(super) async fn store(
        &self,
        txn: &impl ConnectionTrait,
        value: &T,
    ) -> Result<Option<Rendered>> {
        let Some(held) = &self.held else {
            return Ok(None);
        };
        let answer = (held.keyed.render)(value);
        if !answer.is_success() {
            return Ok(Some(answer));
        }
        let key = &held.keyed.key;
        let headers: serde_json::Map<String, serde_json::Value> = answer
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), serde_json::Value::from(value.as_str())))
            .collect();
        let body = if held.keyed.sealed {
            held.store.seal(key, &answer.body)?
        } else {
            answer.body.clone()
        };
        let created_at = now();
        let inserted = repository::idempotency_keys::insert(
            txn,
            NewKey {
                scope: key.scope.clone(),
                key: key.key.clone(),
                request_hash: key.request_hash.clone(),
                status: i32::from(answer.status),
                headers: serde_json::Value::Object(headers).to_string(),
                body,
                sealed: held.keyed.sealed,
                created_at,
                expires_at: created_at + held.store.inner.ttl,
            },
        )
        .await;
        match inserted {
            Ok(()) => Ok(Some(answer)),
            // Only a twin that got past the claim could have stored it; it holds the key.
            Err(repository::Error::UniqueViolation(_)) => Err(Error::IdempotencyKeyInUse),
            Err(e) => Err(e.into()),
        }
    }
}

impl<T> Held<'_, T> {
    /// Whether a row's answer is sealed under another secret: it cannot be replayed.
    fn unreadable(&self, row: &idempotency_key::Model) -> bool {
        row.sealed && self.store.open(&self.keyed.key, &row.body).is_err()
    }

    /// The stored answer of a row for this request: the same request replays it, another is
    /// refused.
    fn judge(&self, row: Option<idempotency_key::Model>) -> Result<Option<Rendered>> {
        let Some(row) = row else {
            return Ok(None);
        };
        if row.expires_at <= now() || self.unreadable(&row) {
            return Ok(None);
        }
        if row.request_hash != self.keyed.key.request_hash {
            return Err(Error::IdempotencyKeyReused);
        }
        let headers: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&row.headers).map_err(anyhow::Error::from)?;
        let body = if row.sealed {
            self.store.open(&self.keyed.key, &row.body)?
        } else {
            row.body
        };
        Ok(Some(Rendered {
            status: u16::try_from(row.status).map_err(anyhow::Error::from)?,
            headers: headers
                .into_iter()
                .filter_map(|(name, value)| Some((name, value.as_str()?.to_owned())))
                .collect(),
            body,
        }))
    }
}

/// Whether a response header is stored and replayed with an answer.
pub fn is_replayed_header(name: &str) -> bool {
    REPLAYED_HEADERS
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_1_to_255_visible_ascii_characters() {
        assert!(is_valid_key("a"));
        assert!(is_valid_key(&"~".repeat(255)));
        assert!(is_valid_key("0b6e8f4e-2c1d-4c2e-9a53-1f7d3b8f2a10"));
        for bad in ["", " ", "a b", "tab\t", "é", "\u{7f}"] {
            assert!(!is_valid_key(bad), "{bad:?}");
        }
        assert!(!is_valid_key(&"k".repeat(256)));
    }

    #[test]
    fn the_request_hash_covers_method_path_and_body() {
        let base = request_hash("POST", "/api/v1/events", b"{}");
        assert_eq!(base.len(), 64);
        assert_ne!(base, request_hash("PATCH", "/api/v1/events", b"{}"));
        assert_ne!(base, request_hash("POST", "/api/v1/events?x=1", b"{}"));
        assert_ne!(base, request_hash("POST", "/api/v1/events", b"{ }"));
        assert_eq!(base, request_hash("POST", "/api/v1/events", b"{}"));
    }

    #[test]
    fn sealed_answers_open_only_under_their_own_key_and_secret() {
        let key = |k: &str| RequestKey {
            scope: ANONYMOUS.into(),
            key: k.into(),
            request_hash: String::new(),
        };
        let db = DatabaseConnection::default();
        let store = Idempotency::new(db.clone(), 86_400, b"secret one secret one secret one!");
        let sealed = store.seal(&key("k1"), b"{\"access_token\":\"t\"}").unwrap();
        assert!(!sealed.windows(12).any(|w| w == b"access_token"));
        assert_eq!(
            store.open(&key("k1"), &sealed).unwrap(),
            b"{\"access_token\":\"t\"}"
        );
        assert!(store.open(&key("k2"), &sealed).is_err());
        let other = Idempotency::new(db, 86_400, b"secret two secret two secret two!");
        assert!(other.open(&key("k1"), &sealed).is_err());
    }
}
