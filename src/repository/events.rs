//! Queries on `events`, including the atomic seat counters.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Select, Set,
    sea_query::{Expr, ExprTrait, Func, LikeExpr, Query},
};
use uuid::Uuid;

use super::{Result, users::contains_pattern};
use crate::{
    entity::{
        attendee::{self, AttendeeStatus},
        event::{self, Entity as Events, EventStatus, Visibility as EventVisibility},
        event_staff,
    },
    time::UtcDateTime,
};

/// An event's own fields, as stored (trimmed, validated by the service).
pub struct EventFields {
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Location.
    pub location: String,
    /// Start.
    pub starts_at: UtcDateTime,
    /// End.
    pub ends_at: UtcDateTime,
    /// Seats, or unlimited.
    pub capacity: Option<i32>,
    /// Waitlist switch.
    pub waitlist_enabled: bool,
    /// Status.
    pub status: EventStatus,
    /// Who may see it.
    pub visibility: EventVisibility,
}

/// Inserts an event organized by `organizer_id`, with no attendees and version 1.
pub async fn insert(
    db: &impl ConnectionTrait,
    id: Uuid,
    organizer_id: Uuid,
    f: EventFields,
    now: UtcDateTime,
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
        // Its `event.created` change is seq 1.
        change_seq: Set(1),
        visibility: Set(f.visibility),
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

/// Which events a list shows (the policy decides; see `service::policy::event_scope`).
#[derive(Debug, Clone, Copy)]
pub enum Visibility {
    /// Every event.
    All,
    /// Listed events (public, not drafts), plus those `viewer` organizes, staffs or, once
    /// they are not drafts, holds an active registration for.
    ListedAndOwn {
        /// The signed-in caller, if any.
        viewer: Option<Uuid>,
    },
}

/// Which events a count covers. A viewer's total is the listed events (the same for everyone,
/// so worth remembering) plus the unlisted ones they may see (a few indexed lookups).
#[derive(Debug, Clone, Copy)]
pub enum CountScope {
    /// Every event.
    All,
    /// Public events that are not drafts.
    Listed,
    /// Unlisted events (drafts, private events) this user may see.
    UnlistedOf(Uuid),
}

/// Public and not a draft.
fn listed() -> Condition {
    Condition::all()
        .add(event::Column::Status.ne(EventStatus::Draft))
        .add(event::Column::Visibility.eq(EventVisibility::Public))
}

/// Drafts and private events.
fn unlisted() -> Condition {
    Condition::any()
        .add(event::Column::Status.eq(EventStatus::Draft))
        .add(event::Column::Visibility.eq(EventVisibility::Private))
}

/// The events `viewer` organizes, staffs or (once not drafts) holds an active registration for.
fn own(viewer: Uuid) -> Condition {
    let staffed = Query::select()
        .column(event_staff::Column::EventId)
        .from(event_staff::Entity)
        .and_where(event_staff::Column::UserId.eq(viewer))
        .to_owned();
    let registered = Query::select()
        .column(attendee::Column::EventId)
        .from(attendee::Entity)
        .and_where(attendee::Column::UserId.eq(viewer))
        .and_where(attendee::Column::Status.ne(AttendeeStatus::Cancelled))
        .to_owned();
    Condition::any()
        .add(event::Column::OrganizerId.eq(viewer))
        .add(event::Column::Id.in_subquery(staffed))
        .add(
            Condition::all()
                .add(event::Column::Status.ne(EventStatus::Draft))
                .add(event::Column::Id.in_subquery(registered)),
        )
}

impl Visibility {
    fn condition(self) -> Condition {
        match self {
            Visibility::All => Condition::all(),
            Visibility::ListedAndOwn { viewer: None } => listed(),
            Visibility::ListedAndOwn {
                viewer: Some(viewer),
            } => Condition::all().add(Condition::any().add(listed()).add(own(viewer))),
        }
    }
}

impl CountScope {
    fn condition(self) -> Condition {
        match self {
            CountScope::All => Condition::all(),
            CountScope::Listed => listed(),
            CountScope::UnlistedOf(viewer) => Condition::all().add(unlisted()).add(own(viewer)),
        }
    }
}

/// What a list of events asks for, in the repository's terms (the service converts the API's
/// filter into it).
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only this status.
    pub status: Option<EventStatus>,
    /// Only this organizer.
    pub organizer_id: Option<Uuid>,
    /// Starting at or after.
    pub starts_after: Option<UtcDateTime>,
    /// Starting before.
    pub starts_before: Option<UtcDateTime>,
    /// Text in title or description (case-insensitive).
    pub q: Option<String>,
    /// Order of the page.
    pub order: EventOrder,
}

/// Orders of an event list; ties are broken by id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EventOrder {
    /// Earliest start first.
    #[default]
    StartsAt,
    /// Latest start first.
    StartsAtDesc,
    /// Oldest first.
    CreatedAt,
    /// Newest first.
    CreatedAtDesc,
    /// Alphabetical by title.
    Title,
}

