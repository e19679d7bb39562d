//! Registrations: seats, the waitlist queue, check-in and cancellation.
//!
//! Every change to an event's attendance starts by writing (or locking) the event row, so
//! the row is the per-event lock on PostgreSQL, and SQLite's `BEGIN IMMEDIATE` serialises
//! writers anyway. A free seat is taken by one conditional UPDATE
//! (`... WHERE capacity IS NULL OR confirmed_count < capacity`), backed by a CHECK constraint.

use std::collections::{HashMap, HashSet};

use json_patch::Patch;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

use super::{
    Begun, Caller, Error, Result, begin_write,
    changes::{self, ChangeFeed, Recorded},
    commit_or_rollback,
    events::{visible, visible_for_update},
    idempotency::{Idempotency, Keyed, Written},
    invitations,
    patch::{self, Access, Precondition},
    policy::{self, Action, Standing},
    waitlist::promote_waitlist,
};
use crate::{
    entity::{
        attendee::{self, AttendeeStatus},
        event::{self, EventStatus, Visibility},
    },
    model::{
        AttendeeCreate, AttendeePatchView, AttendeeRead, AttendeeStatus as ApiStatus, ChangeType,
        CheckInBatch, CheckInResults, FieldError, Page, Registration, ScanOutcome, ScanResult,
        Timestamp,
    },
    repository::{
        self,
        events::{Place, Refusal},
    },
    time::{UtcDateTime, now},
};

/// How often a registration retries when the event changes between its UPDATE and the check
/// of why it got no place.
const MAX_SEAT_ATTEMPTS: usize = 5;

/// Registrations.
#[derive(Clone)]
pub struct AttendeeService {
    db: DatabaseConnection,
    changes: ChangeFeed,
    idempotency: Idempotency,
}

impl AttendeeService {
    /// The service over a pool; its writes wake the change feed's streams.
    pub fn new(db: DatabaseConnection, changes: ChangeFeed, idempotency: Idempotency) -> Self {
        Self {
            db,
            changes,
            idempotency,
        }
    }

    /// Registers the caller, or (organizer/admin) another user, for a published event.
    #[tracing::instrument(skip_all, fields(event_id = %event_id))]
    pub async fn register(
        &self,
        caller: &Caller,
        event_id: Uuid,
        input: AttendeeCreate,
        key: Option<Keyed<'_, AttendeeRead>>,
    ) -> Result<Written<AttendeeRead>> {
        let user_id = input.user_id.unwrap_or(caller.id);
        let token_hash = input.invitation.as_deref().map(invitations::token_hash);
        let claim = self.idempotency.claim(key)?;
        let write = match begin_write(&self.db, &claim).await? {
            Begun::Write(write) => write,
            Begun::Replay(answer) => return Ok(answer),
        };
        let now = now();
        let result = async {
            let txn = write.txn();
            let mut standing = None;
            if user_id != caller.id {
                // Checked before any write; the common self-registration skips this read.
                let (event, found) = visible(txn, Some(caller), event_id).await?;
                policy::require(
                    found,
                    Action::RegisterOthers,
                    &event,
                    "only the organizer, a co-organizer or an administrator may register other \
                     users",
                )?;
                standing = Some(found);
            }
            let admission = Admission {
                caller,
                standing,
                token_hash: token_hash.as_deref(),
            };
            let (record, event) = register_user(txn, &admission, event_id, user_id, now).await?;
            let recorded = changes::attendance(ChangeType::AttendeeRegistered, &record, &[]);
            changes::record(txn, &event, Some(caller.id), now, recorded).await?;
            Ok(AttendeeRead::from(record))
        }
        .await;
        let record = commit_or_rollback(write, result).await?;
        self.changes.hub().wake(event_id);
        Ok(record)
    }

    /// An event's attendees (organizer or admin), by registration time.
    pub async fn list(
        &self,
        caller: &Caller,
        event_id: Uuid,
        status: Option<ApiStatus>,
        limit: u32,
        offset: u64,
    ) -> Result<Page<AttendeeRead>> {
        let (event, standing) = visible(&self.db, Some(caller), event_id).await?;
        policy::require(
            standing,
            Action::ReadAttendance,
            &event,
            "only the organizer, the event's staff or an administrator may list attendees",
        )?;
        let (items, total) = repository::attendees::list_for_event(
            &self.db,
            event_id,
            status.map(Into::into),
            limit as u64,
            offset,
        )
        .await?;
        Ok(Page {
            items: items.into_iter().map(AttendeeRead::from).collect(),
            total,
            limit,
            offset,
        })
    }

