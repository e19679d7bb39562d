//! Conditional reads (RFC 9110 `If-None-Match`) for every GET that answers with an `ETag`.

use std::sync::Arc;

use poem::{
    Endpoint, IntoResponse, Request, Response,
    http::{HeaderValue, Method, StatusCode, header},
};

/// Answers 304 (headers, no body) when `If-None-Match` matches the `ETag` of a 200 answer
/// to GET or HEAD, and marks such answers `Cache-Control: no-cache` so clients store and
/// revalidate them instead of fetching them whole every time.
pub async fn conditional_get<E: Endpoint>(ep: Arc<E>, req: Request) -> poem::Result<Response> {
    let is_read = matches!(*req.method(), Method::GET | Method::HEAD);
    let if_none_match = req.headers().get(header::IF_NONE_MATCH).cloned();
    let mut response = ep.call(req).await?.into_response();
    if !is_read || response.status() != StatusCode::OK {
        return Ok(response);
    }
    let Some(etag) = response.headers().get(header::ETAG).cloned() else {
        return Ok(response);
    };
    response
        .headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-cache"));
    let matched = if_none_match
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .zip(etag.to_str().ok())
        .is_some_and(|(condition, tag)| matches_if_none_match(condition, tag));
    if matched {
        return Ok(not_modified(response));
    }
    Ok(response)
}

/// Whether an `If-None-Match` value matches `etag`, by the weak comparison RFC 9110
/// prescribes for it: `*` matches any tag, a list matches when any member does, and `W/`
/// is ignored on both sides.
pub fn matches_if_none_match(condition: &str, etag: &str) -> bool {
    let condition = condition.trim();
    if condition == "*" {
        return true;
    }
    let Some(ours) = opaque_tag(etag.trim()) else {
        return false;
    };
    entity_tags(condition).any(|tag| opaque_tag(tag) == Some(ours))
}

/// The members of an entity-tag list; a comma inside a quoted tag does not split it.
fn entity_tags(list: &str) -> impl Iterator<Item = &str> {
    let mut in_quotes = false;
    list.split(move |c| {
        if c == '"' {
            in_quotes = !in_quotes;
        }
        c == ',' && !in_quotes
    })
    .map(str::trim)
    .filter(|t| !t.is_empty())
}

/// The quoted part of an entity tag (`"3"` of `W/"3"`); `None` when malformed.
fn opaque_tag(tag: &str) -> Option<&str> {
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    (tag.len() >= 2
        && tag.starts_with('"')
        && tag.ends_with('"')
        && !tag[1..tag.len() - 1].contains('"'))
    .then_some(tag)
}

/// The 304 for a 200: the same headers but those that describe the body, and no body.
fn not_modified(mut response: Response) -> Response {
    response.set_status(StatusCode::NOT_MODIFIED);
    let headers = response.headers_mut();
    for name in [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
    ] {
        headers.remove(name);
    }
    response.set_body(());
    response
}

#[cfg(test)]
mod tests {
    use super::matches_if_none_match;

    #[test]
    fn if_none_match_uses_weak_comparison_over_a_list() {
        let cases = [
            ("\"3\"", "\"3\"", true),
            ("\"4\"", "\"3\"", false),
            ("W/\"3\"", "\"3\"", true),
            ("\"3\"", "W/\"3\"", true),
            ("\"1\", \"2\",\"3\"", "\"3\"", true),
            ("\"1\", W/\"2\"", "\"3\"", false),
            ("*", "\"3\"", true),
            (" * ", "\"3\"", true),
            ("\"a,3\", \"b\"", "\"3\"", false),
            ("3", "\"3\"", false),
            ("", "\"3\"", false),
            ("\"\"", "\"3\"", false),
            ("\"3", "\"3\"", false),
        ];
        for (condition, etag, expected) in cases {
            assert_eq!(
                matches_if_none_match(condition, etag),
                expected,
                "If-None-Match: {condition} against ETag {etag}"
            );
        }
    }
}
