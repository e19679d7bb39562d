//! `/api/v1/events`, its attendees, and the caller's registrations.

use poem_openapi::{
    OpenApi,
    param::{Header, Path, Query},
    payload::Json,
};
use uuid::Uuid;

use super::{
    auth::{BearerAuth, MaybeAuth},
    common::{ApiTags, Created, Tagged, default_limit, parse_if_match},
    payload::{JsonBody, JsonPatch, OptionalJsonBody},
    users::Deleted,
};
use crate::{
    error::ApiResult,
    model::{
        AttendeeCreate, AttendeeRead, AttendeeStatus, EventCreate, EventFilter, EventRead,
        EventSort, EventStatus, Page, Registration, Timestamp,
    },
    state::AppState,
};

/// Events and attendees.
pub struct EventsApi {
    /// Services.
    pub state: AppState,
}

#[OpenApi(prefix_path = "/api/v1")]
impl EventsApi {
    /// Create an event; the caller becomes its organizer. `status` is `draft` (default) or
    /// `published`.
    #[oai(
        path = "/events",
        method = "post",
        tag = "ApiTags::Events",
        operation_id = "createEvent"
    )]
    async fn create_event(
        &self,
        auth: BearerAuth,
        body: JsonBody<EventCreate>,
    ) -> ApiResult<Created<EventRead>> {
        Ok(self.state.events.create(&auth.0, body.0).await?.into())
    }

    /// List events: published, cancelled and completed ones, plus the caller's own drafts
    /// (administrators see all).
    #[oai(
        path = "/events",
        method = "get",
        tag = "ApiTags::Events",
        operation_id = "listEvents"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn list_events(
        &self,
        auth: MaybeAuth,
        /// Only events with this status.
        status: Query<Option<EventStatus>>,
        /// Only events organized by this user.
        organizer_id: Query<Option<Uuid>>,
        /// Only events starting at or after this instant (RFC 3339).
        starts_after: Query<Option<Timestamp>>,
        /// Only events starting before this instant (RFC 3339).
        starts_before: Query<Option<Timestamp>>,
        /// Case-insensitive text searched in title and description.
        #[oai(validator(max_length = 200))]
        q: Query<Option<String>>,
        /// Order: `starts_at` (default), `-starts_at`, `created_at`, `-created_at`, `title`;
        /// ties are broken by id.
        sort: Query<Option<EventSort>>,
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
    ) -> ApiResult<Json<Page<EventRead>>> {
        let filter = EventFilter {
            status: status.0,
            organizer_id: organizer_id.0,
            starts_after: starts_after.0,
            starts_before: starts_before.0,
            q: q.0,
            sort: sort.0.unwrap_or_default(),
        };
        Ok(Json(
            self.state
                .events
                .list(auth.0.as_ref(), filter, limit.0, offset.0)
                .await?,
        ))
    }

    /// One event. Drafts are visible to their organizer and administrators only (404).
    #[oai(
        path = "/events/:id",
        method = "get",
        tag = "ApiTags::Events",
        operation_id = "getEvent"
    )]
    async fn get_event(&self, auth: MaybeAuth, id: Path<Uuid>) -> ApiResult<Tagged<EventRead>> {
        Ok(self.state.events.get(auth.0.as_ref(), id.0).await?.into())
    }

    /// Change an event with a JSON Patch (organizer or administrator) on `/title`,
    /// `/description`, `/location`, `/starts_at`, `/ends_at`, `/capacity`,
    /// `/waitlist_enabled`, `/status`.
    #[oai(
        path = "/events/:id",
        method = "patch",
        tag = "ApiTags::Events",
        operation_id = "patchEvent"
    )]
    async fn patch_event(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// Apply only if the event is still at this version (`"3"`); 412 otherwise.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
        body: JsonPatch,
    ) -> ApiResult<Tagged<EventRead>> {
        let precondition = parse_if_match(if_match.0);
        Ok(self
            .state
            .events
            .patch(&auth.0, id.0, &body.0, precondition.as_ref())
            .await?
            .into())
    }

    /// Delete an event and its attendee records (organizer or administrator).
    #[oai(
        path = "/events/:id",
        method = "delete",
        tag = "ApiTags::Events",
        operation_id = "deleteEvent"
    )]
    async fn delete_event(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// Delete only if the event is still at this version; 412 otherwise.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
    ) -> ApiResult<Deleted> {
        let precondition = parse_if_match(if_match.0);
        self.state
            .events
            .delete(&auth.0, id.0, precondition.as_ref())
            .await?;
        Ok(Deleted::NoContent)
    }

    /// Register the caller (empty body or `{}`), or another user with `{"user_id": ...}`
    /// (organizer or administrator). A free seat confirms; a full event with a waitlist
    /// queues; re-registering after cancelling reactivates the record at the back of the queue.
    #[oai(
        path = "/events/:id/attendees",
        method = "post",
        tag = "ApiTags::Attendees",
        operation_id = "registerAttendee"
    )]
    async fn register(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: OptionalJsonBody<AttendeeCreate>,
    ) -> ApiResult<Created<AttendeeRead>> {
        Ok(self
            .state
            .attendees
            .register(&auth.0, id.0, body.0)
            .await?
            .into())
    }

    /// An event's attendees by registration time (organizer or administrator).
    #[oai(
        path = "/events/:id/attendees",
        method = "get",
        tag = "ApiTags::Attendees",
        operation_id = "listAttendees"
    )]
    async fn list_attendees(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// Only records with this status.
        status: Query<Option<AttendeeStatus>>,
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
    ) -> ApiResult<Json<Page<AttendeeRead>>> {
        Ok(Json(
            self.state
                .attendees
                .list(&auth.0, id.0, status.0, limit.0, offset.0)
                .await?,
        ))
    }

    /// One attendee record (its user, the organizer or an administrator).
    #[oai(
        path = "/events/:id/attendees/:attendee_id",
        method = "get",
        tag = "ApiTags::Attendees",
        operation_id = "getAttendee"
    )]
    async fn get_attendee(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        attendee_id: Path<Uuid>,
    ) -> ApiResult<Tagged<AttendeeRead>> {
        Ok(self
            .state
            .attendees
            .get(&auth.0, id.0, attendee_id.0)
            .await?
            .into())
    }

    /// Change an attendee's `/status` with a JSON Patch: `cancelled` (the attendee, from
    /// confirmed or waitlisted; organizer or administrator from any active status) or
    /// `checked_in` (organizer or administrator, from confirmed, on a published event).
    #[oai(
        path = "/events/:id/attendees/:attendee_id",
        method = "patch",
        tag = "ApiTags::Attendees",
        operation_id = "patchAttendee"
    )]
    async fn patch_attendee(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        attendee_id: Path<Uuid>,
        /// Apply only if the record is still at this version; 412 otherwise.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
        body: JsonPatch,
    ) -> ApiResult<Tagged<AttendeeRead>> {
        let precondition = parse_if_match(if_match.0);
        Ok(self
            .state
            .attendees
            .patch(&auth.0, id.0, attendee_id.0, &body.0, precondition.as_ref())
            .await?
            .into())
    }

    /// Cancel a registration (same as patching its status to `cancelled`).
    #[oai(
        path = "/events/:id/attendees/:attendee_id",
        method = "delete",
        tag = "ApiTags::Attendees",
        operation_id = "cancelAttendee"
    )]
    async fn cancel_attendee(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        attendee_id: Path<Uuid>,
        /// Cancel only if the record is still at this version; 412 otherwise.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
    ) -> ApiResult<Deleted> {
        let precondition = parse_if_match(if_match.0);
        self.state
            .attendees
            .cancel(&auth.0, id.0, attendee_id.0, precondition.as_ref())
            .await?;
        Ok(Deleted::NoContent)
    }

    /// The caller's registrations, each with an event summary, by registration time.
    #[oai(
        path = "/users/me/registrations",
        method = "get",
        tag = "ApiTags::Attendees",
        operation_id = "listMyRegistrations"
    )]
    async fn my_registrations(
        &self,
        auth: BearerAuth,
        /// Only records with this status.
        status: Query<Option<AttendeeStatus>>,
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
    ) -> ApiResult<Json<Page<Registration>>> {
        Ok(Json(
            self.state
                .attendees
                .my_registrations(&auth.0, status.0, limit.0, offset.0)
                .await?,
        ))
    }
}
