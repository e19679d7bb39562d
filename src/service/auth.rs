//! Passwords (argon2id), access tokens (HS256 JWT) and authentication of callers.

use std::{net::IpAddr, sync::Arc};

use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use validator::Validate as _;

pub use super::throttle::{LoginThrottle, RateLimit, ThrottleLimits};
use super::{
    Begun, Caller, Error, Result, begin_write, commit_either_way, commit_or_rollback,
    idempotency::{Claim, Idempotency, Keyed, Written},
    sessions::{IssuedRefreshToken, Sessions},
};
use crate::{
    model::{LogoutRequest, RefreshRequest, TokenRequest, TokenResponse, TokenType, field_errors},
    repository,
};

/// The answer to a login attempt, with where the client stands on failed-login throttling
/// (sent as rate-limit headers whatever the outcome).
#[derive(Debug)]
pub struct LoginOutcome {
    /// The tokens (or the stored answer of an earlier request with the same key), or why not.
    pub result: Result<Written<Login>>,
    /// The throttling policy closest to refusing this client.
    pub rate_limit: RateLimit,
}

/// A successful login.
#[derive(Debug)]
pub struct Login {
    /// The new access token and the first refresh token of the login.
    pub tokens: TokenResponse,
    /// The throttling policy closest to refusing this client.
    pub rate_limit: RateLimit,
}

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

/// Login, sessions and authentication of requests.
#[derive(Clone)]
pub struct AuthService {
    db: DatabaseConnection,
    passwords: Arc<Passwords>,
    tokens: Arc<Tokens>,
    throttle: Arc<LoginThrottle>,
    sessions: Arc<Sessions>,
    idempotency: Idempotency,
}

impl AuthService {
    /// The service over a pool.
    pub fn new(
        db: DatabaseConnection,
        passwords: Arc<Passwords>,
        tokens: Arc<Tokens>,
        throttle: Arc<LoginThrottle>,
        sessions: Arc<Sessions>,
        idempotency: Idempotency,
    ) -> Self {
        Self {
            db,
            passwords,
            tokens,
            throttle,
            sessions,
            idempotency,
        }
    }

    /// Exchanges an email and password for an access token and the first refresh token of a
    /// new login. Unknown email and wrong password give the same error after the same work.
    /// `client` is the caller's address (see `router::client_addr`): failures are throttled
    /// per (email, client), per client and, at a higher threshold, per email.
    #[tracing::instrument(skip_all)]
    pub async fn issue_token(
        &self,
        request: TokenRequest,
        client: Option<IpAddr>,
        key: Option<Keyed<'_, Login>>,
    ) -> LoginOutcome {
        let email = normalize_email(&request.email);
        let attempt = match self.throttle.check(&email, client) {
            Ok(attempt) => attempt,
            Err(refusal) => {
                return LoginOutcome {
                    result: Err(Error::TooManyRequests {
                        retry_after_seconds: refusal.retry_after_seconds,
                    }),
                    rate_limit: refusal.rate_limit,
                };
            }
        };
        let rate_limit = attempt.rate_limit();
        let outcome = |result| LoginOutcome { result, rate_limit };
        let claim = match self.idempotency.claim(key) {
            Ok(claim) => claim,
            Err(e) => return outcome(Err(e)),
        };
        // A retry of a login that succeeded is answered before the password is checked
        // again (its body holds the same password).
        match claim.stored().await {
            Ok(Some(answer)) => return outcome(Ok(answer)),
            Ok(None) => {}
            Err(e) => return outcome(Err(e)),
        }
        match self.verify_credentials(&email, request.password).await {
            Ok(Some(user_id)) => {
                drop(attempt);
                outcome(self.start_login(&claim, user_id, rate_limit).await)
            }
            Ok(None) => LoginOutcome {
                result: Err(Error::InvalidCredentials),
                rate_limit: attempt.failed(),
            },
            Err(e) => outcome(Err(e)),
        }
    }

    /// Starts a login's session and signs its access token, in one write.
    async fn start_login(
        &self,
        claim: &Claim<'_, Login>,
        user_id: Uuid,
        rate_limit: RateLimit,
    ) -> Result<Written<Login>> {
        let write = match begin_write(&self.db, claim).await? {
            Begun::Write(write) => write,
            Begun::Replay(answer) => return Ok(answer),
        };
        let result = async {
            let refresh = self.sessions.start(write.txn(), user_id).await?;
            Ok(Login {
                tokens: self.tokens_for(user_id, refresh)?,
                rate_limit,
            })
        }
        .await;
        commit_or_rollback(write, result).await
    }

    /// The user id when the password is theirs.
    async fn verify_credentials(&self, email: &str, password: String) -> Result<Option<Uuid>> {
        // An email no account can have (NUL, too long) is looked up nowhere, at the same cost.
        let user = if email.contains('\0') || email.chars().count() > 254 {
            None
        } else {
            repository::users::find_by_email(&self.db, email).await?
        };
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let ok = self.passwords.verify(password, hash).await?;
        Ok(user.filter(|_| ok).map(|u| u.id))
    }

    /// Exchanges a refresh token for a new access token and the next refresh token of the
    /// same login. The presented token is spent; presenting it again revokes the login.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(
        &self,
        request: RefreshRequest,
        key: Option<Keyed<'_, TokenResponse>>,
    ) -> Result<Written<TokenResponse>> {
        request
            .validate()
            .map_err(|e| Error::Validation(field_errors(&e)))?;
        let claim = self.idempotency.claim(key)?;
        let write = match begin_write(&self.db, &claim).await? {
            Begun::Write(write) => write,
            Begun::Replay(answer) => return Ok(answer),
        };
        let result = async {
            let (user_id, next) = self
                .sessions
                .rotate(write.txn(), &request.refresh_token)
                .await?;
            self.tokens_for(user_id, next)
        }
        .await;
        // Committed even when refused: a revoked login stays revoked.
        commit_either_way(write, result).await
    }

    /// Revokes the login a refresh token belongs to. Unknown or already revoked tokens are
    /// accepted too: signing out twice is not an error.
    #[tracing::instrument(skip_all)]
    pub async fn logout(
        &self,
        request: LogoutRequest,
        key: Option<Keyed<'_, ()>>,
    ) -> Result<Written<()>> {
        request
            .validate()
            .map_err(|e| Error::Validation(field_errors(&e)))?;
        let claim = self.idempotency.claim(key)?;
        let write = match begin_write(&self.db, &claim).await? {
            Begun::Write(write) => write,
            Begun::Replay(answer) => return Ok(answer),
        };
        let result = self.sessions.end(write.txn(), &request.refresh_token).await;
        commit_or_rollback(write, result).await
    }

    fn tokens_for(&self, user_id: Uuid, refresh: IssuedRefreshToken) -> Result<TokenResponse> {
        let access_token = self
            .tokens
            .issue_at(user_id, chrono::Utc::now().timestamp())?;
        Ok(TokenResponse {
            access_token,
            token_type: TokenType::Bearer,
            expires_in: self.tokens.ttl_seconds(),
            refresh_token: refresh.token,
            refresh_expires_in: refresh.expires_in,
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
