//! The change feed: recording every committed change (the outbox) and reading it back.
//!
//! Every write to an event or what belongs to it calls [`record`] once, inside its
//! transaction, with the event row as the write left it. The write's UPDATE of the event row
//! has already advanced `change_seq` by the number of changes, under the row lock, so the
//! `seq`s handed out here are gap-free and in commit order per event. A rolled-back write
//! takes its rows with it.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::{
    Caller, Error, Result,
    policy::{self, AccountAction, Action},
};
use crate::{
    entity::{change, event},
    model::{Change, ChangeCounts, ChangeType},
    repository::{
        self,
        changes::{NewChange, Position},
    },
};

type Timestamp = chrono::DateTime<chrono::Utc>;

/// One change a write made: its type and the resource after it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// What changed.
    pub kind: ChangeType,
    /// The resource after the change, as the API shows it.
    pub data: serde_json::Value,
}

impl Recorded {
    /// A change whose data is an API object.
    pub fn new(kind: ChangeType, data: &impl poem_openapi::types::ToJSON) -> Self {
        Self {
            kind,
            data: data.to_json().unwrap_or(serde_json::Value::Null),
        }
    }
}

/// The changes of an attendance write: the attendee's own change, then one
/// `attendee.promoted` per attendee it moved from the waitlist to a seat, in queue order.
pub fn attendance(
    kind: ChangeType,
    record: &crate::entity::attendee::Model,
    promoted: &[crate::entity::attendee::Model],
) -> Vec<Recorded> {
    let read = |a: &crate::entity::attendee::Model| crate::model::AttendeeRead::from(a.clone());
    std::iter::once(Recorded::new(kind, &read(record)))
        .chain(
            promoted
                .iter()
                .map(|a| Recorded::new(ChangeType::AttendeePromoted, &read(a))),
        )
        .collect()
}

/// Records the changes of a write that touched no counter of the event (staff, invitations,
/// check-ins): advances its `change_seq` by their number, then records them. The caller holds
/// the event's row lock.
pub async fn record_advancing(
    db: &impl ConnectionTrait,
    event_id: Uuid,
    actor_id: Option<Uuid>,
    occurred_at: Timestamp,
    changes: Vec<Recorded>,
) -> Result<()> {
    let event = repository::events::advance_change_seq(db, event_id, changes.len() as i64)
        .await?
        .ok_or(Error::NotFound("event"))?;
    record(db, &event, actor_id, occurred_at, changes).await
}

/// Records the changes of one write, in the write's transaction.
///
/// `event` is the event row after the write; its `change_seq` is the `seq` of the last of
/// `changes` (the write advanced it by `changes.len()`). All the changes carry the event's
/// counts after the write.
pub async fn record(
    db: &impl ConnectionTrait,
    event: &event::Model,
    actor_id: Option<Uuid>,
    occurred_at: Timestamp,
    changes: Vec<Recorded>,
) -> Result<()> {
    let first_seq = event.change_seq - changes.len() as i64 + 1;
    if first_seq < 1 {
        return Err(Error::Internal(anyhow::anyhow!(
            "event {} recorded {} changes but its change_seq is {}",
            event.id,
            changes.len(),
            event.change_seq
        )));
    }
    let rows = changes
        .into_iter()
        .zip(first_seq..)
        .map(|(c, seq)| NewChange {
            event_id: event.id,
            seq,
            kind: c.kind.as_str(),
            occurred_at,
            actor_id,
            confirmed_count: event.confirmed_count,
            waitlist_count: event.waitlist_count,
            capacity: event.capacity,
            data: c.data.to_string(),
        })
        .collect();
    repository::changes::insert(db, rows).await?;
    Ok(())
}

/// How much of a change a viewer may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Organizer, staff, administrators: everything.
    Full,
    /// Everyone else: counts only on `attendee.*`, `staff.*` and `invitation.*` changes.
    CountsOnly,
}

/// A stored change as the API shows it to a viewer.
pub fn to_api(row: change::Model, detail: Detail) -> Result<Change> {
    let kind = ChangeType::parse(&row.kind).ok_or_else(|| {
        Error::Internal(anyhow::anyhow!("unknown change type `{}` stored", row.kind))
    })?;
    let hidden = detail == Detail::CountsOnly && !kind.is_about_event();
    let data = if hidden {
        None
    } else {
        Some(serde_json::from_str(&row.data).map_err(anyhow::Error::from)?)
    };
    Ok(Change {
        seq: row.seq,
        event_id: row.event_id,
        kind,
        occurred_at: row.occurred_at.into(),
        actor_id: if hidden { None } else { row.actor_id },
        counts: ChangeCounts::new(row.confirmed_count, row.waitlist_count, row.capacity),
        data,
    })
}

