//! Helpers shared by the resource routers: tags, ETags, If-Match, paging parameters.

use poem_openapi::{ApiResponse, Tags, payload::Json, types::ToJSON};

use crate::model::{AttendeeRead, EventRead, UserRead};

use crate::service::patch::Precondition;

/// Groups of operations in the spec.
#[derive(Tags)]
pub enum ApiTags {
    /// Sign-up, profiles and administration of users.
    Users,
    /// Access tokens.
    Auth,
    /// Events and their lifecycle.
    Events,
    /// Registrations, the waitlist and check-in.
    Attendees,
    /// Liveness and readiness probes.
    Health,
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
    Ok(Json<T>, #[oai(header = "ETag")] String),
}

impl<T: Resource + ToJSON + Send + Sync> From<T> for Tagged<T> {
    fn from(resource: T) -> Self {
        let tag = etag(resource.version());
        Tagged::Ok(Json(resource), tag)
    }
}

/// A newly created resource.
#[derive(ApiResponse)]
pub enum Created<T: ToJSON + Send + Sync> {
    /// Created; `Location` is its URL and `ETag` its version.
    #[oai(status = 201)]
    Created(
        Json<T>,
        #[oai(header = "Location")] String,
        #[oai(header = "ETag")] String,
    ),
}

impl<T: Resource + ToJSON + Send + Sync> From<T> for Created<T> {
    fn from(resource: T) -> Self {
        let (location, tag) = (resource.location(), etag(resource.version()));
        Created::Created(Json(resource), location, tag)
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

/// Default page size.
pub fn default_limit() -> u32 {
    crate::model::DEFAULT_LIMIT
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
