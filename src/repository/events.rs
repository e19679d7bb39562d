//! Queries on `events`, including the atomic seat counters.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Select, Set,
    sea_query::{Expr, ExprTrait, Func, LikeExpr},
};
use uuid::Uuid;

use super::{Result, users::contains_pattern};
use crate::{
    entity::event::{self, Entity as Events, EventStatus},
    model::{EventFilter, EventSort},
};

type Now = chrono::DateTime<chrono::Utc>;

/// An event's own fields, as stored (trimmed, validated by the service).
pub struct EventFields {
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Location.
    pub location: String,
    /// Start.
    pub starts_at: Now,
    /// End.
    pub ends_at: Now,
    /// Seats, or unlimited.
    pub capacity: Option<i32>,
    /// Waitlist switch.
    pub waitlist_enabled: bool,
    /// Status.
    pub status: EventStatus,
}

/// Inserts an event organized by `organizer_id`, with no attendees and version 1.
pub async fn insert(
    db: &impl ConnectionTrait,
    id: Uuid,
    organizer_id: Uuid,
    f: EventFields,
    now: Now,
) -> Result<event::Model> {
    let model = event::ActiveModel {
        id: Set(id),
        title: Set(f.title),
        description: Set(f.description),
        location: Set(f.location),
        starts_at: Set(f.starts_at),
        ends_at: Set(f.ends_at),
        capacity: Set(f.capacity),
        waitlist_enabled: Set(f.waitlist_enabled),
        status: Set(f.status),
        organizer_id: Set(organizer_id),
        confirmed_count: Set(0),
        waitlist_count: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        version: Set(1),
    };
    Ok(model.insert(db).await?)
}

/// The event with this id.
pub async fn find_by_id(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<event::Model>> {
    Ok(Events::find_by_id(id).one(db).await?)
}

/// The event with this id, locked until the transaction ends (`FOR UPDATE` on PostgreSQL;
/// SQLite's write transactions are already exclusive).
pub async fn find_for_update(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<event::Model>> {
    Ok(Events::find_by_id(id).lock_exclusive().one(db).await?)
}

/// Who is looking at the list.
#[derive(Debug, Clone, Copy)]
pub enum Visibility {
    /// Administrators see everything.
    All,
    /// Everyone else sees non-drafts, plus their own drafts when signed in.
    Public {
        /// The signed-in caller, if any.
        viewer: Option<Uuid>,
    },
}

/// Which events a count covers. A public viewer's total is the non-drafts (the same for
/// everyone, so worth remembering) plus their own drafts (a small indexed count).
#[derive(Debug, Clone, Copy)]
pub enum CountScope {
    /// Every event.
    All,
    /// Every event but drafts.
    NonDrafts,
    /// The drafts organized by this user.
    DraftsOf(Uuid),
}

impl Visibility {
    fn condition(self) -> Condition {
        match self {
            Visibility::All => Condition::all(),
            Visibility::Public { viewer } => {
                let mut visible =
                    Condition::any().add(event::Column::Status.ne(EventStatus::Draft));
                if let Some(viewer) = viewer {
                    visible = visible.add(event::Column::OrganizerId.eq(viewer));
                }
                Condition::all().add(visible)
            }
        }
    }
}

impl CountScope {
    fn condition(self) -> Condition {
        match self {
            CountScope::All => Condition::all(),
            CountScope::NonDrafts => {
                Condition::all().add(event::Column::Status.ne(EventStatus::Draft))
            }
            CountScope::DraftsOf(viewer) => Condition::all()
                .add(event::Column::Status.eq(EventStatus::Draft))
                .add(event::Column::OrganizerId.eq(viewer)),
        }
    }
}

/// The events within `scope` matching `filter`; `None` when nothing can match.
fn matching(scope: Condition, filter: &EventFilter) -> Option<Select<Events>> {
    if filter.q.as_deref().is_some_and(|q| q.contains('\0')) {
        // Stored text never holds NUL (and PostgreSQL cannot even compare it): no match.
        return None;
    }
    let mut cond = scope;
    if let Some(status) = filter.status {
        cond = cond.add(event::Column::Status.eq(EventStatus::from(status)));
    }
    if let Some(organizer) = filter.organizer_id {
        cond = cond.add(event::Column::OrganizerId.eq(organizer));
    }
    if let Some(after) = filter.starts_after {
        cond = cond.add(event::Column::StartsAt.gte(after.0));
    }
    if let Some(before) = filter.starts_before {
        cond = cond.add(event::Column::StartsAt.lt(before.0));
    }
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let pattern = contains_pattern(&q.to_lowercase());
        cond = cond.add(
            Condition::any()
                .add(
                    Expr::expr(Func::lower(Expr::col(event::Column::Title)))
                        .like(LikeExpr::new(pattern.clone()).escape('\\')),
                )
                .add(
                    Expr::expr(Func::lower(Expr::col(event::Column::Description)))
                        .like(LikeExpr::new(pattern).escape('\\')),
                ),
        );
    }
    Some(Events::find().filter(cond))
}

/// How many events within `scope` match `filter` (a scan of the matches).
pub async fn count(
    db: &impl ConnectionTrait,
    scope: CountScope,
    filter: &EventFilter,
) -> Result<u64> {
    match matching(scope.condition(), filter) {
        Some(query) => Ok(query.count(db).await?),
        None => Ok(0),
    }
}

/// A page of the events matching `filter` as `visibility` allows, in the filter's order with
/// ties broken by id.
pub async fn page(
    db: &impl ConnectionTrait,
    visibility: Visibility,
    filter: &EventFilter,
    limit: u64,
    offset: u64,
) -> Result<Vec<event::Model>> {
    let Some(query) = matching(visibility.condition(), filter) else {
        return Ok(Vec::new());
    };
    let query = match filter.sort {
        EventSort::StartsAt => query.order_by_asc(event::Column::StartsAt),
        EventSort::StartsAtDesc => query.order_by_desc(event::Column::StartsAt),
        EventSort::CreatedAt => query.order_by_asc(event::Column::CreatedAt),
        EventSort::CreatedAtDesc => query.order_by_desc(event::Column::CreatedAt),
        EventSort::Title => query.order_by_asc(event::Column::Title),
    };
    Ok(query
        .order_by_asc(event::Column::Id)
        .limit(limit)
        .offset(offset)
        .all(db)
        .await?)
}

/// Writes an event's own fields and bumps its version. The caller holds the row lock.
pub async fn update_fields(
    db: &impl ConnectionTrait,
    id: Uuid,
    c: EventFields,
    now: Now,
) -> Result<Option<event::Model>> {
    let rows = Events::update_many()
        .col_expr(event::Column::Title, Expr::value(c.title))
        .col_expr(event::Column::Description, Expr::value(c.description))
        .col_expr(event::Column::Location, Expr::value(c.location))
        .col_expr(event::Column::StartsAt, Expr::value(c.starts_at))
        .col_expr(event::Column::EndsAt, Expr::value(c.ends_at))
        .col_expr(event::Column::Capacity, Expr::value(c.capacity))
        .col_expr(
            event::Column::WaitlistEnabled,
            Expr::value(c.waitlist_enabled),
        )
        .col_expr(event::Column::Status, Expr::value(c.status))
        .col_expr(event::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            event::Column::Version,
            Expr::col(event::Column::Version).add(1),
        )
        .filter(event::Column::Id.eq(id))
        .exec_with_returning(db)
        .await?;
    Ok(rows.into_iter().next())
}

/// Condition under which an event accepts registrations at `now`.
fn open_for_registration(id: Uuid, now: Now) -> Condition {
    Condition::all()
        .add(event::Column::Id.eq(id))
        .add(event::Column::Status.eq(EventStatus::Published))
        .add(event::Column::EndsAt.gt(now))
}

/// What a registration was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A seat.
    Seat,
    /// A place on the waitlist (1-based).
    Waitlist(i32),
}

