//! Users and authentication.

use poem_openapi::{Enum, Object};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use validator::{Validate, ValidationError};

use super::common::{Timestamp, check_no_control_chars, check_single_line};
use crate::entity::user;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An ordinary account.
    Member,
    /// May see and change everything.
    Admin,
}

impl From<user::Role> for Role {
    fn from(role: user::Role) -> Self {
        match role {
            user::Role::Member => Role::Member,
            user::Role::Admin => Role::Admin,
        }
    }
}

impl From<Role> for user::Role {
    fn from(role: Role) -> Self {
        match role {
            Role::Member => user::Role::Member,
            Role::Admin => user::Role::Admin,
        }
    }
}

/// Sign-up request.
#[derive(Clone, Object, Deserialize, Validate)]
pub struct UserCreate {
    /// Email address, at most 254 characters, unique regardless of case.
    #[oai(validator(max_length = 254))]
    #[validate(length(max = 254), email, custom(function = "check_email_chars"))]
    pub email: String,
    /// Password, 8 to 128 characters. Never returned.
    #[oai(validator(min_length = 8, max_length = 128), write_only)]
    #[validate(length(min = 8, max = 128))]
    pub password: String,
    /// Display name, 1 to 100 characters after trimming; no control characters.
    #[oai(validator(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    ))]
    #[validate(custom(function = "check_full_name"))]
    pub full_name: String,
}

impl std::fmt::Debug for UserCreate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCreate")
            .field("email", &self.email)
            .field("password", &"[redacted]")
            .field("full_name", &self.full_name)
            .finish()
    }
}

/// Validates a display name: trimmed length 1..=100, no control characters.
pub fn check_full_name(value: &str) -> Result<(), ValidationError> {
    check_single_line(value, 1, 100)
}

/// Emails never contain control characters; the `email` validator alone lets some through.
pub fn check_email_chars(value: &str) -> Result<(), ValidationError> {
    check_no_control_chars(value, false)
}

/// A user as the API shows it. Never carries a password or hash.
#[derive(Debug, Clone, Object)]
pub struct UserRead {
    /// Identifier (UUIDv7).
    pub id: Uuid,
    /// Email address as given at sign-up or last change.
    pub email: String,
    /// Display name.
    pub full_name: String,
    /// Role.
    pub role: Role,
    /// Creation time (UTC).
    pub created_at: Timestamp,
    /// Last change (UTC).
    pub updated_at: Timestamp,
    /// Starts at 1, +1 on every change; also sent as the `ETag`.
    pub version: i64,
}

impl From<user::Model> for UserRead {
    fn from(m: user::Model) -> Self {
        Self {
            id: m.id,
            email: m.email,
            full_name: m.full_name,
            role: m.role.into(),
            created_at: m.created_at.into(),
            updated_at: m.updated_at.into(),
            version: m.version,
        }
    }
}

/// The writable fields of a user, as JSON Patch sees them. `password` reads as null.
#[derive(Clone, PartialEq, Serialize, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct UserPatchView {
    /// Email address.
    #[validate(length(max = 254), email, custom(function = "check_email_chars"))]
    pub email: String,
    /// Display name.
    #[validate(custom(function = "check_full_name"))]
    pub full_name: String,
    /// New password (write-only); null leaves it unchanged.
    #[serde(default)]
    #[validate(length(min = 8, max = 128))]
    pub password: Option<String>,
    /// Role; only administrators may change it.
    pub role: Role,
}

impl From<&user::Model> for UserPatchView {
    fn from(m: &user::Model) -> Self {
        Self {
            email: m.email.clone(),
            full_name: m.full_name.clone(),
            password: None,
            role: m.role.into(),
        }
    }
}

/// Token request.
#[derive(Clone, Object, Deserialize)]
pub struct TokenRequest {
    /// Email address (any case).
    #[oai(validator(max_length = 254))]
    pub email: String,
    /// Password.
    #[oai(validator(max_length = 1024), write_only)]
    pub password: String,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("email", &self.email)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// Token type of every issued token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum TokenType {
    /// Send as `Authorization: Bearer <access_token>`.
    Bearer,
}

/// An issued access token, and the refresh token that gets the next one.
#[derive(Clone, Object)]
pub struct TokenResponse {
    /// The JWT to send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: TokenType,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque token for `POST /api/v1/auth/refresh`, valid once: each refresh returns a new
    /// one. Keep it secret; presenting a used one again signs this login out everywhere.
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &"[redacted]")
            .field("refresh_expires_in", &self.refresh_expires_in)
            .finish_non_exhaustive()
    }
}

/// Refresh request: a refresh token to exchange for a new pair.
#[derive(Clone, Object, Deserialize, Validate)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh.
    #[oai(validator(min_length = 1, max_length = 256), write_only)]
    #[validate(length(min = 1, max = 256))]
    pub refresh_token: String,
}

impl std::fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshRequest")
            .field("refresh_token", &"[redacted]")
            .finish()
    }
}

/// Logout request: a refresh token of the login to end.
#[derive(Clone, Object, Deserialize, Validate)]
pub struct LogoutRequest {
    /// Any refresh token of the login (the current one or an earlier one).
    #[oai(validator(min_length = 1, max_length = 256), write_only)]
    #[validate(length(min = 1, max = 256))]
    pub refresh_token: String,
}

impl std::fmt::Debug for LogoutRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogoutRequest")
            .field("refresh_token", &"[redacted]")
            .finish()
    }
}

crate::page_type!(UserPage, UserRead, "One page of users.");
