//! Cross-cutting HTTP concerns, one small middleware each, composed (outermost first) in
//! `router::with_middleware`.

mod access_log;
mod body_limit;
mod compression;
mod conditional;
mod cors;
mod problem;
mod request_id;
mod request_metrics;
mod routes;
mod security;
mod timeout;

pub use access_log::access_log;
pub use body_limit::limit_body;
pub use compression::{Coding, MIN_COMPRESSED_BYTES, compress, is_compressible, negotiate};
pub use conditional::{conditional_get, matches_if_none_match};
pub use cors::{ALLOWED_HEADERS, CorsPolicy, EXPOSED_HEADERS};
pub use problem::{panic_response, problem_for, problems};
pub use request_id::{REQUEST_ID_HEADER, RequestId, request_id};
pub use request_metrics::track_metrics;
pub use routes::{MatchedRoute, RouteInfo, RouteTable, UNMATCHED, route_template, tag_route};
pub use security::security_headers;
pub use timeout::timeout;
