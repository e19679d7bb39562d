//! Throttling of failed logins, with `governor` (GCRA) counting the failures.
//!
//! Three policies, each "N failures a minute" with a burst of N:
//! - per (email, client): the strict one; a client that keeps guessing one account's password
//!   is refused (429) for that account, and only that client is;
//! - per client: a client guessing across many accounts is refused for all of them;
//! - per email, at a much higher threshold: when one account is attacked from many clients,
//!   every client that has failed for it recently is refused until the storm passes.
//!
//! A client that has not failed is never refused because of others' failures, so nobody can
//! lock a user out by guessing their password. Successful logins cost nothing.

use std::{
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
    num::NonZeroU32,
    sync::Mutex,
    time::{Duration, Instant},
};

use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::StateInformationMiddleware,
    state::keyed::DefaultKeyedStateStore,
};

/// Every policy counts failures over this window.
const WINDOW: Duration = Duration::from_secs(60);

/// A limiter holding more keys than this sweeps the stale ones at its next failure (it also
/// sweeps once a window). Each failure costs an argon2 hash, which bounds how fast keys come.
const SWEEP_ABOVE_KEYS: usize = 10_000;

/// Thresholds, in failed logins a minute.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleLimits {
    /// Per (email, client).
    pub per_email_and_client: u32,
    /// Per email, from all clients together.
    pub per_email: u32,
    /// Per client, for all emails together.
    pub per_client: u32,
}

/// Where a client stands under the policy closest to refusing it; sent as the IETF
/// `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Failed logins allowed a minute under this policy.
    pub limit: u32,
    /// Failed logins still allowed now.
    pub remaining: u32,
    /// Seconds until `remaining` is back to `limit` (0 when it is).
    pub reset_seconds: u64,
}

/// Why a login attempt is refused before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// Seconds until an attempt may be accepted again (`Retry-After`).
    pub retry_after_seconds: u64,
    /// The policy that refused.
    pub rate_limit: RateLimit,
}

/// Counts failed logins per (email, client), per email and per client.
pub struct LoginThrottle {
    per_pair: Limiter<(String, Option<IpAddr>)>,
    per_email: Limiter<String>,
    per_client: Limiter<IpAddr>,
}

impl LoginThrottle {
    /// A throttle with these thresholds.
    pub fn new(limits: ThrottleLimits) -> Self {
        Self {
            per_pair: Limiter::new(limits.per_email_and_client),
            per_email: Limiter::new(limits.per_email),
            per_client: Limiter::new(limits.per_client),
        }
    }

    /// Whether `client` may try a password for `email` now; `email` is normalised. `client`
    /// is `None` when it cannot be identified: such clients share one allowance per email,
    /// and no per-client one. An accepted attempt holds one of the remaining failures until
    /// it is settled, so that simultaneous guesses cannot outnumber the allowance.
    pub fn check(&self, email: &str, client: Option<IpAddr>) -> Result<Attempt<'_>, Refusal> {
        let now = Instant::now();
        let pair_key = (email.to_owned(), client);
        let pair = self.per_pair.reserve(&pair_key, now)?;
        let by_client = match client {
            Some(c) => match self.per_client.reserve(&c, now) {
                Ok(state) => Some(state),
                Err(refusal) => {
                    self.per_pair.release(&pair_key);
                    return Err(refusal);
                }
            },
            None => None,
        };
        let attempt = Attempt {
            throttle: self,
            pair_key,
            client,
            rate_limit: closest(pair, by_client),
        };
        if pair.failed_recently {
            let by_email = self.per_email.state(&email.to_owned(), now);
            if let Some(wait) = by_email.blocked_for {
                return Err(by_email.refusal(wait));
            }
        }
        Ok(attempt)
    }
}

/// A login attempt the throttle accepted; dropping it without a failure releases what it
/// held (a success, or a request that ended early).
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    pair_key: (String, Option<IpAddr>),
    client: Option<IpAddr>,
    rate_limit: RateLimit,
}

