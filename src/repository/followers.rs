//! `change_followers` (PostgreSQL): which instances follow which events live, so that the
//! `changes` trigger notifies only for followed events.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use uuid::Uuid;

use super::Result;

/// Records that `instance` follows `event_id`, or refreshes the record.
///
/// First waits for the writes in progress on the event: `FOR SHARE` on the event row queues
/// behind every transaction that holds it (every write that records a change does), and
/// every later write queues behind this one. So a change either committed before this
/// returns (and the caller reads it from the table) or is inserted after the row is visible
/// (and notifies).
pub async fn follow(db: &DatabaseConnection, event_id: Uuid, instance: Uuid) -> Result<()> {
    let txn = db.begin().await?;
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT 1 FROM events WHERE id = $1 FOR SHARE",
        [event_id.into()],
    ))
    .await?;
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO change_followers (event_id, instance_id, seen_at) VALUES ($1, $2, now()) \
         ON CONFLICT (event_id, instance_id) DO UPDATE SET seen_at = excluded.seen_at",
        [event_id.into(), instance.into()],
    ))
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Refreshes `instance`'s records of `events`; returns how many it found (fewer than
/// `events.len()` when some expired meanwhile).
pub async fn refresh(db: &impl ConnectionTrait, instance: Uuid, events: &[Uuid]) -> Result<u64> {
    if events.is_empty() {
        return Ok(0);
    }
    let result = db
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE change_followers SET seen_at = now() \
             WHERE instance_id = $1 AND event_id = ANY($2)",
            [instance.into(), events.to_vec().into()],
        ))
        .await?;
    Ok(result.rows_affected())
}

/// Deletes the records nobody refreshed for `seconds` (streams closed, instances gone).
pub async fn expire(db: &impl ConnectionTrait, seconds: u64) -> Result<u64> {
    let result = db
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "DELETE FROM change_followers WHERE seen_at < now() - make_interval(secs => $1)",
            [(seconds as f64).into()],
        ))
        .await?;
    Ok(result.rows_affected())
}

/// Deletes every record of `instance` (it stops).
pub async fn forget(db: &impl ConnectionTrait, instance: Uuid) -> Result<u64> {
    let result = db
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "DELETE FROM change_followers WHERE instance_id = $1",
            [instance.into()],
        ))
        .await?;
    Ok(result.rows_affected())
}
