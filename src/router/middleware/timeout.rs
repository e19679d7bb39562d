//! Bounds the duration of every request.

use std::{sync::Arc, time::Duration};

use poem::{
    Endpoint, IntoResponse, Request, Response,
    http::{StatusCode, header},
};

use crate::error::ApiError;

/// Answers 503 when the request takes longer than `timeout`. Dropping the handler's future
/// rolls back its open transaction.
pub async fn timeout<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    timeout: Duration,
) -> poem::Result<Response> {
    match tokio::time::timeout(timeout, ep.call(req)).await {
        Ok(result) => result.map(IntoResponse::into_response),
        Err(_) => {
            tracing::warn!(timeout_s = timeout.as_secs(), "request timed out");
            Ok(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "the request took too long and was abandoned; retry later".to_owned(),
            )
            .with_header(header::RETRY_AFTER, "1")
            .into_response())
        }
    }
}
