//! Passwords (argon2id), access tokens (HS256 JWT) and authentication of callers.

use std::{
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use governor::{
    DefaultKeyedRateLimiter, Quota,
    clock::{Clock, DefaultClock},
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Caller, Error, Result};
use crate::{
    model::{TokenRequest, TokenResponse, TokenType},
    repository,
};

/// Argon2id hashing, run on the blocking pool so that the async workers keep serving.
pub struct Passwords {
    params: argon2::Params,
    /// One hash per core at a time: more would only queue on the CPU while holding their
    /// memory, and a burst of logins must not starve the rest of the service.
    permits: tokio::sync::Semaphore,
    /// A real hash of a random password: verifying against it when the email is unknown
    /// makes "no such user" cost as much as "wrong password". Made at the first such login,
    /// not at start-up, so an idle server never holds argon2's memory.
    dummy_hash: tokio::sync::OnceCell<String>,
}

impl Passwords {
    /// Hasher with the given cost parameters.
    pub fn new(memory_kib: u32, iterations: u32) -> anyhow::Result<Self> {
        let params = argon2::Params::new(memory_kib, iterations, 1, None)
            .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            params,
            dummy_hash: tokio::sync::OnceCell::new(),
            permits: tokio::sync::Semaphore::new(cores),
        })
    }

    /// PHC string of `password`, with a fresh salt.
    pub async fn hash(&self, password: String) -> Result<String> {
        let _permit = self.permits.acquire().await.map_err(anyhow::Error::from)?;
        let params = self.params.clone();
        tokio::task::spawn_blocking(move || {
            Argon2::from(&params)
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
        })
        .await
        .map_err(anyhow::Error::from)?
        .map_err(Error::Internal)
    }

    /// Whether `password` matches `hash`; with no hash, burns the same time and says no.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool> {
        let known = hash.is_some();
        let hash = match hash {
            Some(hash) => hash,
            None => self
                .dummy_hash
                .get_or_try_init(|| {
                    let random: [u8; 16] = rand::random();
                    self.hash(hex(&random))
                })
                .await?
                .clone(),
        };
        let _permit = self.permits.acquire().await.map_err(anyhow::Error::from)?;
        let params = self.params.clone();
        let ok = tokio::task::spawn_blocking(move || {
            Argon2::from(&params)
                .verify_password(password.as_bytes(), hash.as_str())
                .is_ok()
        })
        .await
        .map_err(anyhow::Error::from)?;
        Ok(known && ok)
    }
}

/// Lower-case hex of some bytes.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// JWT claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
}

/// Signs and checks access tokens.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_seconds: u64,
}

impl Tokens {
    /// Keys from a secret; tokens live `ttl_seconds`.
    pub fn new(secret: &[u8], ttl_seconds: u64) -> Self {
        // HS256 only: a token naming another algorithm (including `none`) is refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        // We issue and check with the same clock: no skew to forgive.
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_seconds,
        }
    }

    /// Signs a token for `user_id`, valid from `now` (seconds since the epoch).
    pub fn issue_at(&self, user_id: Uuid, now: i64) -> Result<String> {
        let claims = Claims {
            sub: user_id.to_string(),
            iat: now,
            exp: now + self.ttl_seconds as i64,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Internal(anyhow::Error::new(e).context("Failed to sign a token")))
    }

    /// The user id of a valid, unexpired token.
    pub fn verify(&self, token: &str) -> Result<Uuid> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| {
                tracing::debug!(error = %e, "token refused");
                Error::Unauthenticated("the access token is invalid or expired")
            })?;
        Uuid::parse_str(&data.claims.sub)
            .map_err(|_| Error::Unauthenticated("the access token is invalid or expired"))
    }

    /// Lifetime of issued tokens in seconds.
    pub fn ttl_seconds(&self) -> u64 {
        self.ttl_seconds
    }
}

/// Counts failed logins per email and per client address (GCRA, via `governor`) and blocks
/// a key that exceeds its quota until a cell is free again. Successful logins cost nothing.
pub struct LoginThrottle {
    per_email: Limiter<String>,
    per_client: Limiter<IpAddr>,
}

struct Limiter<K: Hash + Eq + Clone> {
    failures: DefaultKeyedRateLimiter<K>,
    /// Keys refused until the given instant: while blocked, even a correct password gets 429,
    /// or guessing could go on and only the right guess would get through.
    blocked: Mutex<HashMap<K, Instant>>,
}

