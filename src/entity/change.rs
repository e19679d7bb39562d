//! The `changes` table: the outbox of every committed change (the change feed).

use sea_orm::entity::prelude::*;

/// A row of `changes`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "changes")]
pub struct Model {
    /// Insertion order; with `txid`, the global feed's position.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The event the change belongs to (no foreign key: `event.deleted` outlives it).
    pub event_id: Uuid,
    /// Per-event sequence number, from 1, gap-free, in commit order.
    pub seq: i64,
    /// `event.created`, `attendee.registered`, ...
    pub kind: String,
    /// When the change was made.
    pub occurred_at: DateTimeUtc,
    /// Who made it (`None` for the system).
    pub actor_id: Option<Uuid>,
    /// Confirmed plus checked-in attendees after the change.
    pub confirmed_count: i32,
    /// Waitlisted attendees after the change.
    pub waitlist_count: i32,
    /// Capacity after the change (`None`: unlimited).
    pub capacity: Option<i32>,
    /// The resource after the change, as JSON text.
    pub data: String,
    /// The writing transaction's id on PostgreSQL; 0 on SQLite.
    pub txid: i64,
}

/// `changes` has no relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
