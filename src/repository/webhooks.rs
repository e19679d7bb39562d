//! Queries on `webhooks`, `webhook_deliveries` and the dispatcher's cursor.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
    sea_query::{ExprTrait, OnConflict},
};
use uuid::Uuid;

use super::{Result, changes::Position};
use crate::entity::{
    webhook::{self, Entity as Webhooks},
    webhook_delivery::{self, Entity as Deliveries},
};

type Timestamp = chrono::DateTime<chrono::Utc>;

/// Delivery statuses as stored.
pub const PENDING: &str = "pending";
/// Delivered (a 2xx answer).
pub const SUCCEEDED: &str = "succeeded";
/// Given up.
pub const FAILED: &str = "failed";

/// Inserts a webhook.
pub async fn insert(db: &impl ConnectionTrait, model: webhook::Model) -> Result<webhook::Model> {
    let active: webhook::ActiveModel = model.into();
    Ok(Webhooks::insert(active).exec_with_returning(db).await?)
}

/// The webhook with this id.
pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<webhook::Model>> {
    Ok(Webhooks::find_by_id(id).one(db).await?)
}

/// The webhook with this id, locked until the transaction ends (PostgreSQL).
pub async fn find_for_update(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<webhook::Model>> {
    Ok(Webhooks::find_by_id(id).lock_exclusive().one(db).await?)
}

/// One page of webhooks, oldest first (`owner`: only theirs), and how many there are.
pub async fn page(
    db: &impl ConnectionTrait,
    owner: Option<Uuid>,
    limit: u64,
    offset: u64,
) -> Result<(Vec<webhook::Model>, u64)> {
    let mut query = Webhooks::find();
    if let Some(owner) = owner {
        query = query.filter(webhook::Column::OwnerId.eq(owner));
    }
    let total = query.clone().count(db).await?;
    let items = query
        .order_by_asc(webhook::Column::CreatedAt)
        .order_by_asc(webhook::Column::Id)
        .limit(limit)
        .offset(offset)
        .all(db)
        .await?;
    Ok((items, total))
}

/// Writes a webhook's changed fields (the caller bumped its version).
pub async fn update(db: &impl ConnectionTrait, model: webhook::Model) -> Result<webhook::Model> {
    let active: webhook::ActiveModel = model.into();
    // Every column is written: the model is the whole new row.
    Ok(active.reset_all().update(db).await?)
}

/// Deletes a webhook and (by cascade) its deliveries.
pub async fn delete(db: &impl ConnectionTrait, id: Uuid) -> Result<bool> {
    Ok(Webhooks::delete_by_id(id).exec(db).await?.rows_affected > 0)
}

/// Every active webhook.
pub async fn all_active(db: &impl ConnectionTrait) -> Result<Vec<webhook::Model>> {
    Ok(Webhooks::find()
        .filter(webhook::Column::Active.eq(true))
        .all(db)
        .await?)
}

/// The dispatcher's position in the global feed, locked until the transaction ends so that
/// one dispatcher at a time (across instances) moves it.
pub async fn lock_cursor(db: &impl ConnectionTrait) -> Result<Position> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "SELECT txid, last_id FROM webhook_cursor WHERE id = 1 FOR UPDATE",
        _ => "SELECT txid, last_id FROM webhook_cursor WHERE id = 1",
    };
    let row = db
        .query_one_raw(Statement::from_string(backend, sql))
        .await?;
    Ok(match row {
        Some(row) => Position {
            txid: row.try_get("", "txid")?,
            id: row.try_get("", "last_id")?,
        },
        None => Position::default(),
    })
}

/// Moves the dispatcher's position.
pub async fn set_cursor(db: &impl ConnectionTrait, to: Position) -> Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        "UPDATE webhook_cursor SET txid = $1, last_id = $2 WHERE id = 1",
        [to.txid.into(), to.id.into()],
    ))
    .await?;
    Ok(())
}