/// The detail an event's changes show to a caller who may (or may not) see their details.
pub fn detail_for(sees_details: bool) -> Detail {
    if sees_details {
        Detail::Full
    } else {
        Detail::CountsOnly
    }
}

/// The global feed's cursor: opaque to clients (`v1` text, base64url).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(pub Position);

impl Cursor {
    /// The cursor before every change.
    pub const START: Cursor = Cursor(Position { txid: 0, id: 0 });

    /// Text form.
    pub fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(format!("v1:{}:{}", self.0.txid, self.0.id))
    }

    /// Parses the text form; `None` when it is not one of ours.
    pub fn decode(text: &str) -> Option<Cursor> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let text = std::str::from_utf8(&bytes).ok()?;
        let mut parts = text.strip_prefix("v1:")?.split(':');
        let txid = parts.next()?.parse::<i64>().ok()?;
        let id = parts.next()?.parse::<i64>().ok()?;
        if parts.next().is_some() || txid < 0 || id < 0 {
            return None;
        }
        Some(Cursor(Position { txid, id }))
    }
}

/// Problem for a position older than what the feed keeps.
pub fn expired(detail: impl Into<String>) -> Error {
    Error::Gone {
        slug: "changes-expired",
        detail: detail.into(),
    }
}

/// The first message of a stream: the event's counts and the `seq` they are at.
#[derive(Debug, Clone, poem_openapi::Object)]
pub struct StreamSnapshot {
    /// The event.
    pub event_id: Uuid,
    /// The `seq` of the last change the counts include (0: none yet).
    pub seq: i64,
    /// The event's counts now.
    pub counts: ChangeCounts,
}

/// Default and largest page of a feed.
pub const DEFAULT_FEED_LIMIT: u32 = 100;
/// Largest page of a feed.
pub const MAX_FEED_LIMIT: u32 = 1000;

/// Reading the change feed: per event, globally, and live.
#[derive(Clone)]
pub struct ChangeFeed {
    db: sea_orm::DatabaseConnection,
    hub: std::sync::Arc<super::live::ChangeHub>,
    retention: chrono::Duration,
}

/// Who may see an event's changes, and up to which `seq` they go.
struct FeedAccess {
    detail: Detail,
    current_seq: i64,
    event: Option<event::Model>,
}

impl ChangeFeed {
    /// The feed over a pool and the process's hub.
    pub fn new(
        db: sea_orm::DatabaseConnection,
        hub: std::sync::Arc<super::live::ChangeHub>,
        retention_days: u32,
    ) -> Self {
        Self {
            db,
            hub,
            retention: chrono::Duration::days(retention_days.into()),
        }
    }

    /// Deletes the changes older than the retention period; returns how many went.
    pub async fn sweep(&self) -> Result<u64> {
        const BATCH: u64 = 1000;
        let cutoff = crate::time::now() - self.retention;
        let mut total = 0;
        loop {
            let txn = super::begin_background_write(&self.db).await?;
            let result = repository::changes::sweep_before(&txn, cutoff, BATCH)
                .await
                .map_err(Error::from);
            let deleted = super::finish_background_write(txn, result).await?;
            total += deleted;
            if deleted < BATCH {
                return Ok(total);
            }
        }
    }

    /// The hub (for wake-ups after commits and for shutdown).
    pub fn hub(&self) -> &std::sync::Arc<super::live::ChangeHub> {
        &self.hub
    }

