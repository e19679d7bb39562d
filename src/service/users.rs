//! Sign-up, profiles, the admin list, JSON Patch on users, deletion.

use std::sync::Arc;

use json_patch::Patch;
use sea_orm::DatabaseConnection;
use uuid::Uuid;
use validator::Validate;

use super::{
    Begun, Caller, Error, Result, attendees,
    auth::{Passwords, normalize_email},
    begin_write, commit_or_rollback,
    idempotency::{Claim, Idempotency, Keyed, Written},
    patch::{self, Access, Precondition},
    policy::{self, AccountAction},
    totals::EventCountCache,
};
use crate::{
    entity::user,
    model::{Page, UserCreate, UserPatchView, UserRead, field_errors},
    repository::{
        self,
        users::{NewUser, UserChanges},
    },
    time::now,
};

/// How many times a write without `If-Match` re-reads and retries after losing a race.
const MAX_WRITE_ATTEMPTS: usize = 5;

/// Users and their profiles.
#[derive(Clone)]
pub struct UserService {
    db: DatabaseConnection,
    passwords: Arc<Passwords>,
    /// Deleting a user deletes their events.
    event_counts: Arc<EventCountCache>,
    /// Deleting a user changes events: their streams are woken.
    changes: super::changes::ChangeFeed,
    idempotency: Idempotency,
}

impl UserService {
    /// The service over a pool.
    pub fn new(
        db: DatabaseConnection,
        passwords: Arc<Passwords>,
        event_counts: Arc<EventCountCache>,
        changes: super::changes::ChangeFeed,
        idempotency: Idempotency,
    ) -> Self {
        Self {
            db,
            passwords,
            event_counts,
            changes,
            idempotency,
        }
    }

    /// Signs up a member. Keys of sign-ups live in the anonymous scope.
    #[tracing::instrument(skip_all)]
    pub async fn sign_up(
        &self,
        input: UserCreate,
        key: Option<Keyed<'_, UserRead>>,
    ) -> Result<Written<UserRead>> {
        let claim = self.idempotency.claim(key)?;
        let created = self.create(input, user::Role::Member, &claim).await;
        claim.unless_stored(created).await
    }

    async fn create(
        &self,
        input: UserCreate,
        role: user::Role,
        claim: &Claim<'_, UserRead>,
    ) -> Result<Written<UserRead>> {
        input
            .validate()
            .map_err(|e| Error::Validation(field_errors(&e)))?;
        // A retry is answered before the email check (its email is taken: by itself) and
        // before a password hash is spent on it.
        if let Some(answer) = claim.stored().await? {
            return Ok(answer);
        }
        let email = input.email.trim().to_owned();
        let email_normalized = normalize_email(&email);
        // Cheap pre-check so that a taken email does not cost a hash; the unique index
        // still decides races.
        if repository::users::find_by_email(&self.db, &email_normalized)
            .await?
            .is_some()
        {
            return Err(email_taken());
        }
        let password_hash = self.passwords.hash(input.password).await?;
        let write = match begin_write(&self.db, claim).await? {
            Begun::Write(write) => write,
            Begun::Replay(answer) => return Ok(answer),
        };
        let result = repository::users::insert(
            write.txn(),
            NewUser {
                id: Uuid::now_v7(),
                email,
                email_normalized,
                full_name: input.full_name.trim().to_owned(),
                password_hash,
                role,
                now: now(),
            },
        )
        .await
        .map(UserRead::from)
        .map_err(Error::from);
        commit_or_rollback(write, result).await
    }