impl std::fmt::Debug for Attempt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt")
            .field("client", &self.client)
            .field("rate_limit", &self.rate_limit)
            .finish_non_exhaustive()
    }
}

impl Attempt<'_> {
    /// Where the client stood when the attempt was accepted.
    pub fn rate_limit(&self) -> RateLimit {
        self.rate_limit
    }

    /// Counts the attempt as a failed login and says where the client now stands.
    pub fn failed(self) -> RateLimit {
        let now = Instant::now();
        let throttle = self.throttle;
        let pair = throttle.per_pair.record(&self.pair_key, now);
        throttle.per_email.record(&self.pair_key.0, now);
        let by_client = self.client.map(|c| throttle.per_client.record(&c, now));
        closest(pair, by_client)
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.throttle.per_pair.release(&self.pair_key);
        if let Some(client) = self.client {
            self.throttle.per_client.release(&client);
        }
    }
}

/// The state of the policy with the fewest failures left (the pair's on a tie).
fn closest(pair: State, by_client: Option<State>) -> RateLimit {
    match by_client {
        Some(c) if c.rate_limit.remaining < pair.rate_limit.remaining => c.rate_limit,
        _ => pair.rate_limit,
    }
}

/// One policy: failures counted by governor, plus what each key's last failure left, so that
/// a key can be looked at without spending a cell (governor has no read-only check).
struct Limiter<K: Hash + Eq + Clone> {
    limit: u32,
    /// Time for one failure to be forgiven: `WINDOW / limit`.
    cell: Duration,
    failures: RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>,
    marks: Mutex<Marks<K>>,
}

struct Marks<K> {
    by_key: HashMap<K, Mark>,
    /// Attempts accepted and not yet settled, per key.
    in_flight: HashMap<K, u32>,
    last_sweep: Instant,
}

/// What a key's last failure left.
#[derive(Debug, Clone, Copy)]
struct Mark {
    /// Failures left right after it.
    remaining: u32,
    /// When it happened.
    at: Instant,
    /// Refused until then (in the past when not refused).
    blocked_until: Instant,
}

/// A key's standing at one instant.
#[derive(Debug, Clone, Copy)]
struct State {
    rate_limit: RateLimit,
    blocked_for: Option<Duration>,
    failed_recently: bool,
}

impl State {
    fn refusal(&self, wait: Duration) -> Refusal {
        Refusal {
            retry_after_seconds: ceil_seconds(wait).max(1),
            rate_limit: RateLimit {
                remaining: 0,
                ..self.rate_limit
            },
        }
    }
}

