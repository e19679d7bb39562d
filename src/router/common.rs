//! Helpers shared by the resource routers: tags, ETags, If-Match, paging parameters.

use poem_openapi::Tags;

use crate::{error::ApiError, service::patch::Precondition};

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

/// Parses `If-Match` (RFC 9110): `*`, or a list of entity tags. Weak tags are kept out of
/// the list, since If-Match compares strongly: a request naming only weak tags fails with 412.
pub fn parse_if_match(value: Option<String>) -> Result<Option<Precondition>, ApiError> {
    let Some(value) = value else { return Ok(None) };
    let value = value.trim();
    if value == "*" {
        return Ok(Some(Precondition::Any));
    }
    let mut versions = Vec::new();
    for tag in value.split(',').map(str::trim) {
        let (weak, opaque) = match tag.strip_prefix("W/") {
            Some(rest) => (true, rest),
            None => (false, tag),
        };
        let inner = opaque
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "If-Match must be `*` or entity tags such as \"3\" (with the quotes)",
                )
            })?;
        // Any other opaque tag is well-formed but names no version of ours: it cannot match.
        if let (false, Ok(v)) = (weak, inner.parse::<i64>()) {
            versions.push(v);
        }
    }
    Ok(Some(Precondition::Versions(versions)))
}

/// Default page size.
pub fn default_limit() -> u32 {
    crate::model::DEFAULT_LIMIT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_accepts_star_lists_and_ignores_weak_tags() {
        assert_eq!(parse_if_match(None).unwrap(), None);
        assert_eq!(
            parse_if_match(Some("*".into())).unwrap(),
            Some(Precondition::Any)
        );
        assert_eq!(
            parse_if_match(Some("\"1\", W/\"2\", \"x\", \"3\"".into())).unwrap(),
            Some(Precondition::Versions(vec![1, 3]))
        );
        assert!(parse_if_match(Some("3".into())).is_err());
    }
}
