//! The request body limit.

use std::{sync::Arc, time::Duration};

use poem::{Endpoint, IntoResponse, Request, Response, http::header};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::problem::payload_too_large;
use crate::error::ApiError;

/// Past the limit, up to this many more bytes are read and dropped before answering 413:
/// closing a connection with unread data resets it, and a client still sending its body
/// would see the reset instead of the problem.
const DRAIN_BYTES: u64 = 1024 * 1024;

/// Routes whose bodies may be larger than `MAX_BODY_BYTES`, and the least they accept: a
/// batch of 1,000 check-in scans always fits, whatever the configured limit.
const AT_LEAST: &[(&str, usize)] = &[("/api/v1/events/{id}/check-ins", 256 * 1024)];

/// The body limit of a request: `default`, or more on the routes of [`AT_LEAST`].
fn limit_for(req: &Request, default: usize) -> usize {
    let template = super::route_template(req);
    AT_LEAST
        .iter()
        .find(|(route, _)| *route == template)
        .map_or(default, |(_, least)| default.max(*least))
}

/// Buffers the body up to the route's limit; larger bodies get 413 before any handler runs.
pub async fn limit_body<E: Endpoint>(
    ep: Arc<E>,
    mut req: Request,
    default_max: usize,
) -> poem::Result<Response> {
    let max = limit_for(&req, default_max);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut reader = req.take_body().into_async_read();
    if let Some(len) = declared.filter(|len| *len > max as u64) {
        if len - max as u64 <= DRAIN_BYTES {
            drain(reader, len).await;
        }
        return Ok(payload_too_large().into_response());
    }
    let capacity = declared.map_or(0, |len| len as usize);
    let mut body = Vec::with_capacity(capacity);
    match (&mut reader)
        .take(max as u64 + 1)
        .read_to_end(&mut body)
        .await
    {
        Ok(read) if read > max => {
            drain(reader, DRAIN_BYTES).await;
            return Ok(payload_too_large().into_response());
        }
        Ok(_) => req.set_body(body),
        Err(e) => {
            return Ok(
                ApiError::bad_request(format!("the request body could not be read: {e}"))
                    .into_response(),
            );
        }
    }
    ep.call(req).await.map(IntoResponse::into_response)
}

/// Reads and drops up to `bytes` more of a body, for at most a second.
async fn drain(reader: impl AsyncRead + Unpin, bytes: u64) {
    let mut rest = reader.take(bytes);
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        tokio::io::copy(&mut rest, &mut tokio::io::sink()),
    )
    .await;
}
