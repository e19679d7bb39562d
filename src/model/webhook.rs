//! Webhooks and their deliveries.

use poem_openapi::{Enum, Object};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;
use validator::{Validate, ValidationError};

use super::{ChangeType, Timestamp, common::check_no_control_chars};

/// The longest webhook URL accepted.
pub const MAX_URL_LENGTH: usize = 2000;

impl Serialize for ChangeType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ChangeType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        ChangeType::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown change type `{name}`")))
    }
}

/// Validates a webhook URL: absolute `http` or `https` with a host, no credentials, no
/// fragment.
pub fn check_url(value: &str) -> Result<(), ValidationError> {
    let refuse = |message: &str| {
        let mut e = ValidationError::new("url");
        e.message = Some(message.to_owned().into());
        Err(e)
    };
    if value.len() > MAX_URL_LENGTH {
        return refuse("must be at most 2000 characters");
    }
    let Ok(url) = url::Url::parse(value) else {
        return refuse("must be an absolute http or https URL");
    };
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return refuse("must be an absolute http or https URL");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return refuse("must not carry credentials");
    }
    if url.fragment().is_some() {
        return refuse("must not have a fragment");
    }
    Ok(())
}

/// Validates a webhook description: at most 500 characters on one line.
pub fn check_webhook_description(value: &str) -> Result<(), ValidationError> {
    check_no_control_chars(value, false)?;
    if value.chars().count() > 500 {
        let mut e = ValidationError::new("length");
        e.message = Some("must be at most 500 characters".into());
        return Err(e);
    }
    Ok(())
}

fn check_types(types: &[ChangeType]) -> Result<(), ValidationError> {
    if types.len() > ChangeType::ALL.len() {
        let mut e = ValidationError::new("length");
        e.message = Some("lists a change type more than once".into());
        return Err(e);
    }
    Ok(())
}

/// Request to create a webhook.
#[derive(Debug, Clone, Object, Deserialize, Validate)]
pub struct WebhookCreate {
    /// Where deliveries are posted: an absolute `http` or `https` URL. Targets on loopback,
    /// private or link-local addresses are refused.
    #[oai(validator(min_length = 1, max_length = 2000))]
    #[validate(custom(function = "check_url"))]
    pub url: String,
    /// Only this event's changes; absent or null: every event the caller may manage
    /// (administrators: every event).
    #[oai(nullable)]
    #[serde(default)]
    pub event_id: Option<Uuid>,
    /// Only these change types; empty (the default): all.
    #[oai(default)]
    #[serde(default)]
    #[validate(custom(function = "check_types"))]
    pub types: Vec<ChangeType>,
    /// Whether it receives deliveries (default true).
    #[oai(default = "default_true")]
    #[serde(default = "default_true")]
    pub active: bool,
    /// Free text, at most 500 characters on one line (default "").
    #[oai(validator(max_length = 500), default)]
    #[serde(default)]
    #[validate(custom(function = "check_webhook_description"))]
    pub description: String,
}

fn default_true() -> bool {
    true
}

/// A webhook.
#[derive(Debug, Clone, Object)]
pub struct WebhookRead {
    /// Id.
    pub id: Uuid,
    /// Where deliveries are posted.
    pub url: String,
    /// Only this event's changes; null: every event the owner may manage.
    #[oai(nullable)]
    pub event_id: Option<Uuid>,
    /// Only these change types; empty: all.
    pub types: Vec<ChangeType>,
    /// Whether it receives deliveries.
    pub active: bool,
    /// Free text.
    pub description: String,
    /// Why the server deactivated it (its deliveries failed for 24 hours); null otherwise.
    #[oai(nullable)]
    pub disabled_reason: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Version, also sent as the `ETag`.
    pub version: i64,
}

/// A webhook just created, with its signing secret (shown only here).
#[derive(Debug, Clone, Object)]
pub struct WebhookCreated {
    /// Id.
    pub id: Uuid,
    /// Where deliveries are posted.
    pub url: String,
    /// Only this event's changes; null: every event the owner may manage.
    #[oai(nullable)]
    pub event_id: Option<Uuid>,
    /// Only these change types; empty: all.
    pub types: Vec<ChangeType>,
    /// Whether it receives deliveries.
    pub active: bool,
    /// Free text.
    pub description: String,
    /// Always null on creation.
    #[oai(nullable)]
    pub disabled_reason: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Version, also sent as the `ETag`.
    pub version: i64,
    /// The signing secret: `whsec_` and the base64 of 32 random bytes. Shown only in this
    /// answer; keep it to verify `webhook-signature`.
    pub secret: String,
}

impl WebhookCreated {
    /// The created webhook with its secret.
    pub fn new(read: WebhookRead, secret: String) -> Self {
        Self {
            id: read.id,
            url: read.url,
            event_id: read.event_id,
            types: read.types,
            active: read.active,
            description: read.description,
            disabled_reason: read.disabled_reason,
            created_at: read.created_at,
            updated_at: read.updated_at,
            version: read.version,
            secret,
        }
    }
}

/// The members of a webhook a JSON Patch may change, as the patch sees them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatchView {
    /// URL.
    #[validate(custom(function = "check_url"))]
    pub url: String,
    /// Change types.
    #[serde(default)]
    #[validate(custom(function = "check_types"))]
    pub types: Vec<ChangeType>,
    /// Active switch.
    pub active: bool,
    /// Description; a `remove` clears it.
    #[serde(default)]
    #[validate(custom(function = "check_webhook_description"))]
    pub description: String,
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Not delivered yet; attempted again at `next_attempt_at`.
    Pending,
    /// A receiver answered 2xx.
    Succeeded,
    /// Given up after the retry window, or the owner may no longer see the event.
    Failed,
}

/// The change a delivery carries.
#[derive(Debug, Clone, Object)]
pub struct DeliveryChange {
    /// The event.
    pub event_id: Uuid,
    /// The change's per-event sequence number.
    pub seq: i64,
    /// What changed.
    #[oai(rename = "type")]
    pub kind: ChangeType,
}

/// One change sent (or to be sent) to one webhook.
#[derive(Debug, Clone, Object)]
pub struct DeliveryRead {
    /// Id, sent as `webhook-id` on every attempt (receivers deduplicate by it).
    pub id: Uuid,
    /// The change delivered.
    pub change: DeliveryChange,
    /// `pending`, `succeeded` or `failed`.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: i32,
    /// HTTP status of the last attempt; null when it got none.
    #[oai(nullable)]
    pub last_status_code: Option<i32>,
    /// Why the last attempt failed; null when it did not.
    #[oai(nullable)]
    pub last_error: Option<String>,
    /// When a pending delivery is attempted next; null otherwise.
    #[oai(nullable)]
    pub next_attempt_at: Option<Timestamp>,
    /// When the delivery was made from its change.
    pub created_at: Timestamp,
}

/// The answer to a redelivery: the delivery as queued again.
pub type Redelivered = DeliveryRead;

crate::page_type!(WebhookPage, WebhookRead, "One page of webhooks.");
crate::page_type!(
    DeliveryPage,
    DeliveryRead,
    "One page of a webhook's deliveries, newest first."
);
