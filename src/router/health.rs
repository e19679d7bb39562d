//! Unversioned operational probes.

use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::{
    common::{Answer, ApiTags, E413},
    payload::JsonBody,
};
use crate::state::AppState;

/// Overall status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase", rename = "HealthStatus")]
pub enum Status {
    /// Serving.
    Ok,
    /// Not able to serve.
    Unavailable,
}

/// Database status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum DatabaseStatus {
    /// A round trip succeeded within a second.
    Ok,
    /// No round trip within a second.
    Unreachable,
}

/// Liveness: the process serves.
#[derive(Debug, Clone, Object)]
pub struct Liveness {
    /// Always `ok`.
    pub status: Status,
}

/// Readiness: the process can do useful work.
#[derive(Debug, Clone, Object)]
pub struct Readiness {
    /// `ok` or `unavailable`.
    pub status: Status,
    /// Whether the database answered.
    pub database: DatabaseStatus,
    /// Database round-trip time in milliseconds (only when it answered).
    #[oai(skip_serializing_if_is_none)]
    pub latency_ms: Option<u64>,
}

/// Readiness answer.
#[derive(ApiResponse)]
pub enum ReadinessResponse {
    /// Ready.
    #[oai(status = 200)]
    Ready(JsonBody<Readiness>),
    /// Not ready: the database did not answer within a second, or the process is shutting down.
    #[oai(status = 503)]
    Unavailable(JsonBody<Readiness>),
}

/// Health probes.
pub struct HealthApi {
    /// Services.
    pub state: AppState,
}

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Liveness probe
    ///
    /// 200 while the process serves; it touches no database. The only client error is the
    /// body limit every request goes through (413).
    #[oai(path = "/health/live", method = "get", operation_id = "live")]
    async fn live(&self) -> Answer<JsonBody<Liveness>, E413> {
        Ok(JsonBody(Liveness { status: Status::Ok }))
    }

    /// Readiness probe
    ///
    /// 200 when a database round trip succeeds within 1 s; 503 otherwise, and while the
    /// process shuts down.
    #[oai(path = "/health/ready", method = "get", operation_id = "ready")]
    async fn ready(&self) -> Answer<ReadinessResponse, E413> {
        Ok(self.readiness().await)
    }

    /// Health check
    ///
    /// The same answer as `/health/ready`, for tools that probe `/health`.
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self) -> Answer<ReadinessResponse, E413> {
        Ok(self.readiness().await)
    }
}

impl HealthApi {
    async fn readiness(&self) -> ReadinessResponse {
        let latency = self.state.health.database_latency().await;
        if self.state.health.is_draining() {
            return ReadinessResponse::Unavailable(JsonBody(Readiness {
                status: Status::Unavailable,
                database: if latency.is_some() {
                    DatabaseStatus::Ok
                } else {
                    DatabaseStatus::Unreachable
                },
                latency_ms: None,
            }));
        }
        match latency {
            Some(latency) => ReadinessResponse::Ready(JsonBody(Readiness {
                status: Status::Ok,
                database: DatabaseStatus::Ok,
                latency_ms: Some(latency.as_millis() as u64),
            })),
            None => ReadinessResponse::Unavailable(JsonBody(Readiness {
                status: Status::Unavailable,
                database: DatabaseStatus::Unreachable,
                latency_ms: None,
            })),
        }
    }
}
