//! `/api/v1/events`, its attendees, and the caller's registrations.

use poem::{Request, http::header};
use poem_openapi::{
    OpenApi,
    param::{Header, Path, Query},
};
use uuid::Uuid;

use super::{
    auth::{BearerAuth, MaybeAuth},
    common::{
        Answer, ApiTags, BODY, Created, Current, Deleted, E400, E401, E403, E404, E409, E412, E422,
        E500, E503, IDEMPOTENT, Tagged, parse_if_match, render_created, render_no_content,
        render_tagged,
    },
    idempotency::{IdempotencyKey, Idempotent},
    payload::{AttendeePatch, EventPatch, JsonBody, JsonPatch, OptionalJsonBody},
    reports::{AttendeeListing, CsvExport, prefers_csv},
};
use crate::{
    model::{
        AttendeeCreate, AttendeeRead, AttendeeStatus, EventCreate, EventFilter, EventPage,
        EventRead, EventSort, EventStatus, Limit, Offset, RegistrationPage, Timestamp,
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
    /// Create an event
    ///
    /// The caller becomes its organizer. `status` is `draft` (default) or `published`.
    #[oai(
        path = "/events",
        method = "post",
        tag = "ApiTags::Events",
        operation_id = "createEvent"
    )]
    async fn create_event(
        &self,
        auth: BearerAuth,
        /// Makes the request safe to retry: a retry with the same key, method, path and body
        /// gets the first answer again (`Idempotent-Replayed: true`) and changes nothing.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyKey,
        body: JsonBody<EventCreate>,
    ) -> Answer<Idempotent<Created<EventRead>>, { BODY | E401 | E422 | IDEMPOTENT | E500 | E503 }>
    {
        let key = idempotency_key.of(&auth.0, &render_created::<EventRead>);
        let written = self.state.events.create(&auth.0, body.0, key).await?;
        Ok(Idempotent::from_written(written))
    }

    /// List events
    ///
    /// Published, cancelled and completed events, plus the caller's own drafts
    /// (administrators see all). Anyone may list; a token that is sent must be valid (401).
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
        /// Case-insensitive text searched in title and description (no control characters).
        #[oai(validator(max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"))]
        q: Query<Option<String>>,
        /// Order: `starts_at` (default), `-starts_at`, `created_at`, `-created_at`, `title`;
        /// ties are broken by id.
        sort: Query<Option<EventSort>>,
        /// Page size.
        limit: Query<Limit>,
        /// Number of items to skip.
        offset: Query<Offset>,
    ) -> Answer<JsonBody<EventPage>, { E400 | E401 | E500 | E503 }> {
        let filter = EventFilter {
            status: status.0,
            organizer_id: organizer_id.0,
            starts_after: starts_after.0,
            starts_before: starts_before.0,
            q: q.0,
            sort: sort.0.unwrap_or_default(),
        };
        let page = (self.state.events)
            .list(auth.0.as_ref(), filter, limit.0.0, offset.0.0)
            .await?;
        Ok(JsonBody(page.into()))
    }

    /// Get an event
    ///
    /// Anyone may read published, cancelled and completed events; drafts are visible to their
    /// organizer and administrators only (404 for others).
    #[oai(
        path = "/events/:id",
        method = "get",
        tag = "ApiTags::Events",
        operation_id = "getEvent"
    )]
    async fn get_event(
        &self,
        auth: MaybeAuth,
        /// The event's id.
        id: Path<Uuid>,
        /// Answer 304 without a body if the event is still at this version (`"3"`).
        #[oai(name = "If-None-Match")]
        _if_none_match: Header<Option<String>>,
    ) -> Answer<Current<EventRead>, { E401 | E404 | E500 | E503 }> {
        Ok(self.state.events.get(auth.0.as_ref(), id.0).await?.into())
    }

    /// Change an event
    ///
    /// A JSON Patch (organizer or administrator) on `/title`, `/description`, `/location`,
    /// `/starts_at`, `/ends_at`, `/capacity`, `/waitlist_enabled`, `/status`. Status moves and
    /// capacity rules that refuse the result are 409.
    #[oai(
        path = "/events/:id",
        method = "patch",
        tag = "ApiTags::Events",
        operation_id = "patchEvent"
    )]
    async fn patch_event(
        &self,
        auth: BearerAuth,
        /// The event's id.
        id: Path<Uuid>,
        /// Apply only if the event is still at this version (`"3"`); 412 otherwise.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
        /// Makes the request safe to retry: a retry with the same key, method, path and body
        /// gets the first answer again (`Idempotent-Replayed: true`) and changes nothing.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyKey,
        body: JsonPatch<EventPatch>,
    ) -> Answer<
        Idempotent<Tagged<EventRead>>,
        { BODY | E401 | E403 | E404 | E409 | E412 | E422 | IDEMPOTENT | E500 | E503 },
    > {
        let precondition = parse_if_match(if_match.0);
        let key = idempotency_key.of(&auth.0, &render_tagged::<EventRead>);
        let written = (self.state.events)
            .patch(&auth.0, id.0, &body.0, precondition.as_ref(), key)
            .await?;
        Ok(Idempotent::from_written(written))
    }

    /// Delete an event
    ///
    /// Removes the event and its attendee records (organizer or administrator).
    #[oai(
        path = "/events/:id",
        method = "delete",
        tag = "ApiTags::Events",
        operation_id = "deleteEvent"
    )]
    async fn delete_event(
        &self,
        auth: BearerAuth,
        /// The event's id.
        id: Path<Uuid>,
        /// Delete only if the event is still at this version; 412 otherwise.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
        /// Makes the request safe to retry: a retry with the same key, method, path and body
        /// gets the first answer again (`Idempotent-Replayed: true`) and changes nothing.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyKey,
    ) -> Answer<Idempotent<Deleted>, { E401 | E403 | E404 | E412 | IDEMPOTENT | E500 | E503 }> {
        let precondition = parse_if_match(if_match.0);
        let key = idempotency_key.of(&auth.0, &render_no_content::<()>);
        let written = (self.state.events)
            .delete(&auth.0, id.0, precondition.as_ref(), key)
            .await?;
        Ok(Idempotent::from_written(written))
    }

    /// Register for an event
    ///
    /// Registers the caller (no body, or `{}`), or another user with `{"user_id": ...}`
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
        /// The event's id.
        id: Path<Uuid>,
        /// Makes the request safe to retry: a retry with the same key, method, path and body
        /// gets the first answer again (`Idempotent-Replayed: true`) and changes nothing.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyKey,
        body: OptionalJsonBody<AttendeeCreate>,
    ) -> Answer<
        Idempotent<Created<AttendeeRead>>,
        { BODY | E401 | E403 | E404 | E409 | IDEMPOTENT | E500 | E503 },
    > {
        let key = idempotency_key.of(&auth.0, &render_created::<AttendeeRead>);
        let written = (self.state.attendees)
            .register(&auth.0, id.0, body.0, key)
            .await;
        count_registration(&written);
        Ok(Idempotent::from_written(written?))
    }

    /// List an event's attendees
    ///
    /// By registration time, optionally filtered by status (organizer, staff or
    /// administrator). With `Accept: text/csv`, every record (no pagination) as CSV, streamed.
    #[oai(
        path = "/events/:id/attendees",
        method = "get",
        tag = "ApiTags::Attendees",
        operation_id = "listAttendees"
    )]
    async fn list_attendees(
        &self,
        auth: BearerAuth,
        /// The event's id.
        id: Path<Uuid>,
        /// Only records with this status.
        status: Query<Option<AttendeeStatus>>,
        /// Page size.
        limit: Query<Limit>,
        /// Number of items to skip.
        offset: Query<Offset>,
        req: &Request,
    ) -> Answer<AttendeeListing, { E400 | E401 | E403 | E404 | E500 | E503 }> {
        let accept = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        if prefers_csv(accept) {
            let pages = self.state.reports.export(&auth.0, id.0, status.0).await?;
            return Ok(AttendeeListing::Csv(CsvExport::new(id.0, pages)));
        }
        let page = (self.state.attendees)
            .list(&auth.0, id.0, status.0, limit.0.0, offset.0.0)
            .await?;
        Ok(AttendeeListing::Json(page.into()))
    }

    /// Get an attendee record
    ///
    /// Visible to its user, the event's organizer and administrators (404 for others).
    #[oai(
        path = "/events/:id/attendees/:attendee_id",
        method = "get",
        tag = "ApiTags::Attendees",
        operation_id = "getAttendee"
    )]
    async fn get_attendee(
        &self,
        auth: BearerAuth,
        /// The event's id.
        id: Path<Uuid>,
        /// The attendee record's id.
        attendee_id: Path<Uuid>,
        /// Answer 304 without a body if the record is still at this version (`"3"`).
        #[oai(name = "If-None-Match")]
        _if_none_match: Header<Option<String>>,
    ) -> Answer<Current<AttendeeRead>, { E401 | E404 | E500 | E503 }> {
        Ok(self
            .state
            .attendees
            .get(&auth.0, id.0, attendee_id.0)
            .await?
            .into())
    }

    /// Change an attendee's status
    ///
    /// A JSON Patch on `/status` only: `cancelled` (the attendee, from confirmed or
    /// waitlisted; organizer or administrator from any active status) or `checked_in`
    /// (organizer or administrator, from confirmed, on a published event).
    #[oai(
        path = "/events/:id/attendees/:attendee_id",
        method = "patch",
        tag = "ApiTags::Attendees",
        operation_id = "patchAttendee"
    )]
    async fn patch_attendee(
        &self,
        auth: BearerAuth,
        /// The event's id.
        id: Path<Uuid>,
        /// The attendee record's id.
        attendee_id: Path<Uuid>,
        /// Apply only if the record is still at this version; 412 otherwise.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
        /// Makes the request safe to retry: a retry with the same key, method, path and body
        /// gets the first answer again (`Idempotent-Replayed: true`) and changes nothing.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyKey,
        body: JsonPatch<AttendeePatch>,
    ) -> Answer<
        Idempotent<Tagged<AttendeeRead>>,
        { BODY | E401 | E403 | E404 | E409 | E412 | E422 | IDEMPOTENT | E500 | E503 },
    > {
        let precondition = parse_if_match(if_match.0);
        let key = idempotency_key.of(&auth.0, &render_tagged::<AttendeeRead>);
        let written = (self.state.attendees)
            .patch(
                &auth.0,
                id.0,
                attendee_id.0,
                &body.0,
                precondition.as_ref(),
                key,
            )
            .await?;
        Ok(Idempotent::from_written(written))
    }

    /// Cancel a registration
    ///
    /// The same as patching its status to `cancelled`; promotes the oldest waitlisted
    /// attendee when a seat frees up.
    #[oai(
        path = "/events/:id/attendees/:attendee_id",
        method = "delete",
        tag = "ApiTags::Attendees",
        operation_id = "cancelAttendee"
    )]
    async fn cancel_attendee(
        &self,
        auth: BearerAuth,
        /// The event's id.
        id: Path<Uuid>,
        /// The attendee record's id.
        attendee_id: Path<Uuid>,
        /// Cancel only if the record is still at this version; 412 otherwise.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
        /// Makes the request safe to retry: a retry with the same key, method, path and body
        /// gets the first answer again (`Idempotent-Replayed: true`) and changes nothing.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyKey,
    ) -> Answer<Idempotent<Deleted>, { E401 | E403 | E404 | E409 | E412 | IDEMPOTENT | E500 | E503 }>
    {
        let precondition = parse_if_match(if_match.0);
        let key = idempotency_key.of(&auth.0, &render_no_content::<()>);
        let written = (self.state.attendees)
            .cancel(&auth.0, id.0, attendee_id.0, precondition.as_ref(), key)
            .await?;
        Ok(Idempotent::from_written(written))
    }

    /// List the caller's registrations
    ///
    /// Each attendee record with a summary of its event, by registration time.
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
        /// Page size.
        limit: Query<Limit>,
        /// Number of items to skip.
        offset: Query<Offset>,
    ) -> Answer<JsonBody<RegistrationPage>, { E400 | E401 | E500 | E503 }> {
        let page = (self.state.attendees)
            .my_registrations(&auth.0, status.0, limit.0.0, offset.0.0)
            .await?;
        Ok(JsonBody(page.into()))
    }
}

/// Counts a registration's outcome for `/metrics`: the status it got, or `refused` when the
/// event refused it (full, closed, already registered). Replays are not counted again.
fn count_registration(
    written: &Result<crate::service::idempotency::Written<AttendeeRead>, crate::service::Error>,
) {
    use crate::service::{Error, idempotency::Written};
    match written {
        Ok(Written::Fresh { value, .. }) => crate::metric::registration(match value.status {
            AttendeeStatus::Waitlisted => "waitlisted",
            _ => "confirmed",
        }),
        Ok(Written::Replayed(_)) => {}
        Err(Error::Conflict(..)) => crate::metric::registration("refused"),
        Err(_) => {}
    }
}