/// Inserts deliveries, skipping any (webhook, change) pair that already has one.
pub async fn insert_deliveries(
    db: &impl ConnectionTrait,
    rows: Vec<webhook_delivery::Model>,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let models = rows
        .into_iter()
        .map(webhook_delivery::ActiveModel::from)
        .collect::<Vec<_>>();
    Deliveries::insert_many(models)
        .on_conflict(
            OnConflict::columns([
                webhook_delivery::Column::WebhookId,
                webhook_delivery::Column::ChangeId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// One page of a webhook's deliveries, newest first, and how many there are.
pub async fn deliveries_page(
    db: &impl ConnectionTrait,
    webhook_id: Uuid,
    limit: u64,
    offset: u64,
) -> Result<(Vec<webhook_delivery::Model>, u64)> {
    let query = Deliveries::find().filter(webhook_delivery::Column::WebhookId.eq(webhook_id));
    let total = query.clone().count(db).await?;
    let items = query
        .order_by_desc(webhook_delivery::Column::CreatedAt)
        .order_by_desc(webhook_delivery::Column::ChangeId)
        .order_by_desc(webhook_delivery::Column::Id)
        .limit(limit)
        .offset(offset)
        .all(db)
        .await?;
    Ok((items, total))
}

/// A webhook's delivery.
pub async fn find_delivery(
    db: &impl ConnectionTrait,
    webhook_id: Uuid,
    id: Uuid,
) -> Result<Option<webhook_delivery::Model>> {
    Ok(Deliveries::find_by_id(id)
        .filter(webhook_delivery::Column::WebhookId.eq(webhook_id))
        .one(db)
        .await?)
}

/// Queues a delivery again from now, with a fresh retry window.
pub async fn requeue(
    db: &impl ConnectionTrait,
    id: Uuid,
    now: Timestamp,
    give_up_at: Timestamp,
) -> Result<()> {
    Deliveries::update_many()
        .col_expr(webhook_delivery::Column::Status, PENDING.into())
        .col_expr(webhook_delivery::Column::NextAttemptAt, Some(now).into())
        .col_expr(webhook_delivery::Column::GiveUpAt, give_up_at.into())
        .filter(webhook_delivery::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

#[derive(FromQueryResult)]
struct IdRow {
    id: Uuid,
}

/// The ids of up to `limit` due deliveries (see [`claim_due`]), locked when `lock` (and on
/// PostgreSQL, skipping rows another transaction holds).
async fn due_ids(
    db: &impl ConnectionTrait,
    now: Timestamp,
    limit: u64,
    lock: bool,
) -> Result<Vec<Uuid>> {
    let backend = db.get_database_backend();
    let lock = match backend {
        DbBackend::Postgres if lock => "FOR UPDATE OF d SKIP LOCKED",
        _ => "",
    };
    let sql = format!(
        "SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
         WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND w.active = $2 \
         AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.webhook_id = d.webhook_id \
         AND e.event_id = d.event_id AND e.status = 'pending' AND e.seq < d.seq) \
         ORDER BY d.next_attempt_at, d.change_id LIMIT $3 {lock}"
    );
    Ok(IdRow::find_by_statement(Statement::from_sql_and_values(
        backend,
        sql,
        [now.into(), true.into(), (limit as i64).into()],
    ))
    .all(db)
    .await?
    .into_iter()
    .map(|r| r.id)
    .collect())
}

/// Whether any delivery is due at `now`: a read that takes no lock, so that an idle
/// dispatcher never begins a write.
pub async fn any_due(db: &impl ConnectionTrait, now: Timestamp) -> Result<bool> {
    Ok(!due_ids(db, now, 1, false).await?.is_empty())
}

/// The dispatcher's position, read without a lock.
pub async fn cursor(db: &impl ConnectionTrait) -> Result<Position> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT txid, last_id FROM webhook_cursor WHERE id = 1",
        ))
        .await?;
    Ok(match row {
        Some(row) => Position {
            txid: row.try_get("", "txid")?,
            id: row.try_get("", "last_id")?,
        },
        None => Position::default(),
    })
}

/// Claims up to `limit` due deliveries of active webhooks: pending, due by `now`, and with
/// no earlier pending delivery of the same webhook and event (so each (webhook, event) goes
/// in `seq` order). Claiming counts the attempt and moves the delivery to `lease_until`: if
/// the process dies before recording the result, the delivery is due again then.
/// PostgreSQL: `FOR UPDATE SKIP LOCKED`, so instances never claim the same rows.
pub async fn claim_due(
    db: &impl ConnectionTrait,
    now: Timestamp,
    lease_until: Timestamp,
    limit: u64,
) -> Result<Vec<webhook_delivery::Model>> {
    let ids = due_ids(db, now, limit, true).await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Deliveries::update_many()
        .col_expr(
            webhook_delivery::Column::Attempts,
            sea_orm::sea_query::Expr::col(webhook_delivery::Column::Attempts).add(1),
        )
        .col_expr(
            webhook_delivery::Column::NextAttemptAt,
            Some(lease_until).into(),
        )
        .filter(webhook_delivery::Column::Id.is_in(ids.clone()))
        .exec(db)
        .await?;
    Ok(Deliveries::find()
        .filter(webhook_delivery::Column::Id.is_in(ids))
        .order_by_asc(webhook_delivery::Column::ChangeId)
        .all(db)
        .await?)
}

/// The outcome of one attempt, as stored.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `pending` (retry at `next_attempt_at`), `succeeded` or `failed`.
    pub status: &'static str,
    /// HTTP status received.
    pub status_code: Option<i32>,
    /// Why it failed.
    pub error: Option<String>,
    /// When to try again (pending only).
    pub next_attempt_at: Option<Timestamp>,
    /// The delivery's `attempts` when this attempt claimed it: if another claim came since
    /// (the lease ran out), that one's outcome counts and this one is dropped.
    pub attempt: i32,
}

/// Records an attempt's outcome, unless a later claim of the delivery superseded it;
/// whether it did. Every outcome passes here, so here it is counted for `/metrics`.
pub async fn record_outcome(db: &impl ConnectionTrait, id: Uuid, outcome: Outcome) -> Result<bool> {
    let status = outcome.status;
    let result = Deliveries::update_many()
        .col_expr(webhook_delivery::Column::Status, outcome.status.into())
        .col_expr(
            webhook_delivery::Column::LastStatusCode,
            outcome.status_code.into(),
        )
        .col_expr(webhook_delivery::Column::LastError, outcome.error.into())
        .col_expr(
            webhook_delivery::Column::NextAttemptAt,
            outcome.next_attempt_at.into(),
        )
        .filter(webhook_delivery::Column::Id.eq(id))
        .filter(webhook_delivery::Column::Attempts.eq(outcome.attempt))
        .exec(db)
        .await?;
    let recorded = result_rows(result);
    if recorded {
        crate::metric::webhook_delivery(match status {
            SUCCEEDED => "succeeded",
            FAILED => "failed",
            _ => "retrying",
        });
    }
    Ok(recorded)
}

fn result_rows(result: sea_orm::UpdateResult) -> bool {
    result.rows_affected > 0
}

/// A webhook's attempt succeeded: it is no longer failing.
pub async fn mark_succeeding(db: &impl ConnectionTrait, id: Uuid) -> Result<()> {
    Webhooks::update_many()
        .col_expr(
            webhook::Column::FailingSince,
            Option::<Timestamp>::None.into(),
        )
        .filter(webhook::Column::Id.eq(id))
        .filter(webhook::Column::FailingSince.is_not_null())
        .exec(db)
        .await?;
    Ok(())
}

/// A webhook's attempt failed: it is failing since now, unless it already was.
pub async fn mark_failing(db: &impl ConnectionTrait, id: Uuid, now: Timestamp) -> Result<()> {
    Webhooks::update_many()
        .col_expr(webhook::Column::FailingSince, Some(now).into())
        .filter(webhook::Column::Id.eq(id))
        .filter(webhook::Column::FailingSince.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Deactivates a webhook that has been failing since before `cutoff`; whether it did.
pub async fn deactivate_if_failing_since(
    db: &impl ConnectionTrait,
    id: Uuid,
    cutoff: Timestamp,
    reason: &str,
    now: Timestamp,
) -> Result<bool> {
    let result = Webhooks::update_many()
        .col_expr(webhook::Column::Active, false.into())
        .col_expr(
            webhook::Column::DisabledReason,
            Some(reason.to_owned()).into(),
        )
        .col_expr(webhook::Column::UpdatedAt, now.into())
        .col_expr(
            webhook::Column::Version,
            sea_orm::sea_query::Expr::col(webhook::Column::Version).add(1),
        )
        .filter(webhook::Column::Id.eq(id))
        .filter(webhook::Column::Active.eq(true))
        .filter(webhook::Column::FailingSince.lte(cutoff))
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Pending deliveries (for metrics and tests).
pub async fn count_pending(db: &impl ConnectionTrait) -> Result<u64> {
    Ok(Deliveries::find()
        .filter(webhook_delivery::Column::Status.eq(PENDING))
        .count(db)
        .await?)
}
