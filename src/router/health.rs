//! Unversioned operational probes.

use poem_openapi::{ApiResponse, Enum, Object, OpenApi, payload::Json};

use super::common::ApiTags;
use crate::state::AppState;

/// Overall status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
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
    Ready(Json<Readiness>),
    /// Not ready: the database did not answer within a second, or the process is shutting down.
    #[oai(status = 503)]
    Unavailable(Json<Readiness>),
}

/// Health probes.
pub struct HealthApi {
    /// Services.
    pub state: AppState,
}

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Liveness: 200 while the process serves.
    #[oai(path = "/health/live", method = "get", operation_id = "live")]
    async fn live(&self) -> Json<Liveness> {
        Json(Liveness { status: Status::Ok })
    }

    /// Readiness: 200 when a database round trip succeeds within 1 s, else 503.
    #[oai(path = "/health/ready", method = "get", operation_id = "ready")]
    async fn ready(&self) -> ReadinessResponse {
        self.readiness().await
    }

    /// Same as `/health/ready`.
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self) -> ReadinessResponse {
        self.readiness().await
    }
}

impl HealthApi {
    async fn readiness(&self) -> ReadinessResponse {
        let latency = self.state.health.database_latency().await;
        if self.state.health.is_draining() {
            return ReadinessResponse::Unavailable(Json(Readiness {
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
            Some(latency) => ReadinessResponse::Ready(Json(Readiness {
                status: Status::Ok,
                database: DatabaseStatus::Ok,
                latency_ms: Some(latency.as_millis() as u64),
            })),
            None => ReadinessResponse::Unavailable(Json(Readiness {
                status: Status::Unavailable,
                database: DatabaseStatus::Unreachable,
                latency_ms: None,
            })),
        }
    }
}
