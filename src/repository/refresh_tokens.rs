//! Queries on `refresh_tokens`.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, sea_query::Expr,
};
use uuid::Uuid;

use super::Result;
use crate::entity::refresh_token::{self, Entity as RefreshTokens};

/// A refresh token to insert.
pub struct NewRefreshToken {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// The login it descends from.
    pub family_id: Uuid,
    /// The user.
    pub user_id: Uuid,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// Issue time.
    pub created_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// Inserts an unspent token.
pub async fn insert(db: &impl ConnectionTrait, new: NewRefreshToken) -> Result<()> {
    refresh_token::ActiveModel {
        id: Set(new.id),
        family_id: Set(new.family_id),
        user_id: Set(new.user_id),
        token_hash: Set(new.token_hash),
        created_at: Set(new.created_at),
        expires_at: Set(new.expires_at),
        spent_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Marks the token with this hash spent, if it is unspent and unexpired; returns the row when
/// this call spent it. One conditional UPDATE: of two concurrent calls, exactly one wins.
pub async fn spend(
    db: &impl ConnectionTrait,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<refresh_token::Model>> {
    let rows = RefreshTokens::update_many()
        .col_expr(refresh_token::Column::SpentAt, Expr::value(Some(now)))
        .filter(refresh_token::Column::TokenHash.eq(token_hash))
        .filter(refresh_token::Column::SpentAt.is_null())
        .filter(refresh_token::Column::ExpiresAt.gt(now))
        .exec_with_returning(db)
        .await?;
    Ok(rows.into_iter().next())
}

/// The token with this hash, spent or not.
pub async fn find_by_hash(
    db: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<refresh_token::Model>> {
    Ok(RefreshTokens::find()
        .filter(refresh_token::Column::TokenHash.eq(token_hash))
        .one(db)
        .await?)
}

/// Deletes every token of a login; returns how many there were.
pub async fn delete_family(db: &impl ConnectionTrait, family_id: Uuid) -> Result<u64> {
    Ok(RefreshTokens::delete_many()
        .filter(refresh_token::Column::FamilyId.eq(family_id))
        .exec(db)
        .await?
        .rows_affected)
}

/// Deletes a login's tokens that expired before `now` (they can no longer be replayed).
pub async fn delete_expired_in_family(
    db: &impl ConnectionTrait,
    family_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64> {
    Ok(RefreshTokens::delete_many()
        .filter(refresh_token::Column::FamilyId.eq(family_id))
        .filter(refresh_token::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?
        .rows_affected)
}
