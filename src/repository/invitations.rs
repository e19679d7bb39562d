//! Queries on `invitations`. A use is taken by one conditional UPDATE, so concurrent
//! registrations can never take more than `max_uses` (and the table's CHECK backs it).

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::Result;
use crate::{
    entity::invitation::{self, Entity as Invitations},
    time::UtcDateTime,
};

/// A new invitation, as stored.
pub struct NewInvitation {
    /// Its id.
    pub id: Uuid,
    /// The event.
    pub event_id: Uuid,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// Registrations it admits.
    pub max_uses: i32,
    /// End of validity.
    pub expires_at: UtcDateTime,
    /// Its creator.
    pub created_by: Uuid,
}

/// Stores an invitation with no uses.
pub async fn insert(
    db: &impl ConnectionTrait,
    new: NewInvitation,
    now: UtcDateTime,
) -> Result<invitation::Model> {
    Ok(invitation::ActiveModel {
        id: Set(new.id),
        event_id: Set(new.event_id),
        token_hash: Set(new.token_hash),
        max_uses: Set(new.max_uses),
        uses: Set(0),
        expires_at: Set(new.expires_at),
        revoked_at: Set(None),
        created_by: Set(new.created_by),
        created_at: Set(now),
    }
    .insert(db)
    .await?)
}

/// A page of the event's invitations, newest first, and their number.
pub async fn page(
    db: &impl ConnectionTrait,
    event_id: Uuid,
    limit: u64,
    offset: u64,
) -> Result<(Vec<invitation::Model>, u64)> {
    let query = Invitations::find().filter(invitation::Column::EventId.eq(event_id));
    let total = query.clone().count(db).await?;
    let items = query
        .order_by_desc(invitation::Column::CreatedAt)
        .order_by_desc(invitation::Column::Id)
        .limit(limit)
        .offset(offset)
        .all(db)
        .await?;
    Ok((items, total))
}

/// The invitation `id` of event `event_id`.
pub async fn find(
    db: &impl ConnectionTrait,
    event_id: Uuid,
    id: Uuid,
) -> Result<Option<invitation::Model>> {
    Ok(Invitations::find_by_id(id)
        .filter(invitation::Column::EventId.eq(event_id))
        .one(db)
        .await?)
}

/// The invitation whose token hashes to `token_hash`. The lookup goes by the unique index;
/// the service compares the hash again in constant time.
pub async fn find_by_hash(
    db: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<invitation::Model>> {
    Ok(Invitations::find()
        .filter(invitation::Column::TokenHash.eq(token_hash))
        .one(db)
        .await?)
}

/// Revokes an invitation; `None` when it was already revoked (or is gone).
pub async fn revoke(
    db: &impl ConnectionTrait,
    id: Uuid,
    now: UtcDateTime,
) -> Result<Option<invitation::Model>> {
    let rows = Invitations::update_many()
        .col_expr(invitation::Column::RevokedAt, Expr::value(now))
        .filter(invitation::Column::Id.eq(id))
        .filter(invitation::Column::RevokedAt.is_null())
        .exec_with_returning(db)
        .await?;
    Ok(rows.into_iter().next())
}

/// Takes one use of the invitation `id` for event `event_id` if it is still usable (not
/// revoked, not expired at `now`, not used up); `None` otherwise. Concurrent calls queue on
/// the row, and each sees the count the one before it left.
pub async fn take_use(
    db: &impl ConnectionTrait,
    id: Uuid,
    event_id: Uuid,
    now: UtcDateTime,
) -> Result<Option<invitation::Model>> {
    let rows = Invitations::update_many()
        .col_expr(
            invitation::Column::Uses,
            Expr::col(invitation::Column::Uses).add(1),
        )
        .filter(invitation::Column::Id.eq(id))
        .filter(invitation::Column::EventId.eq(event_id))
        .filter(invitation::Column::RevokedAt.is_null())
        .filter(invitation::Column::ExpiresAt.gt(now))
        .filter(Expr::col(invitation::Column::Uses).lt(Expr::col(invitation::Column::MaxUses)))
        .exec_with_returning(db)
        .await?;
    Ok(rows.into_iter().next())
}
