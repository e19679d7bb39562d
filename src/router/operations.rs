//! `GET /metrics`: Prometheus metrics, unversioned like `/health`.

use poem::{IntoResponse, Request, Response, http::header};
use poem_openapi::{
    ApiResponse, OpenApi,
    payload::Payload,
    registry::{MetaSchema, MetaSchemaRef},
};

use super::common::{Answer, ApiTags, E401, E404, E500};
use crate::state::AppState;

/// Metrics.
pub struct OperationsApi {
    /// Services.
    pub state: AppState,
}

/// The Prometheus text exposition format (version 0.0.4).
pub struct PrometheusText(pub String);

impl Payload for PrometheusText {
    const CONTENT_TYPE: &'static str = "text/plain; version=0.0.4";

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new("string")))
    }
}

impl IntoResponse for PrometheusText {
    fn into_response(self) -> Response {
        Response::builder()
            .content_type(Self::CONTENT_TYPE)
            .header(header::CACHE_CONTROL, "no-store")
            .body(self.0)
    }
}

/// The metrics.
#[derive(ApiResponse)]
pub enum MetricsResponse {
    /// Every metric in the Prometheus text format.
    #[oai(status = 200)]
    Ok(PrometheusText),
}

#[OpenApi(tag = "ApiTags::Health")]
impl OperationsApi {
    /// Prometheus metrics
    ///
    /// Request counts and latency histograms by route template and status, requests in
    /// flight, the database pool (open, idle, limit, waiting), registrations by outcome,
    /// webhook deliveries by outcome, the webhook queue's depth and the age of its oldest
    /// delivery, open event streams and finished imports. When the server has a
    /// `METRICS_TOKEN`, it needs `Authorization: Bearer <METRICS_TOKEN>` (401 otherwise);
    /// 404 when metrics are disabled (`METRICS_ENABLED=false`).
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self, req: &Request) -> Answer<MetricsResponse, { E401 | E404 | E500 }> {
        let bearer = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        let text = self.state.operations.scrape(bearer).await?;
        Ok(MetricsResponse::Ok(PrometheusText(text)))
    }
}
