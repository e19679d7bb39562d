//! Read-only aggregates over attendance, and the export's pages: statistics computed by the
//! database (`GROUP BY` over indexed columns), never by loading rows.

use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Statement, Value};
use uuid::Uuid;

use super::Result;
use crate::{entity::attendee::AttendeeStatus, time::UtcDateTime};

/// `(hour, n)` rows of `table` counted per UTC hour of `column`, the hour as whole hours
/// since the Unix epoch, in the backend's own SQL: timestamps are `timestamptz` on PostgreSQL
/// (truncated to the hour in UTC, whatever the session's time zone, and turned into a number
/// once per group rather than per row) and RFC 3339 text on SQLite.
fn hourly_sql(backend: DbBackend, table: &str, column: &str, filter: &str) -> String {
    match backend {
        DbBackend::Postgres => format!(
            "SELECT CAST(EXTRACT(EPOCH FROM h) AS BIGINT) / 3600 AS hour, n FROM \
             (SELECT date_trunc('hour', {column} AT TIME ZONE 'UTC') AS h, COUNT(*) AS n \
              FROM {table} WHERE {filter} GROUP BY 1) t ORDER BY 1"
        ),
        _ => format!(
            "SELECT CAST(strftime('%s', {column}) AS INTEGER) / 3600 AS hour, COUNT(*) AS n \
             FROM {table} WHERE {filter} GROUP BY 1 ORDER BY 1"
        ),
    }
}

/// Records of one status of an event.
#[derive(Debug, Clone, FromQueryResult)]
pub struct StatusCount {
    /// The status, as stored.
    pub status: String,
    /// How many records have it.
    pub n: i64,
}

/// One hour's count of something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromQueryResult)]
pub struct HourCount {
    /// Whole hours since the Unix epoch (UTC).
    pub hour: i64,
    /// How many in that hour.
    pub n: i64,
}

/// An event's records counted by status.
pub async fn count_by_status(
    db: &impl ConnectionTrait,
    event_id: Uuid,
) -> Result<Vec<StatusCount>> {
    let stmt = Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT status, COUNT(*) AS n FROM attendees WHERE event_id = $1 GROUP BY status",
        [event_id.into()],
    );
    Ok(StatusCount::find_by_statement(stmt).all(db).await?)
}

/// An event's registrations per hour (each record at its latest registration).
pub async fn registrations_per_hour(
    db: &impl ConnectionTrait,
    event_id: Uuid,
) -> Result<Vec<HourCount>> {
    per_hour(db, "attendees", "registered_at", "event_id = $1", event_id).await
}

/// An event's check-ins per hour (each record at its first check-in).
pub async fn check_ins_per_hour(
    db: &impl ConnectionTrait,
    event_id: Uuid,
) -> Result<Vec<HourCount>> {
    per_hour(
        db,
        "attendees",
        "checked_in_at",
        "event_id = $1 AND checked_in_at IS NOT NULL",
        event_id,
    )
    .await
}

/// An event's recorded changes of one type per hour (`attendee.cancelled`): every
/// cancellation still in the change feed, also of records registered again since.
pub async fn changes_per_hour(
    db: &impl ConnectionTrait,
    event_id: Uuid,
    kind: &str,
) -> Result<Vec<HourCount>> {
    // The type is one of ours, never the caller's text; it is still bound, not spliced.
    let backend = db.get_database_backend();
    let stmt = Statement::from_sql_and_values(
        backend,
        hourly_sql(
            backend,
            "changes",
            "occurred_at",
            "event_id = $1 AND kind = $2",
        ),
        [event_id.into(), kind.into()],
    );
    Ok(HourCount::find_by_statement(stmt).all(db).await?)
}

async fn per_hour(
    db: &impl ConnectionTrait,
    table: &str,
    column: &str,
    filter: &str,
    event_id: Uuid,
) -> Result<Vec<HourCount>> {
    let backend = db.get_database_backend();
    let stmt = Statement::from_sql_and_values(
        backend,
        hourly_sql(backend, table, column, filter),
        [event_id.into()],
    );
    Ok(HourCount::find_by_statement(stmt).all(db).await?)
}

/// One line of an attendance export: the record and its user's name and email.
#[derive(Debug, Clone, FromQueryResult)]
pub struct ExportRow {
    /// Record id.
    pub id: Uuid,
    /// The user.
    pub user_id: Uuid,
    /// The user's email.
    pub email: String,
    /// The user's name.
    pub full_name: String,
    /// Status.
    pub status: AttendeeStatus,
    /// Place in the queue while waitlisted.
    pub waitlist_position: Option<i32>,
    /// Latest registration.
    pub registered_at: UtcDateTime,
    /// First check-in.
    pub checked_in_at: Option<UtcDateTime>,
}

/// Where an export page starts: after this `(registered_at, id)`.
pub type ExportCursor = (UtcDateTime, Uuid);

/// Up to `limit` records of an event after `after`, in `(registered_at, id)` order: one
/// index range per page, however deep the export is.
pub async fn export_page(
    db: &impl ConnectionTrait,
    event_id: Uuid,
    status: Option<AttendeeStatus>,
    after: Option<ExportCursor>,
    limit: u64,
) -> Result<Vec<ExportRow>> {
    let mut values: Vec<Value> = vec![event_id.into()];
    let mut filter = String::from("a.event_id = $1");
    if let Some(status) = status {
        values.push(status_text(status).into());
        filter.push_str(&format!(" AND a.status = ${}", values.len()));
    }
    if let Some((at, id)) = after {
        values.push(at.into());
        let at_n = values.len();
        values.push(id.into());
        let id_n = values.len();
        // Spelled out rather than as a row comparison, which SQLite plans less well.
        filter.push_str(&format!(
            " AND (a.registered_at > ${at_n} OR (a.registered_at = ${at_n} AND a.id > ${id_n}))"
        ));
    }
    values.push((limit as i64).into());
    let limit_n = values.len();
    let stmt = Statement::from_sql_and_values(
        db.get_database_backend(),
        format!(
            "SELECT a.id, a.user_id, u.email, u.full_name, a.status, a.waitlist_position, \
             a.registered_at, a.checked_in_at FROM attendees a JOIN users u ON u.id = a.user_id \
             WHERE {filter} ORDER BY a.registered_at, a.id LIMIT ${limit_n}"
        ),
        values,
    );
    Ok(ExportRow::find_by_statement(stmt).all(db).await?)
}

fn status_text(status: AttendeeStatus) -> &'static str {
    match status {
        AttendeeStatus::Confirmed => "confirmed",
        AttendeeStatus::Waitlisted => "waitlisted",
        AttendeeStatus::Cancelled => "cancelled",
        AttendeeStatus::CheckedIn => "checked_in",
    }
}

/// Webhook deliveries neither delivered nor given up, and when the oldest was made.
#[derive(Debug, Clone, Default, FromQueryResult)]
pub struct DeliveryQueue {
    /// How many.
    pub depth: i64,
    /// Creation time of the oldest.
    pub oldest: Option<UtcDateTime>,
}

/// The webhook delivery queue, in one query on the `(status, next_attempt_at)` index.
pub async fn delivery_queue(db: &impl ConnectionTrait) -> Result<DeliveryQueue> {
    let stmt = Statement::from_string(
        db.get_database_backend(),
        "SELECT COUNT(*) AS depth, MIN(created_at) AS oldest FROM webhook_deliveries \
         WHERE status = 'pending'",
    );
    Ok(DeliveryQueue::find_by_statement(stmt)
        .one(db)
        .await?
        .unwrap_or_default())
}
