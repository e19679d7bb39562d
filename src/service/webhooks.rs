//! Webhooks: the resource, the dispatcher that turns committed changes into deliveries, and
//! the signed, retried, ordered delivery of them.
//!
//! - Deliveries are made from the `changes` table only, in its global `(txid, id)` order and
//!   behind the PostgreSQL xmin horizon ([`repository::changes::global_after`]), from a
//!   cursor row that one dispatcher at a time moves: a change that commits late is never
//!   skipped, and a change is turned into a delivery for a webhook at most once.
//! - A due delivery is claimed (`FOR UPDATE SKIP LOCKED` on PostgreSQL) by moving it past a
//!   lease, then sent, then its outcome recorded. A crash in between makes it due again when
//!   the lease ends: at least once, never lost.
//! - Per (webhook, event), a delivery waits while an earlier one (smaller `seq`) is pending.
//! - Signing follows Standard Webhooks; the secret is stored sealed (AES-256-GCM) under a
//!   server key, so a database dump alone cannot forge signatures.
//! - Targets on internal addresses are refused on create and patch, and again at delivery by
//!   a resolver that checks every address it returns: the connection goes to an address that
//!   was checked. Redirects are not followed.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use json_patch::Patch;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use sha2::Sha256;
use uuid::Uuid;
use validator::Validate;

use super::{
    Begun, Caller, Error, Result, begin_background_write, begin_write,
    changes::{Detail, to_api},
    commit_or_rollback, events, finish_background_write,
    idempotency::{Idempotency, Keyed, Written},
    patch::{self, Access, Precondition},
    policy::{self, AccountAction, Action},
};
use crate::{
    config::Config,
    entity::{event, user, webhook, webhook_delivery},
    model::{
        ChangeType, DeliveryChange, DeliveryRead, DeliveryStatus, FieldError, Page, WebhookCreate,
        WebhookCreated, WebhookPatchView, WebhookRead, field_errors,
    },
    repository::{
        self,
        changes::Position,
        webhooks::{FAILED, Outcome, PENDING, SUCCEEDED},
    },
    time::{UtcDateTime, now},
};

/// HKDF label of the key that seals webhook secrets; distinct from every other label.
const SECRET_LABEL: &[u8] = b"event-manager webhook secrets v1";
/// Bytes of an AES-GCM nonce, stored in front of the ciphertext.
const NONCE_BYTES: usize = 12;
/// Prefix of a signing secret.
const SECRET_PREFIX: &str = "whsec_";
/// Changes the dispatcher reads per transaction.
const DISPATCH_BATCH: u64 = 500;
/// Bytes of a receiver's answer read at most (then the connection is dropped).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Characters of an attempt's error kept.
const MAX_ERROR_CHARS: usize = 500;
/// First retry delay; it doubles per attempt up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest delay between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// A webhook whose attempts all failed for this long is deactivated.
const DEACTIVATE_AFTER_HOURS: i64 = 24;
/// How long past the receiver timeout a claim lasts: time to record the outcome. A process
/// that dies holding a claim delays its deliveries by this much plus the timeout.
const CLAIM_MARGIN: Duration = Duration::from_secs(10);
/// Time a name lookup may take when a target is checked on create or patch.
const CHECK_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether a delivery may not go to `ip`: loopback, private, link-local, multicast,
/// unspecified, broadcast, shared (CGNAT) or documentation addresses, IPv4 or IPv6, with
/// IPv4-mapped IPv6 addresses judged as the IPv4 address they carry.
pub fn is_refused_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_refused_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_refused_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local, 2001:db8::/32 documentation.
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)
                // ::ffff:0:0/96 handled above; ::/96 (IPv4-compatible) and 64:ff9b::/96 (NAT64)
                // reach IPv4 addresses: judge those.
                || (v6.segments()[..6] == [0, 0, 0, 0, 0, 0]
                    && is_refused_v4(Ipv4Addr::from(v6.to_bits() as u32)))
                || (v6.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
                    && is_refused_v4(Ipv4Addr::from(v6.to_bits() as u32)))
        }
    }
}

