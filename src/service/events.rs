//! Events: creation, visibility, listing, JSON Patch with status moves and capacity rules.

use std::sync::Arc;

use json_patch::Patch;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;
use validator::Validate;

use super::{
    Begun, Caller, Error, Result, begin_write,
    changes::{self, ChangeFeed, Recorded},
    commit_or_rollback,
    idempotency::{Idempotency, Keyed, Written},
    patch::{self, Access, Precondition},
    policy::{self, Action, Standing},
    totals::EventCountCache,
    waitlist::promote_waitlist,
};
use crate::{
    entity::event::{self, EventStatus},
    model::{
        AttendeeRead, ChangeType, EventCreate, EventFilter, EventPatchView, EventRead, EventSort,
        Page, field_errors,
    },
    repository::{
        self,
        events::{CountScope, EventFields, EventOrder, EventQuery, Visibility},
    },
    time::{UtcDateTime, now},
};

/// The status moves an event may make.
fn is_allowed_move(from: EventStatus, to: EventStatus) -> bool {
    use EventStatus::*;
    matches!(
        (from, to),
        (Draft, Published) | (Draft, Cancelled) | (Published, Cancelled) | (Published, Completed)
    )
}

fn status_name(s: EventStatus) -> &'static str {
    match s {
        EventStatus::Draft => "draft",
        EventStatus::Published => "published",
        EventStatus::Cancelled => "cancelled",
        EventStatus::Completed => "completed",
    }
}

/// Finds an event the caller may see, with their standing, locking it when `db` is a write
/// transaction.
pub(crate) async fn visible_for_update(
    db: &impl ConnectionTrait,
    caller: Option<&Caller>,
    id: Uuid,
) -> Result<(event::Model, Standing)> {
    let event = repository::events::find_for_update(db, id).await?;
    policy::visible(db, caller, event).await
}

/// Finds an event the caller may see, with their standing.
pub(crate) async fn visible(
    db: &impl ConnectionTrait,
    caller: Option<&Caller>,
    id: Uuid,
) -> Result<(event::Model, Standing)> {
    let event = repository::events::find_by_id(db, id).await?;
    policy::visible(db, caller, event).await
}

/// Events.
#[derive(Clone)]
pub struct EventService {
    db: DatabaseConnection,
    event_counts: Arc<EventCountCache>,
    changes: ChangeFeed,
    idempotency: Idempotency,
}

impl EventService {
    /// The service over a pool; `event_counts` is shared with every service that changes
    /// events, and its writes wake the change feed's streams.
    pub fn new(
        db: DatabaseConnection,
        event_counts: Arc<EventCountCache>,
        changes: ChangeFeed,
        idempotency: Idempotency,
    ) -> Self {
        Self {
            db,
            event_counts,
            changes,
            idempotency,
        }
    }

    /// Creates an event organized by the caller.
    #[tracing::instrument(skip_all)]
    pub async fn create(
        &self,
        caller: &Caller,
        input: EventCreate,
        key: Option<Keyed<'_, EventRead>>,
    ) -> Result<Written<EventRead>> {
        input
            .validate()
            .map_err(|e| Error::Validation(field_errors(&e)))?;
        let fields = EventFields {
            title: input.title.trim().to_owned(),
            description: input.description,
            location: input.location,
            starts_at: input.starts_at.0,
            ends_at: input.ends_at.0,
            capacity: input.capacity.map(|c| c as i32),
            waitlist_enabled: input.waitlist_enabled,
            status: input.status.map(Into::into).unwrap_or(EventStatus::Draft),
            visibility: input.visibility.into(),
        };
        let now = now();
        let claim = self.idempotency.claim(key)?;
        let write = match begin_write(&self.db, &claim).await? {
            Begun::Write(write) => write,
            Begun::Replay(answer) => return Ok(answer),
        };
        let result = async {
            let txn = write.txn();
            let created =
                repository::events::insert(txn, Uuid::now_v7(), caller.id, fields, now).await?;
            let read = EventRead::from(created.clone());
            let recorded = vec![Recorded::new(ChangeType::EventCreated, &read)];
            changes::record(txn, &created, Some(caller.id), now, recorded).await?;
            Ok(read)
        }
        .await;
        let created = commit_or_rollback(write, result).await?;
        self.event_counts.invalidate();
        Ok(created)
    }

