//! `/api/v1/auth/token`, `/api/v1/auth/refresh` and `/api/v1/auth/logout`: signing in,
//! keeping a session alive and signing out.

use poem::{Request, http::HeaderName};
use poem_openapi::{ApiResponse, OpenApi};

use super::{
    client_addr::client_addr_of,
    common::{Answer, ApiTags, BODY, E401, E422, E429, E500, E503, IDEMPOTENT, Problems},
    idempotency::{IdempotencyKey, Idempotent, render},
    payload::JsonBody,
};
use crate::{
    error::ApiError,
    model::{LogoutRequest, RefreshRequest, TokenRequest, TokenResponse},
    service::{
        auth::{Login, RateLimit},
        idempotency::Rendered,
    },
    state::AppState,
};

/// A successful login, with where the client stands on failed-login throttling.
#[derive(ApiResponse)]
pub enum TokenIssued {
    /// Signed in: a new access token and the first refresh token of a new login.
    #[oai(status = 200)]
    Ok(
        JsonBody<TokenResponse>,
        /// Failed logins a minute allowed under the throttling policy closest to refusing
        /// this client.
        #[oai(header = "RateLimit-Limit")]
        u32,
        /// Failed logins still allowed now under that policy.
        #[oai(header = "RateLimit-Remaining")]
        u32,
        /// Seconds until that policy's allowance is full again.
        #[oai(header = "RateLimit-Reset")]
        u64,
    ),
}

impl From<Login> for TokenIssued {
    fn from(login: Login) -> Self {
        let limit = login.rate_limit;
        TokenIssued::Ok(
            JsonBody(login.tokens),
            limit.limit,
            limit.remaining,
            limit.reset_seconds,
        )
    }
}

/// A refreshed session.
#[derive(ApiResponse)]
pub enum TokenRefreshed {
    /// A new access token and the next refresh token; the presented one is spent.
    #[oai(status = 200)]
    Ok(JsonBody<TokenResponse>),
}

impl From<TokenResponse> for TokenRefreshed {
    fn from(tokens: TokenResponse) -> Self {
        TokenRefreshed::Ok(JsonBody(tokens))
    }
}

/// A session ended.
#[derive(ApiResponse)]
pub enum LoggedOut {
    /// The login's refresh tokens are revoked (or there was nothing to revoke).
    #[oai(status = 204)]
    NoContent,
}

impl From<()> for LoggedOut {
    fn from((): ()) -> Self {
        LoggedOut::NoContent
    }
}

fn render_login(login: &Login) -> Rendered {
    render(TokenIssued::from(Login {
        tokens: login.tokens.clone(),
        rate_limit: login.rate_limit,
    }))
}

fn render_refreshed(tokens: &TokenResponse) -> Rendered {
    render(TokenRefreshed::from(tokens.clone()))
}

fn render_logged_out(_: &()) -> Rendered {
    render(LoggedOut::NoContent)
}

/// Sign-in and sessions.
pub struct SessionsApi {
    /// Services.
    pub state: AppState,
}

#[OpenApi(prefix_path = "/api/v1")]
impl SessionsApi {
    /// Sign in
    ///
    /// Exchanges an email and password for a short-lived bearer access token
    /// (`expires_in` seconds) and a refresh token (`refresh_expires_in` seconds) that
    /// `POST /api/v1/auth/refresh` exchanges for new ones. Unknown email and wrong password
    /// get the same 401. Failed logins are throttled per (email, client), per client and, at
    /// a much higher threshold, per email; a correct password from a client that has not
    /// failed is never refused. Every answer carries `RateLimit-Limit`,
    /// `RateLimit-Remaining` and `RateLimit-Reset`; a 429 also carries `Retry-After`.
    #[oai(
        path = "/auth/token",
        method = "post",
        tag = "ApiTags::Auth",
        operation_id = "createToken"
    )]
    async fn create_token(
        &self,
        request: &Request,
        /// Makes the request safe to retry: a retry with the same key and body gets the first
        /// answer again (`Idempotent-Replayed: true`), not a second login. Keys of sign-ins
        /// share one anonymous scope: use unguessable keys (UUIDs).
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyKey,
        body: JsonBody<TokenRequest>,
    ) -> Answer<Idempotent<TokenIssued>, { BODY | E401 | E429 | IDEMPOTENT | E500 | E503 }> {
        let client = client_addr_of(request, &self.state.config.trusted_proxies);
        let key = idempotency_key.anonymous_sealed(&render_login);
        let outcome = self.state.auth.issue_token(body.0, client, key).await;
        let limit = outcome.rate_limit;
        match outcome.result {
            Ok(written) => Ok(Idempotent::from_written(written)),
            Err(e) => Err(Problems(with_rate_limit(
                Problems::<{ BODY | E401 | E429 | IDEMPOTENT | E500 | E503 }>::from(e).0,
                limit,
            ))),
        }
    }

    /// Refresh a session
    ///
    /// Exchanges a refresh token for a new access token and the next refresh token of the
    /// same login; the body is the same as a sign-in's. The presented token is spent: a
    /// spent token presented again is 401 and revokes every refresh token of that login
    /// (someone else holds a copy). Unknown, expired and revoked tokens, and tokens of a
    /// deleted user, are 401 too.
    #[oai(
        path = "/auth/refresh",
        method = "post",
        tag = "ApiTags::Auth",
        operation_id = "refreshToken"
    )]
    async fn refresh_token(
        &self,
        /// Makes the request safe to retry: a retry with the same key and body gets the first
        /// answer (the same new pair) again, with `Idempotent-Replayed: true`, instead of the
        /// 401 a spent token gets. Use unguessable keys (UUIDs).
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyKey,
        body: JsonBody<RefreshRequest>,
    ) -> Answer<Idempotent<TokenRefreshed>, { BODY | E401 | E422 | IDEMPOTENT | E500 | E503 }> {
        let key = idempotency_key.anonymous_sealed(&render_refreshed);
        let written = self.state.auth.refresh(body.0, key).await?;
        Ok(Idempotent::from_written(written))
    }

    /// Sign out
    ///
    /// Revokes every refresh token of the login the given refresh token belongs to.
    /// Access tokens already issued stay valid until they expire. An unknown or already
    /// revoked token is accepted as well (204): signing out twice is not an error.
    #[oai(
        path = "/auth/logout",
        method = "post",
        tag = "ApiTags::Auth",
        operation_id = "logout"
    )]
    async fn logout(
        &self,
        /// Makes the request safe to retry: a retry with the same key and body gets the first
        /// answer again (`Idempotent-Replayed: true`).
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyKey,
        body: JsonBody<LogoutRequest>,
    ) -> Answer<Idempotent<LoggedOut>, { BODY | E422 | IDEMPOTENT | E500 | E503 }> {
        let key = idempotency_key.anonymous(&render_logged_out);
        let written = self.state.auth.logout(body.0, key).await?;
        Ok(Idempotent::from_written(written))
    }
}

/// Adds the IETF rate-limit headers to an error answer of the token endpoint.
fn with_rate_limit(error: ApiError, limit: RateLimit) -> ApiError {
    error
        .with_header(
            HeaderName::from_static("ratelimit-limit"),
            limit.limit.to_string(),
        )
        .with_header(
            HeaderName::from_static("ratelimit-remaining"),
            limit.remaining.to_string(),
        )
        .with_header(
            HeaderName::from_static("ratelimit-reset"),
            limit.reset_seconds.to_string(),
        )
}
