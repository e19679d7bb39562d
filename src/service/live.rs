//! Live updates: one fan-out per process from the changes table to every open stream.
//!
//! Writers never talk to streams. After a commit the service (and, on PostgreSQL, the
//! `LISTEN` worker for other instances' commits) calls [`ChangeHub::wake`] with the event id.
//! The fan-out worker then reads the event's new rows from the table once and broadcasts them
//! to that event's streams. The table is the source of truth: a lost wake-up costs latency,
//! never data, and a stream that falls behind (a slow client) is dropped from the broadcast
//! and catches up from the table on its own, so it never slows writers or other streams.
//!
//! PostgreSQL: the `changes` trigger notifies only for events some instance follows
//! (`change_followers`), so a write to an event nobody streams wakes no listener. The hub
//! records an event there before its first stream here starts, refreshes what it follows
//! (`refresh_followers`, from a worker) and forgets it all when it stops.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex},
};

use futures_util::{Stream, StreamExt};
use sea_orm::{DatabaseConnection, DbBackend};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, watch};
use uuid::Uuid;

use super::{
    Error, Result,
    changes::{Detail, to_api},
};
use crate::{
    entity::change,
    model::{Change, ChangeType},
    repository,
};

/// Rows read from the table at a time.
const PAGE: u64 = 500;
/// Changes a stream may be behind the broadcast before it is dropped to catch up from the
/// table.
const BROADCAST_CAPACITY: usize = 1024;
/// How long a follower record lives without a refresh; the hub refreshes its records well
/// within it (`FOLLOWERS_REFRESH` in the worker).
pub const FOLLOWER_EXPIRY_SECONDS: u64 = 120;

/// This process's entries in `change_followers` (PostgreSQL).
struct Followers {
    /// This process, for as long as it runs.
    instance: Uuid,
    /// Events whose record this process wrote or refreshed since its last refresh round.
    recorded: Mutex<HashSet<Uuid>>,
}

/// One event's subscribers and how far the broadcast has read.
struct Topic {
    tx: broadcast::Sender<Arc<change::Model>>,
    last_seq: i64,
}

/// The per-process registry of open streams and the events they follow.
pub struct ChangeHub {
    db: DatabaseConnection,
    topics: Mutex<HashMap<Uuid, Topic>>,
    dirty: Mutex<HashSet<Uuid>>,
    woken: tokio::sync::Notify,
    streams: Arc<Semaphore>,
    max_streams: usize,
    shutdown: watch::Sender<bool>,
    followers: Option<Followers>,
}

impl ChangeHub {
    /// A hub that allows `max_streams` open streams.
    pub fn new(db: DatabaseConnection, max_streams: usize) -> Self {
        let followers = (db.get_database_backend() == DbBackend::Postgres).then(|| Followers {
            instance: Uuid::now_v7(),
            recorded: Mutex::new(HashSet::new()),
        });
        Self {
            db,
            topics: Mutex::new(HashMap::new()),
            dirty: Mutex::new(HashSet::new()),
            woken: tokio::sync::Notify::new(),
            streams: Arc::new(Semaphore::new(max_streams)),
            max_streams,
            shutdown: watch::channel(false).0,
            followers,
        }
    }

    /// Makes sure other instances' writes to the event notify this one (PostgreSQL), before
    /// a stream of it starts here. Returns whether it had to record the event: then the
    /// caller wakes the event once its stream has subscribed, to read what committed
    /// between its snapshot and the record.
    pub async fn ensure_followed(&self, event_id: Uuid) -> Result<bool> {
        let Some(f) = &self.followers else {
            return Ok(false);
        };
        if lock(&f.recorded).contains(&event_id) {
            return Ok(false);
        }
        repository::followers::follow(&self.db, event_id, f.instance).await?;
        lock(&f.recorded).insert(event_id);
        Ok(true)
    }

