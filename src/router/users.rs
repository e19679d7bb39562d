//! `/api/v1/users`.

use poem_openapi::{
    OpenApi,
    param::{Header, Path, Query},
};
use uuid::Uuid;

use super::{
    auth::BearerAuth,
    common::{
        Answer, ApiTags, BODY, Created, Current, Deleted, E400, E401, E403, E404, E409, E412, E422,
        E500, E503, IDEMPOTENT, Tagged, parse_if_match, render_created, render_no_content,
        render_tagged,
    },
    idempotency::{IdempotencyKey, Idempotent},
    payload::{JsonBody, JsonPatch, UserPatch},
};
use crate::{
    model::{Limit, Offset, UserCreate, UserPage, UserRead},
    service::users::Changed,
    state::AppState,
};

/// Users and tokens.
pub struct UsersApi {
    /// Services.
    pub state: AppState,
}

#[OpenApi(prefix_path = "/api/v1")]
impl UsersApi {
    /// Sign up
    ///
    /// Creates a user. The new user is always a `member`; an email that exists in any case
    /// is 409.
    #[oai(
        path = "/users",
        method = "post",
        tag = "ApiTags::Users",
        operation_id = "createUser"
    )]
    async fn create_user(
        &self,
        /// Makes the request safe to retry: a retry with the same key, method, path and body
        /// gets the first answer again (`Idempotent-Replayed: true`) and changes nothing.
        /// Sign-ups share one anonymous scope of keys: use unguessable keys (UUIDs).
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyKey,
        body: JsonBody<UserCreate>,
    ) -> Answer<Idempotent<Created<UserRead>>, { BODY | E409 | E422 | IDEMPOTENT | E500 | E503 }>
    {
        let key = idempotency_key.anonymous(&render_created::<UserRead>);
        let written = self.state.users.sign_up(body.0, key).await?;
        Ok(Idempotent::from_written(written))
    }

    /// Get the caller
    ///
    /// The user the bearer token belongs to, with its version as `ETag`.
    #[oai(
        path = "/users/me",
        method = "get",
        tag = "ApiTags::Users",
        operation_id = "getMe"
    )]
    async fn get_me(
        &self,
        auth: BearerAuth,
        /// Answer 304 without a body if the user is still at this version (`"3"`).
        #[oai(name = "If-None-Match")]
        _if_none_match: Header<Option<String>>,
    ) -> Answer<Current<UserRead>, { E401 | E404 | E500 | E503 }> {
        Ok(self.state.users.me(&auth.0).await?.into())
    }

    /// List users
    ///
    /// Administrators only (403 for others), oldest first, optionally filtered by `q`.
    #[oai(
        path = "/users",
        method = "get",
        tag = "ApiTags::Users",
        operation_id = "listUsers"
    )]
    async fn list_users(
        &self,
        auth: BearerAuth,
        /// Case-insensitive text searched in email and full name (no control characters).
        #[oai(validator(max_length = 254, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"))]
        q: Query<Option<String>>,
        /// Page size.
        limit: Query<Limit>,
        /// Number of items to skip.
        offset: Query<Offset>,
    ) -> Answer<JsonBody<UserPage>, { E400 | E401 | E403 | E500 | E503 }> {
        let page = (self.state.users)
            .list(&auth.0, q.0, limit.0.0, offset.0.0)
            .await?;
        Ok(JsonBody(page.into()))
    }

    /// Get a user
    ///
    /// The caller themself, or anyone for an administrator; other users' accounts are 404.
    #[oai(
        path = "/users/:id",
        method = "get",
        tag = "ApiTags::Users",
        operation_id = "getUser"
    )]
    async fn get_user(
        &self,
        auth: BearerAuth,
        /// The user's id.
        id: Path<Uuid>,
        /// Answer 304 without a body if the user is still at this version (`"3"`).
        #[oai(name = "If-None-Match")]
        _if_none_match: Header<Option<String>>,
    ) -> Answer<Current<UserRead>, { E401 | E404 | E500 | E503 }> {
        Ok(self.state.users.get(&auth.0, id.0).await?.into())
    }

    /// Change a user
    ///
    /// A JSON Patch on `/email`, `/full_name`, `/password` (write-only: hashed, never
    /// returned) and, for administrators only, `/role` (403 for others).
    #[oai(
        path = "/users/:id",
        method = "patch",
        tag = "ApiTags::Users",
        operation_id = "patchUser"
    )]
    async fn patch_user(
        &self,
        auth: BearerAuth,
        /// The user's id.
        id: Path<Uuid>,
        /// Apply only if the user is still at this version (`"3"`, or `*`); 412 otherwise.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
        /// Makes the request safe to retry: a retry with the same key, method, path and body
        /// gets the first answer again (`Idempotent-Replayed: true`) and changes nothing.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyKey,
        body: JsonPatch<UserPatch>,
    ) -> Answer<
        Idempotent<Tagged<UserRead>>,
        { BODY | E401 | E403 | E404 | E409 | E412 | E422 | IDEMPOTENT | E500 | E503 },
    > {
        let precondition = parse_if_match(if_match.0);
        let key = idempotency_key.of(&auth.0, &render_tagged::<UserRead>);
        let written = (self.state.users)
            .patch(&auth.0, id.0, &body.0, precondition.as_ref(), key)
            .await?;
        Ok(Idempotent::from_written(written))
    }

    /// Delete a user
    ///
    /// The user themself or an administrator. Cancels the user's registrations (promoting
    /// waitlists); 409 while the user organizes a published event that has not ended.
    #[oai(
        path = "/users/:id",
        method = "delete",
        tag = "ApiTags::Users",
        operation_id = "deleteUser"
    )]
    async fn delete_user(
        &self,
        auth: BearerAuth,
        /// The user's id.
        id: Path<Uuid>,
        /// Delete only if the user is still at this version; 412 otherwise.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
        /// Makes the request safe to retry: a retry with the same key, method, path and body
        /// gets the first answer again (`Idempotent-Replayed: true`) and changes nothing.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyKey,
    ) -> Answer<Idempotent<Deleted>, { E401 | E404 | E409 | E412 | IDEMPOTENT | E500 | E503 }> {
        let precondition = parse_if_match(if_match.0);
        let key = idempotency_key.of(&auth.0, &render_no_content::<Changed>);
        let written = (self.state.users)
            .delete(&auth.0, id.0, precondition.as_ref(), key)
            .await?;
        Ok(Idempotent::from_written(written))
    }
}
