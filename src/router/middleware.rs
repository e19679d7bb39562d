//! Cross-cutting HTTP concerns: request ids, body limits, panics, and turning every
//! framework error into a problem response.

use std::{sync::Arc, time::Duration};

use poem::{
    Endpoint, IntoResponse, Request, Response,
    error::{MethodNotAllowedError, NotFoundError, ReadBodyError},
    http::{HeaderValue, Method, StatusCode, header},
};
use poem_openapi::error::{
    AuthorizationError, ContentTypeError, ParseParamError, ParsePathError, ParseRequestPayloadError,
};
use tracing::Instrument;

use super::payload::JSON_PATCH;
use crate::{error::ApiError, telemetry::REQUEST_ID};

/// Request id header, accepted from the client or generated.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Wraps every request: assigns its id, opens its log span, bounds its duration, maps errors
/// to problems, and adds the id and security headers to the response.
pub async fn request_context<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    timeout: Duration,
    allowed: Arc<AllowedMethods>,
) -> poem::Result<Response> {
    let request_id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_acceptable_request_id(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        path = %req.uri().path(),
    );
    let started = std::time::Instant::now();
    let id = request_id.clone();
    let path = req.uri().path().to_owned();
    let is_docs = path.starts_with("/docs");
    let mut response = REQUEST_ID
        .scope(id, async move {
            // Dropping the handler's future on timeout rolls back its open transaction.
            match tokio::time::timeout(timeout, ep.call(req)).await {
                Ok(Ok(resp)) => resp.into_response(),
                Ok(Err(err)) => {
                    let mut response = problem_for(err, &method);
                    if response.status() == StatusCode::METHOD_NOT_ALLOWED
                        && let Some(allow) = allowed.for_path(&path)
                        && let Ok(value) = HeaderValue::from_str(allow)
                    {
                        response.headers_mut().insert(header::ALLOW, value);
                    }
                    response
                }
                Err(_) => {
                    tracing::warn!(timeout_s = timeout.as_secs(), "request timed out");
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "timeout",
                        "the request took too long and was abandoned; retry later".to_owned(),
                    )
                    .with_header(header::RETRY_AFTER, "1")
                    .into_response()
                }
            }
        })
        .instrument(span.clone())
        .await;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    if !is_docs {
        // API answers are data, never documents to render or cache in shared caches.
        headers.insert(
            "content-security-policy",
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
        headers
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
    let status = response.status().as_u16();
    span.in_scope(|| {
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        if status >= 500 {
            tracing::warn!(status, elapsed_ms, "request failed");
        } else {
            tracing::info!(status, elapsed_ms, "request served");
        }
    });
    Ok(response)
}

/// Client-sent ids are echoed into headers and logs: keep them short and printable.
fn is_acceptable_request_id(v: &str) -> bool {
    (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic())
}

/// The problem response for an error raised by the framework or a handler.
fn problem_for(err: poem::Error, method: &Method) -> Response {
    if err.is_from_response() {
        // Already a problem response built by `ApiError`.
        return err.into_response();
    }
    let api_error = if err.is::<ParseRequestPayloadError>() || err.is::<ParseParamError>() {
        ApiError::bad_request(err.to_string())
    } else if err.is::<ParsePathError>() || err.is::<NotFoundError>() {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "no such resource".to_owned(),
        )
    } else if let Some(e) = err.downcast_ref::<ContentTypeError>() {
        let mut api_error = ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            match (e, method == Method::PATCH) {
                (_, true) => format!("PATCH bodies must be JSON Patch documents ({JSON_PATCH})"),
                (_, false) => "request bodies must be application/json".to_owned(),
            },
        );
        if method == Method::PATCH {
            api_error =
                api_error.with_header(header::HeaderName::from_static("accept-patch"), JSON_PATCH);
        }
        api_error
    } else if err.is::<AuthorizationError>() {
        ApiError::unauthorized("a valid bearer token is required")
    } else if err.is::<MethodNotAllowedError>() {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            format!("{method} is not allowed on this resource"),
        )
    } else if matches!(
        err.downcast_ref::<ReadBodyError>(),
        Some(ReadBodyError::PayloadTooLarge)
    ) {
        payload_too_large()
    } else if err.status().is_server_error() {
        tracing::error!(error = ?err, "unhandled server error");
        ApiError::internal()
    } else {
        let status = err.status();
        ApiError::new(status, "http-error", err.to_string())
    };
    api_error.into_response()
}

