//! HTTP layer: poem-openapi operations that authenticate, call one service function and map
//! its result. No business rule lives here.

pub mod access;
pub mod auth;
pub mod changes;
pub mod client_addr;
pub mod common;
pub mod document;
pub mod events;
pub mod health;
pub mod idempotency;
pub mod imports;
pub mod middleware;
pub mod operations;
pub mod payload;
pub mod reports;
pub mod sessions;
pub mod users;
pub mod webhooks;

use std::sync::Arc;

use poem::{
    Endpoint, EndpointExt, Response, Route, endpoint::make_sync, middleware::CatchPanic, web::Html,
};
use poem_openapi::{ContactObject, LicenseObject, OpenApiService, ServerObject};

use crate::{config::Config, state::AppState};

/// Every group of operations, in the order the document lists them.
pub type Apis = (
    health::HealthApi,
    users::UsersApi,
    sessions::SessionsApi,
    events::EventsApi,
    access::AccessApi,
    changes::ChangesApi,
    webhooks::WebhooksApi,
    reports::ReportsApi,
    imports::ImportsApi,
    operations::OperationsApi,
);

/// The OpenAPI service with every operation.
pub fn api_service(state: &AppState) -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            health::HealthApi {
                state: state.clone(),
            },
            users::UsersApi {
                state: state.clone(),
            },
            sessions::SessionsApi {
                state: state.clone(),
            },
            events::EventsApi {
                state: state.clone(),
            },
            access::AccessApi {
                state: state.clone(),
            },
            changes::ChangesApi {
                state: state.clone(),
            },
            webhooks::WebhooksApi {
                state: state.clone(),
            },
            reports::ReportsApi {
                state: state.clone(),
            },
            imports::ImportsApi {
                state: state.clone(),
            },
            operations::OperationsApi {
                state: state.clone(),
            },
        ),
        "event-manager",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "REST API for events, users and attendees. Errors are RFC 9457 problem documents; \
         PATCH takes RFC 6902 JSON Patch (`application/json-patch+json`).",
    )
    .server(ServerObject::new("/").description("This server"))
    .contact(ContactObject::new().name("event-manager maintainers"))
    .license(LicenseObject::new("MIT").url("https://opensource.org/licenses/MIT"))
}

/// The whole application: routes, spec, docs and middleware.
pub fn build(state: AppState) -> impl Endpoint + use<> {
    let api = api_service(&state);
    let original = api.spec();
    let document = document::finish(&original);
    let docs_html = document::swagger_ui_html(&original, &api.swagger_ui_html(), &document);
    let spec = make_sync(move |_| {
        Response::builder()
            .content_type("application/json")
            .body(document.clone())
    });
    let docs = Route::new().at("/", make_sync(move |_| Html(docs_html.clone())));
    let config = state.config.clone();
    let table = Arc::new(middleware::RouteTable::from_spec(&api.spec()));
    let routes = Route::new()
        .at("/openapi.json", spec)
        .nest("/docs", docs)
        .nest("/", api)
        .data(state);
    with_middleware(routes, &config, table)
}

/// Wraps routes in the middleware every request goes through, outermost first:
///
/// 1. `request_id`: the id every later layer, problem body and log line uses;
/// 2. `tag_route`: the route template (`/api/v1/events/{id}`) for logs and `Allow`;
/// 3. `track_metrics` (unless `METRICS_ENABLED=false`): counts and latency by route template;
/// 4. `access_log`: the request's span and its closing log line;
/// 5. `security_headers`;
/// 6. `problems`: every error from below, CORS's own refusals included, becomes a problem;
/// 7. CORS (configured origins only), which then only adds headers to answers;
/// 8. `compress`, then `conditional_get` (a 304 is never compressed);
/// 9. `timeout`;
/// 10. `problems` again, so that CORS and compression see problem answers, not errors
///     (poem's CORS would turn an error into a plain-text answer);
/// 11. panic recovery and the body limit (`MAX_IMPORT_BYTES` for import uploads), next to
///     the handlers.
pub fn with_middleware<E: Endpoint + 'static>(
    routes: E,
    config: &Config,
    table: Arc<middleware::RouteTable>,
) -> impl Endpoint + use<E> {
    let max_body = config.max_body_bytes as usize;
    let max_import = config.max_import_bytes as usize;
    let timeout = std::time::Duration::from_secs(config.request_timeout_seconds);
    let trusted: Arc<[ipnet::IpNet]> = config.trusted_proxies.iter().copied().collect();
    let inner = routes
        .around(move |ep, req| {
            // Uploads of imports have their own, larger limit.
            let limit = if middleware::route_template(&req) == imports::IMPORTS_PATH {
                max_import
            } else {
                max_body
            };
            middleware::limit_body(ep, req, limit)
        })
        .with(CatchPanic::new().with_handler(middleware::panic_response))
        .around(middleware::problems)
        .around(move |ep, req| middleware::timeout(ep, req, timeout))
        .around(middleware::conditional_get)
        .around(middleware::compress);
    let inner = if config.cors_allowed_origins.is_empty() {
        inner.boxed()
    } else {
        inner
            .with(middleware::CorsPolicy::new(&config.cors_allowed_origins))
            .boxed()
    };
    let outer = inner
        .around(middleware::problems)
        .around(middleware::security_headers)
        .around(move |ep, req| middleware::access_log(ep, req, trusted.clone()));
    // Counted inside the route tag (its label) and outside everything that shapes the answer.
    let outer = if config.metrics_enabled {
        outer.around(middleware::track_metrics).boxed()
    } else {
        outer.boxed()
    };
    outer
        .around(move |ep, req| middleware::tag_route(ep, req, table.clone()))
        .around(middleware::request_id)
}
