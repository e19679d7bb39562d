//! HTTP layer: poem-openapi operations that authenticate, call one service function and map
//! its result. No business rule lives here.

pub mod auth;
pub mod common;
pub mod document;
pub mod events;
pub mod health;
pub mod middleware;
pub mod payload;
pub mod users;

use poem::{
    Endpoint, EndpointExt, Response, Route,
    endpoint::make_sync,
    http::Method,
    middleware::{CatchPanic, Cors},
    web::Html,
};
use poem_openapi::{ContactObject, LicenseObject, OpenApiService, ServerObject};

use crate::{config::Config, state::AppState};

/// The OpenAPI service with every operation.
pub fn api_service(
    state: &AppState,
) -> OpenApiService<(health::HealthApi, users::UsersApi, events::EventsApi), ()> {
    OpenApiService::new(
        (
            health::HealthApi {
                state: state.clone(),
            },
            users::UsersApi {
                state: state.clone(),
            },
            events::EventsApi {
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
    let allowed = std::sync::Arc::new(middleware::AllowedMethods::from_spec(&api.spec()));
    let routes = Route::new()
        .at("/openapi.json", spec)
        .nest("/docs", docs)
        .nest("/", api)
        .data(state);
    with_middleware(routes, &config, allowed)
}

/// Wraps routes in the middleware every request goes through: request id, timeout, problem
/// mapping, panic recovery, CORS and the body limit (outermost first).
pub fn with_middleware<E: Endpoint + 'static>(
    routes: E,
    config: &Config,
    allowed: std::sync::Arc<middleware::AllowedMethods>,
) -> impl Endpoint + use<E> {
    let max_body = config.max_body_bytes as usize;
    let origins = config.cors_allowed_origins.clone();
    let timeout = std::time::Duration::from_secs(config.request_timeout_seconds);
    let routes = routes.around(move |ep, req| middleware::limit_body(ep, req, max_body));
    let routes = if origins.is_empty() {
        routes.boxed()
    } else {
        routes
            .with(
                Cors::new()
                    .allow_origins(origins)
                    .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
                    .allow_headers(["authorization", "content-type", "if-match", "x-request-id"])
                    .expose_headers(["etag", "location", "x-request-id", "retry-after"])
                    .max_age(600),
            )
            .boxed()
    };
    routes
        .with(CatchPanic::new().with_handler(middleware::panic_response))
        .around(move |ep, req| middleware::request_context(ep, req, timeout, allowed.clone()))
}