    /// Refreshes the records of the events followed here now and drops those of events no
    /// longer followed (they expire); deletes everyone's expired records. Re-records (and
    /// re-reads) everything when some records had expired meanwhile, as after an outage.
    pub async fn refresh_followers(&self) -> Result<()> {
        let Some(f) = &self.followers else {
            return Ok(());
        };
        let live: Vec<Uuid> = {
            let topics = lock(&self.topics);
            lock(&f.recorded).retain(|e| topics.contains_key(e));
            topics.keys().copied().collect()
        };
        let found = repository::followers::refresh(&self.db, f.instance, &live).await?;
        if found < live.len() as u64 {
            for &event_id in &live {
                repository::followers::follow(&self.db, event_id, f.instance).await?;
            }
            lock(&f.recorded).extend(live);
            self.wake_all();
        }
        repository::followers::expire(&self.db, FOLLOWER_EXPIRY_SECONDS).await?;
        Ok(())
    }

    /// Deletes this process's records (it stops).
    pub async fn forget_followers(&self) -> Result<()> {
        if let Some(f) = &self.followers {
            repository::followers::forget(&self.db, f.instance).await?;
            lock(&f.recorded).clear();
        }
        Ok(())
    }

    /// Says that the event has new committed changes. Cheap; never blocks.
    pub fn wake(&self, event_id: Uuid) {
        let followed = lock(&self.topics).contains_key(&event_id);
        if followed {
            lock(&self.dirty).insert(event_id);
            self.woken.notify_one();
        }
    }

    /// Marks every followed event as changed (after a missed notification).
    pub fn wake_all(&self) {
        let ids: Vec<Uuid> = lock(&self.topics).keys().copied().collect();
        lock(&self.dirty).extend(ids);
        self.woken.notify_one();
    }

    /// Waits for a wake-up, then returns the events to fan out.
    pub async fn next_dirty(&self) -> Vec<Uuid> {
        loop {
            let ids: Vec<Uuid> = lock(&self.dirty).drain().collect();
            if !ids.is_empty() {
                return ids;
            }
            self.woken.notified().await;
        }
    }

    /// Reads an event's changes after what its streams have seen and broadcasts them.
    pub async fn fan_out(&self, event_id: Uuid) -> Result<()> {
        loop {
            let Some(after) = lock(&self.topics).get(&event_id).map(|t| t.last_seq) else {
                return Ok(());
            };
            let rows = repository::changes::for_event(&self.db, event_id, after, PAGE).await?;
            let full_page = rows.len() as u64 == PAGE;
            {
                let mut topics = lock(&self.topics);
                let Some(topic) = topics.get_mut(&event_id) else {
                    return Ok(());
                };
                for row in rows {
                    if row.seq > topic.last_seq {
                        topic.last_seq = row.seq;
                        // No receiver left is fine: the topic goes with its last stream.
                        let _ = topic.tx.send(Arc::new(row));
                    }
                }
            }
            if !full_page {
                return Ok(());
            }
        }
    }

    /// Open streams now.
    pub fn open_streams(&self) -> usize {
        self.max_streams - self.streams.available_permits()
    }

    /// Ends every stream and refuses new ones (graceful shutdown).
    pub fn shut_down(&self) {
        self.streams.close();
        self.shutdown.send_replace(true);
        self.woken.notify_one();
    }

