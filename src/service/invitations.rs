//! Invitations: tokens that admit users to an event, private ones above all.
//!
//! A token is 32 bytes from the operating system's CSPRNG, URL-safe base64; only its SHA-256
//! is stored, so a leaked table admits nobody. A use is taken in the registration's
//! transaction by one conditional UPDATE, after the event row is locked.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
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
    entity::{event::EventStatus, invitation},
    model::{
        ChangeType, FieldError, InvitationCreate, InvitationCreated, InvitationLookup,
        InvitationRead, InvitationStatus, InvitedEvent, Page, invitation_status,
    },
    repository::{self, invitations::NewInvitation},
    time::{UtcDateTime, now},
};

/// Uses of an invitation when the request names none.
const DEFAULT_MAX_USES: i64 = 1;
/// Validity of an invitation when the request names none.
const DEFAULT_VALIDITY: chrono::Duration = chrono::Duration::days(7);
/// The longest validity an invitation may have.
const MAX_VALIDITY: chrono::Duration = chrono::Duration::days(366);

/// Lower-case hex SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The invitation whose token hashes to `hash`. The index finds the row; the hashes are then
/// compared in constant time, so timing says nothing about how close a guess came.
async fn find_by_hash(db: &impl ConnectionTrait, hash: &str) -> Result<Option<invitation::Model>> {
    Ok(repository::invitations::find_by_hash(db, hash)
        .await?
        .filter(|i| bool::from(i.token_hash.as_bytes().ct_eq(hash.as_bytes()))))
}

/// Takes one use of the invitation with this token hash for `event_id`, if it is usable;
/// whether it was. The caller holds the event's row lock.
pub(crate) async fn take_use(
    txn: &impl ConnectionTrait,
    hash: &str,
    event_id: Uuid,
    now: UtcDateTime,
) -> Result<bool> {
    let Some(found) = find_by_hash(txn, hash).await? else {
        return Ok(false);
    };
    Ok(
        repository::invitations::take_use(txn, found.id, event_id, now)
            .await?
            .is_some(),
    )
}

/// Whether the invitation with this token hash would admit a registration to `event_id`.
pub(crate) async fn is_usable(
    db: &impl ConnectionTrait,
    hash: &str,
    event_id: Uuid,
    now: UtcDateTime,
) -> Result<bool> {
    Ok(find_by_hash(db, hash).await?.is_some_and(|i| {
        i.event_id == event_id && invitation_status(&i, now) == InvitationStatus::Active
    }))
}

/// The error for an invitation that does not admit to the public event it was sent for: a
/// conflict with its state (unknown, expired, revoked or used up).
pub(crate) fn unusable_on_public_event() -> Error {
    Error::conflict(
        "the invitation sent is unknown, expired, revoked or used up; registering for a public \
         event needs none",
    )
}

/// The 410 for an invitation that no longer admits anyone.
fn gone(status: InvitationStatus) -> Error {
    let (slug, detail) = match status {
        InvitationStatus::Expired => ("invitation-expired", "this invitation has expired"),
        InvitationStatus::Revoked => ("invitation-revoked", "this invitation was revoked"),
        _ => (
            "invitation-used-up",
            "every use of this invitation has been taken",
        ),
    };
    Error::Gone {
        slug,
        detail: detail.into(),
    }
}

/// Invitations.
#[derive(Clone)]
pub struct InvitationService {
    db: DatabaseConnection,
    changes: ChangeFeed,
    idempotency: Idempotency,
}

impl InvitationService {
    /// The service over a pool; its writes wake the change feed's streams.
    pub fn new(db: DatabaseConnection, changes: ChangeFeed, idempotency: Idempotency) -> Self {
        Self {
            db,
            changes,
            idempotency,
        }
    }

