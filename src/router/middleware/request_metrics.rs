//! Request counts, latencies and requests in flight, labelled by route template.

use std::{sync::Arc, time::Instant};

use metrics::{counter, histogram};
use poem::{Endpoint, IntoResponse, Request, Response, http::Method};

use super::routes::matched;
use crate::metric::{HTTP_DURATION, HTTP_REQUESTS, InFlight};

/// Counts the request under its route pattern (`/api/v1/events/:id`, never the raw path:
/// ids would make every series unique), its method and its status, and records the time to
/// the response head. Streamed bodies (exports, event streams) are not included in it.
pub async fn track_metrics<E: Endpoint>(ep: Arc<E>, req: Request) -> poem::Result<Response> {
    let route = matched(&req).map_or_else(
        || super::routes::UNMATCHED.to_owned(),
        |r| route_label(&r.template),
    );
    let method = method_label(req.method());
    let in_flight = InFlight::start();
    let started = Instant::now();
    let result = ep.call(req).await.map(IntoResponse::into_response);
    let elapsed = started.elapsed().as_secs_f64();
    drop(in_flight);
    let status = match &result {
        Ok(response) => response.status().as_u16(),
        Err(err) => err.status().as_u16(),
    };
    let status = status.to_string();
    counter!(HTTP_REQUESTS, "method" => method, "route" => route.clone(), "status" => status.clone())
        .increment(1);
    histogram!(HTTP_DURATION, "method" => method, "route" => route, "status" => status)
        .record(elapsed);
    result
}

/// Methods outside the standard set share one label, so a client cannot mint series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The route template in poem's pattern syntax (`/api/v1/events/:id`): braces inside label
/// values are valid Prometheus text, but some parsers of it stop at the first `}`.
fn route_label(template: &str) -> String {
    template.replace('{', ":").replace('}', "")
}

#[cfg(test)]
mod tests {
    use super::route_label;

    #[test]
    fn route_labels_use_poem_patterns() {
        assert_eq!(
            route_label("/api/v1/events/{id}/attendees/{attendee_id}"),
            "/api/v1/events/:id/attendees/:attendee_id"
        );
        assert_eq!(route_label("unmatched"), "unmatched");
    }
}