fn ceil_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn new(per_minute: u32) -> Self {
        let limit = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            limit: limit.get(),
            cell: WINDOW / limit.get(),
            failures: RateLimiter::keyed(Quota::per_minute(limit)).with_middleware(),
            marks: Mutex::new(Marks {
                by_key: HashMap::new(),
                in_flight: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Marks<K>> {
        self.marks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The key's standing at `now`, replenishing one failure per `cell` as governor does.
    fn state(&self, key: &K, now: Instant) -> State {
        let mark = self.lock().by_key.get(key).copied();
        self.project(mark, now)
    }

    /// Accepts one more attempt for `key` unless the key is blocked or as many attempts as
    /// it has failures left are already running.
    fn reserve(&self, key: &K, now: Instant) -> Result<State, Refusal> {
        let mut marks = self.lock();
        let state = self.project(marks.by_key.get(key).copied(), now);
        if let Some(wait) = state.blocked_for {
            return Err(state.refusal(wait));
        }
        let running = marks.in_flight.entry(key.clone()).or_insert(0);
        if *running >= state.rate_limit.remaining {
            // Those attempts settle within a password check.
            return Err(state.refusal(Duration::from_secs(1)));
        }
        *running += 1;
        Ok(state)
    }

    /// Settles an attempt `reserve` accepted.
    fn release(&self, key: &K) {
        let mut marks = self.lock();
        if let Some(running) = marks.in_flight.get_mut(key) {
            *running = running.saturating_sub(1);
            if *running == 0 {
                marks.in_flight.remove(key);
            }
        }
    }

    fn project(&self, mark: Option<Mark>, now: Instant) -> State {
        let Some(mark) = mark else {
            return State {
                rate_limit: RateLimit {
                    limit: self.limit,
                    remaining: self.limit,
                    reset_seconds: 0,
                },
                blocked_for: None,
                failed_recently: false,
            };
        };
        let elapsed = now.saturating_duration_since(mark.at);
        let regained = (elapsed.as_nanos() / self.cell.as_nanos().max(1)).min(u128::from(u32::MAX));
        let remaining = mark
            .remaining
            .saturating_add(regained as u32)
            .min(self.limit);
        let full_at = mark.at + self.cell * (self.limit - mark.remaining.min(self.limit));
        State {
            rate_limit: RateLimit {
                limit: self.limit,
                remaining,
                reset_seconds: ceil_seconds(full_at.saturating_duration_since(now)),
            },
            blocked_for: Some(mark.blocked_until.saturating_duration_since(now))
                .filter(|d| !d.is_zero()),
            failed_recently: elapsed < WINDOW,
        }
    }

    /// Counts one failure for `key`. The failure that uses the last allowance blocks the key
    /// until governor would accept another one.
    fn record(&self, key: &K, now: Instant) -> State {
        let (remaining, blocked_until) = match self.failures.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                // Governor frees the next cell within one `cell`; waiting a whole one is the
                // safe side of that.
                (
                    remaining,
                    if remaining == 0 { now + self.cell } else { now },
                )
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                (0, now + wait.max(Duration::from_millis(1)))
            }
        };
        let mark = Mark {
            remaining,
            at: now,
            blocked_until,
        };
        let mut marks = self.lock();
        if marks.by_key.len() >= SWEEP_ABOVE_KEYS
            || now.saturating_duration_since(marks.last_sweep) >= WINDOW
        {
            self.sweep(&mut marks, now);
        }
        marks.by_key.insert(key.clone(), mark);
        drop(marks);
        self.project(Some(mark), now)
    }

    /// Forgets keys whose failures are all forgiven, here and in governor.
    fn sweep(&self, marks: &mut Marks<K>, now: Instant) {
        marks.by_key.retain(|_, mark| {
            let state = self.project(Some(*mark), now);
            state.failed_recently
                || state.blocked_for.is_some()
                || state.rate_limit.remaining < self.limit
        });
        marks.last_sweep = now;
        self.failures.retain_recent();
        self.failures.shrink_to_fit();
    }

    #[cfg(test)]
    fn keys(&self) -> (usize, usize) {
        (self.lock().by_key.len(), self.failures.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(pair: u32, email: u32, client: u32) -> LoginThrottle {
        LoginThrottle::new(ThrottleLimits {
            per_email_and_client: pair,
            per_email: email,
            per_client: client,
        })
    }

    fn fail(t: &LoginThrottle, email: &str, client: Option<IpAddr>) -> RateLimit {
        t.check(email, client).expect("accepted").failed()
    }

    fn ip(n: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, n]))
    }

    #[test]
    fn the_failure_that_uses_the_last_allowance_blocks_the_next_attempt() {
        let t = throttle(3, 100, 100);
        for left in [2, 1, 0] {
            let attempt = t.check("a@example.com", ip(1)).expect("accepted");
            assert_eq!(attempt.failed().remaining, left);
        }
        let refusal = t.check("a@example.com", ip(1)).unwrap_err();
        assert_eq!(refusal.rate_limit.remaining, 0);
        assert_eq!(refusal.rate_limit.limit, 3);
        // One failure is forgiven every 20 s.
        assert!((1..=20).contains(&refusal.retry_after_seconds));
        assert!(refusal.rate_limit.reset_seconds >= refusal.retry_after_seconds);
    }

    #[test]
    fn another_client_is_not_refused_for_the_same_email() {
        let t = throttle(2, 100, 100);
        for _ in 0..2 {
            fail(&t, "a@example.com", ip(1));
        }
        assert!(t.check("a@example.com", ip(1)).is_err());
        let fresh = t
            .check("a@example.com", ip(2))
            .expect("another client may try");
        assert_eq!(fresh.rate_limit().remaining, 2);
    }

    #[test]
    fn a_client_failing_across_emails_is_refused_for_every_email() {
        let t = throttle(5, 100, 3);
        for n in 0..3 {
            fail(&t, &format!("u{n}@example.com"), ip(1));
        }
        let refusal = t.check("new@example.com", ip(1)).unwrap_err();
        assert_eq!(refusal.rate_limit.limit, 3);
        assert!(t.check("new@example.com", ip(2)).is_ok());
    }

    #[test]
    fn an_email_under_attack_refuses_clients_that_failed_but_not_fresh_ones() {
        let t = throttle(5, 4, 100);
        for n in 1..=4 {
            fail(&t, "a@example.com", ip(n));
        }
        let refusal = t.check("a@example.com", ip(1)).unwrap_err();
        assert_eq!(refusal.rate_limit.limit, 4);
        assert!(
            t.check("a@example.com", ip(9)).is_ok(),
            "a fresh client may try"
        );
        assert!(
            t.check("b@example.com", ip(1)).is_ok(),
            "other emails are unaffected"
        );
    }

    #[test]
    fn unidentified_clients_share_one_allowance_per_email() {
        let t = throttle(2, 100, 100);
        fail(&t, "a@example.com", None);
        fail(&t, "a@example.com", None);
        assert!(t.check("a@example.com", None).is_err());
        assert!(t.check("a@example.com", ip(1)).is_ok());
    }

    #[test]
    fn the_reported_policy_is_the_one_closest_to_refusing() {
        let t = throttle(5, 100, 2);
        let status = fail(&t, "a@example.com", ip(1));
        assert_eq!((status.limit, status.remaining), (2, 1));
        // A fresh client: the smaller allowance is the closer one.
        let status = t.check("b@example.com", ip(2)).unwrap().rate_limit();
        assert_eq!(
            (status.limit, status.remaining, status.reset_seconds),
            (2, 2, 0)
        );
    }

    #[test]
    fn attempts_in_flight_hold_the_remaining_failures_until_settled() {
        let t = throttle(2, 100, 100);
        let first = t.check("a@example.com", ip(1)).expect("first");
        let second = t.check("a@example.com", ip(1)).expect("second");
        let refusal = t.check("a@example.com", ip(1)).map(|_| ()).unwrap_err();
        assert_eq!(refusal.retry_after_seconds, 1);
        // A success settles without spending anything.
        drop(first);
        let third = t
            .check("a@example.com", ip(1))
            .expect("a slot is free again");
        second.failed();
        drop(third);
        assert_eq!(
            t.check("a@example.com", ip(1))
                .unwrap()
                .rate_limit()
                .remaining,
            1
        );
    }

    #[test]
    fn stale_keys_are_swept() {
        let limiter: Limiter<u32> = Limiter::new(60_000);
        let start = Instant::now();
        for key in 0..100 {
            limiter.record(&key, start);
        }
        assert_eq!(limiter.keys().0, 100);
        // A window later, every failure is forgiven: the next failure sweeps them all.
        std::thread::sleep(Duration::from_millis(5));
        let later = start + WINDOW + Duration::from_secs(1);
        limiter.record(&1000, later);
        let (marks, _) = limiter.keys();
        assert_eq!(marks, 1);
    }
}
