//! Who may do what: every permission rule of the API, in one place.
//!
//! A request's caller has one [`Standing`] with an event (the highest that applies: an
//! administrator who also organizes is an administrator). [`may`] answers whether that
//! standing allows an [`Action`] on the event in its current state; the services ask it and
//! never compare roles themselves. Lists get their filter from [`event_scope`], which the
//! repository turns into SQL without knowing why.
//!
//! | action | who |
//! |---|---|
//! | see the event, its changes and stream | admin, organizer, staff; a registered user once it is not a draft; everyone when it is public and not a draft |
//! | change it, manage invitations, register or cancel others | admin, organizer, co-organizer |
//! | delete it, manage staff | admin, organizer |
//! | list staff, read attendance, check in, see change details | admin, organizer, staff |
//! | receive its changes by webhook | admin, organizer, co-organizer |
//!
//! Beyond events ([`may_account`]): a user's account and what it owns (webhooks) are theirs
//! and administrators'; listing users, giving roles and the global change feed are
//! administrators' only.

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::{Caller, Error, Result};
use crate::{
    entity::{
        event::{self, EventStatus, Visibility as EventVisibility},
        event_staff::StaffRole,
    },
    repository::{self, events::Visibility, staff::Relation},
};

/// What a caller is to one event, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    /// Not signed in.
    Anonymous,
    /// Signed in, nothing to this event.
    Stranger,
    /// Holds an active registration.
    Registered,
    /// Staff: lists attendees and checks them in.
    Checker,
    /// Staff: everything the organizer may but deleting the event and managing staff.
    CoOrganizer,
    /// Organizes it.
    Organizer,
    /// An administrator.
    Admin,
}

/// Something a caller may want to do to an event or within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read the event, its change feed and its stream.
    See,
    /// Patch the event.
    Change,
    /// Delete the event.
    Delete,
    /// Add, change or remove staff.
    ManageStaff,
    /// Read the staff list.
    ListStaff,
    /// Create, list and revoke invitations.
    ManageInvitations,
    /// Register another user, or oneself on a private event without an invitation.
    RegisterOthers,
    /// Cancel anyone's registration, a checked-in one included.
    CancelOthers,
    /// List and read every attendee record, statistics and exports.
    ReadAttendance,
    /// Check attendees in.
    CheckIn,
    /// Read who did what in the change feed (`data` and `actor_id` of attendance, staff and
    /// invitation changes).
    SeeChangeDetails,
    /// Receive the event's changes by webhook.
    ReceiveWebhooks,
}

/// Whether `standing` allows `action` on `event` as it is now.
pub fn may(standing: Standing, action: Action, event: &event::Model) -> bool {
    use Standing::*;
    match action {
        Action::See => match standing {
            Admin | Organizer | CoOrganizer | Checker => true,
            Registered => event.status != EventStatus::Draft,
            Stranger | Anonymous => is_listed(event),
        },
        Action::Change
        | Action::ManageInvitations
        | Action::RegisterOthers
        | Action::CancelOthers
        | Action::ReceiveWebhooks => standing >= CoOrganizer,
        Action::Delete | Action::ManageStaff => standing >= Organizer,
        Action::ListStaff | Action::ReadAttendance | Action::CheckIn | Action::SeeChangeDetails => {
            standing >= Checker
        }
    }
}

/// Whether everyone may see the event: public and not a draft.
pub fn is_listed(event: &event::Model) -> bool {
    event.visibility == EventVisibility::Public && event.status != EventStatus::Draft
}

/// The standing that needs no lookup: anonymous, administrator or organizer; `None` when it
/// depends on staff roles and registrations.
fn known_standing(caller: Option<&Caller>, organizer_id: Uuid) -> Option<Standing> {
    match caller {
        None => Some(Standing::Anonymous),
        Some(c) if c.is_admin() => Some(Standing::Admin),
        Some(c) if c.id == organizer_id => Some(Standing::Organizer),
        Some(_) => None,
    }
}

/// A signed-in user's standing from their relation to the event.
fn from_relation(relation: Relation) -> Standing {
    match relation.staff {
        Some(StaffRole::CoOrganizer) => Standing::CoOrganizer,
        Some(StaffRole::Checker) => Standing::Checker,
        None if relation.registered => Standing::Registered,
        None => Standing::Stranger,
    }
}

/// The caller's standing with the event (one indexed lookup unless it is anonymous, an
/// administrator or the organizer).
pub(crate) async fn standing(
    db: &impl ConnectionTrait,
    caller: Option<&Caller>,
    event: &event::Model,
) -> Result<Standing> {
    if let Some(known) = known_standing(caller, event.organizer_id) {
        return Ok(known);
    }
    let caller = caller.expect("anonymous callers have a known standing");
    let relation = repository::staff::relation(db, event.id, caller.id).await?;
    Ok(from_relation(relation))
}

