//! The `idempotency_keys` table.

use sea_orm::entity::prelude::*;

/// A row of `idempotency_keys`: the stored answer of a write that carried an
/// `Idempotency-Key`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    /// The caller's user id, or `anonymous`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub scope: String,
    /// The key as the client sent it.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// Lower-case hex SHA-256 of method, path with query and body.
    pub request_hash: String,
    /// HTTP status of the stored answer.
    pub status: i32,
    /// JSON object of the replayed headers.
    pub headers: String,
    /// The body bytes, or nonce and ciphertext when `sealed`.
    pub body: Vec<u8>,
    /// Whether `body` is sealed (answers that carry credentials).
    pub sealed: bool,
    /// When the answer was stored (UTC, microseconds).
    pub created_at: DateTimeUtc,
    /// From this instant the key may be swept and used again.
    pub expires_at: DateTimeUtc,
}

/// Relations of `idempotency_keys`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