    /// Whether the caller may read the event's changes, and with which detail. A deleted
    /// event's changes stay readable (until retention) to those who could see it, judged
    /// by the last state its `event.deleted` change recorded.
    async fn access(&self, caller: Option<&Caller>, event_id: Uuid) -> Result<FeedAccess> {
        if let Some(event) = repository::events::find_by_id(&self.db, event_id).await? {
            let (event, standing) = policy::visible(&self.db, caller, Some(event)).await?;
            let manages = policy::may(standing, Action::SeeChangeDetails, &event);
            return Ok(FeedAccess {
                detail: detail_for(manages),
                current_seq: event.change_seq,
                event: Some(event),
            });
        }
        let last = repository::changes::last_for_event(&self.db, event_id)
            .await?
            .filter(|c| c.kind == ChangeType::EventDeleted.as_str())
            .ok_or(Error::NotFound("event"))?;
        let state: serde_json::Value =
            serde_json::from_str(&last.data).map_err(anyhow::Error::from)?;
        let organizer = state["organizer_id"]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok());
        // Its staff went with it: the organizer and administrators remain.
        let manages = caller.is_some_and(|c| {
            Some(c.id) == organizer || policy::may_account(c, AccountAction::Administer)
        });
        if (state["status"] == "draft" || state["visibility"] == "private") && !manages {
            return Err(Error::NotFound("event"));
        }
        Ok(FeedAccess {
            detail: detail_for(manages),
            current_seq: last.seq,
            event: None,
        })
    }

    /// An event's changes with `seq > after`, oldest first.
    pub async fn for_event(
        &self,
        caller: Option<&Caller>,
        event_id: Uuid,
        after: i64,
        limit: u32,
    ) -> Result<crate::model::ChangePage> {
        let access = self.access(caller, event_id).await?;
        let rows = repository::changes::for_event(&self.db, event_id, after, limit.into()).await?;
        if after < access.current_seq {
            // Retention removes the oldest rows: a gap before the first row left means the
            // client missed changes it can no longer read.
            let first = match rows.first() {
                Some(row) => Some(row.seq),
                None => repository::changes::first_seq(&self.db, event_id).await?,
            };
            if first.is_none_or(|first| first > after + 1) {
                return Err(expired(format!(
                    "changes after seq {after} are no longer kept; reload the event and its \
                     lists, then follow from the stream's snapshot"
                )));
            }
        }
        let next_after = rows.last().map_or(after, |r| r.seq);
        let items = rows
            .into_iter()
            .map(|r| to_api(r, access.detail))
            .collect::<Result<_>>()?;
        Ok(crate::model::ChangePage { items, next_after })
    }

    /// Every event's changes after `cursor` (administrators only).
    pub async fn global(
        &self,
        caller: &Caller,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<crate::model::GlobalChangePage> {
        if !policy::may_account(caller, AccountAction::Administer) {
            return Err(Error::Forbidden(
                "only administrators may read the global change feed".into(),
            ));
        }
        let from = match cursor {
            None => Cursor::START,
            Some(text) => Cursor::decode(text).ok_or_else(|| {
                Error::BadRequest("`after` is not a cursor this server handed out".into())
            })?,
        };
        let swept = repository::changes::swept_up_to(&self.db).await?;
        if from != Cursor::START && (from.0.txid, from.0.id) < (swept.txid, swept.id) {
            return Err(expired(
                "changes after this cursor are no longer kept; resync from the lists, then \
                 follow from a cursor of a fresh read",
            ));
        }
        let rows = repository::changes::global_after(&self.db, from.0, limit.into()).await?;
        let next = rows.last().map_or(from, |r| {
            Cursor(Position {
                txid: r.txid,
                id: r.id,
            })
        });
        let items = rows
            .into_iter()
            .map(|r| to_api(r, Detail::Full))
            .collect::<Result<_>>()?;
        Ok(crate::model::GlobalChangePage {
            items,
            next_cursor: next.encode(),
        })
    }

    /// Opens a live stream of an event's changes: its snapshot, then every change after
    /// `after` (default: the snapshot's `seq`).
    pub async fn open_stream(
        &self,
        caller: Option<&Caller>,
        event_id: Uuid,
        after: Option<i64>,
    ) -> Result<(
        StreamSnapshot,
        impl futures_util::Stream<Item = Change> + Send + 'static,
    )> {
        let permit = self.hub.reserve_stream()?;
        let access = self.access(caller, event_id).await?;
        let Some(event) = access.event else {
            // A deleted event has nothing left to follow.
            return Err(Error::NotFound("event"));
        };
        let after = after.unwrap_or(access.current_seq);
        if after < access.current_seq {
            let first = repository::changes::first_seq(&self.db, event_id).await?;
            if first.is_none_or(|first| first > after + 1) {
                return Err(expired(format!(
                    "changes after seq {after} are no longer kept; reconnect without \
                     Last-Event-ID to start from a snapshot"
                )));
            }
        }
        let snapshot = StreamSnapshot {
            event_id,
            seq: event.change_seq,
            counts: ChangeCounts::new(event.confirmed_count, event.waitlist_count, event.capacity),
        };
        let recorded = self.hub.ensure_followed(event_id).await?;
        let stream = self
            .hub
            .follow(permit, event_id, event.change_seq, after, access.detail);
        if recorded {
            // What committed between the snapshot and the record notified nobody.
            self.hub.wake(event_id);
        }
        Ok((snapshot, stream))
    }
}
