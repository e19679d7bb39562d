//! The `refresh_tokens` table.

use sea_orm::entity::prelude::*;

/// A row of `refresh_tokens`: one issued refresh token. The token itself is never stored.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
pub struct Model {
    /// UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The login this token descends from; revoking a login deletes its family.
    pub family_id: Uuid,
    /// The user signed in.
    pub user_id: Uuid,
    /// Lower-case hex SHA-256 of the token.
    #[sea_orm(unique)]
    pub token_hash: String,
    /// Issue time (UTC, microseconds).
    pub created_at: DateTimeUtc,
    /// The token is refused from this instant on.
    pub expires_at: DateTimeUtc,
    /// When the token was exchanged for a new one; `None` while it is the family's current one.
    pub spent_at: Option<DateTimeUtc>,
}

/// Relations of `refresh_tokens`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
