//! The `invitations` table.

use sea_orm::entity::prelude::*;

/// A row of `invitations`. The token itself is never stored.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invitations")]
pub struct Model {
    /// UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The event it admits to.
    pub event_id: Uuid,
    /// Lower-case hex SHA-256 of the token.
    #[sea_orm(unique)]
    pub token_hash: String,
    /// Registrations it admits.
    pub max_uses: i32,
    /// Registrations it admitted.
    pub uses: i32,
    /// Refused from this instant on.
    pub expires_at: DateTimeUtc,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTimeUtc>,
    /// The user who created it (kept when that account is deleted).
    pub created_by: Uuid,
    /// Creation time.
    pub created_at: DateTimeUtc,
}

/// Relations of `invitations`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
