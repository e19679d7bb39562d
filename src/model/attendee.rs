//! Attendees (registrations).

use poem_openapi::{Enum, Object};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use validator::Validate;

use super::{
    common::{Nullable, Timestamp},
    event::EventSummary,
};
use crate::entity::attendee;

/// State of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum AttendeeStatus {
    /// Holds a seat.
    Confirmed,
    /// Queued for a seat.
    Waitlisted,
    /// Gave up or was removed.
    Cancelled,
    /// Arrived.
    CheckedIn,
}

impl From<attendee::AttendeeStatus> for AttendeeStatus {
    fn from(s: attendee::AttendeeStatus) -> Self {
        match s {
            attendee::AttendeeStatus::Confirmed => AttendeeStatus::Confirmed,
            attendee::AttendeeStatus::Waitlisted => AttendeeStatus::Waitlisted,
            attendee::AttendeeStatus::Cancelled => AttendeeStatus::Cancelled,
            attendee::AttendeeStatus::CheckedIn => AttendeeStatus::CheckedIn,
        }
    }
}

impl From<AttendeeStatus> for attendee::AttendeeStatus {
    fn from(s: AttendeeStatus) -> Self {
        match s {
            AttendeeStatus::Confirmed => attendee::AttendeeStatus::Confirmed,
            AttendeeStatus::Waitlisted => attendee::AttendeeStatus::Waitlisted,
            AttendeeStatus::Cancelled => attendee::AttendeeStatus::Cancelled,
            AttendeeStatus::CheckedIn => attendee::AttendeeStatus::CheckedIn,
        }
    }
}

/// Registration request: empty to register the caller, or another user (organizer/admin).
#[derive(Debug, Clone, Default, Object, Deserialize)]
pub struct AttendeeCreate {
    /// The user to register (organizer or administrator only); the caller when absent or
    /// null.
    #[oai(nullable)]
    #[serde(default)]
    pub user_id: Option<Uuid>,
    /// An invitation token: required to register for a private event (unless the caller is
    /// its organizer, a co-organizer or an administrator); on a public event it is optional,
    /// and one that is sent must be usable (else 409) and takes a use.
    #[oai(nullable, validator(max_length = 512))]
    #[serde(default)]
    pub invitation: Option<String>,
}

/// A registration as the API shows it.
#[derive(Debug, Clone, Object)]
pub struct AttendeeRead {
    /// Identifier (UUIDv7).
    pub id: Uuid,
    /// The event.
    pub event_id: Uuid,
    /// The registered user.
    pub user_id: Uuid,
    /// Status.
    pub status: AttendeeStatus,
    /// 1-based place in the queue while waitlisted; null otherwise.
    pub waitlist_position: Nullable<i64>,
    /// Time of the latest registration (UTC).
    pub registered_at: Timestamp,
    /// Last change (UTC).
    pub updated_at: Timestamp,
    /// +1 on every change; also the `ETag`.
    pub version: i64,
    /// Time of the first check-in (UTC); null until checked in.
    pub checked_in_at: Nullable<Timestamp>,
}

impl From<attendee::Model> for AttendeeRead {
    fn from(m: attendee::Model) -> Self {
        Self {
            id: m.id,
            event_id: m.event_id,
            user_id: m.user_id,
            status: m.status.into(),
            waitlist_position: m.waitlist_position.map(i64::from).into(),
            registered_at: m.registered_at.into(),
            updated_at: m.updated_at.into(),
            version: m.version,
            checked_in_at: m.checked_in_at.map(Timestamp::from).into(),
        }
    }
}

/// One of the caller's registrations: the attendee record, plus its event in short.
#[derive(Debug, Clone, Object)]
pub struct Registration {
    /// The attendee record (its fields appear at the top level).
    #[oai(flatten)]
    pub record: AttendeeRead,
    /// The event, in short.
    pub event: EventSummary,
}

/// The writable fields of an attendee, as JSON Patch sees them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct AttendeePatchView {
    /// Status.
    pub status: AttendeeStatus,
}

crate::page_type!(
    AttendeePage,
    AttendeeRead,
    "One page of an event's attendees."
);

crate::page_type!(
    RegistrationPage,
    Registration,
    "One page of the caller's registrations."
);
