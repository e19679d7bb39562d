//! The HTTP load generator: `concurrency` workers share one keep-alive client and send
//! requests until a deadline or a request count is reached, each latency going into an HDR
//! histogram.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rand::{SeedableRng, rngs::SmallRng};
use reqwest::Client;
use tokio::net::TcpStream;

/// When a run stops.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    /// After this long (requests in flight at the deadline still count).
    After(Duration),
    /// After exactly this many requests.
    Count(usize),
}

/// What a run measured.
pub struct Outcome {
    /// Requests sent (and answered or failed).
    pub requests: u64,
    /// Requests that failed: transport errors, unexpected statuses, refused bodies.
    pub errors: u64,
    /// Wall time from the first send to the last answer.
    pub elapsed: Duration,
    /// Latencies in microseconds.
    pub hist: Histogram<u64>,
    /// First few error descriptions, to print.
    pub samples: Vec<String>,
}

impl Outcome {
    /// Requests per second.
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// Merges another run of the same scenario (a later round).
    pub fn merge(&mut self, other: Outcome) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        let _ = self.hist.add(&other.hist);
        self.samples.extend(other.samples);
        self.samples.truncate(5);
    }
}

/// A new latency histogram: 1 µs to 100 s, 3 significant figures.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid histogram bounds")
}

/// A keep-alive client for `concurrency` parallel requests (seeding and set-up calls).
pub fn client(concurrency: usize) -> anyhow::Result<Client> {
    Ok(Client::builder()
        .pool_max_idle_per_host(concurrency.max(1))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// A request of the load: built up front so the generator spends little CPU per request.
pub type LoadRequest = http::Request<Full<Bytes>>;

/// A request to `path` on the server, with an optional bearer header and JSON body.
pub fn request(
    method: http::Method,
    path: &str,
    bearer: Option<&str>,
    json: Option<Bytes>,
) -> LoadRequest {
    let mut b = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, "127.0.0.1");
    if let Some(bearer) = bearer {
        b = b.header(http::header::AUTHORIZATION, bearer);
    }
    let body = match json {
        Some(body) => {
            b = b.header(http::header::CONTENT_TYPE, "application/json");
            body
        }
        None => Bytes::new(),
    };
    b.body(Full::new(body)).expect("a valid request")
}

/// Builds request number `seq`; the RNG is the worker's own.
pub type MakeRequest = dyn Fn(usize, &mut SmallRng) -> LoadRequest + Send + Sync;
/// Whether an answer is a success: status and body.
pub type Check = dyn Fn(u16, &[u8]) -> bool + Send + Sync;

/// One keep-alive HTTP/1.1 connection (hyper's connection API: no pool, no URL parsing).
struct Conn {
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    async fn send(&mut self, req: LoadRequest) -> Result<(u16, Bytes), String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(|e| format!("connecting: {e}"))?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(conn);
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().expect("connected above");
        let result = async {
            sender.ready().await?;
            let resp = sender.send_request(req).await?;
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        }
        .await;
        result.map_err(|e| {
            self.sender = None;
            format!("sending: {e}")
        })
    }
}

/// Runs one load: `concurrency` workers, one connection each, until `stop`.
pub async fn run(
    addr: SocketAddr,
    concurrency: usize,
    stop: Stop,
    make: Arc<MakeRequest>,
    check: Arc<Check>,
) -> Outcome {
    let next = Arc::new(AtomicUsize::new(0));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let deadline = match stop {
        Stop::After(d) => Some(started + d),
        Stop::Count(_) => None,
    };
    let limit = match stop {
        Stop::Count(n) => n,
        Stop::After(_) => usize::MAX,
    };
    let mut workers = Vec::with_capacity(concurrency);
    for w in 0..concurrency {
        let (next, make, check, samples) =
            (next.clone(), make.clone(), check.clone(), samples.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = SmallRng::seed_from_u64(0x5eed ^ w as u64);
            let mut conn = Conn { addr, sender: None };
            let mut hist = histogram();
            let (mut requests, mut errors) = (0u64, 0u64);
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= limit {
                    break;
                }
                let request = make(seq, &mut rng);
                let t0 = Instant::now();
                let result = match conn.send(request).await {
                    Ok((status, body)) if check(status, &body) => Ok(()),
                    Ok((status, body)) => Err(format!(
                        "{status}: {}",
                        String::from_utf8_lossy(&body[..body.len().min(200)])
                    )),
                    Err(e) => Err(e),
                };
                let micros = t0.elapsed().as_micros() as u64;
                let _ = hist.record(micros.max(1));
                requests += 1;
                if let Err(e) = result {
                    errors += 1;
                    let mut s = samples.lock().unwrap_or_else(|p| p.into_inner());
                    if s.len() < 5 {
                        s.push(e);
                    }
                }
            }
            (hist, requests, errors)
        }));
    }
    let mut hist = histogram();
    let (mut requests, mut errors) = (0, 0);
    for w in workers {
        match w.await {
            Ok((h, r, e)) => {
                let _ = hist.add(&h);
                requests += r;
                errors += e;
            }
            Err(e) => {
                errors += 1;
                samples
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(format!("worker panicked: {e}"));
            }
        }
    }
    let elapsed = started.elapsed();
    let samples = std::mem::take(&mut *samples.lock().unwrap_or_else(|p| p.into_inner()));
    Outcome {
        requests,
        errors,
        elapsed,
        hist,
        samples,
    }
}

/// Runs `f(i)` for `i` in `0..n` on `concurrency` tasks; results in order.
pub async fn par_map<T, F, Fut>(n: usize, concurrency: usize, f: F) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<T>> + Send,
{
    let f = Arc::new(f);
    let next = Arc::new(AtomicUsize::new(0));
    let slots: Arc<Mutex<Vec<Option<T>>>> = Arc::new(Mutex::new((0..n).map(|_| None).collect()));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (f, next, slots) = (f.clone(), next.clone(), slots.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), anyhow::Error>(());
                }
                let value = f(i).await?;
                slots.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(value);
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let mut slots = slots.lock().unwrap_or_else(|p| p.into_inner());
    Ok(slots
        .drain(..)
        .map(|v| v.expect("every index was filled"))
        .collect())
}