    /// One record: its user, the organizer or an admin (404 for anyone else).
    pub async fn get(&self, caller: &Caller, event_id: Uuid, id: Uuid) -> Result<AttendeeRead> {
        let (event, standing) = visible(&self.db, Some(caller), event_id).await?;
        let record = repository::attendees::find(&self.db, event_id, id)
            .await?
            .filter(|a| {
                a.user_id == caller.id || policy::may(standing, Action::ReadAttendance, &event)
            })
            .ok_or(Error::NotFound("attendee"))?;
        Ok(record.into())
    }

    /// Applies a JSON Patch on `/status`: cancel (the attendee, organizer or admin) or
    /// check in (organizer or admin).
    #[tracing::instrument(skip_all, fields(event_id = %event_id, attendee_id = %id))]
    pub async fn patch(
        &self,
        caller: &Caller,
        event_id: Uuid,
        id: Uuid,
        ops: &Patch,
        precondition: Option<&Precondition>,
        key: Option<Keyed<'_, AttendeeRead>>,
    ) -> Result<Written<AttendeeRead>> {
        let claim = self.idempotency.claim(key)?;
        let write = match begin_write(&self.db, &claim).await? {
            Begun::Write(write) => write,
            Begun::Replay(answer) => return Ok(answer),
        };
        let now = now();
        let result = async {
            let txn = write.txn();
            let (event, standing, record) = locked_record(txn, caller, event_id, id).await?;
            Precondition::check(precondition, record.version)?;
            let before = AttendeePatchView {
                status: record.status.into(),
            };
            let after = patch::apply(&before, ops, |member| match member {
                "status" => Access::Writable,
                _ => Access::ReadOnly,
            })?;
            let moved = change_status(
                txn,
                caller,
                standing,
                &event,
                record,
                after.status.into(),
                now,
            )
            .await?;
            Ok(AttendeeRead::from(
                moved.record_changes(txn, caller, now).await?,
            ))
        }
        .await;
        let record = commit_or_rollback(write, result).await?;
        self.changes.hub().wake(event_id);
        Ok(record)
    }

    /// Cancels a registration, exactly as patching its status to `cancelled`.
    #[tracing::instrument(skip_all, fields(event_id = %event_id, attendee_id = %id))]
    pub async fn cancel(
        &self,
        caller: &Caller,
        event_id: Uuid,
        id: Uuid,
        precondition: Option<&Precondition>,
        key: Option<Keyed<'_, ()>>,
    ) -> Result<Written<()>> {
        let claim = self.idempotency.claim(key)?;
        let write = match begin_write(&self.db, &claim).await? {
            Begun::Write(write) => write,
            Begun::Replay(answer) => return Ok(answer),
        };
        let now = now();
        let result = async {
            let txn = write.txn();
            let (event, standing, record) = locked_record(txn, caller, event_id, id).await?;
            Precondition::check(precondition, record.version)?;
            let moved = change_status(
                txn,
                caller,
                standing,
                &event,
                record,
                AttendeeStatus::Cancelled,
                now,
            )
            .await?;
            moved.record_changes(txn, caller, now).await.map(drop)
        }
        .await;
        let cancelled = commit_or_rollback(write, result).await?;
        self.changes.hub().wake(event_id);
        Ok(cancelled)
    }

