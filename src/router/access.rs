//! Event staff, invitations and batch check-in.

use poem_openapi::{
    ApiResponse, OpenApi,
    param::{Path, Query},
};
use uuid::Uuid;

use super::{
    auth::BearerAuth,
    common::{
        Answer, ApiTags, BODY, Deleted, E400, E401, E403, E404, E409, E410, E500, E503, IDEMPOTENT,
        render_no_content,
    },
    idempotency::{IdempotencyKey, Idempotent, render},
    payload::JsonBody,
};
use crate::{
    model::{
        CheckInBatch, CheckInResults, InvitationCreate, InvitationCreated, InvitationLookup,
        InvitationPage, InvitationRead, Limit, Offset, StaffList, StaffMember, StaffPut,
    },
    service::{idempotency::Rendered, staff::Staffed},
    state::AppState,
};

/// The answer of a staff `PUT`.
#[derive(ApiResponse)]
pub enum StaffAnswer {
    /// The user was staff already; their role is now the one sent.
    #[oai(status = 200)]
    Changed(JsonBody<StaffMember>),
    /// The user was added to the staff.
    #[oai(status = 201)]
    Added(JsonBody<StaffMember>),
}

impl From<Staffed> for StaffAnswer {
    fn from(s: Staffed) -> Self {
        if s.added {
            StaffAnswer::Added(JsonBody(s.member))
        } else {
            StaffAnswer::Changed(JsonBody(s.member))
        }
    }
}

fn render_staffed(value: &Staffed) -> Rendered {
    render(StaffAnswer::from(value.clone()))
}

/// A new invitation.
#[derive(ApiResponse)]
pub enum InvitationAnswer {
    /// Created; `Location` is its URL. The body holds the token, shown only here.
    #[oai(status = 201)]
    Created(
        JsonBody<InvitationCreated>,
        #[oai(header = "Location")] String,
    ),
}

impl From<InvitationCreated> for InvitationAnswer {
    fn from(c: InvitationCreated) -> Self {
        let location = format!(
            "/api/v1/events/{}/invitations/{}",
            c.invitation.event_id, c.invitation.id
        );
        InvitationAnswer::Created(JsonBody(c), location)
    }
}

fn render_invitation(value: &InvitationCreated) -> Rendered {
    render(InvitationAnswer::from(value.clone()))
}

/// The results of a check-in batch.
#[derive(ApiResponse)]
pub enum CheckInAnswer {
    /// One result per scan, in order.
    #[oai(status = 200)]
    Ok(JsonBody<CheckInResults>),
}

impl From<CheckInResults> for CheckInAnswer {
    fn from(r: CheckInResults) -> Self {
        CheckInAnswer::Ok(JsonBody(r))
    }
}

fn render_check_in(value: &CheckInResults) -> Rendered {
    render(CheckInAnswer::from(value.clone()))
}

/// Staff, invitations and check-in.
pub struct AccessApi {
    /// Services.
    pub state: AppState,
}