fn is_refused_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || a >= 240
}

/// Why a target is refused, or `None` when it may be used. `allow_private` turns the guard
/// off. A name that does not resolve now is accepted (it is checked again at delivery).
pub async fn refused_target(url: &str, allow_private: bool) -> Option<String> {
    if allow_private {
        return None;
    }
    let url = url::Url::parse(url).ok()?;
    let refused = |what: &str| Some(format!("{what} is not an allowed target: it is internal"));
    match url.host()? {
        url::Host::Ipv4(ip) if is_refused_ip(ip.into()) => refused(&ip.to_string()),
        url::Host::Ipv6(ip) if is_refused_ip(ip.into()) => refused(&ip.to_string()),
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                return refused(&name);
            }
            let port = url.port_or_known_default().unwrap_or(443);
            let lookup = tokio::net::lookup_host((name.as_str(), port));
            match tokio::time::timeout(CHECK_LOOKUP_TIMEOUT, lookup).await {
                Ok(Ok(addrs)) => {
                    for addr in addrs {
                        if is_refused_ip(addr.ip()) {
                            return refused(&format!("{name} (resolves to {})", addr.ip()));
                        }
                    }
                    None
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// The resolver of the delivery client: it resolves, and refuses a name any of whose
/// addresses is internal. The client connects only to addresses it returns.
struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(bad) = addrs.iter().find(|a| is_refused_ip(a.ip())) {
                return Err(format!(
                    "{host} resolves to {}, which is not an allowed target",
                    bad.ip()
                )
                .into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The Standard Webhooks signature of a body: `v1,` and the base64 of HMAC-SHA256 over
/// `"{id}.{timestamp}.{body}"`, keyed with the secret's decoded bytes.
pub fn sign(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The delay before attempt `attempts + 1`: doubling from [`FIRST_BACKOFF`], capped, with
/// jitter (a random point in its upper half), so that receivers coming back are not hit by
/// every sender at once.
pub fn backoff(attempts: i32) -> Duration {
    let exponent = attempts.clamp(1, 30) as u32 - 1;
    let full = FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(MAX_BACKOFF);
    let half = full / 2;
    half + half.mul_f64(rand::random::<f64>())
}

/// Seals and opens signing secrets under the server key.
#[derive(Clone)]
struct Secrets {
    cipher: Arc<Aes256Gcm>,
}

impl Secrets {
    fn new(key_material: &[u8]) -> Self {
        let mut key = [0u8; 32];
        hkdf::Hkdf::<Sha256>::new(None, key_material)
            .expand(SECRET_LABEL, &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self {
            cipher: Arc::new(Aes256Gcm::new(&key.into())),
        }
    }

    fn seal(&self, webhook_id: Uuid, secret: &[u8]) -> Result<Vec<u8>> {
        let nonce: [u8; NONCE_BYTES] = rand::random();
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: secret,
                    aad: webhook_id.as_bytes(),
                },
            )
            .map_err(|_| anyhow::anyhow!("sealing a webhook secret failed"))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    fn open(&self, webhook_id: Uuid, stored: &[u8]) -> Result<Vec<u8>> {
        if stored.len() < NONCE_BYTES {
            return Err(anyhow::anyhow!("a sealed webhook secret is too short").into());
        }
        let (nonce, sealed) = stored.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(anyhow::Error::from)?;
        Ok(self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: webhook_id.as_bytes(),
                },
            )
            .map_err(|_| {
                anyhow::anyhow!(
                    "a webhook secret does not open under the current key \
                     (WEBHOOK_SECRET_KEY or JWT_SECRET changed?)"
                )
            })?)
    }
}

impl From<webhook::Model> for WebhookRead {
    fn from(m: webhook::Model) -> Self {
        Self {
            id: m.id,
            url: m.url,
            event_id: m.event_id,
            types: parse_types(&m.types),
            active: m.active,
            description: m.description,
            disabled_reason: m.disabled_reason,
            created_at: m.created_at.into(),
            updated_at: m.updated_at.into(),
            version: m.version,
        }
    }
}

impl From<webhook_delivery::Model> for DeliveryRead {
    fn from(m: webhook_delivery::Model) -> Self {
        let status = match m.status.as_str() {
            SUCCEEDED => DeliveryStatus::Succeeded,
            FAILED => DeliveryStatus::Failed,
            _ => DeliveryStatus::Pending,
        };
        Self {
            id: m.id,
            change: DeliveryChange {
                event_id: m.event_id,
                seq: m.seq,
                kind: ChangeType::parse(&m.kind).unwrap_or(ChangeType::EventUpdated),
            },
            status,
            attempts: m.attempts,
            last_status_code: m.last_status_code,
            last_error: m.last_error,
            next_attempt_at: if status == DeliveryStatus::Pending {
                m.next_attempt_at.map(Into::into)
            } else {
                None
            },
            created_at: m.created_at.into(),
        }
    }
}

fn parse_types(stored: &str) -> Vec<ChangeType> {
    serde_json::from_str::<Vec<String>>(stored)
        .unwrap_or_default()
        .iter()
        .filter_map(|t| ChangeType::parse(t))
        .collect()
}

fn store_types(types: &[ChangeType]) -> String {
    let mut names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())
}

fn url_refused(reason: String) -> Error {
    Error::Validation(vec![FieldError::new("url", reason)])
}

/// Whether `caller` may see and change `hook`; others get 404, as if it did not exist.
fn owned(caller: &Caller, hook: Option<webhook::Model>) -> Result<webhook::Model> {
    match hook {
        Some(h) if policy::may_account(caller, AccountAction::Own(h.owner_id)) => Ok(h),
        _ => Err(Error::NotFound("webhook")),
    }
}

/// Whether the owner of a webhook may receive an event's changes (see
/// [`policy::Action::ReceiveWebhooks`]). A deleted event is judged by the organizer its last
/// change names (its staff went with it).
async fn may_receive(
    db: &impl ConnectionTrait,
    owner: &Caller,
    event: Option<&event::Model>,
    change_data: &str,
) -> Result<bool> {
    Ok(match event {
        Some(e) => {
            let standing = policy::standing(db, Some(owner), e).await?;
            policy::may(standing, Action::ReceiveWebhooks, e)
        }
        None => {
            policy::may_account(owner, AccountAction::Administer)
                || serde_json::from_str::<serde_json::Value>(change_data)
                    .ok()
                    .and_then(|d| d["organizer_id"].as_str().map(str::to_owned))
                    .is_some_and(|organizer| organizer == owner.id.to_string())
        }
    })
}

/// A claimed delivery, with its webhook, ready to be attempted.
#[derive(Debug, Clone)]
pub struct Claimed {
    delivery: webhook_delivery::Model,
    hook: webhook::Model,
}

/// Webhooks and their deliveries.
#[derive(Clone)]
pub struct WebhookService {
    db: DatabaseConnection,
    idempotency: Idempotency,
    secrets: Secrets,
    client: reqwest::Client,
    allow_private: bool,
    retry: chrono::Duration,
    timeout: Duration,
}

impl WebhookService {
    /// The service. Secrets are sealed under `WEBHOOK_SECRET_KEY`, or else under a key derived
    /// from `fallback_key` (the JWT secret).
    pub fn new(
        db: DatabaseConnection,
        config: &Config,
        fallback_key: &[u8],
        idempotency: Idempotency,
    ) -> anyhow::Result<Self> {
        let secrets = match &config.webhook_secret_key {
            Some(key) => Secrets::new(key.as_bytes()),
            None => {
                tracing::warn!(
                    "WEBHOOK_SECRET_KEY is not set: webhook secrets are sealed under a key \
                     derived from JWT_SECRET; replacing JWT_SECRET makes them unusable"
                );
                Secrets::new(fallback_key)
            }
        };
        let timeout = Duration::from_millis(config.webhook_timeout_ms);
        let mut client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!(
                "event-manager-webhooks/",
                env!("CARGO_PKG_VERSION")
            ))
            .pool_max_idle_per_host(4);
        if !config.webhook_allow_private_targets {
            client = client.dns_resolver(Arc::new(GuardedResolver));
        }
        Ok(Self {
            db,
            idempotency,
            secrets,
            client: client.build()?,
            allow_private: config.webhook_allow_private_targets,
            retry: chrono::Duration::hours(i64::from(config.webhook_retry_hours)),
            timeout,
        })
    }

    /// Creates a webhook owned by the caller; the answer carries its secret, once.
    #[tracing::instrument(skip_all)]
    pub async fn create(
        &self,
        caller: &Caller,
        input: WebhookCreate,
        key: Option<Keyed<'_, WebhookCreated>>,
    ) -> Result<Written<WebhookCreated>> {
        input
            .validate()
            .map_err(|e| Error::Validation(field_errors(&e)))?;
        if let Some(reason) = refused_target(&input.url, self.allow_private).await {
            return Err(url_refused(reason));
        }
        let claim = self.idempotency.claim(key)?;
        let write = match begin_write(&self.db, &claim).await? {
            Begun::Write(write) => write,
            Begun::Replay(answer) => return Ok(answer),
        };
        let result = async {
            let txn = write.txn();
            if let Some(event_id) = input.event_id {
                let (event, standing) =
                    events::visible_for_update(txn, Some(caller), event_id).await?;
                policy::require(
                    standing,
                    Action::ReceiveWebhooks,
                    &event,
                    "only who may manage an event may subscribe to its changes",
                )?;
            }
            let id = Uuid::now_v7();
            let raw: [u8; 32] = rand::random();
            let secret = format!("{SECRET_PREFIX}{}", STANDARD.encode(raw));
            let now = now();
            let created = repository::webhooks::insert(
                txn,
                webhook::Model {
                    id,
                    owner_id: caller.id,
                    url: input.url,
                    event_id: input.event_id,
                    types: store_types(&input.types),
                    active: input.active,
                    description: input.description,
                    disabled_reason: None,
                    secret: self.secrets.seal(id, &raw)?,
                    failing_since: None,
                    created_at: now,
                    updated_at: now,
                    version: 1,
                },
            )
            .await?;
            Ok(WebhookCreated::new(created.into(), secret))
        }
        .await;
        commit_or_rollback(write, result).await
    }

    /// The caller's webhooks (administrators: all), oldest first.
    pub async fn list(
        &self,
        caller: &Caller,
        limit: u32,
        offset: u64,
    ) -> Result<Page<WebhookRead>> {
        let owner = (!policy::may_account(caller, AccountAction::Administer)).then_some(caller.id);
        let (items, total) =
            repository::webhooks::page(&self.db, owner, u64::from(limit), offset).await?;
        Ok(Page {
            items: items.into_iter().map(Into::into).collect(),
            total,
            limit,
            offset,
        })
    }

    /// One webhook (its owner or an administrator).
    pub async fn get(&self, caller: &Caller, id: Uuid) -> Result<WebhookRead> {
        Ok(owned(caller, repository::webhooks::find(&self.db, id).await?)?.into())
    }

    /// Applies a JSON Patch on `/url`, `/types`, `/active`, `/description`. Reactivating a
    /// webhook the server deactivated clears its `disabled_reason`.
    #[tracing::instrument(skip_all, fields(webhook_id = %id))]
    pub async fn patch(
        &self,
        caller: &Caller,
        id: Uuid,
        ops: &Patch,
        precondition: Option<&Precondition>,
        key: Option<Keyed<'_, WebhookRead>>,
    ) -> Result<Written<WebhookRead>> {
        let claim = self.idempotency.claim(key)?;
        let write = match begin_write(&self.db, &claim).await? {
            Begun::Write(write) => write,
            Begun::Replay(answer) => return Ok(answer),
        };
        let result = async {
            let txn = write.txn();
            let current = owned(
                caller,
                repository::webhooks::find_for_update(txn, id).await?,
            )?;
            Precondition::check(precondition, current.version)?;
            let before = WebhookPatchView {
                url: current.url.clone(),
                types: parse_types(&current.types),
                active: current.active,
                description: current.description.clone(),
            };
            let after = patch::apply(&before, ops, |member| match member {
                "url" | "types" | "active" | "description" => Access::Writable,
                _ => Access::ReadOnly,
            })?;
            if after == before {
                return Ok(current.into());
            }
            if after.url != before.url
                && let Some(reason) = refused_target(&after.url, self.allow_private).await
            {
                return Err(url_refused(reason));
            }
            let reactivated = after.active && !current.active;
            let updated = webhook::Model {
                url: after.url,
                types: store_types(&after.types),
                active: after.active,
                description: after.description,
                disabled_reason: if reactivated {
                    None
                } else {
                    current.disabled_reason.clone()
                },
                failing_since: if reactivated {
                    None
                } else {
                    current.failing_since
                },
                updated_at: now(),
                version: current.version + 1,
                ..current
            };
            Ok(repository::webhooks::update(txn, updated).await?.into())
        }
        .await;
        commit_or_rollback(write, result).await
    }

    /// Deletes a webhook and its delivery log.
    #[tracing::instrument(skip_all, fields(webhook_id = %id))]
    pub async fn delete(
        &self,
        caller: &Caller,
        id: Uuid,
        precondition: Option<&Precondition>,
        key: Option<Keyed<'_, ()>>,
    ) -> Result<Written<()>> {
        let claim = self.idempotency.claim(key)?;
        let write = match begin_write(&self.db, &claim).await? {
            Begun::Write(write) => write,
            Begun::Replay(answer) => return Ok(answer),
        };
        let result = async {
            let txn = write.txn();
            let hook = owned(
                caller,
                repository::webhooks::find_for_update(txn, id).await?,
            )?;
            Precondition::check(precondition, hook.version)?;
            repository::webhooks::delete(txn, id).await?;
            Ok(())
        }
        .await;
        commit_or_rollback(write, result).await
    }

    /// A webhook's deliveries, newest first.
    pub async fn deliveries(
        &self,
        caller: &Caller,
        id: Uuid,
        limit: u32,
        offset: u64,
    ) -> Result<Page<DeliveryRead>> {
        owned(caller, repository::webhooks::find(&self.db, id).await?)?;
        let (items, total) =
            repository::webhooks::deliveries_page(&self.db, id, u64::from(limit), offset).await?;
        Ok(Page {
            items: items.into_iter().map(Into::into).collect(),
            total,
            limit,
            offset,
        })
    }

    /// Queues a delivery again, now, with a fresh retry window (same `webhook-id`).
    #[tracing::instrument(skip_all, fields(webhook_id = %id, delivery_id = %delivery_id))]
    pub async fn redeliver(
        &self,
        caller: &Caller,
        id: Uuid,
        delivery_id: Uuid,
        key: Option<Keyed<'_, DeliveryRead>>,
    ) -> Result<Written<DeliveryRead>> {
        let claim = self.idempotency.claim(key)?;
        let write = match begin_write(&self.db, &claim).await? {
            Begun::Write(write) => write,
            Begun::Replay(answer) => return Ok(answer),
        };
        let result = async {
            let txn = write.txn();
            owned(
                caller,
                repository::webhooks::find_for_update(txn, id).await?,
            )?;
            repository::webhooks::find_delivery(txn, id, delivery_id)
                .await?
                .ok_or(Error::NotFound("delivery"))?;
            let now = now();
            repository::webhooks::requeue(txn, delivery_id, now, now + self.retry).await?;
            let queued = repository::webhooks::find_delivery(txn, id, delivery_id)
                .await?
                .ok_or(Error::NotFound("delivery"))?;
            Ok(DeliveryRead::from(queued))
        }
        .await;
        commit_or_rollback(write, result).await
    }

    /// Turns the changes committed since the last call into deliveries for the active
    /// webhooks they match, and moves the cursor past them. Returns how many changes it read.
    pub async fn dispatch(&self) -> Result<usize> {
        // Most calls find nothing new: find that out without beginning a write.
        let from = repository::webhooks::cursor(&self.db).await?;
        if repository::changes::global_after(&self.db, from, 1)
            .await?
            .is_empty()
        {
            return Ok(0);
        }
        let mut read = 0;
        loop {
            let txn = begin_background_write(&self.db).await?;
            let result = self.dispatch_batch(&txn).await;
            let n = finish_background_write(txn, result).await?;
            read += n;
            if (n as u64) < DISPATCH_BATCH {
                return Ok(read);
            }
        }
    }

    async fn dispatch_batch(&self, txn: &impl ConnectionTrait) -> Result<usize> {
        let from = repository::webhooks::lock_cursor(txn).await?;
        let rows = repository::changes::global_after(txn, from, DISPATCH_BATCH).await?;
        let Some(last) = rows.last() else {
            return Ok(0);
        };
        let to = Position {
            txid: last.txid,
            id: last.id,
        };
        let hooks = repository::webhooks::all_active(txn).await?;
        let mut deliveries = Vec::new();
        if !hooks.is_empty() {
            let mut owners = std::collections::HashMap::new();
            let mut event_rows = std::collections::HashMap::new();
            let now = now();
            for row in &rows {
                let kind = row.kind.as_str();
                let candidates: Vec<&webhook::Model> = hooks
                    .iter()
                    .filter(|h| h.event_id.is_none_or(|e| e == row.event_id))
                    .filter(|h| h.created_at <= row.occurred_at)
                    .filter(|h| {
                        let types = parse_types(&h.types);
                        types.is_empty() || types.iter().any(|t| t.as_str() == kind)
                    })
                    .collect();
                if candidates.is_empty() {
                    continue;
                }
                if let std::collections::hash_map::Entry::Vacant(slot) =
                    event_rows.entry(row.event_id)
                {
                    slot.insert(repository::events::find_by_id(txn, row.event_id).await?);
                }
                let event = event_rows[&row.event_id].as_ref();
                let mut payload = None;
                for hook in candidates {
                    if let std::collections::hash_map::Entry::Vacant(slot) =
                        owners.entry(hook.owner_id)
                    {
                        let found = repository::users::find_by_id(txn, hook.owner_id).await?;
                        slot.insert(found.map(|u: user::Model| Caller {
                            id: u.id,
                            role: u.role,
                        }));
                    }
                    let Some(owner) = owners[&hook.owner_id].as_ref() else {
                        continue;
                    };
                    if !may_receive(txn, owner, event, &row.data).await? {
                        continue;
                    }
                    if payload.is_none() {
                        let change = to_api(row.clone(), Detail::Full)?;
                        let json = poem_openapi::types::ToJSON::to_json(&change)
                            .unwrap_or(serde_json::Value::Null);
                        payload = Some(json.to_string());
                    }
                    deliveries.push(webhook_delivery::Model {
                        id: Uuid::now_v7(),
                        webhook_id: hook.id,
                        change_id: row.id,
                        event_id: row.event_id,
                        seq: row.seq,
                        kind: row.kind.clone(),
                        payload: payload.clone().unwrap_or_default(),
                        status: PENDING.to_owned(),
                        attempts: 0,
                        last_status_code: None,
                        last_error: None,
                        next_attempt_at: Some(now),
                        give_up_at: now + self.retry,
                        created_at: now,
                    });
                }
            }
        }
        repository::webhooks::insert_deliveries(txn, deliveries).await?;
        repository::webhooks::set_cursor(txn, to).await?;
        Ok(rows.len())
    }

    /// Claims up to `limit` deliveries due at `now` for this process to attempt.
    pub async fn claim(&self, now: UtcDateTime, limit: usize) -> Result<Vec<Claimed>> {
        let lease = chrono::Duration::from_std(self.timeout + CLAIM_MARGIN)
            .unwrap_or(chrono::Duration::minutes(1));
        if !repository::webhooks::any_due(&self.db, now).await? {
            return Ok(Vec::new());
        }
        let txn = begin_background_write(&self.db).await?;
        let result = async {
            let claimed =
                repository::webhooks::claim_due(&txn, now, now + lease, limit as u64).await?;
            let mut out = Vec::with_capacity(claimed.len());
            for delivery in claimed {
                if let Some(hook) = repository::webhooks::find(&txn, delivery.webhook_id).await? {
                    out.push(Claimed { delivery, hook });
                }
            }
            Ok(out)
        }
        .await;
        finish_background_write(txn, result).await
    }

    /// Attempts a claimed delivery and records the outcome as of `now`: the owner's permission
    /// is checked first, then the change is posted, signed.
    #[tracing::instrument(skip_all, fields(delivery_id = %claimed.delivery.id))]
    pub async fn attempt(&self, claimed: Claimed, now: UtcDateTime) -> Result<()> {
        let Claimed { delivery, hook } = claimed;
        if !self.owner_may_receive(&hook, &delivery).await? {
            let outcome = Outcome {
                status: FAILED,
                status_code: None,
                error: Some("the webhook's owner may no longer manage this event".into()),
                next_attempt_at: None,
                attempt: delivery.attempts,
            };
            repository::webhooks::record_outcome(&self.db, delivery.id, outcome).await?;
            return Ok(());
        }
        let sent = self.send(&hook, &delivery).await;
        let txn = begin_background_write(&self.db).await?;
        let result = async {
            match sent {
                Ok(code) => {
                    let outcome = Outcome {
                        status: SUCCEEDED,
                        status_code: Some(code),
                        error: None,
                        next_attempt_at: None,
                        attempt: delivery.attempts,
                    };
                    if repository::webhooks::record_outcome(&txn, delivery.id, outcome).await? {
                        repository::webhooks::mark_succeeding(&txn, hook.id).await?;
                    }
                }
                Err((code, error)) => {
                    let give_up = now >= delivery.give_up_at;
                    let outcome = Outcome {
                        status: if give_up { FAILED } else { PENDING },
                        status_code: code,
                        error: Some(error),
                        next_attempt_at: (!give_up).then(|| {
                            now + chrono::Duration::from_std(backoff(delivery.attempts))
                                .unwrap_or(chrono::Duration::hours(1))
                        }),
                        attempt: delivery.attempts,
                    };
                    if !repository::webhooks::record_outcome(&txn, delivery.id, outcome).await? {
                        return Ok(());
                    }
                    repository::webhooks::mark_failing(&txn, hook.id, now).await?;
                    let cutoff = now - chrono::Duration::hours(DEACTIVATE_AFTER_HOURS);
                    let reason = format!(
                        "every delivery attempt failed for {DEACTIVATE_AFTER_HOURS} hours; \
                         the last one: {}",
                        truncate(&outcome_error(&code), 200)
                    );
                    if repository::webhooks::deactivate_if_failing_since(
                        &txn, hook.id, cutoff, &reason, now,
                    )
                    .await?
                    {
                        tracing::warn!(webhook_id = %hook.id, "webhook deactivated: its deliveries failed for a day");
                    }
                }
            }
            Ok(())
        }
        .await;
        finish_background_write(txn, result).await
    }

    /// Claims every delivery due at `now` and attempts them, waiting for all; for callers that
    /// drive time themselves. Returns how many it attempted.
    pub async fn run_due_at(&self, now: UtcDateTime) -> Result<usize> {
        let claimed = self.claim(now, 1000).await?;
        let n = claimed.len();
        let attempts = claimed.into_iter().map(|c| self.attempt(c, now));
        for result in futures_util::future::join_all(attempts).await {
            result?;
        }
        Ok(n)
    }

    /// Deliveries not yet delivered nor given up.
    pub async fn pending(&self) -> Result<u64> {
        Ok(repository::webhooks::count_pending(&self.db).await?)
    }

    async fn owner_may_receive(
        &self,
        hook: &webhook::Model,
        delivery: &webhook_delivery::Model,
    ) -> Result<bool> {
        let Some(owner) = repository::users::find_by_id(&self.db, hook.owner_id).await? else {
            return Ok(false);
        };
        let owner = Caller {
            id: owner.id,
            role: owner.role,
        };
        let event = repository::events::find_by_id(&self.db, delivery.event_id).await?;
        let data = serde_json::from_str::<serde_json::Value>(&delivery.payload)
            .ok()
            .map(|v| v["data"].to_string())
            .unwrap_or_default();
        may_receive(&self.db, &owner, event.as_ref(), &data).await
    }

    /// Posts a delivery: `Ok(status)` on 2xx, else the status (if any) and why.
    async fn send(
        &self,
        hook: &webhook::Model,
        delivery: &webhook_delivery::Model,
    ) -> std::result::Result<i32, (Option<i32>, String)> {
        let internal = |e: Error| (None, truncate(&e.to_string(), MAX_ERROR_CHARS));
        let secret = self.secrets.open(hook.id, &hook.secret).map_err(internal)?;
        if let Ok(url) = url::Url::parse(&hook.url)
            && !self.allow_private
        {
            // The resolver checks names; an address written in the URL is checked here.
            let literal = match url.host() {
                Some(url::Host::Ipv4(ip)) => Some(IpAddr::from(ip)),
                Some(url::Host::Ipv6(ip)) => Some(IpAddr::from(ip)),
                _ => None,
            };
            if let Some(ip) = literal.filter(|ip| is_refused_ip(*ip)) {
                return Err((None, format!("{ip} is not an allowed target")));
            }
        }
        let id = delivery.id.to_string();
        let timestamp = chrono::Utc::now().timestamp();
        let signature = sign(&secret, &id, timestamp, delivery.payload.as_bytes());
        let response = self
            .client
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(delivery.payload.clone())
            .send()
            .await;
        let mut response = match response {
            Ok(r) => r,
            Err(e) => return Err((None, describe(&e, self.timeout))),
        };
        let code = i32::from(response.status().as_u16());
        // Read a bounded part of the answer so the connection can be reused, then drop it.
        let mut read = 0;
        while read < MAX_RESPONSE_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                _ => break,
            }
        }
        if response.status().is_success() {
            Ok(code)
        } else {
            Err((Some(code), format!("the receiver answered {code}")))
        }
    }
}