    /// Events the caller may see, filtered and sorted.
    pub async fn list(
        &self,
        caller: Option<&Caller>,
        filter: EventFilter,
        limit: u32,
        offset: u64,
    ) -> Result<Page<EventRead>> {
        let filter = event_query(filter);
        let visibility = policy::event_scope(caller);
        let total = match visibility {
            Visibility::All => self.remembered_total(CountScope::All, &filter).await?,
            Visibility::ListedAndOwn { viewer } => {
                let listed = self.remembered_total(CountScope::Listed, &filter).await?;
                let own_unlisted = match viewer {
                    Some(viewer) => {
                        repository::events::count(&self.db, CountScope::UnlistedOf(viewer), &filter)
                            .await?
                    }
                    None => 0,
                };
                listed + own_unlisted
            }
        };
        let items =
            repository::events::page(&self.db, visibility, &filter, limit as u64, offset).await?;
        Ok(Page {
            items: items.into_iter().map(EventRead::from).collect(),
            total,
            limit,
            offset,
        })
    }

    /// The number of events in `scope` matching `filter`, remembered for a moment.
    async fn remembered_total(&self, scope: CountScope, filter: &EventQuery) -> Result<u64> {
        let key = format!("{scope:?}|{filter:?}");
        if let Some(total) = self.event_counts.get(&key) {
            return Ok(total);
        }
        let generation = self.event_counts.generation();
        let total = repository::events::count(&self.db, scope, filter).await?;
        self.event_counts.put(key, generation, total);
        Ok(total)
    }

    /// One event, if the caller may see it.
    pub async fn get(&self, caller: Option<&Caller>, id: Uuid) -> Result<EventRead> {
        let Some(event) = repository::events::find_by_id(&self.db, id).await? else {
            return Err(Error::NotFound("event"));
        };
        let standing = policy::standing_for(&self.db, caller, Action::See, &event).await?;
        if policy::may(standing, Action::See, &event) {
            Ok(event.into())
        } else {
            Err(Error::NotFound("event"))
        }
    }

    /// Applies a JSON Patch to an event (organizer or admin), enforcing status moves and
    /// capacity rules, and promoting waitlisted attendees when seats appear — all in one
    /// transaction holding the event's row lock.
    #[tracing::instrument(skip_all, fields(event_id = %id))]
    pub async fn patch(
        &self,
        caller: &Caller,
        id: Uuid,
        ops: &Patch,
        precondition: Option<&Precondition>,
        key: Option<Keyed<'_, EventRead>>,
    ) -> Result<Written<EventRead>> {
        let claim = self.idempotency.claim(key)?;
        let write = match begin_write(&self.db, &claim).await? {
            Begun::Write(write) => write,
            Begun::Replay(answer) => return Ok(answer),
        };
        let now = now();
        let result = async {
            let txn = write.txn();
            let patched = apply_patch_locked(txn, caller, id, ops, precondition, now).await?;
            if let Some(recorded) = patched.changes {
                changes::record(txn, &patched.event, Some(caller.id), now, recorded).await?;
            }
            Ok(EventRead::from(patched.event))
        }
        .await;
        let updated = commit_or_rollback(write, result).await?;
        // A status, start or title change moves the event between filters.
        self.event_counts.invalidate();
        self.changes.hub().wake(id);
        Ok(updated)
    }

    /// Deletes an event and its attendee records (organizer or admin).
    #[tracing::instrument(skip_all, fields(event_id = %id))]
    pub async fn delete(
        &self,
        caller: &Caller,
        id: Uuid,
        precondition: Option<&Precondition>,
        key: Option<Keyed<'_, ()>>,
    ) -> Result<Written<()>> {
        let claim = self.idempotency.claim(key)?;
        let write = match begin_write(&self.db, &claim).await? {
            Begun::Write(write) => write,
            Begun::Replay(answer) => return Ok(answer),
        };
        let result = async {
            let txn = write.txn();
            let (event, standing) = visible_for_update(txn, Some(caller), id).await?;
            policy::require(
                standing,
                Action::Delete,
                &event,
                "only the organizer or an administrator may delete this event",
            )?;
            Precondition::check(precondition, event.version)?;
            record_deletion(txn, event, caller, now()).await
        }
        .await;
        let deleted = commit_or_rollback(write, result).await?;
        self.event_counts.invalidate();
        self.changes.hub().wake(id);
        Ok(deleted)
    }
}