    /// Whether shutdown has begun.
    pub fn is_shut_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Resolves when shutdown begins.
    pub fn shutdown_signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.subscribe();
        async move {
            let _ = rx.wait_for(|down| *down).await;
        }
    }

    /// Takes one of the `MAX_STREAMS` places, or refuses with 503.
    pub fn reserve_stream(&self) -> Result<OwnedSemaphorePermit> {
        self.streams
            .clone()
            .try_acquire_owned()
            .map_err(|_| Error::Busy {
                slug: "too-many-streams",
                detail: format!(
                    "this server has {} open streams, its limit; retry later",
                    self.max_streams
                ),
                retry_after_seconds: 5,
            })
    }

    /// Subscribes to an event's broadcast. `current_seq` is the event's `change_seq` as read
    /// by the caller: a new topic starts there (what came before is read from the table).
    fn subscribe(self: &Arc<Self>, event_id: Uuid, current_seq: i64) -> Subscription {
        let mut topics = lock(&self.topics);
        let topic = topics.entry(event_id).or_insert_with(|| Topic {
            tx: broadcast::channel(BROADCAST_CAPACITY).0,
            last_seq: current_seq,
        });
        Subscription {
            rx: topic.tx.subscribe(),
            _guard: TopicGuard {
                hub: self.clone(),
                event_id,
            },
        }
    }

    /// A stream of an event's changes after `after`, redacted to `detail`, that ends after
    /// `event.deleted`, on shutdown, or when the table cannot be read.
    pub fn follow(
        self: &Arc<Self>,
        permit: OwnedSemaphorePermit,
        event_id: Uuid,
        current_seq: i64,
        after: i64,
        detail: Detail,
    ) -> impl Stream<Item = Change> + Send + 'static {
        let state = Follow {
            hub: self.clone(),
            subscription: self.subscribe(event_id, current_seq),
            event_id,
            last_sent: after,
            pending: VecDeque::new(),
            // Resuming from behind the present: read the gap from the table first.
            behind: after < current_seq,
            finished: false,
            detail,
            _permit: permit,
        };
        futures_util::stream::unfold(state, Follow::next).take_until(self.shutdown_signal())
    }
}

/// A stream's place in its event's broadcast.
struct Subscription {
    // Dropped before the guard, so the guard sees the receiver count without it.
    rx: broadcast::Receiver<Arc<change::Model>>,
    _guard: TopicGuard,
}

/// Removes an event's topic when its last stream goes.
struct TopicGuard {
    hub: Arc<ChangeHub>,
    event_id: Uuid,
}

impl Drop for TopicGuard {
    fn drop(&mut self) {
        let mut topics = lock(&self.hub.topics);
        if topics
            .get(&self.event_id)
            .is_some_and(|t| t.tx.receiver_count() == 0)
        {
            topics.remove(&self.event_id);
        }
    }
}

/// The state of one open stream.
struct Follow {
    hub: Arc<ChangeHub>,
    subscription: Subscription,
    event_id: Uuid,
    last_sent: i64,
    pending: VecDeque<change::Model>,
    behind: bool,
    finished: bool,
    detail: Detail,
    _permit: OwnedSemaphorePermit,
}

impl Follow {
    async fn next(mut self) -> Option<(Change, Follow)> {
        loop {
            if self.finished {
                return None;
            }
            if self.behind && self.pending.is_empty() {
                self.behind = false;
                match repository::changes::for_event(
                    &self.hub.db,
                    self.event_id,
                    self.last_sent,
                    PAGE,
                )
                .await
                {
                    Ok(rows) => {
                        // A full page may have more behind it: read again once it is sent.
                        self.behind = rows.len() as u64 == PAGE;
                        self.pending.extend(rows);
                    }
                    Err(e) => {
                        // The client resumes with Last-Event-ID; nothing is lost.
                        tracing::warn!(error = %e, event_id = %self.event_id, "stream could not read changes; ending it");
                        return None;
                    }
                }
            }
            if let Some(row) = self.pending.pop_front() {
                if row.seq <= self.last_sent {
                    continue;
                }
                return self.send(row);
            }
            match self.subscription.rx.recv().await {
                Ok(row) if row.seq <= self.last_sent => continue,
                Ok(row) if row.seq == self.last_sent + 1 => return self.send((*row).clone()),
                // A gap (the topic started after this stream's position) or a lag: catch up
                // from the table.
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => self.behind = true,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    fn send(mut self, row: change::Model) -> Option<(Change, Follow)> {
        self.last_sent = row.seq;
        if row.kind == ChangeType::EventDeleted.as_str() {
            self.finished = true;
        }
        match to_api(row, self.detail) {
            Ok(change) => Some((change, self)),
            Err(e) => {
                tracing::error!(error = ?e, "a stored change could not be shown");
                None
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks leaves consistent data (plain inserts/removes).
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
