//! The `users` table.

use sea_orm::entity::prelude::*;

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Role {
    /// An ordinary account.
    #[sea_orm(string_value = "member")]
    Member,
    /// May see and change everything.
    #[sea_orm(string_value = "admin")]
    Admin,
}

/// A row of `users`. `Debug` leaves the password hash out, so no log can carry it.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Email as given (trimmed).
    pub email: String,
    /// Lower-cased email; the unique key that makes email comparison case-insensitive.
    #[sea_orm(unique)]
    pub email_normalized: String,
    /// Display name, trimmed.
    pub full_name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Role.
    pub role: Role,
    /// Creation time (UTC, microseconds).
    pub created_at: DateTimeUtc,
    /// Last change (UTC, microseconds).
    pub updated_at: DateTimeUtc,
    /// Optimistic concurrency counter, starts at 1.
    pub version: i64,
}

/// Relations of `users`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("users::Model")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("full_name", &self.full_name)
            .field("password_hash", &"[redacted]")
            .field("role", &self.role)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}
