//! `/api/v1/users`.

use poem_openapi::{
    ApiResponse, OpenApi,
    param::{Header, Path, Query},
    payload::Json,
};
use uuid::Uuid;

use super::{
    auth::BearerAuth,
    common::{ApiTags, Created, Tagged, default_limit, parse_if_match},
    payload::{JsonBody, JsonPatch},
};
use crate::{
    error::ApiResult,
    model::{Page, UserCreate, UserRead},
    state::AppState,
};

/// No body.
#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    NoContent,
}

/// Users and tokens.
pub struct UsersApi {
    /// Services.
    pub state: AppState,
}

#[OpenApi(prefix_path = "/api/v1")]
impl UsersApi {
    /// Sign up. The new user is always a `member`; 409 when the email exists in any case.
    #[oai(
        path = "/users",
        method = "post",
        tag = "ApiTags::Users",
        operation_id = "createUser"
    )]
    async fn create_user(&self, body: JsonBody<UserCreate>) -> ApiResult<Created<UserRead>> {
        Ok(self.state.users.sign_up(body.0).await?.into())
    }

    /// The caller.
    #[oai(
        path = "/users/me",
        method = "get",
        tag = "ApiTags::Users",
        operation_id = "getMe"
    )]
    async fn get_me(&self, auth: BearerAuth) -> ApiResult<Tagged<UserRead>> {
        Ok(self.state.users.me(&auth.0).await?.into())
    }

    /// List users (administrators only), oldest first.
    #[oai(
        path = "/users",
        method = "get",
        tag = "ApiTags::Users",
        operation_id = "listUsers"
    )]
    async fn list_users(
        &self,
        auth: BearerAuth,
        /// Case-insensitive text searched in email and full name.
        #[oai(validator(max_length = 254))]
        q: Query<Option<String>>,
        /// Page size, 1 to 100.
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        limit: Query<u32>,
        /// Items to skip.
        #[oai(
            default,
            validator(minimum(value = "0"), maximum(value = "1000000000"))
        )]
        offset: Query<u64>,
    ) -> ApiResult<Json<Page<UserRead>>> {
        Ok(Json(
            self.state
                .users
                .list(&auth.0, q.0, limit.0, offset.0)
                .await?,
        ))
    }

    /// A user: the caller themself, or anyone for an administrator (404 otherwise).
    #[oai(
        path = "/users/:id",
        method = "get",
        tag = "ApiTags::Users",
        operation_id = "getUser"
    )]
    async fn get_user(&self, auth: BearerAuth, id: Path<Uuid>) -> ApiResult<Tagged<UserRead>> {
        Ok(self.state.users.get(&auth.0, id.0).await?.into())
    }

    /// Change a user with a JSON Patch on `/email`, `/full_name`, `/password` (write-only)
    /// and, for administrators, `/role`.
    #[oai(
        path = "/users/:id",
        method = "patch",
        tag = "ApiTags::Users",
        operation_id = "patchUser"
    )]
    async fn patch_user(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// Apply only if the user is still at this version (`"3"`, or `*`); 412 otherwise.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
        body: JsonPatch,
    ) -> ApiResult<Tagged<UserRead>> {
        let precondition = parse_if_match(if_match.0);
        Ok(self
            .state
            .users
            .patch(&auth.0, id.0, &body.0, precondition.as_ref())
            .await?
            .into())
    }

    /// Delete a user (self or administrator).
    #[oai(
        path = "/users/:id",
        method = "delete",
        tag = "ApiTags::Users",
        operation_id = "deleteUser"
    )]
    async fn delete_user(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// Delete only if the user is still at this version; 412 otherwise.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
    ) -> ApiResult<Deleted> {
        let precondition = parse_if_match(if_match.0);
        self.state
            .users
            .delete(&auth.0, id.0, precondition.as_ref())
            .await?;
        Ok(Deleted::NoContent)
    }
}
