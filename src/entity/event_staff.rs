//! The `event_staff` table.

use sea_orm::entity::prelude::*;

/// What a staff member may do for an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum StaffRole {
    /// Everything the organizer may, except deleting the event and managing staff.
    #[sea_orm(string_value = "co_organizer")]
    CoOrganizer,
    /// Lists and reads attendees and checks them in.
    #[sea_orm(string_value = "checker")]
    Checker,
}

/// A row of `event_staff`: one user's role on one event.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "event_staff")]
pub struct Model {
    /// The event.
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: Uuid,
    /// The staff member.
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// Their role.
    pub role: StaffRole,
    /// When they were added (a role change keeps it).
    pub added_at: DateTimeUtc,
}

/// Relations of `event_staff`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
