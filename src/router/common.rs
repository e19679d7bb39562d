//! Helpers shared by the resource routers: tags, ETags, If-Match, and the error statuses each
//! operation documents.

use poem::{IntoResponse, Response};
use poem_openapi::{
    ApiResponse, Tags,
    registry::{MetaResponses, Registry},
    types::ToJSON,
};

use super::{idempotency::render, payload::JsonBody};
use crate::{
    error::ApiError,
    model::{AttendeeRead, EventRead, UserRead},
    service::{self, idempotency::Rendered, patch::Precondition},
};

/// Groups of operations in the spec, in the order a reader meets them.
#[derive(Tags)]
pub enum ApiTags {
    /// Access tokens.
    Auth,
    /// Sign-up, profiles and administration of users.
    Users,
    /// Events and their lifecycle.
    Events,
    /// Registrations, the waitlist and check-in.
    Attendees,
    /// Who else runs an event (staff) and who may join a private one (invitations).
    Access,
    /// What changed, in order: per event, globally, and live.
    Changes,
    /// Liveness and readiness probes.
    Health,
    /// Webhooks: signed deliveries of changes, their log and redelivery.
    Webhooks,
}

/// The `ETag` of a resource version.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// A resource that has a URL and a version.
pub trait Resource {
    /// Its URL path.
    fn location(&self) -> String;
    /// Its version (the `ETag`).
    fn version(&self) -> i64;
}

impl Resource for UserRead {
    fn location(&self) -> String {
        format!("/api/v1/users/{}", self.id)
    }
    fn version(&self) -> i64 {
        self.version
    }
}

impl Resource for EventRead {
    fn location(&self) -> String {
        format!("/api/v1/events/{}", self.id)
    }
    fn version(&self) -> i64 {
        self.version
    }
}

impl Resource for AttendeeRead {
    fn location(&self) -> String {
        format!("/api/v1/events/{}/attendees/{}", self.event_id, self.id)
    }
    fn version(&self) -> i64 {
        self.version
    }
}

