//! The request's log span and the one line that ends every request.

use std::{sync::Arc, time::Instant};

use poem::{Endpoint, IntoResponse, Request, Response};
use tracing::{Instrument, field};

use super::routes::route_template;
use crate::telemetry::{REQUEST_SPAN, current_request_id};

/// Opens the request's span (`request_id`, `method`, `route`, `client`, and `user_id` once
/// authenticated) and logs `status` and `elapsed_ms` when the answer is ready: at `info`, or
/// `warn` for a 5xx. The route is the template (`/api/v1/events/{id}`), never the raw path.
/// The client is the peer, or behind `trusted` proxies the address they forward.
pub async fn access_log<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    trusted: Arc<[ipnet::IpNet]>,
) -> poem::Result<Response> {
    let span = tracing::info_span!(
        "request",
        request_id = field::Empty,
        method = %req.method(),
        route = route_template(&req),
        client = field::Empty,
        user_id = field::Empty,
    );
    if let Some(id) = current_request_id() {
        span.record("request_id", id);
    }
    if let Some(client) = crate::router::client_addr::client_addr_of(&req, &trusted) {
        span.record("client", field::display(client));
    }
    let started = Instant::now();
    let result = REQUEST_SPAN
        .scope(span.clone(), ep.call(req).instrument(span.clone()))
        .await
        .map(IntoResponse::into_response);
    let status = match &result {
        Ok(response) => response.status().as_u16(),
        Err(err) => err.status().as_u16(),
    };
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(status, elapsed_ms, "request failed");
        } else {
            tracing::info!(status, elapsed_ms, "request served");
        }
    });
    result
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use poem::{Endpoint, EndpointExt, Request, Route, endpoint::make_sync, handler, web::Path};
    use tracing_subscriber::prelude::*;

    use super::access_log;
    use crate::{
        router::middleware::routes::{RouteTable, tag_route},
        telemetry::{CapturedLogs, REQUEST_ID, json_layer, record_user},
    };

    const EVENT: &str = "0190a1b2-0000-7000-8000-00000000abcd";

    #[handler]
    fn event(Path(_id): Path<String>) -> &'static str {
        record_user("0190a1b2-0000-7000-8000-000000000001");
        "ok"
    }

    #[tokio::test]
    async fn the_request_line_names_the_route_template_the_caller_and_whole_milliseconds() {
        let logs = CapturedLogs::default();
        let _guard = tracing::subscriber::set_default(
            tracing_subscriber::registry().with(json_layer(logs.clone())),
        );
        let table = Arc::new(RouteTable::from_spec(
            r#"{"paths": {"/api/v1/events/{id}": {"get": {}}}}"#,
        ));
        let app = Route::new()
            .at("/api/v1/events/:id", poem::get(event))
            .at("/nope", make_sync(|_| "never"))
            .around(|ep, req| access_log(ep, req, Arc::from(Vec::new())))
            .around(move |ep, req| tag_route(ep, req, table.clone()));
        let req = Request::builder()
            .uri(format!("/api/v1/events/{EVENT}").parse().unwrap())
            .finish();
        let response = REQUEST_ID
            .scope("req-7".to_owned(), app.call(req))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let lines = logs.json_lines();
        let line = lines
            .iter()
            .find(|l| l["message"] == "request served")
            .unwrap_or_else(|| panic!("a request line: {}", logs.text()));
        assert_eq!(line["span"]["route"], "/api/v1/events/{id}");
        assert_eq!(line["span"]["method"], "GET");
        assert_eq!(line["span"]["request_id"], "req-7");
        assert_eq!(
            line["span"]["user_id"],
            "0190a1b2-0000-7000-8000-000000000001"
        );
        assert_eq!(line["status"], 200);
        assert!(line["elapsed_ms"].is_u64(), "an integer: {line}");
        assert!(!logs.text().contains(EVENT), "no raw id: {}", logs.text());
    }
}
