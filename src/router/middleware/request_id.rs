//! The request id: accepted from the client or generated, echoed in `X-Request-Id`, and
//! available to problem bodies and logs for the whole request.

use std::sync::Arc;

use poem::{
    Endpoint, IntoResponse, Request, Response,
    http::{HeaderValue, header::HeaderName},
};

use crate::telemetry::REQUEST_ID;

/// Request id header, accepted from the client or generated.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The id of a request, as a request extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Assigns the request its id and echoes it on the response.
pub async fn request_id<E: Endpoint>(ep: Arc<E>, mut req: Request) -> poem::Result<Response> {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_acceptable_request_id(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let header = HeaderValue::from_str(&id).ok();
    let mut response = REQUEST_ID.scope(id, ep.call(req)).await?.into_response();
    if let Some(value) = header {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(response)
}

/// Client-sent ids are echoed into headers and logs: keep them short and printable.
fn is_acceptable_request_id(v: &str) -> bool {
    (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic())
}