/// The events within `scope` matching `filter`; `None` when nothing can match.
fn matching(scope: Condition, filter: &EventQuery) -> Option<Select<Events>> {
    if filter.q.as_deref().is_some_and(|q| q.contains('\0')) {
        // Stored text never holds NUL (and PostgreSQL cannot even compare it): no match.
        return None;
    }
    let mut cond = scope;
    if let Some(status) = filter.status {
        cond = cond.add(event::Column::Status.eq(status));
    }
    if let Some(organizer) = filter.organizer_id {
        cond = cond.add(event::Column::OrganizerId.eq(organizer));
    }
    if let Some(after) = filter.starts_after {
        cond = cond.add(event::Column::StartsAt.gte(after));
    }
    if let Some(before) = filter.starts_before {
        cond = cond.add(event::Column::StartsAt.lt(before));
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
    filter: &EventQuery,
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
    filter: &EventQuery,
    limit: u64,
    offset: u64,
) -> Result<Vec<event::Model>> {
    let Some(query) = matching(visibility.condition(), filter) else {
        return Ok(Vec::new());
    };
    let query = match filter.order {
        EventOrder::StartsAt => query.order_by_asc(event::Column::StartsAt),
        EventOrder::StartsAtDesc => query.order_by_desc(event::Column::StartsAt),
        EventOrder::CreatedAt => query.order_by_asc(event::Column::CreatedAt),
        EventOrder::CreatedAtDesc => query.order_by_desc(event::Column::CreatedAt),
        EventOrder::Title => query.order_by_asc(event::Column::Title),
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
    now: UtcDateTime,
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
        .col_expr(event::Column::Visibility, Expr::value(c.visibility))
        .col_expr(event::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            event::Column::Version,
            Expr::col(event::Column::Version).add(1),
        )
        // Its `event.updated` change.
        .col_expr(
            event::Column::ChangeSeq,
            Expr::col(event::Column::ChangeSeq).add(1),
        )
        .filter(event::Column::Id.eq(id))
        .exec_with_returning(db)
        .await?;
    Ok(rows.into_iter().next())
}

/// What a registration was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A seat.
    Seat,
    /// A place on the waitlist (1-based).
    Waitlist(i32),
}

/// Why an event takes no registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It is not published (a draft, cancelled or completed).
    NotPublished,
    /// It has ended.
    Ended,
    /// No seat is free for a newcomer and it has no waitlist.
    FullWithoutWaitlist,
}

/// One condition on an event row in the registration rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Term {
    Published,
    NotEnded,
    UnlimitedCapacity,
    SeatFree,
    NobodyWaiting,
    WaitlistEnabled,
    LimitedCapacity,
}

/// The registration rule, stated once as data and read two ways: as SQL for the atomic
/// UPDATE that claims a place, and in Rust to explain a refusal. There is no negation, so
/// SQL's NULL (unknown, hence not matched) and Rust's `false` agree term by term.
#[derive(Debug, Clone)]
enum Rule {
    Term(Term),
    All(Vec<Rule>),
    Any(Vec<Rule>),
}

impl Rule {
    /// The rule as a SQL condition on the `events` row.
    fn condition(&self, now: UtcDateTime) -> Condition {
        match self {
            Rule::Term(term) => Condition::all().add(match term {
                Term::Published => event::Column::Status.eq(EventStatus::Published),
                Term::NotEnded => event::Column::EndsAt.gt(now),
                Term::UnlimitedCapacity => event::Column::Capacity.is_null(),
                Term::SeatFree => {
                    Expr::col(event::Column::ConfirmedCount).lt(Expr::col(event::Column::Capacity))
                }
                Term::NobodyWaiting => event::Column::WaitlistCount.eq(0),
                Term::WaitlistEnabled => event::Column::WaitlistEnabled.eq(true),
                Term::LimitedCapacity => event::Column::Capacity.is_not_null(),
            }),
            Rule::All(rules) => rules
                .iter()
                .fold(Condition::all(), |c, r| c.add(r.condition(now))),
            Rule::Any(rules) => rules
                .iter()
                .fold(Condition::any(), |c, r| c.add(r.condition(now))),
        }
    }

    /// Whether the rule holds for an event row, read in Rust.
    fn holds(&self, e: &event::Model, now: UtcDateTime) -> bool {
        match self {
            Rule::Term(term) => match term {
                Term::Published => e.status == EventStatus::Published,
                Term::NotEnded => e.ends_at > now,
                Term::UnlimitedCapacity => e.capacity.is_none(),
                Term::SeatFree => e.capacity.is_some_and(|c| e.confirmed_count < c),
                Term::NobodyWaiting => e.waitlist_count == 0,
                Term::WaitlistEnabled => e.waitlist_enabled,
                Term::LimitedCapacity => e.capacity.is_some(),
            },
            Rule::All(rules) => rules.iter().all(|r| r.holds(e, now)),
            Rule::Any(rules) => rules.iter().any(|r| r.holds(e, now)),
        }
    }
}