    /// Checks in a batch of scans (organizer, staff, admin) in one transaction: the first
    /// scan of a record wins, and the same batch again changes nothing.
    #[tracing::instrument(skip_all, fields(event_id = %event_id, scans = batch.scans.len()))]
    pub async fn check_in(
        &self,
        caller: &Caller,
        event_id: Uuid,
        batch: CheckInBatch,
        key: Option<Keyed<'_, CheckInResults>>,
    ) -> Result<Written<CheckInResults>> {
        let now = now();
        let scans = scan_times(&batch, now)?;
        let claim = self.idempotency.claim(key)?;
        let write = match begin_write(&self.db, &claim).await? {
            Begun::Write(write) => write,
            Begun::Replay(answer) => return Ok(answer),
        };
        let result = async {
            let txn = write.txn();
            let (event, standing) = visible_for_update(txn, Some(caller), event_id).await?;
            policy::require(
                standing,
                Action::CheckIn,
                &event,
                "only the organizer, the event's staff or an administrator may check in",
            )?;
            if event.status != EventStatus::Published {
                return Err(Error::conflict(
                    "the event is not published; its attendance cannot change",
                ));
            }
            let mut ids: Vec<Uuid> = scans.iter().map(|(id, _)| *id).collect();
            ids.sort_unstable();
            ids.dedup();
            let before: HashMap<Uuid, attendee::Model> =
                repository::attendees::find_many(txn, event_id, &ids)
                    .await?
                    .into_iter()
                    .map(|a| (a.id, a))
                    .collect();
            // The earliest scan of each confirmed record is its check-in time.
            let mut first_scan: HashMap<Uuid, UtcDateTime> = HashMap::new();
            let mut order = Vec::new();
            for (id, at) in &scans {
                if before
                    .get(id)
                    .is_some_and(|a| a.status == AttendeeStatus::Confirmed)
                {
                    first_scan
                        .entry(*id)
                        .and_modify(|t| *t = (*t).min(*at))
                        .or_insert_with(|| {
                            order.push(*id);
                            *at
                        });
                }
            }
            let to_check_in: Vec<(Uuid, UtcDateTime)> =
                order.iter().map(|id| (*id, first_scan[id])).collect();
            let checked: HashMap<Uuid, attendee::Model> =
                repository::attendees::check_in_many(txn, event_id, &to_check_in, now)
                    .await?
                    .into_iter()
                    .map(|a| (a.id, a))
                    .collect();
            let results = scan_results(&scans, &before, &checked);
            if !checked.is_empty() {
                let recorded = order
                    .iter()
                    .filter_map(|id| checked.get(id))
                    .map(|a| {
                        Recorded::new(
                            ChangeType::AttendeeCheckedIn,
                            &AttendeeRead::from(a.clone()),
                        )
                    })
                    .collect();
                changes::record_advancing(txn, event_id, Some(caller.id), now, recorded).await?;
            }
            Ok(CheckInResults { results })
        }
        .await;
        let results = commit_or_rollback(write, result).await?;
        self.changes.hub().wake(event_id);
        Ok(results)
    }

    /// The caller's own records with their events, by registration time.
    pub async fn my_registrations(
        &self,
        caller: &Caller,
        status: Option<ApiStatus>,
        limit: u32,
        offset: u64,
    ) -> Result<Page<Registration>> {
        let (rows, total) = repository::attendees::list_for_user(
            &self.db,
            caller.id,
            status.map(Into::into),
            limit as u64,
            offset,
        )
        .await?;
        Ok(Page {
            items: rows
                .into_iter()
                .map(|(a, e)| Registration {
                    record: a.into(),
                    event: (&e).into(),
                })
                .collect(),
            total,
            limit,
            offset,
        })
    }
}

/// How far ahead of the server's clock a scan may be dated (door devices' clocks drift).
const MAX_SCAN_CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// The batch's scans as (record, time), refusing times from the future.
fn scan_times(batch: &CheckInBatch, now: UtcDateTime) -> Result<Vec<(Uuid, UtcDateTime)>> {
    if batch.scans.is_empty() || batch.scans.len() > 1000 {
        return Err(Error::Validation(vec![FieldError::new(
            "scans",
            "must hold 1 to 1000 scans",
        )]));
    }
    let errors: Vec<FieldError> = batch
        .scans
        .iter()
        .enumerate()
        .filter(|(_, scan)| {
            scan.scanned_at
                .is_some_and(|t| t.0 > now + MAX_SCAN_CLOCK_SKEW)
        })
        .map(|(i, _)| {
            FieldError::new(
                format!("scans[{i}].scanned_at"),
                "must not be in the future",
            )
        })
        .collect();
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    Ok(batch
        .scans
        .iter()
        .map(|scan| (scan.attendee_id, scan.scanned_at.map_or(now, |t| t.0)))
        .collect())
}

