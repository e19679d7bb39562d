//! Turns every error raised by the framework or a handler into an RFC 9457 problem.

use std::sync::Arc;

use poem::{
    Endpoint, IntoResponse, Request, Response,
    error::{CorsError, MethodNotAllowedError, NotFoundError, ReadBodyError},
    http::{HeaderValue, Method, StatusCode, header},
};
use poem_openapi::error::{
    AuthorizationError, ContentTypeError, ParseParamError, ParsePathError, ParseRequestPayloadError,
};

use super::routes::{self, RouteInfo};
use crate::{error::ApiError, router::payload::JSON_PATCH};

/// Answers every error of the wrapped endpoint with a problem response, so the layers
/// outside it (CORS, compression, logs) only ever see responses.
pub async fn problems<E: Endpoint>(ep: Arc<E>, req: Request) -> poem::Result<Response> {
    let method = req.method().clone();
    let route = routes::matched(&req);
    match ep.call(req).await {
        Ok(response) => Ok(response.into_response()),
        Err(err) => Ok(problem_for(err, &method, route.as_deref())),
    }
}

/// The problem response for an error raised by the framework or a handler.
pub fn problem_for(err: poem::Error, method: &Method, route: Option<&RouteInfo>) -> Response {
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
    } else if err.is::<ContentTypeError>() {
        if method == Method::PATCH {
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                format!("PATCH bodies must be JSON Patch documents ({JSON_PATCH})"),
            )
            .with_header(header::HeaderName::from_static("accept-patch"), JSON_PATCH)
        } else {
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "request bodies must be application/json".to_owned(),
            )
        }
    } else if err.is::<AuthorizationError>() {
        ApiError::unauthorized("a valid bearer token is required")
    } else if err.is::<MethodNotAllowedError>() {
        let api_error = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            format!("{method} is not allowed on this resource"),
        );
        // RFC 9110 requires `Allow` on every 405.
        match route.filter(|r| HeaderValue::from_str(&r.allow).is_ok() && !r.allow.is_empty()) {
            Some(route) => api_error.with_header(header::ALLOW, route.allow.clone()),
            None => api_error,
        }
    } else if let Some(e) = err.downcast_ref::<CorsError>() {
        let detail = match e {
            CorsError::OriginNotAllowed => "this origin is not allowed to call the API",
            CorsError::MethodNotAllowed => "this method is not allowed from another origin",
            CorsError::HeadersNotAllowed => {
                "these request headers are not allowed from another origin"
            }
        };
        ApiError::new(StatusCode::FORBIDDEN, "cors-rejected", detail.to_owned())
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

/// 413.
pub fn payload_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        "the request body is larger than this server accepts".to_owned(),
    )
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
