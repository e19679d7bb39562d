//! Event staff, invitations and check-in scans.

use poem_openapi::{Enum, Object};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::common::{Nullable, Timestamp};
use crate::entity::{event, event_staff, invitation};

/// A staff role on an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    /// Everything the organizer may, except deleting the event and managing staff.
    CoOrganizer,
    /// Lists and reads the event's attendees and checks them in.
    Checker,
}

impl From<event_staff::StaffRole> for StaffRole {
    fn from(r: event_staff::StaffRole) -> Self {
        match r {
            event_staff::StaffRole::CoOrganizer => StaffRole::CoOrganizer,
            event_staff::StaffRole::Checker => StaffRole::Checker,
        }
    }
}

impl From<StaffRole> for event_staff::StaffRole {
    fn from(r: StaffRole) -> Self {
        match r {
            StaffRole::CoOrganizer => event_staff::StaffRole::CoOrganizer,
            StaffRole::Checker => event_staff::StaffRole::Checker,
        }
    }
}

/// A user's role on an event.
#[derive(Debug, Clone, Object)]
pub struct StaffMember {
    /// The staff member.
    pub user_id: Uuid,
    /// Their role.
    pub role: StaffRole,
    /// When they joined the staff (UTC); a role change keeps it.
    pub added_at: Timestamp,
}

impl From<event_staff::Model> for StaffMember {
    fn from(m: event_staff::Model) -> Self {
        Self {
            user_id: m.user_id,
            role: m.role.into(),
            added_at: m.added_at.into(),
        }
    }
}

/// The data of a `staff.changed` change: the user and their role after it (null: removed).
#[derive(Debug, Clone, Object)]
pub struct StaffChanged {
    /// The user whose role changed.
    pub user_id: Uuid,
    /// Their role now; null when they left the staff.
    pub role: Nullable<StaffRole>,
}

/// The staff of an event.
#[derive(Debug, Clone, Object)]
pub struct StaffList {
    /// By the time they were added.
    pub items: Vec<StaffMember>,
}

/// Request to give a user a staff role.
#[derive(Debug, Clone, Object, Deserialize)]
pub struct StaffPut {
    /// The role.
    pub role: StaffRole,
}

/// The state of an invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum InvitationStatus {
    /// Admits registrations.
    Active,
    /// Past its `expires_at`.
    Expired,
    /// Revoked by the event's organizers.
    Revoked,
    /// Every use taken.
    UsedUp,
}

/// An invitation (its token is shown once, when created).
#[derive(Debug, Clone, Object)]
pub struct InvitationRead {
    /// Identifier (UUIDv7).
    pub id: Uuid,
    /// The event it admits to.
    pub event_id: Uuid,
    /// Its state now.
    pub status: InvitationStatus,
    /// Registrations it admits.
    pub max_uses: i64,
    /// Registrations it admitted.
    pub uses: i64,
    /// Refused from this instant on (UTC).
    pub expires_at: Timestamp,
    /// The user who created it.
    pub created_by: Uuid,
    /// Creation time (UTC).
    pub created_at: Timestamp,
}

impl InvitationRead {
    /// The invitation as it stands at `now`.
    pub fn at(m: invitation::Model, now: chrono::DateTime<chrono::Utc>) -> Self {
        Self {
            id: m.id,
            event_id: m.event_id,
            status: invitation_status(&m, now),
            max_uses: m.max_uses.into(),
            uses: m.uses.into(),
            expires_at: m.expires_at.into(),
            created_by: m.created_by,
            created_at: m.created_at.into(),
        }
    }
}

/// The state of an invitation at `now`; revocation first, then expiry, then uses.
pub fn invitation_status(
    m: &invitation::Model,
    now: chrono::DateTime<chrono::Utc>,
) -> InvitationStatus {
    if m.revoked_at.is_some() {
        InvitationStatus::Revoked
    } else if m.expires_at <= now {
        InvitationStatus::Expired
    } else if m.uses >= m.max_uses {
        InvitationStatus::UsedUp
    } else {
        InvitationStatus::Active
    }
}

/// A new invitation, with its token: the only time the token is shown.
#[derive(Debug, Clone, Object)]
pub struct InvitationCreated {
    /// The invitation (its fields appear at the top level).
    #[oai(flatten)]
    pub invitation: InvitationRead,
    /// The token to hand out (URL-safe base64 of 32 random bytes). Only its SHA-256 is
    /// stored: it cannot be shown again.
    pub token: String,
}

/// Request to create an invitation.
#[derive(Debug, Clone, Default, Object, Deserialize)]
pub struct InvitationCreate {
    /// Registrations it admits, 1 to 10000; absent or null for 1.
    #[oai(validator(minimum(value = "1"), maximum(value = "10000")), nullable)]
    #[serde(default)]
    pub max_uses: Option<i64>,
    /// End of validity: in the future, at most one year ahead; absent or null for 7 days
    /// from now.
    #[oai(nullable)]
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
}

/// An event as an invitation shows it to anyone holding the token.
#[derive(Debug, Clone, Object)]
pub struct InvitedEvent {
    /// Identifier.
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// Start (UTC).
    pub starts_at: Timestamp,
    /// End (UTC).
    pub ends_at: Timestamp,
    /// Location ("" when none).
    pub location: String,
    /// The organizer's full name.
    pub organizer_name: String,
}

impl InvitedEvent {
    /// The summary of `e`, organized by `organizer_name`.
    pub fn new(e: &event::Model, organizer_name: String) -> Self {
        Self {
            id: e.id,
            title: e.title.clone(),
            starts_at: e.starts_at.into(),
            ends_at: e.ends_at.into(),
            location: e.location.clone(),
            organizer_name,
        }
    }
}

/// An invitation looked up by its token.
#[derive(Debug, Clone, Object)]
pub struct InvitationLookup {
    /// The invitation (its fields appear at the top level).
    #[oai(flatten)]
    pub invitation: InvitationRead,
    /// The event it admits to.
    pub event: InvitedEvent,
}

crate::page_type!(InvitationPage, InvitationRead, "One page of invitations.");

/// One scan of a door app.
#[derive(Debug, Clone, Object, Deserialize)]
pub struct Scan {
    /// The attendee record scanned.
    pub attendee_id: Uuid,
    /// When it was scanned (UTC); absent or null means now. At most 5 minutes ahead of the
    /// server's clock.
    #[oai(nullable)]
    #[serde(default)]
    pub scanned_at: Option<Timestamp>,
}

/// A batch of scans, uploaded when the door app is online.
#[derive(Debug, Clone, Object, Deserialize)]
pub struct CheckInBatch {
    /// 1 to 1000 scans, answered in this order.
    #[oai(validator(min_items = 1, max_items = 1000))]
    pub scans: Vec<Scan>,
}

/// What one scan did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ScanOutcome {
    /// Checked in by this scan.
    CheckedIn,
    /// Checked in before (by an earlier scan, which wins).
    AlreadyCheckedIn,
    /// Waitlisted or cancelled: holds no seat.
    NotConfirmed,
    /// No such attendee record on this event.
    NotFound,
}

/// The result of one scan.
#[derive(Debug, Clone, Object)]
pub struct ScanResult {
    /// The attendee record scanned.
    pub attendee_id: Uuid,
    /// What the scan did.
    pub result: ScanOutcome,
    /// When the record was checked in (the first scan's time); null unless `checked_in` or
    /// `already_checked_in`.
    pub checked_in_at: Nullable<Timestamp>,
}

/// One result per scan, in the order of the scans.
#[derive(Debug, Clone, Object)]
pub struct CheckInResults {
    /// The results.
    pub results: Vec<ScanResult>,
}