/// One result per scan, in order: the first scan of a record checked in by this batch says
/// `checked_in`, any later one `already_checked_in`.
fn scan_results(
    scans: &[(Uuid, UtcDateTime)],
    before: &HashMap<Uuid, attendee::Model>,
    checked: &HashMap<Uuid, attendee::Model>,
) -> Vec<ScanResult> {
    let mut answered = HashSet::new();
    scans
        .iter()
        .map(|(id, _)| {
            let (outcome, record) = match (checked.get(id), before.get(id)) {
                (Some(now_in), _) if answered.insert(*id) => (ScanOutcome::CheckedIn, Some(now_in)),
                (Some(now_in), _) => (ScanOutcome::AlreadyCheckedIn, Some(now_in)),
                (None, Some(a)) if a.status == AttendeeStatus::CheckedIn => {
                    (ScanOutcome::AlreadyCheckedIn, Some(a))
                }
                (None, Some(a)) => (ScanOutcome::NotConfirmed, Some(a)),
                (None, None) => (ScanOutcome::NotFound, None),
            };
            ScanResult {
                attendee_id: *id,
                result: outcome,
                checked_in_at: record
                    .and_then(|a| a.checked_in_at)
                    .filter(|_| {
                        matches!(
                            outcome,
                            ScanOutcome::CheckedIn | ScanOutcome::AlreadyCheckedIn
                        )
                    })
                    .map(Timestamp::from)
                    .into(),
            }
        })
        .collect()
}

/// Who registers, and what admits them to a private event.
struct Admission<'a> {
    /// The caller.
    caller: &'a Caller,
    /// Their standing, when it was already looked up.
    standing: Option<Standing>,
    /// The SHA-256 of the invitation token they sent, if any.
    token_hash: Option<&'a str>,
}

impl Admission<'_> {
    /// The caller's standing with `event` (looked up once).
    async fn standing(&self, txn: &impl ConnectionTrait, event: &event::Model) -> Result<Standing> {
        match self.standing {
            Some(s) => Ok(s),
            None => policy::standing(txn, Some(self.caller), event).await,
        }
    }

    /// Takes a use of the invitation sent, if any, and checks that a private event admits
    /// the caller: by that invitation, or by their standing. Runs after the seat is claimed
    /// (the event row is locked first by every write, invitation rows second), so a refused
    /// registration rolls the seat back with it.
    async fn admit(
        &self,
        txn: &impl ConnectionTrait,
        event: &event::Model,
        now: UtcDateTime,
    ) -> Result<()> {
        let invited = match self.token_hash {
            Some(hash) => invitations::take_use(txn, hash, event.id, now).await?,
            None => false,
        };
        if event.visibility == Visibility::Public {
            return if invited || self.token_hash.is_none() {
                Ok(())
            } else {
                Err(invitations::unusable_on_public_event())
            };
        }
        if invited {
            return Ok(());
        }
        let standing = self.standing(txn, event).await?;
        if policy::may(standing, Action::RegisterOthers, event) || standing == Standing::Registered
        {
            // Organizers need no invitation; a registered user is refused as a duplicate.
            return Ok(());
        }
        if policy::may(standing, Action::See, event) {
            return Err(Error::Forbidden(
                "this private event takes registrations by invitation only".into(),
            ));
        }
        Err(Error::NotFound("event"))
    }

    /// Whether the caller may learn why the event refuses registrations: they may see it, or
    /// hold a usable invitation to it.
    async fn may_see(
        &self,
        txn: &impl ConnectionTrait,
        event: &event::Model,
        now: UtcDateTime,
    ) -> Result<bool> {
        let standing = self.standing(txn, event).await?;
        if policy::may(standing, Action::See, event) {
            return Ok(true);
        }
        match self.token_hash {
            Some(hash) => invitations::is_usable(txn, hash, event.id, now).await,
            None => Ok(false),
        }
    }
}

