//! The waitlist queue moving up when seats appear; shared by the event and attendee services.

use sea_orm::ConnectionTrait;

use super::{Error, Result};
use crate::{
    entity::{
        attendee,
        event::{self, EventStatus},
    },
    repository,
    time::UtcDateTime,
};

/// Confirms as many of the oldest waitlisted attendees as there are free seats; returns the
/// event with its counters (and `change_seq`, one per promotion) after the move, and the
/// promoted records in queue order. Only published events move their queue.
pub(crate) async fn promote_waitlist(
    txn: &impl ConnectionTrait,
    event: event::Model,
    now: UtcDateTime,
) -> Result<(event::Model, Vec<attendee::Model>)> {
    if event.status != EventStatus::Published || event.waitlist_count == 0 {
        return Ok((event, Vec::new()));
    }
    let free = match event.capacity {
        None => event.waitlist_count,
        Some(c) => (c - event.confirmed_count).min(event.waitlist_count),
    };
    if free <= 0 {
        return Ok((event, Vec::new()));
    }
    let promoted = repository::attendees::promote_head(txn, event.id, free, now).await?;
    if promoted.is_empty() {
        return Ok((event, promoted));
    }
    let n = promoted.len() as i32;
    let event = repository::events::adjust_counts(txn, event.id, n, -n, n.into())
        .await?
        .ok_or(Error::NotFound("event"))?;
    Ok((event, promoted))
}