/// A newcomer gets a seat when one is free and nobody is waiting: a newcomer never jumps the
/// queue (while anyone waits, the event is full anyway; see `promote_head`).
fn seat_for_newcomer() -> Condition {
    Condition::all()
        .add(
            Condition::any().add(event::Column::Capacity.is_null()).add(
                Expr::col(event::Column::ConfirmedCount).lt(Expr::col(event::Column::Capacity)),
            ),
        )
        .add(event::Column::WaitlistCount.eq(0))
}

/// Gives a registration its place with one conditional UPDATE of the event row: a seat when
/// `seat_for_newcomer` holds, else a waitlist place when the event has a waitlist. Both
/// counters are computed from the row as it was, so two registrations can never take the
/// same seat or place, and a registration waits for the row lock once, whichever it gets.
/// The place is read back from the row: a seat leaves `waitlist_count` at 0 (it requires
/// an empty waitlist), a waitlist place makes it at least 1 and is the new count. `None`
/// when the event takes no registration (not open, or full without a waitlist).
pub async fn take_place(db: &impl ConnectionTrait, id: Uuid, now: Now) -> Result<Option<Place>> {
    let seat = seat_for_newcomer();
    let rows = Events::update_many()
        .col_expr(
            event::Column::ConfirmedCount,
            Expr::col(event::Column::ConfirmedCount).add(Expr::case(seat.clone(), 1).finally(0)),
        )
        .col_expr(
            event::Column::WaitlistCount,
            Expr::col(event::Column::WaitlistCount).add(Expr::case(seat.clone(), 0).finally(1)),
        )
        .filter(open_for_registration(id, now))
        .filter(
            Condition::any().add(seat).add(
                Condition::all()
                    .add(event::Column::WaitlistEnabled.eq(true))
                    .add(event::Column::Capacity.is_not_null()),
            ),
        )
        .exec_with_returning(db)
        .await?;
    Ok(rows.into_iter().next().map(|e| match e.waitlist_count {
        0 => Place::Seat,
        position => Place::Waitlist(position),
    }))
}

/// Adds to the counters of an event (negative to remove). The caller holds the row lock.
pub async fn adjust_counts(
    db: &impl ConnectionTrait,
    id: Uuid,
    confirmed_delta: i32,
    waitlist_delta: i32,
) -> Result<Option<event::Model>> {
    let rows = Events::update_many()
        .col_expr(
            event::Column::ConfirmedCount,
            Expr::col(event::Column::ConfirmedCount).add(confirmed_delta),
        )
        .col_expr(
            event::Column::WaitlistCount,
            Expr::col(event::Column::WaitlistCount).add(waitlist_delta),
        )
        .filter(event::Column::Id.eq(id))
        .exec_with_returning(db)
        .await?;
    Ok(rows.into_iter().next())
}

/// Whether the user organizes a published event that has not ended.
pub async fn organizes_live_event(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    now: Now,
) -> Result<bool> {
    let count = Events::find()
        .filter(event::Column::OrganizerId.eq(user_id))
        .filter(event::Column::Status.eq(EventStatus::Published))
        .filter(event::Column::EndsAt.gt(now))
        .count(db)
        .await?;
    Ok(count > 0)
}

/// Deletes an event (its attendees go with it); whether a row went.
pub async fn delete(db: &impl ConnectionTrait, id: Uuid) -> Result<bool> {
    Ok(Events::delete_by_id(id).exec(db).await?.rows_affected > 0)
}
