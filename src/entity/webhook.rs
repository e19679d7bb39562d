//! The `webhooks` table.

use sea_orm::entity::prelude::*;

/// A row of `webhooks`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhooks")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The user who made it; it receives what they may manage.
    pub owner_id: Uuid,
    /// Where deliveries are posted.
    pub url: String,
    /// Only this event's changes (`None`: every event the owner may manage).
    pub event_id: Option<Uuid>,
    /// JSON array of change types (empty: all).
    pub types: String,
    /// Whether it receives deliveries.
    pub active: bool,
    /// Free text.
    pub description: String,
    /// Why it was deactivated by the server, if it was.
    pub disabled_reason: Option<String>,
    /// Nonce and AES-256-GCM ciphertext of the signing secret.
    pub secret: Vec<u8>,
    /// Since when every attempt failed.
    pub failing_since: Option<DateTimeUtc>,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
    /// Optimistic concurrency version.
    pub version: i64,
}

/// `webhooks` relations are not navigated.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
