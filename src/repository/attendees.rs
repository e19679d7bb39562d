//! Queries on `attendees`: registration, status changes and the dense waitlist queue.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, Statement,
    sea_query::{Expr, ExprTrait, OnConflict},
};
use uuid::Uuid;

use super::Result;
use crate::{
    entity::{
        attendee::{self, AttendeeStatus, Entity as Attendees},
        event,
    },
    time::UtcDateTime,
};

/// Inserts a registration, or reactivates the user's cancelled record for the event (which
/// goes to the back of the queue). `None` when the user already has an active record.
pub async fn upsert_registration(
    db: &impl ConnectionTrait,
    event_id: Uuid,
    user_id: Uuid,
    status: AttendeeStatus,
    waitlist_position: Option<i32>,
    now: UtcDateTime,
) -> Result<Option<attendee::Model>> {
    let model = attendee::ActiveModel {
        id: Set(Uuid::now_v7()),
        event_id: Set(event_id),
        user_id: Set(user_id),
        status: Set(status),
        waitlist_position: Set(waitlist_position),
        registered_at: Set(now),
        updated_at: Set(now),
        version: Set(1),
        checked_in_at: Set(None),
    };
    let on_conflict = OnConflict::columns([attendee::Column::EventId, attendee::Column::UserId])
        .update_columns([
            attendee::Column::Status,
            attendee::Column::WaitlistPosition,
            attendee::Column::RegisteredAt,
            attendee::Column::UpdatedAt,
            attendee::Column::CheckedInAt,
        ])
        .value(
            attendee::Column::Version,
            Expr::col((Attendees, attendee::Column::Version)).add(1),
        )
        .action_and_where(
            Expr::col((Attendees, attendee::Column::Status)).eq(AttendeeStatus::Cancelled),
        )
        .to_owned();
    match Attendees::insert(model)
        .on_conflict(on_conflict)
        .exec_with_returning(db)
        .await
    {
        Ok(row) => Ok(Some(row)),
        // The conflict's WHERE refused: an active record exists.
        Err(DbErr::RecordNotInserted) | Err(DbErr::RecordNotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The attendee record `id` of event `event_id`.
pub async fn find(
    db: &impl ConnectionTrait,
    event_id: Uuid,
    id: Uuid,
) -> Result<Option<attendee::Model>> {
    Ok(Attendees::find_by_id(id)
        .filter(attendee::Column::EventId.eq(event_id))
        .one(db)
        .await?)
}

/// A page of an event's attendees by registration time, and the number of matches.
pub async fn list_for_event(
    db: &impl ConnectionTrait,
    event_id: Uuid,
    status: Option<AttendeeStatus>,
    limit: u64,
    offset: u64,
) -> Result<(Vec<attendee::Model>, u64)> {
    let mut query = Attendees::find().filter(attendee::Column::EventId.eq(event_id));
    if let Some(status) = status {
        query = query.filter(attendee::Column::Status.eq(status));
    }
    let total = query.clone().count(db).await?;
    let items = query
        .order_by_asc(attendee::Column::RegisteredAt)
        .order_by_asc(attendee::Column::Id)
        .limit(limit)
        .offset(offset)
        .all(db)
        .await?;
    Ok((items, total))
}

/// A page of a user's records with their events, by registration time, and the total.
pub async fn list_for_user(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    status: Option<AttendeeStatus>,
    limit: u64,
    offset: u64,
) -> Result<(Vec<(attendee::Model, event::Model)>, u64)> {
    let mut query = Attendees::find().filter(attendee::Column::UserId.eq(user_id));
    if let Some(status) = status {
        query = query.filter(attendee::Column::Status.eq(status));
    }
    let total = query.clone().count(db).await?;
    let rows = query
        .find_also_related(event::Entity)
        .order_by_asc(attendee::Column::RegisteredAt)
        .order_by_asc(attendee::Column::Id)
        .limit(limit)
        .offset(offset)
        .all(db)
        .await?;
    let items = rows
        .into_iter()
        .filter_map(|(a, e)| e.map(|e| (a, e)))
        .collect();
    Ok((items, total))
}

/// The user's active (non-cancelled) records, ordered by event id (the lock order).
pub async fn active_for_user(
    db: &impl ConnectionTrait,
    user_id: Uuid,
) -> Result<Vec<attendee::Model>> {
    Ok(Attendees::find()
        .filter(attendee::Column::UserId.eq(user_id))
        .filter(attendee::Column::Status.ne(AttendeeStatus::Cancelled))
        .order_by_asc(attendee::Column::EventId)
        .all(db)
        .await?)
}

/// Sets a record's status (and position), bumping its version.
pub async fn set_status(
    db: &impl ConnectionTrait,
    id: Uuid,
    status: AttendeeStatus,
    waitlist_position: Option<i32>,
    now: UtcDateTime,
) -> Result<Option<attendee::Model>> {
    let mut update = Attendees::update_many();
    if status == AttendeeStatus::CheckedIn {
        update = update.col_expr(attendee::Column::CheckedInAt, Expr::value(now));
    }
    let rows = update
        .col_expr(attendee::Column::Status, Expr::value(status))
        .col_expr(
            attendee::Column::WaitlistPosition,
            Expr::value(waitlist_position),
        )
        .col_expr(attendee::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            attendee::Column::Version,
            Expr::col(attendee::Column::Version).add(1),
        )
        .filter(attendee::Column::Id.eq(id))
        .exec_with_returning(db)
        .await?;
    Ok(rows.into_iter().next())
}

/// Moves everyone queued behind `position` up by `places`, after those places were vacated
/// (one cancellation, or the head of the queue promoted).
pub async fn move_queue_up(
    db: &impl ConnectionTrait,
    event_id: Uuid,
    position: i32,
    places: i32,
) -> Result<()> {
    Attendees::update_many()
        .col_expr(
            attendee::Column::WaitlistPosition,
            Expr::col(attendee::Column::WaitlistPosition).sub(places),
        )
        // The record's representation changed: its version (and ETag) must too.
        .col_expr(
            attendee::Column::Version,
            Expr::col(attendee::Column::Version).add(1),
        )
        .filter(attendee::Column::EventId.eq(event_id))
        .filter(attendee::Column::Status.eq(AttendeeStatus::Waitlisted))
        .filter(attendee::Column::WaitlistPosition.gt(position))
        .exec(db)
        .await?;
    Ok(())
}

/// Confirms the first `count` of the queue and moves the rest up; returns how many moved.
pub async fn promote_head(
    db: &impl ConnectionTrait,
    event_id: Uuid,
    count: i32,
    now: UtcDateTime,
) -> Result<Vec<attendee::Model>> {
    // Their queue order, before the UPDATE clears their positions.
    let head: Vec<Uuid> = Attendees::find()
        .select_only()
        .column(attendee::Column::Id)
        .filter(attendee::Column::EventId.eq(event_id))
        .filter(attendee::Column::Status.eq(AttendeeStatus::Waitlisted))
        .filter(attendee::Column::WaitlistPosition.lte(count))
        .order_by_asc(attendee::Column::WaitlistPosition)
        .into_tuple()
        .all(db)
        .await?;
    if head.is_empty() {
        return Ok(Vec::new());
    }
    let mut promoted = Attendees::update_many()
        .col_expr(
            attendee::Column::Status,
            Expr::value(AttendeeStatus::Confirmed),
        )
        .col_expr(
            attendee::Column::WaitlistPosition,
            Expr::value(Option::<i32>::None),
        )
        .col_expr(attendee::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            attendee::Column::Version,
            Expr::col(attendee::Column::Version).add(1),
        )
        .filter(attendee::Column::Id.is_in(head.clone()))
        .exec_with_returning(db)
        .await?;
    promoted.sort_by_key(|a| head.iter().position(|id| *id == a.id));
    let n = promoted.len() as i32;
    move_queue_up(db, event_id, n, n).await?;
    Ok(promoted)
}

/// The event's records among `ids` (at most a check-in batch: 1,000).
pub async fn find_many(
    db: &impl ConnectionTrait,
    event_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<attendee::Model>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(Attendees::find()
        .filter(attendee::Column::EventId.eq(event_id))
        .filter(attendee::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?)
}

/// Checks in the event's confirmed records among `scans` (record id, time of its first
/// scan) with one statement; records no longer confirmed are left alone. Returns the
/// records checked in. The caller holds the event's row lock.
pub async fn check_in_many(
    db: &impl ConnectionTrait,
    event_id: Uuid,
    scans: &[(Uuid, UtcDateTime)],
    now: UtcDateTime,
) -> Result<Vec<attendee::Model>> {
    if scans.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    // Both backends name the columns of a bare VALUES list `column1`, `column2`.
    let mut values = Vec::with_capacity(scans.len() * 2 + 2);
    values.push(event_id.into());
    values.push(now.into());
    let rows = scans
        .iter()
        .enumerate()
        .map(|(i, (id, at))| {
            values.push((*id).into());
            values.push((*at).into());
            format!("(${}, ${})", 2 * i + 3, 2 * i + 4)
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "UPDATE attendees SET status = 'checked_in', checked_in_at = v.column2, \
         updated_at = $2, version = version + 1 \
         FROM (VALUES {rows}) AS v \
         WHERE attendees.id = v.column1 AND attendees.event_id = $1 \
         AND attendees.status = 'confirmed' \
         RETURNING id, event_id, user_id, status, waitlist_position, registered_at, updated_at, \
         version, checked_in_at"
    );
    Ok(
        attendee::Model::find_by_statement(Statement::from_sql_and_values(backend, sql, values))
            .all(db)
            .await?,
    )
}
