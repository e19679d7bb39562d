//! Cross-origin resource sharing: poem's `Cors` for the configured origins, with the headers
//! a browser client of this API needs, `Vary: Origin` on every answer, and requests from
//! other origins served as if CORS were off.

use std::{collections::HashSet, sync::Arc};

use poem::{
    Endpoint, IntoResponse, Middleware, Request, Response,
    http::{HeaderValue, Method, header},
    middleware::{Cors, CorsEndpoint as PoemCors},
};

/// Request headers a cross-origin client may send.
pub const ALLOWED_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "if-match",
    "if-none-match",
    "idempotency-key",
    "last-event-id",
    "x-request-id",
];

/// Response headers a cross-origin client may read.
pub const EXPOSED_HEADERS: &[&str] = &[
    "etag",
    "location",
    "x-request-id",
    "retry-after",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "idempotent-replayed",
];

/// Methods a cross-origin client may use.
const ALLOWED_METHODS: [Method; 4] = [Method::GET, Method::POST, Method::PATCH, Method::DELETE];

/// CORS for a list of origins (already validated by `Config::validate`).
pub struct CorsPolicy {
    origins: Vec<String>,
}

impl CorsPolicy {
    /// Allows exactly these origins.
    pub fn new(origins: &[String]) -> Self {
        Self {
            origins: origins.to_vec(),
        }
    }

    fn cors(&self) -> Cors {
        Cors::new()
            .allow_origins(self.origins.iter().map(String::as_str))
            .allow_methods(ALLOWED_METHODS)
            .allow_headers(ALLOWED_HEADERS.iter().copied())
            .expose_headers(EXPOSED_HEADERS.iter().copied())
            .max_age(600)
    }
}

impl<E: Endpoint + 'static> Middleware<E> for CorsPolicy {
    type Output = CorsEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        let plain = Arc::new(ep);
        CorsEndpoint {
            with_cors: self.cors().transform(plain.clone()),
            plain,
            allowed: self
                .origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect(),
        }
    }
}

/// The endpoint `CorsPolicy` makes.
pub struct CorsEndpoint<E: Endpoint> {
    with_cors: PoemCors<Arc<E>>,
    plain: Arc<E>,
    allowed: HashSet<HeaderValue>,
}

impl<E: Endpoint> Endpoint for CorsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let foreign = req
            .headers()
            .get(header::ORIGIN)
            .is_some_and(|origin| !self.allowed.contains(origin));
        // A request from another origin (including a same-origin POST from the docs page,
        // which browsers send with `Origin`) is served without CORS headers: the browser, not
        // the server, then keeps a foreign page from reading the answer. Only a preflight
        // from such an origin is refused, as a problem.
        let result = if foreign && req.method() != Method::OPTIONS {
            self.plain.call(req).await.map(IntoResponse::into_response)
        } else {
            self.with_cors.call(req).await
        };
        let mut response = result?;
        // Whether the answer carries CORS headers depends on `Origin`: caches must know.
        response
            .headers_mut()
            .append(header::VARY, HeaderValue::from_static("Origin"));
        Ok(response)
    }
}
