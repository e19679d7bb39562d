//! The `events` table.

use sea_orm::entity::prelude::*;

/// Lifecycle of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum EventStatus {
    /// Visible to its organizer and admins only.
    #[sea_orm(string_value = "draft")]
    Draft,
    /// Public; accepts registrations until it ends.
    #[sea_orm(string_value = "published")]
    Published,
    /// Called off (final).
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
    /// Took place (final).
    #[sea_orm(string_value = "completed")]
    Completed,
}

/// Who may see an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Visibility {
    /// Listed and readable by everyone (drafts excepted).
    #[sea_orm(string_value = "public")]
    Public,
    /// Seen only by its organizer, its staff, administrators and registered users.
    #[sea_orm(string_value = "private")]
    Private,
}

/// A row of `events`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    /// UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Title, trimmed.
    pub title: String,
    /// Description ("" when none).
    pub description: String,
    /// Location ("" when none).
    pub location: String,
    /// Start (UTC).
    pub starts_at: DateTimeUtc,
    /// End (UTC), after the start.
    pub ends_at: DateTimeUtc,
    /// Seats; `None` is unlimited.
    pub capacity: Option<i32>,
    /// Whether a full event queues registrations.
    pub waitlist_enabled: bool,
    /// Lifecycle status.
    pub status: EventStatus,
    /// The user who organizes it.
    pub organizer_id: Uuid,
    /// Confirmed plus checked-in attendees.
    pub confirmed_count: i32,
    /// Waitlisted attendees.
    pub waitlist_count: i32,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change of the event's own fields.
    pub updated_at: DateTimeUtc,
    /// Optimistic concurrency counter of the event's own fields.
    pub version: i64,
    /// `seq` of the last change recorded for the event (the change feed's per-event counter).
    pub change_seq: i64,
    /// Who may see it.
    pub visibility: Visibility,
}

/// Relations of `events`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Registrations for the event.
    #[sea_orm(has_many = "super::attendee::Entity")]
    Attendees,
}

impl Related<super::attendee::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Attendees.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