/// Takes a seat or a place in the queue, then writes the record; on any error the caller
/// rolls back, so a refused registration leaves the counters untouched.
async fn register_user(
    txn: &impl ConnectionTrait,
    admission: &Admission<'_>,
    event_id: Uuid,
    user_id: Uuid,
    now: UtcDateTime,
) -> Result<(attendee::Model, event::Model)> {
    let mut outcome = None;
    for _ in 0..MAX_SEAT_ATTEMPTS {
        if let Some((place, event)) =
            repository::events::claim_seat_or_waitlist_place(txn, event_id, now).await?
        {
            outcome = Some(match place {
                Place::Seat => (AttendeeStatus::Confirmed, None, event),
                Place::Waitlist(position) => (AttendeeStatus::Waitlisted, Some(position), event),
            });
            break;
        }
        // No place: the event refuses registrations, or it changed between the UPDATE and
        // this check (its capacity grew, it was published). Find out which.
        explain_refusal(txn, admission, event_id, now).await?;
    }
    let (status, position, event) =
        outcome.ok_or_else(|| Error::conflict("the event is changing too fast; try again"))?;
    admission.admit(txn, &event, now).await?;
    match repository::attendees::upsert_registration(txn, event_id, user_id, status, position, now)
        .await
    {
        Ok(Some(record)) => Ok((record, event)),
        Ok(None) => Err(Error::conflict(
            "the user is already registered for this event",
        )),
        Err(repository::Error::ForeignKeyViolation(_)) => Err(Error::NotFound("user")),
        Err(e) => Err(e.into()),
    }
}

/// The error for an event that took neither a seat nor a queue place; `Ok` if it could now.
async fn explain_refusal(
    txn: &impl ConnectionTrait,
    admission: &Admission<'_>,
    event_id: Uuid,
    now: UtcDateTime,
) -> Result<()> {
    let event = repository::events::find_by_id(txn, event_id)
        .await?
        .ok_or(Error::NotFound("event"))?;
    if !admission.may_see(txn, &event, now).await? {
        return Err(Error::NotFound("event"));
    }
    // The rule `claim_seat_or_waitlist_place` applied in SQL, read in Rust.
    match repository::events::place_for_newcomer(&event, now) {
        Ok(_) => Ok(()),
        Err(Refusal::NotPublished) => Err(Error::conflict(
            "the event is not published; it accepts no registrations",
        )),
        Err(Refusal::Ended) => Err(Error::conflict(
            "the event has ended; it accepts no registrations",
        )),
        Err(Refusal::FullWithoutWaitlist) => {
            Err(Error::conflict("the event is full and has no waitlist"))
        }
    }
}

/// Locks the event, then finds a record the caller may see.
async fn locked_record(
    txn: &impl ConnectionTrait,
    caller: &Caller,
    event_id: Uuid,
    id: Uuid,
) -> Result<(event::Model, Standing, attendee::Model)> {
    let (event, standing) = visible_for_update(txn, Some(caller), event_id).await?;
    let record = repository::attendees::find(txn, event_id, id)
        .await?
        .filter(|a| a.user_id == caller.id || policy::may(standing, Action::ReadAttendance, &event))
        .ok_or(Error::NotFound("attendee"))?;
    Ok((event, standing, record))
}

/// An attendee's status move and what it did to the event, for the change feed.
struct Moved {
    /// The record after the move.
    record: attendee::Model,
    /// The event after the move and the changes to record; `None` when nothing changed.
    changed: Option<(event::Model, Vec<Recorded>)>,
}

impl Moved {
    /// Records the move's changes in its transaction; returns the record.
    async fn record_changes(
        self,
        txn: &impl ConnectionTrait,
        caller: &Caller,
        now: UtcDateTime,
    ) -> Result<attendee::Model> {
        if let Some((event, recorded)) = self.changed {
            changes::record(txn, &event, Some(caller.id), now, recorded).await?;
        }
        Ok(self.record)
    }
}

