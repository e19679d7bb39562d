//! Live streams (Server-Sent Events) held open during a scenario: how many changes each
//! received, and, for a sample of them, the delay from a change's `occurred_at` (taken in the
//! writing transaction, just before its commit) to its arrival.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use reqwest::Client;
use tokio::task::JoinHandle;

use crate::load;

/// Streams open on one event.
pub struct Streams {
    tasks: Vec<JoinHandle<()>>,
    /// Changes received, per stream.
    received: Arc<Vec<AtomicUsize>>,
    /// Delivery delays of the sampled streams, microseconds.
    delays: Arc<Mutex<Histogram<u64>>>,
}

/// A client for streams: no overall timeout, one connection per stream.
pub fn client() -> anyhow::Result<Client> {
    Ok(Client::builder().tcp_nodelay(true).build()?)
}

/// A client for streams over HTTP/2 (cleartext, prior knowledge): every stream of this
/// client shares one connection, as behind a proxy or a browser speaking HTTP/2.
pub fn client_h2() -> anyhow::Result<Client> {
    Ok(Client::builder()
        .http2_prior_knowledge()
        .tcp_nodelay(true)
        .build()?)
}

impl Streams {
    /// Opens `n` streams on `event` and waits until each has its snapshot; the first
    /// `sample` of them also measure delays.
    pub async fn open(
        client: &Client,
        base: &str,
        event: &str,
        n: usize,
        sample: usize,
    ) -> anyhow::Result<Streams> {
        let received: Arc<Vec<AtomicUsize>> =
            Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect());
        let delays = Arc::new(Mutex::new(load::histogram()));
        let ready = Arc::new(AtomicUsize::new(0));
        let url = format!("{base}/api/v1/events/{event}/stream");
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let response = client
                .get(&url)
                .send()
                .await
                .with_context(|| format!("opening stream {i}"))?;
            if response.status() != 200 {
                bail!("stream {i} answered {}", response.status());
            }
            let (received, delays, ready) = (received.clone(), delays.clone(), ready.clone());
            tasks.push(tokio::spawn(async move {
                read(response, i, i < sample, received, delays, ready).await;
            }));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while ready.load(Ordering::Relaxed) < n {
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "only {} of {n} streams sent their snapshot",
                    ready.load(Ordering::Relaxed)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Streams {
            tasks,
            received,
            delays,
        })
    }

    /// Waits (at most `timeout`) until every stream received `expected` changes; returns how
    /// many streams fell short.
    pub async fn wait_for(&self, expected: usize, timeout: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let short = self
                .received
                .iter()
                .filter(|r| r.load(Ordering::Relaxed) < expected)
                .count();
            if short == 0 || tokio::time::Instant::now() > deadline {
                return short;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The sampled delivery delays so far.
    pub fn delays(&self) -> Histogram<u64> {
        self.delays.lock().expect("delays lock").clone()
    }

    /// Closes every stream.
    pub fn close(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// Reads one stream until it ends: counts changes (every message but the snapshot) and,
/// when sampled, parses each change's `occurred_at`.
async fn read(
    mut response: reqwest::Response,
    index: usize,
    sampled: bool,
    received: Arc<Vec<AtomicUsize>>,
    delays: Arc<Mutex<Histogram<u64>>>,
    ready: Arc<AtomicUsize>,
) {
    let mut line = Vec::<u8>::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let now = chrono::Utc::now();
        for &b in chunk.iter() {
            if b != b'\n' {
                line.push(b);
                continue;
            }
            // Each message is `id:`, `event:`, `data:` lines, then a blank line.
            if line.starts_with(b"event: snapshot") {
                ready.fetch_add(1, Ordering::Relaxed);
            } else if line.starts_with(b"event: ") {
                received[index].fetch_add(1, Ordering::Relaxed);
            } else if sampled
                && line.starts_with(b"data: ")
                && let Some(at) = occurred_at(&line[6..])
            {
                let micros = (now - at).num_microseconds().unwrap_or(0).max(1) as u64;
                let _ = delays.lock().expect("delays lock").record(micros);
            }
            line.clear();
        }
    }
}

/// `occurred_at` of a change's JSON, if it is one.
fn occurred_at(json: &[u8]) -> Option<chrono::DateTime<chrono::Utc>> {
    let value: serde_json::Value = serde_json::from_slice(json).ok()?;
    let text = value.get("occurred_at")?.as_str()?;
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}
