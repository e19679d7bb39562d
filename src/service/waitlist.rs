//! The waitlist queue moving up when seats appear; shared by the event and attendee services.

use sea_orm::ConnectionTrait;

use super::{Error, Result};
use crate::{
    entity::event::{self, EventStatus},
    repository,
    time::UtcDateTime,
};

/// Confirms as many of the oldest waitlisted attendees as there are free seats; returns the
/// event with its counters after the move. Only published events move their queue.
pub(crate) async fn promote_waitlist(
    txn: &impl ConnectionTrait,
    event: event::Model,
    now: UtcDateTime,
) -> Result<event::Model> {
    if event.status != EventStatus::Published || event.waitlist_count == 0 {
        return Ok(event);
    }
    let free = match event.capacity {
        None => event.waitlist_count,
        Some(c) => (c - event.confirmed_count).min(event.waitlist_count),
    };
    if free <= 0 {
        return Ok(event);
    }
    let promoted = repository::attendees::promote_head(txn, event.id, free, now).await?;
    if promoted == 0 {
        return Ok(event);
    }
    repository::events::adjust_counts(txn, event.id, promoted, -promoted)
        .await?
        .ok_or(Error::NotFound("event"))
}