/// The API's list filter in the repository's terms.
fn event_query(filter: EventFilter) -> EventQuery {
    EventQuery {
        status: filter.status.map(Into::into),
        organizer_id: filter.organizer_id,
        starts_after: filter.starts_after.map(|t| t.0),
        starts_before: filter.starts_before.map(|t| t.0),
        q: filter.q,
        order: match filter.sort {
            EventSort::StartsAt => EventOrder::StartsAt,
            EventSort::StartsAtDesc => EventOrder::StartsAtDesc,
            EventSort::CreatedAt => EventOrder::CreatedAt,
            EventSort::CreatedAtDesc => EventOrder::CreatedAtDesc,
            EventSort::Title => EventOrder::Title,
        },
    }
}

/// Records an event's `event.deleted` (with its last state), then deletes it and its
/// attendee records. The caller holds the row lock.
pub(crate) async fn record_deletion(
    txn: &impl ConnectionTrait,
    event: event::Model,
    actor: &Caller,
    now: UtcDateTime,
) -> Result<()> {
    let last = repository::events::advance_change_seq(txn, event.id, 1)
        .await?
        .ok_or(Error::NotFound("event"))?;
    let recorded = vec![Recorded::new(
        ChangeType::EventDeleted,
        &EventRead::from(last.clone()),
    )];
    changes::record(txn, &last, Some(actor.id), now, recorded).await?;
    repository::events::delete(txn, event.id).await?;
    Ok(())
}

/// A patched event and the changes to record (`None` when the patch changed nothing).
struct Patched {
    event: event::Model,
    changes: Option<Vec<Recorded>>,
}

/// Applies a patch inside the caller's transaction, holding the event's row lock.
async fn apply_patch_locked(
    txn: &impl ConnectionTrait,
    caller: &Caller,
    id: Uuid,
    ops: &Patch,
    precondition: Option<&Precondition>,
    now: UtcDateTime,
) -> Result<Patched> {
    let (current, standing) = visible_for_update(txn, Some(caller), id).await?;
    policy::require(
        standing,
        Action::Change,
        &current,
        "only the organizer, a co-organizer or an administrator may change this event",
    )?;
    Precondition::check(precondition, current.version)?;
    let before = EventPatchView::from(&current);
    let after = patch::apply(&before, ops, |member| match member {
        "title" | "description" | "location" | "starts_at" | "ends_at" | "capacity"
        | "waitlist_enabled" | "status" | "visibility" => Access::Writable,
        _ => Access::ReadOnly,
    })?;
    if after == before {
        return Ok(Patched {
            event: current,
            changes: None,
        });
    }
    if matches!(
        current.status,
        EventStatus::Cancelled | EventStatus::Completed
    ) {
        return Err(Error::conflict(format!(
            "the event is {}; it accepts no changes",
            status_name(current.status)
        )));
    }
    let new_status: EventStatus = after.status.into();
    if new_status != current.status && !is_allowed_move(current.status, new_status) {
        return Err(Error::conflict(format!(
            "an event cannot move from {} to {}",
            status_name(current.status),
            status_name(new_status)
        )));
    }
    let capacity = after.capacity.map(|c| c as i32);
    if let Some(c) = capacity
        && c < current.confirmed_count
    {
        return Err(Error::conflict(format!(
            "capacity {c} is below the {} confirmed attendees",
            current.confirmed_count
        )));
    }
    let fields = EventFields {
        title: after.title.trim().to_owned(),
        description: after.description,
        location: after.location,
        starts_at: after.starts_at.0,
        ends_at: after.ends_at.0,
        capacity,
        waitlist_enabled: after.waitlist_enabled,
        status: new_status,
        visibility: after.visibility.into(),
    };
    let updated = repository::events::update_fields(txn, id, fields, now)
        .await?
        .ok_or(Error::NotFound("event"))?;
    let read = EventRead::from(updated.clone());
    // More seats (or no limit) let the queue move up, oldest first.
    let (event, promoted) = promote_waitlist(txn, updated, now).await?;
    let mut recorded = vec![Recorded::new(ChangeType::EventUpdated, &read)];
    recorded.extend(
        promoted
            .iter()
            .map(|a| Recorded::new(ChangeType::AttendeePromoted, &AttendeeRead::from(a.clone()))),
    );
    Ok(Patched {
        event,
        changes: Some(recorded),
    })
}
