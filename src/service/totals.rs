//! Totals of event list queries (`EventCountCache`), remembered briefly.
//!
//! A list page is an index range scan; its `total` is a COUNT over every match, linear in the
//! table (22 ms at 100k events). The count of a given filter is remembered until this process
//! changes an event (exact for its own writes) and at most `TTL` (bounding how stale a total
//! can be after another instance's writes or a bulk import).

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// Longest a total is reused.
pub const TTL: Duration = Duration::from_secs(2);
/// Most filters remembered at once.
const MAX_ENTRIES: usize = 1024;

/// Event counts of list queries, remembered briefly, keyed by a description of the filter
/// and the viewer.
#[derive(Default)]
pub struct EventCountCache {
    generation: AtomicU64,
    entries: Mutex<HashMap<String, (u64, Instant, u64)>>,
}

impl EventCountCache {
    /// The current generation, to pass back to `put` with a total counted after reading it.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// A total counted in the current generation, less than `TTL` ago.
    pub fn get(&self, key: &str) -> Option<u64> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let &(generation, at, total) = entries.get(key)?;
        (generation == self.generation() && at.elapsed() < TTL).then_some(total)
    }

    /// Remembers a total counted in `generation` (ignored if events changed meanwhile).
    pub fn put(&self, key: String, generation: u64, total: u64) {
        if generation != self.generation() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (generation, Instant::now(), total));
    }

    /// Forgets every total: called after any write that adds, removes or changes events.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::EventCountCache;

    #[test]
    fn a_total_is_reused_until_events_change() {
        let totals = EventCountCache::default();
        let g = totals.generation();
        totals.put("all".into(), g, 7);
        assert_eq!(totals.get("all"), Some(7));
        totals.invalidate();
        assert_eq!(totals.get("all"), None);
    }

    #[test]
    fn a_total_counted_before_a_change_is_not_remembered() {
        let totals = EventCountCache::default();
        let g = totals.generation();
        totals.invalidate();
        totals.put("all".into(), g, 7);
        assert_eq!(totals.get("all"), None);
    }
}