/// A resource with its version as `ETag`.
#[derive(ApiResponse)]
pub enum Tagged<T: ToJSON + Send + Sync> {
    /// The resource; `ETag` is its version.
    #[oai(status = 200)]
    Ok(JsonBody<T>, #[oai(header = "ETag")] String),
}

impl<T: Resource + ToJSON + Send + Sync> From<T> for Tagged<T> {
    fn from(resource: T) -> Self {
        let tag = etag(resource.version());
        Tagged::Ok(JsonBody(resource), tag)
    }
}

/// A single resource read with `GET`, which honours `If-None-Match`.
#[derive(ApiResponse)]
pub enum Current<T: ToJSON + Send + Sync> {
    /// The resource; `ETag` is its version.
    #[oai(status = 200)]
    Ok(JsonBody<T>, #[oai(header = "ETag")] String),
    /// `If-None-Match` names the current version: the copy the client holds is still
    /// current. No body.
    #[oai(status = 304)]
    NotModified(#[oai(header = "ETag")] String),
}

impl<T: Resource + ToJSON + Send + Sync> From<T> for Current<T> {
    fn from(resource: T) -> Self {
        let tag = etag(resource.version());
        Current::Ok(JsonBody(resource), tag)
    }
}

/// A newly created resource.
#[derive(ApiResponse)]
pub enum Created<T: ToJSON + Send + Sync> {
    /// Created; `Location` is its URL and `ETag` its version.
    #[oai(status = 201)]
    Created(
        JsonBody<T>,
        #[oai(header = "Location")] String,
        #[oai(header = "ETag")] String,
    ),
}

impl<T: Resource + ToJSON + Send + Sync> From<T> for Created<T> {
    fn from(resource: T) -> Self {
        let (location, tag) = (resource.location(), etag(resource.version()));
        Created::Created(JsonBody(resource), location, tag)
    }
}

/// The stored answer of a create: 201 with `Location` and `ETag`.
pub fn render_created<T: Resource + ToJSON + Clone + Send + Sync>(value: &T) -> Rendered {
    render(Created::from(value.clone()))
}

/// The stored answer of a change: 200 with `ETag`.
pub fn render_tagged<T: Resource + ToJSON + Clone + Send + Sync>(value: &T) -> Rendered {
    render(Tagged::from(value.clone()))
}

/// The stored answer of a deletion: 204.
pub fn render_no_content<T>(_: &T) -> Rendered {
    render(Deleted::NoContent)
}

/// No body.
#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    NoContent,
}

impl From<()> for Deleted {
    fn from((): ()) -> Self {
        Deleted::NoContent
    }
}

/// Parses `If-Match` (RFC 9110): `*`, or a list of entity tags. Weak tags never match
/// (If-Match compares strongly), and a value that is not an entity-tag list is a
/// precondition that cannot hold: both end in 412, never in an unconditional write.
pub fn parse_if_match(value: Option<String>) -> Option<Precondition> {
    let value = value?;
    let value = value.trim();
    if value == "*" {
        return Some(Precondition::Any);
    }
    let mut versions = Vec::new();
    for tag in value.split(',').map(str::trim) {
        let strong = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"'));
        if let Some(version) = strong.and_then(|v| v.parse::<i64>().ok()) {
            versions.push(version);
        }
    }
    Some(Precondition::Versions(versions))
}

/// Bit flags naming the error statuses an operation documents: `Problems<{ E401 | E404 }>`.
pub const E400: u32 = 1 << 0;
/// 401: no, or an invalid, bearer token.
pub const E401: u32 = 1 << 1;
/// 403: authenticated but not allowed.
pub const E403: u32 = 1 << 2;
/// 404: no such resource, or one the caller may not see.
pub const E404: u32 = 1 << 3;
/// 409: conflicts with the current state.
pub const E409: u32 = 1 << 4;
/// 410: gone for good (changes past retention).
pub const E410: u32 = 1 << 12;
/// 412: `If-Match` did not match.
pub const E412: u32 = 1 << 5;
/// 413: body too large.
pub const E413: u32 = 1 << 6;
/// 415: wrong `Content-Type`.
pub const E415: u32 = 1 << 7;
/// 422: well-formed but invalid values.
pub const E422: u32 = 1 << 8;
/// 429: rate limited.
pub const E429: u32 = 1 << 9;
/// 500: unexpected failure.
pub const E500: u32 = 1 << 10;
/// 503: database unavailable.
pub const E503: u32 = 1 << 11;

/// Statuses of an operation that takes a JSON body: malformed, too large, wrong type.
pub const BODY: u32 = E400 | E413 | E415;
/// Statuses of an operation that honours `Idempotency-Key`: a malformed key (400), the key's
/// first request still running (409), the key used for another request (422).
pub const IDEMPOTENT: u32 = E400 | E409 | E422;

const FLAGS: [(u16, u32); 13] = [
    (400, E400),
    (401, E401),
    (403, E403),
    (404, E404),
    (409, E409),
    (410, E410),
    (412, E412),
    (413, E413),
    (415, E415),
    (422, E422),
    (429, E429),
    (500, E500),
    (503, E503),
];

fn listed(statuses: u32, status: u16) -> bool {
    FLAGS
        .iter()
        .any(|(code, flag)| *code == status && statuses & flag != 0)
}

/// An error of an operation that can only answer with `STATUSES` (flags above): the same
/// problem responses as [`ApiError`], but the spec lists only those statuses for it.
#[derive(Debug)]
pub struct Problems<const STATUSES: u32>(pub ApiError);

/// Result of an operation whose error statuses are `STATUSES`.
pub type Answer<T, const STATUSES: u32> = Result<T, Problems<STATUSES>>;

impl<const STATUSES: u32> From<service::Error> for Problems<STATUSES> {
    fn from(err: service::Error) -> Self {
        let err = ApiError::from(err);
        // A status the operation does not document is a spec bug: tests catch it here.
        debug_assert!(
            listed(STATUSES, err.status().as_u16()),
            "status {} is not among the documented error statuses of this operation; \
             add it to the operation's `Problems<...>`",
            err.status()
        );
        Problems(err)
    }
}

impl<const STATUSES: u32> IntoResponse for Problems<STATUSES> {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl<const STATUSES: u32> From<Problems<STATUSES>> for poem::Error {
    fn from(err: Problems<STATUSES>) -> Self {
        err.0.into()
    }
}

impl<const STATUSES: u32> ApiResponse for Problems<STATUSES> {
    fn meta() -> MetaResponses {
        let mut meta = ApiError::meta();
        meta.responses
            .retain(|r| r.status.is_some_and(|status| listed(STATUSES, status)));
        meta
    }

    fn register(registry: &mut Registry) {
        ApiError::register(registry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_accepts_star_lists_and_never_matches_weak_or_malformed_tags() {
        assert_eq!(parse_if_match(None), None);
        assert_eq!(parse_if_match(Some("*".into())), Some(Precondition::Any));
        assert_eq!(
            parse_if_match(Some("\"1\", W/\"2\", \"x\", \"3\"".into())),
            Some(Precondition::Versions(vec![1, 3]))
        );
        assert_eq!(
            parse_if_match(Some("3".into())),
            Some(Precondition::Versions(vec![]))
        );
        assert_eq!(
            parse_if_match(Some(String::new())),
            Some(Precondition::Versions(vec![]))
        );
    }
}