fn payload_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        "the request body is larger than this server accepts".to_owned(),
    )
}

/// Buffers the body up to `max` bytes; larger bodies get 413 before any handler runs.
pub async fn limit_body<E: Endpoint>(
    ep: Arc<E>,
    mut req: Request,
    max: usize,
) -> poem::Result<Response> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return Ok(payload_too_large().into_response());
    }
    let body = req.take_body();
    match body.into_bytes_limit(max).await {
        Ok(bytes) => req.set_body(bytes),
        Err(ReadBodyError::PayloadTooLarge) => return Ok(payload_too_large().into_response()),
        Err(e) => {
            return Ok(
                ApiError::bad_request(format!("the request body could not be read: {e}"))
                    .into_response(),
            );
        }
    }
    ep.call(req).await.map(IntoResponse::into_response)
}

/// Turns a panic in a handler into a 500 problem; the process keeps serving.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %message, "handler panicked");
    ApiError::internal().into_response()
}

/// The methods each documented path accepts, for the `Allow` header of 405 answers
/// (RFC 9110 requires it). Built once from the OpenAPI document.
#[derive(Debug, Default)]
pub struct AllowedMethods {
    routes: Vec<(Vec<String>, String)>,
}

impl AllowedMethods {
    /// Reads the paths and methods of an OpenAPI document (JSON).
    pub fn from_spec(spec: &str) -> Self {
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(spec) else {
            return Self::default();
        };
        let mut routes = Vec::new();
        if let Some(paths) = doc.get("paths").and_then(|p| p.as_object()) {
            for (template, item) in paths {
                let mut methods: Vec<String> = item
                    .as_object()
                    .map(|ops| ops.keys().map(|m| m.to_uppercase()).collect())
                    .unwrap_or_default();
                if methods.iter().any(|m| m == "GET") {
                    methods.push("HEAD".to_owned());
                }
                methods.sort();
                let segments = template.split('/').map(str::to_owned).collect();
                routes.push((segments, methods.join(", ")));
            }
        }
        Self { routes }
    }

    /// The `Allow` value for a request path, if it matches a documented path.
    pub fn for_path(&self, path: &str) -> Option<&str> {
        let segments: Vec<&str> = path.split('/').collect();
        self.routes
            .iter()
            .filter(|(template, _)| template.len() == segments.len())
            .filter(|(template, _)| {
                template
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t == s || (t.starts_with('{') && t.ends_with('}')))
            })
            // Literal segments beat parameters (`/users/me` over `/users/{id}`).
            .max_by_key(|(template, _)| template.iter().filter(|t| !t.starts_with('{')).count())
            .map(|(_, allow)| allow.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::AllowedMethods;

    #[test]
    fn allow_lists_the_documented_methods_of_the_matching_path() {
        let spec = r#"{"paths": {
            "/users/{id}": {"get": {}, "patch": {}, "delete": {}},
            "/users/me": {"get": {}},
            "/health": {"get": {}}
        }}"#;
        let allowed = AllowedMethods::from_spec(spec);
        assert_eq!(
            allowed.for_path("/users/42"),
            Some("DELETE, GET, HEAD, PATCH")
        );
        assert_eq!(allowed.for_path("/users/me"), Some("GET, HEAD"));
        assert_eq!(allowed.for_path("/nowhere"), None);
    }
}