    /// Creates an invitation (organizer, co-organizer, admin); its token is in the answer
    /// only.
    #[tracing::instrument(skip_all, fields(event_id = %event_id))]
    pub async fn create(
        &self,
        caller: &Caller,
        event_id: Uuid,
        input: InvitationCreate,
        key: Option<Keyed<'_, InvitationCreated>>,
    ) -> Result<Written<InvitationCreated>> {
        let now = now();
        let max_uses = input.max_uses.unwrap_or(DEFAULT_MAX_USES);
        let mut errors = Vec::new();
        if !(1..=10_000).contains(&max_uses) {
            errors.push(FieldError::new("max_uses", "must be between 1 and 10000"));
        }
        let expires_at = input.expires_at.map_or(now + DEFAULT_VALIDITY, |t| t.0);
        if expires_at <= now {
            errors.push(FieldError::new("expires_at", "must be in the future"));
        } else if expires_at > now + MAX_VALIDITY {
            errors.push(FieldError::new(
                "expires_at",
                "must be at most one year from now",
            ));
        }
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
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
                Action::ManageInvitations,
                &event,
                "only the organizer, a co-organizer or an administrator may invite",
            )?;
            if matches!(
                event.status,
                EventStatus::Cancelled | EventStatus::Completed
            ) {
                return Err(Error::conflict(
                    "the event is over; it takes no more invitations",
                ));
            }
            let raw: [u8; 32] = rand::random();
            let token = URL_SAFE_NO_PAD.encode(raw);
            let created = repository::invitations::insert(
                txn,
                NewInvitation {
                    id: Uuid::now_v7(),
                    event_id,
                    token_hash: token_hash(&token),
                    max_uses: max_uses as i32,
                    expires_at,
                    created_by: caller.id,
                },
                now,
            )
            .await?;
            let read = InvitationRead::at(created, now);
            let recorded = vec![Recorded::new(ChangeType::InvitationCreated, &read)];
            changes::record_advancing(txn, event_id, Some(caller.id), now, recorded).await?;
            Ok(InvitationCreated {
                invitation: read,
                token,
            })
        }
        .await;
        let created = commit_or_rollback(write, result).await?;
        self.changes.hub().wake(event_id);
        Ok(created)
    }

    /// The event's invitations, newest first (organizer, co-organizer, admin).
    pub async fn list(
        &self,
        caller: &Caller,
        event_id: Uuid,
        limit: u32,
        offset: u64,
    ) -> Result<Page<InvitationRead>> {
        let (event, standing) = visible(&self.db, Some(caller), event_id).await?;
        policy::require(
            standing,
            Action::ManageInvitations,
            &event,
            "only the organizer, a co-organizer or an administrator may list invitations",
        )?;
        let now = now();
        let (items, total) =
            repository::invitations::page(&self.db, event_id, limit.into(), offset).await?;
        Ok(Page {
            items: items
                .into_iter()
                .map(|i| InvitationRead::at(i, now))
                .collect(),
            total,
            limit,
            offset,
        })
    }

    /// One of the event's invitations (organizer, co-organizer, admin).
    pub async fn get(&self, caller: &Caller, event_id: Uuid, id: Uuid) -> Result<InvitationRead> {
        let (event, standing) = visible(&self.db, Some(caller), event_id).await?;
        policy::require(
            standing,
            Action::ManageInvitations,
            &event,
            "only the organizer, a co-organizer or an administrator may read invitations",
        )?;
        let found = repository::invitations::find(&self.db, event_id, id)
            .await?
            .ok_or(Error::NotFound("invitation"))?;
        Ok(InvitationRead::at(found, now()))
    }

    /// Revokes an invitation (organizer, co-organizer, admin). Revoking a revoked one
    /// changes nothing.
    #[tracing::instrument(skip_all, fields(event_id = %event_id, invitation_id = %id))]
    pub async fn revoke(
        &self,
        caller: &Caller,
        event_id: Uuid,
        id: Uuid,
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
            let (event, standing) = visible_for_update(txn, Some(caller), event_id).await?;
            policy::require(
                standing,
                Action::ManageInvitations,
                &event,
                "only the organizer, a co-organizer or an administrator may revoke invitations",
            )?;
            repository::invitations::find(txn, event_id, id)
                .await?
                .ok_or(Error::NotFound("invitation"))?;
            let Some(revoked) = repository::invitations::revoke(txn, id, now).await? else {
                return Ok(());
            };
            let read = InvitationRead::at(revoked, now);
            let recorded = vec![Recorded::new(ChangeType::InvitationRevoked, &read)];
            changes::record_advancing(txn, event_id, Some(caller.id), now, recorded).await
        }
        .await;
        let revoked = commit_or_rollback(write, result).await?;
        self.changes.hub().wake(event_id);
        Ok(revoked)
    }

    /// An invitation by its token, with its event in short (anyone holding the token).
    pub async fn lookup(&self, token: &str) -> Result<InvitationLookup> {
        let found = find_by_hash(&self.db, &token_hash(token))
            .await?
            .ok_or(Error::NotFound("invitation"))?;
        let now = now();
        let status = invitation_status(&found, now);
        if status != InvitationStatus::Active {
            return Err(gone(status));
        }
        let event = repository::events::find_by_id(&self.db, found.event_id)
            .await?
            .ok_or(Error::NotFound("invitation"))?;
        let organizer_name = repository::users::find_by_id(&self.db, event.organizer_id)
            .await?
            .map(|u| u.full_name)
            .unwrap_or_default();
        Ok(InvitationLookup {
            invitation: InvitationRead::at(found, now),
            event: InvitedEvent::new(&event, organizer_name),
        })
    }
}
