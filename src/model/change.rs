//! The change feed: what changed, in order, with the event's counts after each change.

use poem_openapi::{Enum, Object};
use uuid::Uuid;

use super::Timestamp;

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enum)]
pub enum ChangeType {
    /// The event was created.
    #[oai(rename = "event.created")]
    EventCreated,
    /// The event's own fields changed.
    #[oai(rename = "event.updated")]
    EventUpdated,
    /// The event was deleted; `data` is its last state.
    #[oai(rename = "event.deleted")]
    EventDeleted,
    /// A user registered (confirmed or waitlisted), or registered again after cancelling.
    #[oai(rename = "attendee.registered")]
    AttendeeRegistered,
    /// A waitlisted attendee got a seat.
    #[oai(rename = "attendee.promoted")]
    AttendeePromoted,
    /// An attendee was checked in.
    #[oai(rename = "attendee.checked_in")]
    AttendeeCheckedIn,
    /// A registration was cancelled.
    #[oai(rename = "attendee.cancelled")]
    AttendeeCancelled,
    /// A staff role was added, changed or removed.
    #[oai(rename = "staff.changed")]
    StaffChanged,
    /// An invitation was created.
    #[oai(rename = "invitation.created")]
    InvitationCreated,
    /// An invitation was revoked.
    #[oai(rename = "invitation.revoked")]
    InvitationRevoked,
}

impl ChangeType {
    /// Every type, for parsing stored rows.
    pub const ALL: [ChangeType; 10] = [
        ChangeType::EventCreated,
        ChangeType::EventUpdated,
        ChangeType::EventDeleted,
        ChangeType::AttendeeRegistered,
        ChangeType::AttendeePromoted,
        ChangeType::AttendeeCheckedIn,
        ChangeType::AttendeeCancelled,
        ChangeType::StaffChanged,
        ChangeType::InvitationCreated,
        ChangeType::InvitationRevoked,
    ];

    /// The name on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::EventCreated => "event.created",
            ChangeType::EventUpdated => "event.updated",
            ChangeType::EventDeleted => "event.deleted",
            ChangeType::AttendeeRegistered => "attendee.registered",
            ChangeType::AttendeePromoted => "attendee.promoted",
            ChangeType::AttendeeCheckedIn => "attendee.checked_in",
            ChangeType::AttendeeCancelled => "attendee.cancelled",
            ChangeType::StaffChanged => "staff.changed",
            ChangeType::InvitationCreated => "invitation.created",
            ChangeType::InvitationRevoked => "invitation.revoked",
        }
    }

    /// The type with this name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Whether the change is about the event itself (never redacted: the event is visible).
    pub fn is_about_event(self) -> bool {
        matches!(
            self,
            ChangeType::EventCreated | ChangeType::EventUpdated | ChangeType::EventDeleted
        )
    }
}

/// The event's counts right after a change.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
pub struct ChangeCounts {
    /// Confirmed plus checked-in attendees.
    pub confirmed_count: i64,
    /// Waitlisted attendees.
    pub waitlist_count: i64,
    /// Free seats; null when capacity is unlimited.
    #[oai(nullable)]
    pub available_seats: Option<i64>,
}

impl ChangeCounts {
    /// The counts of an event with these counters and capacity (`None`: unlimited).
    pub fn new(confirmed: i32, waitlisted: i32, capacity: Option<i32>) -> Self {
        Self {
            confirmed_count: confirmed.into(),
            waitlist_count: waitlisted.into(),
            available_seats: capacity.map(|c| i64::from(c) - i64::from(confirmed)),
        }
    }
}

/// One committed change of an event or of what belongs to it.
#[derive(Debug, Clone, Object)]
pub struct Change {
    /// Per-event sequence number: from 1, without gaps, in commit order.
    pub seq: i64,
    /// The event.
    pub event_id: Uuid,
    /// What changed.
    #[oai(rename = "type")]
    pub kind: ChangeType,
    /// When (UTC).
    pub occurred_at: Timestamp,
    /// Who made the change; null for viewers who are not organizer, staff or admin on
    /// `attendee.*`, `staff.*` and `invitation.*` changes.
    #[oai(nullable)]
    pub actor_id: Option<Uuid>,
    /// The event's counts after the change.
    pub counts: ChangeCounts,
    /// The resource after the change (the event, the attendee with its `user_id` and
    /// `status`, ...); null where `actor_id` is hidden.
    #[oai(nullable)]
    pub data: Option<serde_json::Value>,
}

/// A page of one event's changes.
#[derive(Debug, Clone, Object)]
pub struct ChangePage {
    /// Changes with `seq > after`, oldest first.
    pub items: Vec<Change>,
    /// The `after` for the next page: the last `seq` served (or the request's `after`).
    pub next_after: i64,
}

/// A page of every event's changes, for delta sync.
#[derive(Debug, Clone, Object)]
pub struct GlobalChangePage {
    /// Changes after the cursor, in the feed's order.
    pub items: Vec<Change>,
    /// Opaque cursor for the next page; pass it back as `after`.
    pub next_cursor: String,
}