    /// Creates an administrator, or promotes the existing user with this email. Returns the
    /// user and whether it was created.
    pub async fn create_admin(&self, input: UserCreate) -> Result<(UserRead, bool)> {
        let email_normalized = normalize_email(&input.email);
        if let Some(promoted) =
            repository::users::promote_to_admin(&self.db, &email_normalized, now()).await?
        {
            return Ok((promoted.into(), false));
        }
        let created = self
            .create(input.clone(), user::Role::Admin, &Claim::none())
            .await;
        match created {
            Ok(Written::Fresh { value, .. }) => Ok((value, true)),
            Ok(Written::Replayed(_)) => {
                Err(anyhow::anyhow!("a write without a key cannot be a replay").into())
            }
            // Created by someone else meanwhile: promote that one.
            Err(Error::Conflict(super::Conflict::EmailTaken, _)) => {
                let promoted =
                    repository::users::promote_to_admin(&self.db, &email_normalized, now())
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("user vanished while being promoted"))?;
                Ok((promoted.into(), false))
            }
            Err(e) => Err(e),
        }
    }

    /// The caller's own record.
    pub async fn me(&self, caller: &Caller) -> Result<UserRead> {
        self.get(caller, caller.id).await
    }

    /// A user the caller may see: themself, or anyone for an admin.
    pub async fn get(&self, caller: &Caller, id: Uuid) -> Result<UserRead> {
        Ok(self.visible(caller, id).await?.into())
    }

    async fn visible(&self, caller: &Caller, id: Uuid) -> Result<user::Model> {
        // Others' accounts are not even acknowledged to exist.
        if !policy::may_account(caller, AccountAction::Own(id)) {
            return Err(Error::NotFound("user"));
        }
        repository::users::find_by_id(&self.db, id)
            .await?
            .ok_or(Error::NotFound("user"))
    }

    /// Admin list, filtered by `q` on email or name.
    pub async fn list(
        &self,
        caller: &Caller,
        q: Option<String>,
        limit: u32,
        offset: u64,
    ) -> Result<Page<UserRead>> {
        if !policy::may_account(caller, AccountAction::Administer) {
            return Err(Error::Forbidden(
                "only administrators may list users".into(),
            ));
        }
        let q = q.map(|q| q.trim().to_owned());
        let (items, total) =
            repository::users::list(&self.db, q.as_deref(), limit as u64, offset).await?;
        Ok(Page {
            items: items.into_iter().map(UserRead::from).collect(),
            total,
            limit,
            offset,
        })
    }

    /// Applies a JSON Patch to a user: self or admin; `/role` by admins only.
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn patch(
        &self,
        caller: &Caller,
        id: Uuid,
        ops: &Patch,
        precondition: Option<&Precondition>,
        key: Option<Keyed<'_, UserRead>>,
    ) -> Result<Written<UserRead>> {
        let claim = self.idempotency.claim(key)?;
        // A retry is answered before anything is read, patched or hashed again.
        if let Some(answer) = claim.stored().await? {
            return Ok(answer);
        }
        let patched = self
            .patch_claimed(caller, id, ops, precondition, &claim)
            .await;
        claim.unless_stored(patched).await
    }

    async fn patch_claimed(
        &self,
        caller: &Caller,
        id: Uuid,
        ops: &Patch,
        precondition: Option<&Precondition>,
        claim: &Claim<'_, UserRead>,
    ) -> Result<Written<UserRead>> {
        let access = |member: &str| match member {
            "email" | "full_name" | "password" => Access::Writable,
            "role" if policy::may_account(caller, AccountAction::Administer) => Access::Writable,
            "role" => Access::Forbidden,
            _ => Access::ReadOnly,
        };
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let current = self.visible(caller, id).await?;
            Precondition::check(precondition, current.version)?;
            let before = UserPatchView::from(&current);
            let after = patch::apply(&before, ops, access)?;
            let changes = if after == before {
                None
            } else {
                let email = (after.email != before.email).then(|| {
                    let email = after.email.trim().to_owned();
                    let normalized = normalize_email(&email);
                    (email, normalized)
                });
                // Hashed before the transaction: SQLite's writers wait for no argon2.
                let password_hash = match after.password {
                    Some(password) => Some(self.passwords.hash(password).await?),
                    None => None,
                };
                Some(UserChanges {
                    email,
                    full_name: (after.full_name != before.full_name)
                        .then(|| after.full_name.trim().to_owned()),
                    password_hash,
                    role: (after.role != before.role).then(|| after.role.into()),
                    now: now(),
                })
            };
            let write = match begin_write(&self.db, claim).await? {
                Begun::Write(write) => write,
                Begun::Replay(answer) => return Ok(answer),
            };
            let Some(changes) = changes else {
                // Nothing changes; the answer is still stored for the key.
                return commit_or_rollback(write, Ok(UserRead::from(current))).await;
            };
            let updated =
                repository::users::update_if_version(write.txn(), id, current.version, changes)
                    .await;
            match updated {
                Ok(Some(updated)) => {
                    return commit_or_rollback(write, Ok(UserRead::from(updated))).await;
                }
                Ok(None) => write.roll_back().await,
                Err(e) => return commit_or_rollback(write, Err(e.into())).await,
            }
            // Lost a race: with If-Match that is a failed precondition, else re-read and retry.
            if precondition.is_some() {
                let latest = self.visible(caller, id).await?;
                return Err(Error::PreconditionFailed {
                    current: latest.version,
                });
            }
        }
        Err(Error::conflict(
            "the user is being changed concurrently; try again",
        ))
    }

    /// Deletes a user (self or admin): cancels their registrations, promoting waitlists,
    /// and removes the events they organize; 409 while they organize a live published event.
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn delete(
        &self,
        caller: &Caller,
        id: Uuid,
        precondition: Option<&Precondition>,
        key: Option<Keyed<'_, Changed>>,
    ) -> Result<Written<()>> {
        let claim = self.idempotency.claim(key)?;
        let write = match begin_write(&self.db, &claim).await? {
            Begun::Write(write) => write,
            Begun::Replay(answer) => return Ok(answer.map(drop)),
        };
        let result = async {
            let txn = write.txn();
            // Others' accounts are not even acknowledged to exist.
            if !policy::may_account(caller, AccountAction::Own(id)) {
                return Err(Error::NotFound("user"));
            }
            let current = repository::users::find_by_id(txn, id)
                .await?
                .ok_or(Error::NotFound("user"))?;
            Precondition::check(precondition, current.version)?;
            let now = now();
            if repository::events::organizes_live_event(txn, id, now).await? {
                return Err(Error::conflict(
                    "the user organizes a published event that has not ended; cancel or complete it first",
                ));
            }
            let mut changed = attendees::cancel_all_for_user(txn, id, caller, now).await?;
            // Their staff roles go; invitations they created stay valid.
            changed.extend(super::staff::remove_all_for_user(txn, id, caller, now).await?);
            // Their events go with them (the foreign key cascades): each records its deletion.
            for event in repository::events::organized_by_for_update(txn, id).await? {
                changed.push(event.id);
                super::events::record_deletion(txn, event, caller, now).await?;
            }
            if !repository::users::delete(txn, id).await? {
                return Err(Error::NotFound("user"));
            }
            Ok(changed)
        }
        .await;
        let written = commit_or_rollback(write, result.map(Changed)).await?;
        self.event_counts.invalidate();
        for event_id in written.value().map_or(&[][..], |c| &c.0) {
            self.changes.hub().wake(*event_id);
        }
        Ok(written.map(drop))
    }
}

/// The events an account deletion changed, whose streams are woken after commit.
#[derive(Debug)]
pub struct Changed(Vec<Uuid>);

/// The 409 for a sign-up or email change onto an existing account.
pub(crate) fn email_taken() -> Error {
    Error::Conflict(
        super::Conflict::EmailTaken,
        "a user with this email already exists".into(),
    )
}
