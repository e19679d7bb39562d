//! `/api/v1/imports`: CSV uploads of events, imported by a worker.

use poem::{FromRequest, Request, RequestBody};
use poem_openapi::{
    ApiResponse, OpenApi, impl_apirequest_for_payload,
    param::Path,
    payload::{ParsePayload, Payload},
    registry::{MetaSchema, MetaSchemaRef},
};
use uuid::Uuid;

use super::{
    auth::BearerAuth,
    common::{Answer, ApiTags, E400, E401, E404, E413, E415, E500, E503, IDEMPOTENT},
    idempotency::{IdempotencyKey, Idempotent, render},
    payload::JsonBody,
};
use crate::{model::ImportJob, service::idempotency::Rendered, state::AppState};

/// Path of the upload, which has its own body limit (`MAX_IMPORT_BYTES`).
pub const IMPORTS_PATH: &str = "/api/v1/imports";

/// Event imports.
pub struct ImportsApi {
    /// Services.
    pub state: AppState,
}

/// A CSV file (`text/csv`), UTF-8.
pub struct CsvUpload(pub Vec<u8>);

impl Payload for CsvUpload {
    const CONTENT_TYPE: &'static str = "text/csv";

    fn check_content_type(content_type: &str) -> bool {
        matches!(content_type.parse::<mime::Mime>(), Ok(m)
            if m.type_() == mime::TEXT && m.subtype() == mime::CSV)
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format("string", "binary")))
    }
}

impl ParsePayload for CsvUpload {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        Ok(CsvUpload(Vec::<u8>::from_request(request, body).await?))
    }
}

impl_apirequest_for_payload!(CsvUpload);

/// A queued job.
#[derive(ApiResponse)]
pub enum ImportAccepted {
    /// Queued; `Location` is the job's URL, to poll until it is `completed` or `failed`.
    #[oai(status = 202)]
    Accepted(JsonBody<ImportJob>, #[oai(header = "Location")] String),
}

impl From<ImportJob> for ImportAccepted {
    fn from(job: ImportJob) -> Self {
        let location = format!("{IMPORTS_PATH}/{}", job.id);
        ImportAccepted::Accepted(JsonBody(job), location)
    }
}

/// The stored answer of an upload: 202 with `Location`.
fn render_accepted(job: &ImportJob) -> Rendered {
    render(ImportAccepted::from(job.clone()))
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Events")]
impl ImportsApi {
    /// Import events from CSV
    ///
    /// Queues a CSV file (`text/csv`, UTF-8, at most `MAX_IMPORT_BYTES`, 10 MiB by default)
    /// whose header row names some of the columns `title, description, location, starts_at,
    /// ends_at, capacity, waitlist_enabled, status, visibility` (`title`, `starts_at` and
    /// `ends_at` are required; an empty cell takes the create default). Each row is checked
    /// with the rules of `POST /api/v1/events`; the caller organizes the events. A file
    /// imports all its rows or none: one invalid row fails the job, and its `errors` name the
    /// row and the field.
    #[oai(path = "/imports", method = "post", operation_id = "createImport")]
    async fn create_import(
        &self,
        auth: BearerAuth,
        /// Makes the request safe to retry: a retry with the same key, method, path and body
        /// gets the first answer again (`Idempotent-Replayed: true`) and queues nothing.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyKey,
        body: CsvUpload,
    ) -> Answer<Idempotent<ImportAccepted>, { E400 | E401 | E413 | E415 | IDEMPOTENT | E500 | E503 }>
    {
        let key = idempotency_key.of(&auth.0, &render_accepted);
        let written = self.state.imports.create(&auth.0, body.0, key).await?;
        Ok(Idempotent::from_written(written))
    }

    /// Get an import job
    ///
    /// Its status and progress; the errors once it `failed`. Visible to its creator and
    /// administrators (404 for others).
    #[oai(path = "/imports/:id", method = "get", operation_id = "getImport")]
    async fn get_import(
        &self,
        auth: BearerAuth,
        /// The job's id.
        id: Path<Uuid>,
    ) -> Answer<JsonBody<ImportJob>, { E401 | E404 | E500 | E503 }> {
        Ok(JsonBody(self.state.imports.get(&auth.0, id.0).await?))
    }
}
