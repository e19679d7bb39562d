//! Refresh tokens: opaque, stored only as SHA-256, rotated on every use, grouped by login.
//!
//! A login starts a family. Each refresh spends the presented token and issues the next one
//! of the same family. A spent token presented again means two parties hold the family's
//! tokens (one of them stole it): the whole family is revoked, so the thief and the user both
//! have to sign in again, and only the user can.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use sea_orm::ConnectionTrait;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Error, Result};
use crate::repository::{
    self,
    refresh_tokens::{self, NewRefreshToken},
};
use crate::time::now;

/// The one answer to every refused refresh token: unknown, expired, spent or revoked look
/// alike, so a caller learns nothing about tokens it does not hold.
const REFUSED: &str = "the refresh token is invalid, expired or revoked";

/// Random bytes in a refresh token (256 bits).
const TOKEN_BYTES: usize = 32;

/// A refresh token just issued.
#[derive(Debug)]
pub struct IssuedRefreshToken {
    /// The token, shown to the client once.
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// Issues, rotates and revokes refresh tokens, in the caller's write transaction.
pub struct Sessions {
    ttl_seconds: u64,
}

impl Sessions {
    /// Refresh tokens live `ttl_seconds`.
    pub fn new(ttl_seconds: u64) -> Self {
        Self { ttl_seconds }
    }

    /// Starts a login's family with its first token.
    pub async fn start(
        &self,
        db: &impl ConnectionTrait,
        user_id: Uuid,
    ) -> Result<IssuedRefreshToken> {
        self.issue(db, Uuid::now_v7(), user_id).await
    }

    /// Spends `token` and issues the next one of its family, for the returned user. A spent
    /// token revokes its family; spent, expired and unknown tokens are 401. The caller
    /// commits either way: a revocation must hold even though the request fails.
    #[tracing::instrument(skip_all)]
    pub async fn rotate(
        &self,
        txn: &impl ConnectionTrait,
        token: &str,
    ) -> Result<(Uuid, IssuedRefreshToken)> {
        let hash = token_hash(token);
        let now = now();
        // The conditional UPDATE decides: of two refreshes racing with one token, the second
        // waits for the first to commit, then finds the token spent.
        match refresh_tokens::spend(txn, &hash, now).await? {
            Some(spent) => {
                refresh_tokens::delete_expired_in_family(txn, spent.family_id, now).await?;
                let next = self.issue(txn, spent.family_id, spent.user_id).await?;
                Ok((spent.user_id, next))
            }
            None => {
                match refresh_tokens::find_by_hash(txn, &hash).await? {
                    Some(row) if row.spent_at.is_some() => {
                        let revoked = refresh_tokens::delete_family(txn, row.family_id).await?;
                        tracing::warn!(
                            family_id = %row.family_id,
                            user_id = %row.user_id,
                            revoked,
                            "a spent refresh token was presented again: login revoked"
                        );
                    }
                    // Expired: nothing in its family can be used any more.
                    Some(row) => {
                        refresh_tokens::delete_family(txn, row.family_id).await?;
                    }
                    None => {}
                }
                Err(Error::Unauthenticated(REFUSED))
            }
        }
    }

    /// Revokes the login `token` belongs to (spent or not); an unknown token does nothing.
    pub async fn end(&self, db: &impl ConnectionTrait, token: &str) -> Result<()> {
        if let Some(row) = refresh_tokens::find_by_hash(db, &token_hash(token)).await? {
            refresh_tokens::delete_family(db, row.family_id).await?;
        }
        Ok(())
    }

    async fn issue(
        &self,
        db: &impl ConnectionTrait,
        family_id: Uuid,
        user_id: Uuid,
    ) -> Result<IssuedRefreshToken> {
        let token = new_token();
        let now = now();
        let ttl = i64::try_from(self.ttl_seconds).unwrap_or(i64::MAX);
        let inserted = refresh_tokens::insert(
            db,
            NewRefreshToken {
                id: Uuid::now_v7(),
                family_id,
                user_id,
                token_hash: token_hash(&token),
                created_at: now,
                expires_at: now + chrono::Duration::seconds(ttl),
            },
        )
        .await;
        match inserted {
            Ok(()) => Ok(IssuedRefreshToken {
                token,
                expires_in: self.ttl_seconds,
            }),
            // The user was deleted meanwhile.
            Err(repository::Error::ForeignKeyViolation(_)) => Err(Error::Unauthenticated(REFUSED)),
            Err(e) => Err(e.into()),
        }
    }
}

/// 32 bytes from the thread's CSPRNG (ChaCha, seeded and reseeded from the OS), URL-safe
/// base64 without padding: 43 characters.
fn new_token() -> String {
    let bytes: [u8; TOKEN_BYTES] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Lower-case hex SHA-256 of a token: what the database holds instead of the token. A fast
/// hash is enough: the token has 256 random bits, nothing to guess.
fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_url_safe_characters_and_never_repeat() {
        let a = new_token();
        let b = new_token();
        assert_eq!(a.len(), 43);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(a, b);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), TOKEN_BYTES);
    }

    #[test]
    fn the_stored_hash_is_the_hex_sha256_of_the_token() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
