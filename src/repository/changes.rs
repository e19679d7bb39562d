//! Queries on `changes`, the outbox of the change feed.

use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, Set, Statement,
};
use uuid::Uuid;

use super::Result;
use crate::entity::change::{self, Entity as Changes};

type Timestamp = chrono::DateTime<chrono::Utc>;

/// A change to insert; `txid` is filled in by the database.
#[derive(Debug, Clone)]
pub struct NewChange {
    /// Event.
    pub event_id: Uuid,
    /// Per-event sequence number.
    pub seq: i64,
    /// Change type.
    pub kind: &'static str,
    /// When.
    pub occurred_at: Timestamp,
    /// Who.
    pub actor_id: Option<Uuid>,
    /// Counts after the change.
    pub confirmed_count: i32,
    /// Counts after the change.
    pub waitlist_count: i32,
    /// Capacity after the change.
    pub capacity: Option<i32>,
    /// The resource after the change, JSON text.
    pub data: String,
}

/// Inserts the changes of one write in one statement.
pub async fn insert(db: &impl ConnectionTrait, rows: Vec<NewChange>) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let models = rows.into_iter().map(|c| change::ActiveModel {
        id: NotSet,
        event_id: Set(c.event_id),
        seq: Set(c.seq),
        kind: Set(c.kind.to_owned()),
        occurred_at: Set(c.occurred_at),
        actor_id: Set(c.actor_id),
        confirmed_count: Set(c.confirmed_count),
        waitlist_count: Set(c.waitlist_count),
        capacity: Set(c.capacity),
        data: Set(c.data),
        // The column's default: the transaction id on PostgreSQL, 0 on SQLite.
        txid: NotSet,
    });
    Changes::insert_many(models)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// An event's changes with `seq > after`, oldest first.
pub async fn for_event(
    db: &impl ConnectionTrait,
    event_id: Uuid,
    after: i64,
    limit: u64,
) -> Result<Vec<change::Model>> {
    Ok(Changes::find()
        .filter(change::Column::EventId.eq(event_id))
        .filter(change::Column::Seq.gt(after))
        .order_by_asc(change::Column::Seq)
        .limit(limit)
        .all(db)
        .await?)
}

/// The smallest `seq` still stored for an event, if any.
pub async fn first_seq(db: &impl ConnectionTrait, event_id: Uuid) -> Result<Option<i64>> {
    Ok(Changes::find()
        .select_only()
        .column(change::Column::Seq)
        .filter(change::Column::EventId.eq(event_id))
        .order_by_asc(change::Column::Seq)
        .limit(1)
        .into_tuple::<i64>()
        .one(db)
        .await?)
}

/// The last change recorded for an event (for a deleted event: its `event.deleted`).
pub async fn last_for_event(
    db: &impl ConnectionTrait,
    event_id: Uuid,
) -> Result<Option<change::Model>> {
    Ok(Changes::find()
        .filter(change::Column::EventId.eq(event_id))
        .order_by_desc(change::Column::Seq)
        .limit(1)
        .one(db)
        .await?)
}

/// A position in the global feed: the rows after `(txid, id)` in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// Transaction id of the last row served (0 on SQLite).
    pub txid: i64,
    /// Row id of the last row served.
    pub id: i64,
}

/// Every event's changes after `from`, in `(txid, id)` order, that can never be preceded by
/// a change committed later.
///
/// PostgreSQL: only rows of transactions older than the oldest one still running
/// (`pg_snapshot_xmin`) are served. Any transaction that commits later has a txid at least
/// that xmin, so it sorts after every row served now, and a cursor never skips it.
/// SQLite: writes are serialised (`BEGIN IMMEDIATE`), so ids are in commit order and every
/// committed row can be served.
pub async fn global_after(
    db: &impl ConnectionTrait,
    from: Position,
    limit: u64,
) -> Result<Vec<change::Model>> {
    let backend = db.get_database_backend();
    let horizon = match backend {
        DbBackend::Postgres => "AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
        _ => "",
    };
    let sql = format!(
        "SELECT id, event_id, seq, kind, occurred_at, actor_id, confirmed_count, waitlist_count, \
         capacity, data, txid FROM changes WHERE (txid > $1 OR (txid = $1 AND id > $2)) {horizon} \
         ORDER BY txid, id LIMIT $3"
    );
    let stmt = Statement::from_sql_and_values(
        backend,
        sql,
        [from.txid.into(), from.id.into(), (limit as i64).into()],
    );
    Ok(change::Model::find_by_statement(stmt).all(db).await?)
}

/// Where retention has deleted up to in the global order ((0, 0): nothing yet).
pub async fn swept_up_to(db: &impl ConnectionTrait) -> Result<Position> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT txid, last_id FROM change_sweeps WHERE id = 1",
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

/// Deletes, in the global order, up to `batch` of the oldest changes that occurred before
/// `cutoff`, stopping at the first younger one so that what is gone is always a prefix of the
/// feed, and records how far it went. Returns how many rows went.
pub async fn sweep_before(db: &impl ConnectionTrait, cutoff: Timestamp, batch: u64) -> Result<u64> {
    let oldest: Vec<(i64, i64, Timestamp)> = Changes::find()
        .select_only()
        .column(change::Column::Txid)
        .column(change::Column::Id)
        .column(change::Column::OccurredAt)
        .order_by_asc(change::Column::Txid)
        .order_by_asc(change::Column::Id)
        .limit(batch)
        .into_tuple()
        .all(db)
        .await?;
    let expired: Vec<(i64, i64)> = oldest
        .into_iter()
        .take_while(|(_, _, at)| *at < cutoff)
        .map(|(txid, id, _)| (txid, id))
        .collect();
    let Some(&(txid, last_id)) = expired.last() else {
        return Ok(0);
    };
    let result = Changes::delete_many()
        .filter(change::Column::Id.is_in(expired.iter().map(|(_, id)| *id)))
        .exec(db)
        .await?;
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        "UPDATE change_sweeps SET txid = $1, last_id = $2 WHERE id = 1",
        [txid.into(), last_id.into()],
    ))
    .await?;
    Ok(result.rows_affected)
}