fn outcome_error(code: &Option<i32>) -> String {
    match code {
        Some(code) => format!("HTTP {code}"),
        None => "no answer".into(),
    }
}

fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {} ms", timeout.as_millis());
    }
    let mut text = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = source {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&err.to_string());
        source = err.source();
    }
    // reqwest names the URL in its own message; the log shows which webhook it was.
    truncate(&text, MAX_ERROR_CHARS)
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_and_public_ones_are_not() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "224.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "100.64.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
        ] {
            assert!(is_refused_ip(ip.parse().unwrap()), "{ip} must be refused");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_refused_ip(ip.parse().unwrap()), "{ip} must be allowed");
        }
    }

    #[tokio::test]
    async fn literal_and_localhost_targets_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://[::1]/hook",
            "http://[::ffff:7f00:1]/hook",
            "http://localhost/hook",
            "http://api.localhost./hook",
            "http://169.254.169.254/latest/meta-data",
        ] {
            assert!(refused_target(url, false).await.is_some(), "{url}");
            assert!(refused_target(url, true).await.is_none(), "{url}");
        }
    }

    #[test]
    fn the_signature_is_the_standard_webhooks_one() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_stays_capped() {
        for attempts in 1..40 {
            let full = FIRST_BACKOFF
                .saturating_mul(2u32.saturating_pow(attempts.clamp(1, 30) as u32 - 1))
                .min(MAX_BACKOFF);
            let d = backoff(attempts);
            assert!(d >= full / 2 && d <= full, "{attempts}: {d:?}");
        }
    }

    #[test]
    fn secrets_open_only_for_their_webhook_under_their_key() {
        let secrets = Secrets::new(b"0123456789abcdef0123456789abcdef");
        let id = Uuid::now_v7();
        let sealed = secrets.seal(id, b"secret bytes").unwrap();
        assert_eq!(secrets.open(id, &sealed).unwrap(), b"secret bytes");
        assert!(secrets.open(Uuid::now_v7(), &sealed).is_err());
        assert!(
            Secrets::new(b"another key, also long enough....")
                .open(id, &sealed)
                .is_err()
        );
    }
}
