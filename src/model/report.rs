//! Attendance statistics and the rows of an attendance export.

use poem_openapi::Object;
use uuid::Uuid;

use super::{AttendeeStatus, Nullable, Timestamp};

/// An event's records by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Object)]
pub struct StatusCounts {
    /// Holding a seat, not checked in.
    pub confirmed: u64,
    /// Queued for a seat.
    pub waitlisted: u64,
    /// Cancelled (their latest state).
    pub cancelled: u64,
    /// Checked in.
    pub checked_in: u64,
    /// Every record.
    pub total: u64,
}

/// What happened in one UTC hour.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
pub struct HourlyActivity {
    /// Start of the hour (UTC).
    pub hour: Timestamp,
    /// Records whose (latest) registration fell in the hour.
    pub registrations: u64,
    /// Cancellations made in the hour.
    pub cancellations: u64,
    /// First check-ins made in the hour.
    pub check_ins: u64,
}

/// Attendance statistics of an event.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct EventStats {
    /// The event.
    pub event_id: Uuid,
    /// Records by their current status.
    pub counts: StatusCounts,
    /// Checked in / (confirmed + checked in), from 0 to 1; null while nobody holds a seat.
    pub check_in_rate: Nullable<f64>,
    /// Cancellations recorded in the change feed (within its retention period), counting
    /// every cancellation, also of records registered again since.
    pub cancellations: u64,
    /// One entry per UTC hour, from the hour of the first registration to the hour of the
    /// last activity, empty hours included; empty when nobody registered.
    pub per_hour: Vec<HourlyActivity>,
}

/// One line of an attendance export (CSV).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttendeeExportRow {
    /// Record id.
    pub id: Uuid,
    /// The user.
    pub user_id: Uuid,
    /// The user's email.
    pub email: String,
    /// The user's name.
    pub full_name: String,
    /// Status.
    pub status: AttendeeStatus,
    /// Place in the queue while waitlisted.
    pub waitlist_position: Option<i32>,
    /// Latest registration.
    pub registered_at: Timestamp,
    /// First check-in.
    pub checked_in_at: Option<Timestamp>,
}
