//! The one place where errors become HTTP: RFC 9457 problem responses.
//!
//! Service errors map to exactly one status here. 5xx bodies say nothing internal: the cause
//! chain goes to the log under the request id, which the body carries.

use poem::{
    IntoResponse, Response,
    http::{HeaderName, HeaderValue, StatusCode, header},
};
use poem_openapi::{
    ApiResponse, Object,
    registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::{ToJSON, Type},
};

use crate::{
    model::FieldError,
    service::{self, Conflict},
    telemetry::current_request_id,
};

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem detail.
#[derive(Debug, Clone, Object)]
pub struct Problem {
    /// URI reference identifying the problem type (`urn:problem:event-manager:<slug>`).
    #[oai(rename = "type")]
    pub problem_type: String,
    /// Short, human-readable summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// Explanation specific to this occurrence.
    #[oai(skip_serializing_if_is_none)]
    pub detail: Option<String>,
    /// Id of the request, also in the `X-Request-Id` header and the server log.
    #[oai(skip_serializing_if_is_none)]
    pub request_id: Option<String>,
    /// The invalid fields (validation errors only).
    #[oai(skip_serializing_if_is_none)]
    pub errors: Option<Vec<FieldError>>,
}

/// An error response: a problem body plus the headers its status calls for.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The body (boxed: errors travel in `Result`s and should stay small).
    pub problem: Box<Problem>,
    /// Extra headers (`WWW-Authenticate`, `Retry-After`, `Accept-Patch`...).
    pub headers: Vec<(HeaderName, String)>,
}

impl ApiError {
    /// A problem of the given status; `slug` names its type.
    pub fn new(status: StatusCode, slug: &str, detail: impl Into<Option<String>>) -> Self {
        Self {
            problem: Box::new(Problem {
                problem_type: format!("urn:problem:event-manager:{slug}"),
                title: status.canonical_reason().unwrap_or("Error").to_owned(),
                status: status.as_u16(),
                detail: detail.into(),
                request_id: current_request_id(),
                errors: None,
            }),
            headers: Vec::new(),
        }
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// 400 for a malformed request.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail.into())
    }

    /// 401 with the `WWW-Authenticate: Bearer` challenge.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail.into())
            .with_header(header::WWW_AUTHENTICATE, "Bearer")
    }

    /// 422 with field errors.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-error",
            "one or more fields are invalid".to_owned(),
        );
        e.problem.errors = Some(errors);
        e
    }

    /// 500 that says nothing about the cause.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal-error",
            "an unexpected error occurred; quote the request id when reporting it".to_owned(),
        )
    }

    /// 503 for an unreachable database.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service-unavailable",
            "the database is unavailable; nothing was changed, retry later".to_owned(),
        )
        .with_header(header::RETRY_AFTER, "2")
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<service::Error> for ApiError {
    fn from(err: service::Error) -> Self {
        use service::Error as E;
        match err {
            E::Validation(errors) => ApiError::validation(errors),
            E::Unprocessable(detail) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", detail)
            }
            E::BadRequest(detail) => ApiError::bad_request(detail),
            E::Unauthenticated(detail) => ApiError::unauthorized(detail),
            E::InvalidCredentials => ApiError::unauthorized("invalid email or password"),
            E::Forbidden(detail) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", detail),
            E::NotFound(what) => ApiError::new(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("{what} not found"),
            ),
            E::Conflict(Conflict::EmailTaken, detail) => {
                ApiError::new(StatusCode::CONFLICT, "email-taken", detail)
            }
            E::Conflict(Conflict::State, detail) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", detail)
            }
            E::PreconditionFailed { current } => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                format!("If-Match does not match the current version \"{current}\""),
            )
            .with_header(header::ETAG, format!("\"{current}\"")),
            E::TooManyRequests {
                retry_after_seconds,
            } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-requests",
                format!("too many failed attempts; retry in {retry_after_seconds} s"),
            )
            .with_header(header::RETRY_AFTER, retry_after_seconds.to_string()),
            E::Gone { slug, detail } => ApiError::new(StatusCode::GONE, slug, detail),
            E::Busy {
                slug,
                detail,
                retry_after_seconds,
            } => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, slug, detail)
                .with_header(header::RETRY_AFTER, retry_after_seconds.to_string()),
            E::IdempotencyKeyInUse => ApiError::new(
                StatusCode::CONFLICT,
                "idempotency-key-in-use",
                "a request with this Idempotency-Key is still running; retry in a second to \
                 get its answer"
                    .to_owned(),
            )
            .with_header(header::RETRY_AFTER, "1"),
            E::IdempotencyKeyReused => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "this Idempotency-Key was used for another request (method, path or body \
                 differ); send a new key"
                    .to_owned(),
            ),
            E::Unavailable(cause) => {
                tracing::error!(error = ?cause, "database unavailable");
                ApiError::unavailable()
            }
            E::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self.problem.to_json()).unwrap_or_default();
        let mut response = Response::builder()
            .status(status)
            .content_type(PROBLEM_JSON)
            .body(body);
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().append(name, value);
            }
        }
        response
    }
}

impl From<ApiError> for poem::Error {
    fn from(err: ApiError) -> Self {
        poem::Error::from_response(err.into_response())
    }
}

/// The statuses every operation may answer with besides its successes.
const ERROR_STATUSES: &[(u16, &str)] = &[
    (
        400,
        "Malformed request: invalid JSON, wrong shape or bad parameter",
    ),
    (401, "Missing, invalid or expired credentials"),
    (403, "Authenticated but not allowed"),
    (404, "No such resource, or one the caller may not see"),
    (409, "Conflicts with the current state"),
    (410, "Gone: changes older than the retention period"),
    (412, "If-Match does not match the current version"),
    (413, "Request body too large"),
    (415, "Unsupported Content-Type"),
    (
        422,
        "Well-formed but invalid values, or a patch that cannot be applied",
    ),
    (429, "Too many requests"),
    (500, "Unexpected server error"),
    (503, "Database unavailable; nothing was done"),
];

impl ApiResponse for ApiError {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: ERROR_STATUSES
                .iter()
                .map(|(status, description)| MetaResponse {
                    description,
                    status: Some(*status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: PROBLEM_JSON,
                        schema: Problem::schema_ref(),
                    }],
                    headers: error_headers(*status),
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}

fn error_headers(status: u16) -> Vec<MetaHeader> {
    let header = |name: &str, description: &str| MetaHeader {
        name: name.to_owned(),
        description: Some(description.to_owned()),
        required: false,
        deprecated: false,
        schema: String::schema_ref(),
    };
    match status {
        401 => vec![header("WWW-Authenticate", "Always `Bearer`")],
        412 => vec![header("ETag", "The current version")],
        415 => vec![header("Accept-Patch", "Media type PATCH accepts")],
        409 => vec![header(
            "Retry-After",
            "With `idempotency-key-in-use`: seconds to wait before retrying",
        )],
        429 | 503 => vec![header("Retry-After", "Seconds to wait before retrying")],
        _ => vec![],
    }
}

/// Result of an HTTP operation.
pub type ApiResult<T> = Result<T, ApiError>;