/// Applies a status move after checking who may make it and from where.
async fn change_status(
    txn: &impl ConnectionTrait,
    caller: &Caller,
    standing: Standing,
    event: &event::Model,
    record: attendee::Model,
    to: AttendeeStatus,
    now: UtcDateTime,
) -> Result<Moved> {
    if to == record.status {
        return Ok(Moved {
            record,
            changed: None,
        });
    }
    let is_attendee = caller.id == record.user_id;
    let is_manager = policy::may(standing, Action::CancelOthers, event);
    let role_may = match to {
        AttendeeStatus::Cancelled => is_attendee || is_manager,
        AttendeeStatus::CheckedIn => policy::may(standing, Action::CheckIn, event),
        AttendeeStatus::Confirmed | AttendeeStatus::Waitlisted => false,
    };
    if !role_may {
        return Err(Error::Forbidden(format!(
            "your role may not set an attendee's status to {}",
            status_name(to)
        )));
    }
    if event.status != EventStatus::Published {
        return Err(Error::conflict(
            "the event is not published; its attendance cannot change",
        ));
    }
    let allowed_from = match to {
        AttendeeStatus::CheckedIn => record.status == AttendeeStatus::Confirmed,
        AttendeeStatus::Cancelled => match record.status {
            AttendeeStatus::Confirmed | AttendeeStatus::Waitlisted => true,
            AttendeeStatus::CheckedIn => is_manager,
            AttendeeStatus::Cancelled => false,
        },
        _ => false,
    };
    if !allowed_from {
        return Err(Error::conflict(format!(
            "an attendee cannot move from {} to {}",
            status_name(record.status),
            status_name(to)
        )));
    }
    if to == AttendeeStatus::Cancelled {
        let (cancelled, event, promoted) =
            cancel_and_release_place(txn, event, &record, now).await?;
        let recorded = changes::attendance(ChangeType::AttendeeCancelled, &cancelled, &promoted);
        return Ok(Moved {
            record: cancelled,
            changed: Some((event, recorded)),
        });
    }
    let checked_in = repository::attendees::set_status(txn, record.id, to, None, now)
        .await?
        .ok_or(Error::NotFound("attendee"))?;
    let event = repository::events::advance_change_seq(txn, event.id, 1)
        .await?
        .ok_or(Error::NotFound("event"))?;
    let recorded = changes::attendance(ChangeType::AttendeeCheckedIn, &checked_in, &[]);
    Ok(Moved {
        record: checked_in,
        changed: Some((event, recorded)),
    })
}

fn status_name(s: AttendeeStatus) -> &'static str {
    match s {
        AttendeeStatus::Confirmed => "confirmed",
        AttendeeStatus::Waitlisted => "waitlisted",
        AttendeeStatus::Cancelled => "cancelled",
        AttendeeStatus::CheckedIn => "checked_in",
    }
}

/// Cancels an active record: frees its seat (promoting the queue) or its queue place
/// (moving those behind it up). The event row must be locked by the caller. Returns the
/// record, the event after the write (its `change_seq` advanced by one for the cancellation
/// and one per promotion) and the promoted records in queue order.
pub(crate) async fn cancel_and_release_place(
    txn: &impl ConnectionTrait,
    event: &event::Model,
    record: &attendee::Model,
    now: UtcDateTime,
) -> Result<(attendee::Model, event::Model, Vec<attendee::Model>)> {
    let cancelled =
        repository::attendees::set_status(txn, record.id, AttendeeStatus::Cancelled, None, now)
            .await?
            .ok_or(Error::NotFound("attendee"))?;
    let (confirmed_delta, waitlist_delta) = match record.status {
        s if s.holds_seat() => (-1, 0),
        AttendeeStatus::Waitlisted => (0, -1),
        _ => (0, 0),
    };
    let event =
        repository::events::adjust_counts(txn, event.id, confirmed_delta, waitlist_delta, 1)
            .await?
            .ok_or(Error::NotFound("event"))?;
    if record.status.holds_seat() {
        return promote_waitlist(txn, event, now)
            .await
            .map(|(event, promoted)| (cancelled, event, promoted));
    }
    if record.status == AttendeeStatus::Waitlisted
        && let Some(position) = record.waitlist_position
    {
        repository::attendees::move_queue_up(txn, event.id, position, 1).await?;
    }
    Ok((cancelled, event, Vec::new()))
}

/// Cancels every active registration of a user (account deletion), event by event in id
/// order so that concurrent multi-event transactions lock in the same order, recording each
/// event's changes. Returns the events changed.
pub(crate) async fn cancel_all_for_user(
    txn: &impl ConnectionTrait,
    user_id: Uuid,
    actor: &Caller,
    now: UtcDateTime,
) -> Result<Vec<Uuid>> {
    let mut changed = Vec::new();
    for record in repository::attendees::active_for_user(txn, user_id).await? {
        let Some(event) = repository::events::find_for_update(txn, record.event_id).await? else {
            continue;
        };
        let (cancelled, event, promoted) =
            cancel_and_release_place(txn, &event, &record, now).await?;
        let recorded = changes::attendance(ChangeType::AttendeeCancelled, &cancelled, &promoted);
        changes::record(txn, &event, Some(actor.id), now, recorded).await?;
        changed.push(event.id);
    }
    Ok(changed)
}
