//! Event staff: co-organizers and checkers.

use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

use super::{
    Begun, Caller, Error, Result, begin_write,
    changes::{self, ChangeFeed, Recorded},
    commit_or_rollback,
    events::{visible, visible_for_update},
    idempotency::{Idempotency, Keyed, Written},
    policy::{self, Action},
};
use crate::{
    entity::event,
    model::{ChangeType, StaffChanged, StaffList, StaffMember, StaffRole},
    repository,
    time::{UtcDateTime, now},
};

/// What a `PUT` of a staff role did.
#[derive(Debug, Clone)]
pub struct Staffed {
    /// The staff member now.
    pub member: StaffMember,
    /// Whether they were added (rather than kept or given another role).
    pub added: bool,
}

/// Event staff.
#[derive(Clone)]
pub struct StaffService {
    db: DatabaseConnection,
    changes: ChangeFeed,
    idempotency: Idempotency,
}

impl StaffService {
    /// The service over a pool; its writes wake the change feed's streams.
    pub fn new(db: DatabaseConnection, changes: ChangeFeed, idempotency: Idempotency) -> Self {
        Self {
            db,
            changes,
            idempotency,
        }
    }

    /// The event's staff (organizer, staff, admin).
    pub async fn list(&self, caller: &Caller, event_id: Uuid) -> Result<StaffList> {
        let (event, standing) = visible(&self.db, Some(caller), event_id).await?;
        policy::require(
            standing,
            Action::ListStaff,
            &event,
            "only the organizer, the event's staff or an administrator may list its staff",
        )?;
        let items = repository::staff::list(&self.db, event_id).await?;
        Ok(StaffList {
            items: items.into_iter().map(StaffMember::from).collect(),
        })
    }

    /// Gives a user a staff role, or another one (organizer, admin).
    #[tracing::instrument(skip_all, fields(event_id = %event_id, user_id = %user_id))]
    pub async fn put(
        &self,
        caller: &Caller,
        event_id: Uuid,
        user_id: Uuid,
        role: StaffRole,
        key: Option<Keyed<'_, Staffed>>,
    ) -> Result<Written<Staffed>> {
        let claim = self.idempotency.claim(key)?;
        let write = match begin_write(&self.db, &claim).await? {
            Begun::Write(write) => write,
            Begun::Replay(answer) => return Ok(answer),
        };
        let now = now();
        let result = async {
            let txn = write.txn();
            let event = manageable(txn, caller, event_id).await?;
            if !policy::may_be_staff(&event, user_id) {
                return Err(Error::conflict(
                    "the organizer cannot be staff of their own event",
                ));
            }
            if repository::users::find_by_id(txn, user_id).await?.is_none() {
                return Err(Error::NotFound("user"));
            }
            let before = repository::staff::find(txn, event_id, user_id).await?;
            if let Some(same) = before.as_ref().filter(|m| m.role == role.into()) {
                return Ok(Staffed {
                    member: same.clone().into(),
                    added: false,
                });
            }
            let member =
                repository::staff::upsert(txn, event_id, user_id, role.into(), now).await?;
            record_staff_change(txn, event_id, user_id, Some(role), caller, now).await?;
            Ok(Staffed {
                member: member.into(),
                added: before.is_none(),
            })
        }
        .await;
        let staffed = commit_or_rollback(write, result).await?;
        self.changes.hub().wake(event_id);
        Ok(staffed)
    }

    /// Removes a user from the staff (organizer, admin).
    #[tracing::instrument(skip_all, fields(event_id = %event_id, user_id = %user_id))]
    pub async fn remove(
        &self,
        caller: &Caller,
        event_id: Uuid,
        user_id: Uuid,
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
            manageable(txn, caller, event_id).await?;
            if !repository::staff::delete(txn, event_id, user_id).await? {
                return Err(Error::NotFound("staff member"));
            }
            record_staff_change(txn, event_id, user_id, None, caller, now).await
        }
        .await;
        let removed = commit_or_rollback(write, result).await?;
        self.changes.hub().wake(event_id);
        Ok(removed)
    }
}

/// The event, locked, when the caller may manage its staff.
async fn manageable(
    txn: &impl ConnectionTrait,
    caller: &Caller,
    event_id: Uuid,
) -> Result<event::Model> {
    let (event, standing) = visible_for_update(txn, Some(caller), event_id).await?;
    policy::require(
        standing,
        Action::ManageStaff,
        &event,
        "only the organizer or an administrator may manage the event's staff",
    )?;
    Ok(event)
}

/// Records a `staff.changed` for `user_id`, whose role is now `role` (`None`: removed). The
/// caller holds the event's row lock.
async fn record_staff_change(
    txn: &impl ConnectionTrait,
    event_id: Uuid,
    user_id: Uuid,
    role: Option<StaffRole>,
    actor: &Caller,
    now: UtcDateTime,
) -> Result<()> {
    let data = StaffChanged {
        user_id,
        role: role.into(),
    };
    let recorded = vec![Recorded::new(ChangeType::StaffChanged, &data)];
    changes::record_advancing(txn, event_id, Some(actor.id), now, recorded).await
}

/// Removes every staff role of a user (account deletion), event by event in id order,
/// recording each event's `staff.changed`. Returns the events changed.
pub(crate) async fn remove_all_for_user(
    txn: &impl ConnectionTrait,
    user_id: Uuid,
    actor: &Caller,
    now: UtcDateTime,
) -> Result<Vec<Uuid>> {
    let mut changed = Vec::new();
    for role in repository::staff::roles_of(txn, user_id).await? {
        if repository::events::find_for_update(txn, role.event_id)
            .await?
            .is_none()
        {
            continue;
        }
        if repository::staff::delete(txn, role.event_id, user_id).await? {
            record_staff_change(txn, role.event_id, user_id, None, actor, now).await?;
            changed.push(role.event_id);
        }
    }
    Ok(changed)
}
