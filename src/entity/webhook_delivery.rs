//! The `webhook_deliveries` table.

use sea_orm::entity::prelude::*;

/// A row of `webhook_deliveries`: one change for one webhook.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    /// Id, sent as `webhook-id` on every attempt.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The webhook.
    pub webhook_id: Uuid,
    /// The change's row id in `changes`.
    pub change_id: i64,
    /// The change's event.
    pub event_id: Uuid,
    /// The change's per-event sequence number.
    pub seq: i64,
    /// The change's type.
    pub kind: String,
    /// The exact body sent.
    pub payload: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// HTTP status of the last attempt, if it got one.
    pub last_status_code: Option<i32>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// When a pending delivery may next be attempted.
    pub next_attempt_at: Option<DateTimeUtc>,
    /// After this, a failed attempt fails the delivery.
    pub give_up_at: DateTimeUtc,
    /// Creation time.
    pub created_at: DateTimeUtc,
}

/// `webhook_deliveries` relations are not navigated.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