#[OpenApi(prefix_path = "/api/v1")]
impl AccessApi {
    /// List an event's staff
    ///
    /// Co-organizers and checkers, by the time they were added (organizer, staff,
    /// administrator).
    #[oai(
        path = "/events/:id/staff",
        method = "get",
        tag = "ApiTags::Access",
        operation_id = "listStaff"
    )]
    async fn list_staff(
        &self,
        auth: BearerAuth,
        /// The event's id.
        id: Path<Uuid>,
    ) -> Answer<JsonBody<StaffList>, { E401 | E403 | E404 | E500 | E503 }> {
        Ok(JsonBody(self.state.staff.list(&auth.0, id.0).await?))
    }

    /// Give a user a staff role
    ///
    /// `co_organizer` (everything the organizer may, except deleting the event and managing
    /// staff) or `checker` (lists and reads attendees, checks them in). 201 when the user is
    /// added, 200 when their role is set. The organizer cannot be staff of their own event
    /// (409). Organizer or administrator.
    #[oai(
        path = "/events/:id/staff/:user_id",
        method = "put",
        tag = "ApiTags::Access",
        operation_id = "putStaff"
    )]
    async fn put_staff(
        &self,
        auth: BearerAuth,
        /// The event's id.
        id: Path<Uuid>,
        /// The user's id.
        user_id: Path<Uuid>,
        /// Makes the request safe to retry: a retry with the same key, method, path and body
        /// gets the first answer again (`Idempotent-Replayed: true`) and changes nothing.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyKey,
        body: JsonBody<StaffPut>,
    ) -> Answer<Idempotent<StaffAnswer>, { BODY | E401 | E403 | E404 | IDEMPOTENT | E500 | E503 }>
    {
        let key = idempotency_key.of(&auth.0, &render_staffed);
        let written = (self.state.staff)
            .put(&auth.0, id.0, user_id.0, body.0.role, key)
            .await?;
        Ok(Idempotent::from_written(written))
    }

    /// Remove a user from the staff
    ///
    /// They lose their role on this event at once (organizer or administrator); 404 when
    /// they are not staff.
    #[oai(
        path = "/events/:id/staff/:user_id",
        method = "delete",
        tag = "ApiTags::Access",
        operation_id = "deleteStaff"
    )]
    async fn delete_staff(
        &self,
        auth: BearerAuth,
        /// The event's id.
        id: Path<Uuid>,
        /// The user's id.
        user_id: Path<Uuid>,
        /// Makes the request safe to retry: a retry with the same key, method, path and body
        /// gets the first answer again (`Idempotent-Replayed: true`) and changes nothing.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyKey,
    ) -> Answer<Idempotent<Deleted>, { E401 | E403 | E404 | IDEMPOTENT | E500 | E503 }> {
        let key = idempotency_key.of(&auth.0, &render_no_content::<()>);
        let written = (self.state.staff)
            .remove(&auth.0, id.0, user_id.0, key)
            .await?;
        Ok(Idempotent::from_written(written))
    }

    /// Create an invitation
    ///
    /// `max_uses` 1 to 10000 (default 1); `expires_at` in the future, at most a year ahead
    /// (default: 7 days). The answer holds the `token`, shown only here: only its SHA-256 is
    /// stored. Organizer, co-organizer or administrator; not on a cancelled or completed
    /// event (409).
    #[oai(
        path = "/events/:id/invitations",
        method = "post",
        tag = "ApiTags::Access",
        operation_id = "createInvitation"
    )]
    async fn create_invitation(
        &self,
        auth: BearerAuth,
        /// The event's id.
        id: Path<Uuid>,
        /// Makes the request safe to retry: a retry with the same key, method, path and body
        /// gets the first answer again (`Idempotent-Replayed: true`) and changes nothing.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyKey,
        body: JsonBody<InvitationCreate>,
    ) -> Answer<
        Idempotent<InvitationAnswer>,
        { BODY | E401 | E403 | E404 | E409 | IDEMPOTENT | E500 | E503 },
    > {
        let key = idempotency_key.of_sealed(&auth.0, &render_invitation);
        let written = (self.state.invitations)
            .create(&auth.0, id.0, body.0, key)
            .await?;
        Ok(Idempotent::from_written(written))
    }

    /// List an event's invitations
    ///
    /// Newest first, with their status now (organizer, co-organizer, administrator).
    #[oai(
        path = "/events/:id/invitations",
        method = "get",
        tag = "ApiTags::Access",
        operation_id = "listInvitations"
    )]
    async fn list_invitations(
        &self,
        auth: BearerAuth,
        /// The event's id.
        id: Path<Uuid>,
        /// Page size.
        limit: Query<Limit>,
        /// Number of items to skip.
        offset: Query<Offset>,
    ) -> Answer<JsonBody<InvitationPage>, { E400 | E401 | E403 | E404 | E500 | E503 }> {
        let page = (self.state.invitations)
            .list(&auth.0, id.0, limit.0.0, offset.0.0)
            .await?;
        Ok(JsonBody(page.into()))
    }

    /// Get an invitation
    ///
    /// Organizer, co-organizer or administrator. The token is never shown again.
    #[oai(
        path = "/events/:id/invitations/:invitation_id",
        method = "get",
        tag = "ApiTags::Access",
        operation_id = "getInvitation"
    )]
    async fn get_invitation(
        &self,
        auth: BearerAuth,
        /// The event's id.
        id: Path<Uuid>,
        /// The invitation's id.
        invitation_id: Path<Uuid>,
    ) -> Answer<JsonBody<InvitationRead>, { E401 | E403 | E404 | E500 | E503 }> {
        let found = (self.state.invitations)
            .get(&auth.0, id.0, invitation_id.0)
            .await?;
        Ok(JsonBody(found))
    }

    /// Revoke an invitation
    ///
    /// It admits nobody from now on; registrations it admitted stay. Revoking a revoked
    /// invitation changes nothing (204). Organizer, co-organizer or administrator.
    #[oai(
        path = "/events/:id/invitations/:invitation_id",
        method = "delete",
        tag = "ApiTags::Access",
        operation_id = "revokeInvitation"
    )]
    async fn revoke_invitation(
        &self,
        auth: BearerAuth,
        /// The event's id.
        id: Path<Uuid>,
        /// The invitation's id.
        invitation_id: Path<Uuid>,
        /// Makes the request safe to retry: a retry with the same key, method, path and body
        /// gets the first answer again (`Idempotent-Replayed: true`) and changes nothing.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyKey,
    ) -> Answer<Idempotent<Deleted>, { E401 | E403 | E404 | IDEMPOTENT | E500 | E503 }> {
        let key = idempotency_key.of(&auth.0, &render_no_content::<()>);
        let written = (self.state.invitations)
            .revoke(&auth.0, id.0, invitation_id.0, key)
            .await?;
        Ok(Idempotent::from_written(written))
    }

    /// Look up an invitation by its token
    ///
    /// Anyone holding the token: the invitation and its event in short. 404 for an unknown
    /// token; 410 `invitation-expired`, `invitation-revoked` or `invitation-used-up` for one
    /// that admits nobody any more.
    #[oai(
        path = "/invitations/:token",
        method = "get",
        tag = "ApiTags::Access",
        operation_id = "getInvitationByToken"
    )]
    async fn lookup_invitation(
        &self,
        /// The invitation token.
        #[oai(validator(max_length = 512))]
        token: Path<String>,
    ) -> Answer<JsonBody<InvitationLookup>, { E400 | E404 | E410 | E500 | E503 }> {
        Ok(JsonBody(self.state.invitations.lookup(&token.0).await?))
    }

    /// Check attendees in
    ///
    /// A batch of 1 to 1000 scans from a door app, uploaded when it is online, applied in one
    /// transaction. One result per scan, in order: `checked_in`, `already_checked_in` (with
    /// the time of the first scan, which wins), `not_confirmed` (waitlisted or cancelled) or
    /// `not_found`. The same batch again changes nothing. Only published events (409).
    /// Bodies up to 256 KiB are accepted whatever `MAX_BODY_BYTES` says. Organizer, staff or
    /// administrator.
    #[oai(
        path = "/events/:id/check-ins",
        method = "post",
        tag = "ApiTags::Attendees",
        operation_id = "checkIn"
    )]
    async fn check_in(
        &self,
        auth: BearerAuth,
        /// The event's id.
        id: Path<Uuid>,
        /// Makes the request safe to retry: a retry with the same key, method, path and body
        /// gets the first answer again (`Idempotent-Replayed: true`) and changes nothing.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyKey,
        body: JsonBody<CheckInBatch>,
    ) -> Answer<
        Idempotent<CheckInAnswer>,
        { BODY | E401 | E403 | E404 | E409 | IDEMPOTENT | E500 | E503 },
    > {
        let key = idempotency_key.of(&auth.0, &render_check_in);
        let written = (self.state.attendees)
            .check_in(&auth.0, id.0, body.0, key)
            .await?;
        Ok(Idempotent::from_written(written))
    }
}