/// An event accepts registrations while it is published and has not ended.
fn open_for_registration() -> Rule {
    Rule::All(vec![
        Rule::Term(Term::Published),
        Rule::Term(Term::NotEnded),
    ])
}

/// A newcomer gets a seat when one is free and nobody is waiting: a newcomer never jumps the
/// queue (while anyone waits, the event is full anyway; see `promote_head`).
fn seat_for_newcomer() -> Rule {
    Rule::All(vec![
        Rule::Any(vec![
            Rule::Term(Term::UnlimitedCapacity),
            Rule::Term(Term::SeatFree),
        ]),
        Rule::Term(Term::NobodyWaiting),
    ])
}

/// Otherwise a newcomer queues when the event has a waitlist (and so a limit).
fn waitlist_place_for_newcomer() -> Rule {
    Rule::All(vec![
        Rule::Term(Term::WaitlistEnabled),
        Rule::Term(Term::LimitedCapacity),
    ])
}

/// What a registration for the event in this state at `now` gets, by the same rule
/// `claim_seat_or_waitlist_place` applies in SQL: the place it would be given, or why not.
pub fn place_for_newcomer(e: &event::Model, now: UtcDateTime) -> Result<Place, Refusal> {
    if !open_for_registration().holds(e, now) {
        Err(if Rule::Term(Term::Published).holds(e, now) {
            Refusal::Ended
        } else {
            Refusal::NotPublished
        })
    } else if seat_for_newcomer().holds(e, now) {
        Ok(Place::Seat)
    } else if waitlist_place_for_newcomer().holds(e, now) {
        Ok(Place::Waitlist(e.waitlist_count + 1))
    } else {
        Err(Refusal::FullWithoutWaitlist)
    }
}

/// Gives a registration its place with one conditional UPDATE of the event row: a seat when
/// `seat_for_newcomer` holds, else a waitlist place when `waitlist_place_for_newcomer`
/// does. Both counters are computed from the row as it was, so two registrations can never
/// take the same seat or place, and a registration waits for the row lock once, whichever
/// it gets. The place is read back from the row: a seat leaves `waitlist_count` at 0 (it
/// requires an empty waitlist), a waitlist place makes it at least 1 and is the new count.
/// `None` when the event takes no registration (see `place_for_newcomer` for why).
pub async fn claim_seat_or_waitlist_place(
    db: &impl ConnectionTrait,
    id: Uuid,
    now: UtcDateTime,
) -> Result<Option<(Place, event::Model)>> {
    let seat = seat_for_newcomer().condition(now);
    let rows = Events::update_many()
        .col_expr(
            event::Column::ConfirmedCount,
            Expr::col(event::Column::ConfirmedCount).add(Expr::case(seat.clone(), 1).finally(0)),
        )
        .col_expr(
            event::Column::WaitlistCount,
            Expr::col(event::Column::WaitlistCount).add(Expr::case(seat.clone(), 0).finally(1)),
        )
        // The registration's `attendee.registered` change, in the same UPDATE.
        .col_expr(
            event::Column::ChangeSeq,
            Expr::col(event::Column::ChangeSeq).add(1),
        )
        .filter(event::Column::Id.eq(id))
        .filter(open_for_registration().condition(now))
        .filter(
            Condition::any()
                .add(seat)
                .add(waitlist_place_for_newcomer().condition(now)),
        )
        .exec_with_returning(db)
        .await?;
    Ok(rows.into_iter().next().map(|e| {
        let place = match e.waitlist_count {
            0 => Place::Seat,
            position => Place::Waitlist(position),
        };
        (place, e)
    }))
}

/// Adds to the counters of an event (negative to remove) and advances its `change_seq` by
/// the `changes` the write records. The caller holds the row lock.
pub async fn adjust_counts(
    db: &impl ConnectionTrait,
    id: Uuid,
    confirmed_delta: i32,
    waitlist_delta: i32,
    changes: i64,
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
        .col_expr(
            event::Column::ChangeSeq,
            Expr::col(event::Column::ChangeSeq).add(changes),
        )
        .filter(event::Column::Id.eq(id))
        .exec_with_returning(db)
        .await?;
    Ok(rows.into_iter().next())
}

/// Advances an event's `change_seq` by the `changes` a write records when no other UPDATE of
/// the row does. The caller holds the row lock.
pub async fn advance_change_seq(
    db: &impl ConnectionTrait,
    id: Uuid,
    changes: i64,
) -> Result<Option<event::Model>> {
    adjust_counts(db, id, 0, 0, changes).await
}

/// The events a user organizes, locked, in id order (the order every multi-event write
/// locks in).
pub async fn organized_by_for_update(
    db: &impl ConnectionTrait,
    user_id: Uuid,
) -> Result<Vec<event::Model>> {
    Ok(Events::find()
        .filter(event::Column::OrganizerId.eq(user_id))
        .order_by_asc(event::Column::Id)
        .lock_exclusive()
        .all(db)
        .await?)
}

/// Whether the user organizes a published event that has not ended.
pub async fn organizes_live_event(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    now: UtcDateTime,
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
