//! Passwords (argon2id), access tokens (HS256 JWT) and authentication of callers.

use std::sync::Arc;

use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
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
    /// A real hash of a random password: verifying against it when the email is unknown
    /// makes "no such user" cost as much as "wrong password".
    dummy_hash: String,
}

impl Passwords {
    /// Hasher with the given cost parameters.
    pub fn new(memory_kib: u32, iterations: u32) -> anyhow::Result<Self> {
        let params = argon2::Params::new(memory_kib, iterations, 1, None)
            .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))?;
        let dummy: [u8; 16] = rand::random();
        let dummy_hash = Argon2::from(&params)
            .hash_password(&dummy)
            .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?
            .to_string();
        Ok(Self { params, dummy_hash })
    }

    /// PHC string of `password`, with a fresh salt.
    pub async fn hash(&self, password: String) -> Result<String> {
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
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
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

/// Login and authentication of requests.
#[derive(Clone)]
pub struct AuthService {
    db: DatabaseConnection,
    passwords: Arc<Passwords>,
    tokens: Arc<Tokens>,
}

impl AuthService {
    /// The service over a pool.
    pub fn new(db: DatabaseConnection, passwords: Arc<Passwords>, tokens: Arc<Tokens>) -> Self {
        Self {
            db,
            passwords,
            tokens,
        }
    }

    /// Exchanges an email and password for an access token. Unknown email and wrong password
    /// give the same error after the same work.
    #[tracing::instrument(skip_all)]
    pub async fn issue_token(&self, request: TokenRequest) -> Result<TokenResponse> {
        let email = normalize_email(&request.email);
        let user = repository::users::find_by_email(&self.db, &email).await?;
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        if !self.passwords.verify(request.password, hash).await? {
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