/// Most blocked keys remembered before expired ones are swept.
const MAX_BLOCKED_KEYS: usize = 10_000;

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn new(failures_per_minute: u32) -> Self {
        let n = NonZeroU32::new(failures_per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            failures: DefaultKeyedRateLimiter::keyed(Quota::per_minute(n)),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    fn blocked_for(&self, key: &K) -> Option<Duration> {
        let blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        let until = *blocked.get(key)?;
        until.checked_duration_since(Instant::now())
    }

    fn record_failure(&self, key: &K) -> Option<Duration> {
        let not_until = self.failures.check_key(key).err()?;
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        if blocked.len() >= MAX_BLOCKED_KEYS {
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
            self.failures.retain_recent();
        }
        blocked.insert(key.clone(), Instant::now() + wait);
        Some(wait)
    }
}

impl LoginThrottle {
    /// At most `per_email` failed logins a minute for one email and `per_client` for one
    /// client address.
    pub fn new(per_email: u32, per_client: u32) -> Self {
        Self {
            per_email: Limiter::new(per_email),
            per_client: Limiter::new(per_client),
        }
    }

    fn check(&self, email: &str, client: Option<IpAddr>) -> Result<()> {
        let by_email = self.per_email.blocked_for(&email.to_owned());
        let by_client = client.and_then(|c| self.per_client.blocked_for(&c));
        match by_email.into_iter().chain(by_client).max() {
            Some(wait) => Err(too_many(wait)),
            None => Ok(()),
        }
    }

    fn record_failure(&self, email: &str, client: Option<IpAddr>) -> Result<()> {
        let by_email = self.per_email.record_failure(&email.to_owned());
        let by_client = client.and_then(|c| self.per_client.record_failure(&c));
        match by_email.into_iter().chain(by_client).max() {
            Some(wait) => Err(too_many(wait)),
            None => Ok(()),
        }
    }
}

fn too_many(wait: Duration) -> Error {
    Error::TooManyRequests {
        retry_after_seconds: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
    }
}

/// Login and authentication of requests.
#[derive(Clone)]
pub struct AuthService {
    db: DatabaseConnection,
    passwords: Arc<Passwords>,
    tokens: Arc<Tokens>,
    throttle: Arc<LoginThrottle>,
}

impl AuthService {
    /// The service over a pool.
    pub fn new(
        db: DatabaseConnection,
        passwords: Arc<Passwords>,
        tokens: Arc<Tokens>,
        throttle: Arc<LoginThrottle>,
    ) -> Self {
        Self {
            db,
            passwords,
            tokens,
            throttle,
        }
    }

    /// Exchanges an email and password for an access token. Unknown email and wrong password
    /// give the same error after the same work; repeated failures for one email or one
    /// client address are refused with 429 for a while.
    #[tracing::instrument(skip_all)]
    pub async fn issue_token(
        &self,
        request: TokenRequest,
        client: Option<IpAddr>,
    ) -> Result<TokenResponse> {
        let email = normalize_email(&request.email);
        self.throttle.check(&email, client)?;
        // An email no account can have (NUL, too long) is looked up nowhere, at the same cost.
        let user = if email.contains('\0') || email.chars().count() > 254 {
            None
        } else {
            repository::users::find_by_email(&self.db, &email).await?
        };
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        if !self.passwords.verify(request.password, hash).await? {
            self.throttle.record_failure(&email, client)?;
            return Err(Error::InvalidCredentials);
        }
        let user = user.ok_or(Error::InvalidCredentials)?;
        let access_token = self
            .tokens
            .issue_at(user.id, chrono::Utc::now().timestamp())?;
        Ok(TokenResponse {
            access_token,
            token_type: TokenType::Bearer,
            expires_in: self.tokens.ttl_seconds(),
        })
    }

    /// The caller behind a bearer token; the user must still exist.
    pub async fn authenticate(&self, token: &str) -> Result<Caller> {
        let id = self.tokens.verify(token)?;
        let user =
            repository::users::find_by_id(&self.db, id)
                .await?
                .ok_or(Error::Unauthenticated(
                    "the access token's user no longer exists",
                ))?;
        Ok(Caller {
            id: user.id,
            role: user.role,
        })
    }
}

/// The form of an email that uniqueness and login compare: trimmed and lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}