/// The caller's standing, looked up only if `action` depends on it: seeing a listed event
/// needs no lookup, so public reads cost what they did before roles existed. The answer is
/// exact for `action` (a skipped lookup reports [`Standing::Stranger`]).
pub(crate) async fn standing_for(
    db: &impl ConnectionTrait,
    caller: Option<&Caller>,
    action: Action,
    event: &event::Model,
) -> Result<Standing> {
    if action == Action::See
        && is_listed(event)
        && known_standing(caller, event.organizer_id).is_none()
    {
        return Ok(Standing::Stranger);
    }
    standing(db, caller, event).await
}

/// The event as `caller` may see it with their standing; 404 when they may not see it
/// (a hidden event does not exist for them).
pub(crate) async fn visible(
    db: &impl ConnectionTrait,
    caller: Option<&Caller>,
    event: Option<event::Model>,
) -> Result<(event::Model, Standing)> {
    let event = event.ok_or(Error::NotFound("event"))?;
    let standing = standing(db, caller, &event).await?;
    if may(standing, Action::See, &event) {
        Ok((event, standing))
    } else {
        Err(Error::NotFound("event"))
    }
}

/// `Ok` when `standing` allows `action`, else 403 with `refusal`. Call it once the caller
/// may see the event.
pub(crate) fn require(
    standing: Standing,
    action: Action,
    event: &event::Model,
    refusal: &str,
) -> Result<()> {
    if may(standing, action, event) {
        Ok(())
    } else {
        Err(Error::Forbidden(refusal.to_owned()))
    }
}

/// Something a signed-in caller may want to do beyond a single event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountAction {
    /// Read, change or delete the account of this user, or what it owns (its webhooks).
    Own(Uuid),
    /// Administer: list users, give roles, read the global change feed, see every webhook.
    Administer,
}

/// Whether the caller may do `action`: to their own account, or as an administrator.
pub fn may_account(caller: &Caller, action: AccountAction) -> bool {
    match action {
        AccountAction::Own(user_id) => caller.id == user_id || caller.is_admin(),
        AccountAction::Administer => caller.is_admin(),
    }
}

/// The events a list may show the caller, as the repository's filter.
pub fn event_scope(caller: Option<&Caller>) -> Visibility {
    match caller {
        Some(c) if c.is_admin() => Visibility::All,
        other => Visibility::ListedAndOwn {
            viewer: other.map(|c| c.id),
        },
    }
}

/// Whether a standing may be given a staff role: the organizer is never staff of their own
/// event.
pub fn may_be_staff(event: &event::Model, user_id: Uuid) -> bool {
    event.organizer_id != user_id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(status: EventStatus, visibility: EventVisibility) -> event::Model {
        let now = chrono::Utc::now();
        event::Model {
            id: Uuid::now_v7(),
            title: "t".into(),
            description: String::new(),
            location: String::new(),
            starts_at: now,
            ends_at: now,
            capacity: None,
            waitlist_enabled: false,
            status,
            organizer_id: Uuid::now_v7(),
            confirmed_count: 0,
            waitlist_count: 0,
            created_at: now,
            updated_at: now,
            version: 1,
            change_seq: 1,
            visibility,
        }
    }

    #[test]
    fn private_events_are_seen_by_staff_and_registered_users_only() {
        let e = event(EventStatus::Published, EventVisibility::Private);
        assert!(!may(Standing::Anonymous, Action::See, &e));
        assert!(!may(Standing::Stranger, Action::See, &e));
        assert!(may(Standing::Registered, Action::See, &e));
        assert!(may(Standing::Checker, Action::See, &e));
    }

    #[test]
    fn drafts_are_hidden_from_registered_users_but_not_from_staff() {
        let e = event(EventStatus::Draft, EventVisibility::Public);
        assert!(!may(Standing::Registered, Action::See, &e));
        assert!(may(Standing::Checker, Action::See, &e));
    }

    #[test]
    fn co_organizers_may_do_all_but_delete_and_manage_staff() {
        let e = event(EventStatus::Published, EventVisibility::Public);
        for action in [
            Action::Change,
            Action::ManageInvitations,
            Action::RegisterOthers,
            Action::CancelOthers,
            Action::ReadAttendance,
            Action::CheckIn,
            Action::ListStaff,
        ] {
            assert!(may(Standing::CoOrganizer, action, &e), "{action:?}");
        }
        assert!(!may(Standing::CoOrganizer, Action::Delete, &e));
        assert!(!may(Standing::CoOrganizer, Action::ManageStaff, &e));
    }

    #[test]
    fn checkers_may_read_attendance_and_check_in_only() {
        let e = event(EventStatus::Published, EventVisibility::Public);
        assert!(may(Standing::Checker, Action::ReadAttendance, &e));
        assert!(may(Standing::Checker, Action::CheckIn, &e));
        assert!(!may(Standing::Checker, Action::Change, &e));
        assert!(!may(Standing::Checker, Action::ManageInvitations, &e));
        assert!(!may(Standing::Checker, Action::CancelOthers, &e));
    }
}
