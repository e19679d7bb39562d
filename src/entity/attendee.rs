//! The `attendees` table.

use sea_orm::entity::prelude::*;

/// State of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum AttendeeStatus {
    /// Holds a seat.
    #[sea_orm(string_value = "confirmed")]
    Confirmed,
    /// Queued for a seat.
    #[sea_orm(string_value = "waitlisted")]
    Waitlisted,
    /// Gave up or was removed.
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
    /// Arrived (still holds the seat).
    #[sea_orm(string_value = "checked_in")]
    CheckedIn,
}

impl AttendeeStatus {
    /// Whether the record holds a seat.
    pub fn holds_seat(self) -> bool {
        matches!(self, AttendeeStatus::Confirmed | AttendeeStatus::CheckedIn)
    }
}

/// A row of `attendees`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "attendees")]
pub struct Model {
    /// UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The event.
    pub event_id: Uuid,
    /// The registered user.
    pub user_id: Uuid,
    /// Status.
    pub status: AttendeeStatus,
    /// 1-based place in the queue while waitlisted, else `None`.
    pub waitlist_position: Option<i32>,
    /// Time of the (latest) registration.
    pub registered_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
    /// Optimistic concurrency counter.
    pub version: i64,
    /// Time of the first check-in; `None` until checked in.
    pub checked_in_at: Option<DateTimeUtc>,
}

/// Relations of `attendees`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The event.
    #[sea_orm(
        belongs_to = "super::event::Entity",
        from = "Column::EventId",
        to = "super::event::Column::Id"
    )]
    Event,
}

impl Related<super::event::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Event.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
