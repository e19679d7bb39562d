//! Instants as the application stores them: UTC, truncated to microseconds.
//!
//! Used by every layer (models parse timestamps, services stamp changes, repositories store
//! them), so it depends on none of them.

use chrono::SubsecRound;

/// An instant in UTC, as stored in every timestamp column.
pub type UtcDateTime = chrono::DateTime<chrono::Utc>;

/// Current time truncated to microseconds, the precision both backends store.
pub fn now() -> UtcDateTime {
    truncate_micros(chrono::Utc::now())
}

/// Truncates to microseconds so that SQLite (nanoseconds) and PostgreSQL (microseconds) agree.
pub fn truncate_micros(t: UtcDateTime) -> UtcDateTime {
    t.trunc_subsecs(6)
}
