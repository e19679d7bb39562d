//! Attendance statistics, and the CSV form of an event's attendee list.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use poem::{Body, IntoResponse, Response, http::header};
use poem_openapi::{
    ApiResponse, OpenApi,
    param::Path,
    payload::Payload,
    registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry},
    types::Type,
};
use uuid::Uuid;

use super::{
    auth::BearerAuth,
    common::{Answer, ApiTags, E401, E403, E404, E500, E503},
    payload::JsonBody,
};
use crate::{
    model::{AttendeeExportRow, AttendeePage, EventStats},
    service,
    state::AppState,
};

/// Media type of the attendee export.
pub const TEXT_CSV: &str = "text/csv";

/// The columns of the attendee export, in order.
pub const EXPORT_COLUMNS: [&str; 8] = [
    "id",
    "user_id",
    "email",
    "full_name",
    "status",
    "waitlist_position",
    "registered_at",
    "checked_in_at",
];

/// Attendance statistics.
pub struct ReportsApi {
    /// Services.
    pub state: AppState,
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Attendees")]
impl ReportsApi {
    /// An event's attendance statistics
    ///
    /// Records by status, the check-in rate (checked in / (confirmed + checked in)), the
    /// cancellations, and registrations, cancellations and check-ins per UTC hour from the
    /// first registration to the last activity. For the organizer, the event's staff and
    /// administrators (403 for others who can see the event, 404 for those who cannot).
    #[oai(
        path = "/events/:id/stats",
        method = "get",
        operation_id = "getEventStats"
    )]
    async fn event_stats(
        &self,
        auth: BearerAuth,
        /// The event's id.
        id: Path<Uuid>,
    ) -> Answer<JsonBody<EventStats>, { E401 | E403 | E404 | E500 | E503 }> {
        Ok(JsonBody(self.state.reports.stats(&auth.0, id.0).await?))
    }
}

/// Whether an `Accept` header prefers CSV to JSON: `text/csv` is named with a q-value above
/// zero and at least that of `application/json` (wildcards choose JSON, the default).
pub fn prefers_csv(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    let (mut csv, mut json) = (0.0_f32, 0.0_f32);
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let range = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .and_then(|(_, v)| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match range.as_str() {
            "text/csv" => csv = csv.max(q),
            "application/json" => json = json.max(q),
            _ => {}
        }
    }
    csv > 0.0 && csv >= json
}

/// An event's attendee list: JSON pages, or every record as CSV.
pub enum AttendeeListing {
    /// A page (`application/json`).
    Json(AttendeePage),
    /// Every record (`text/csv`), streamed.
    Csv(CsvExport),
}

impl IntoResponse for AttendeeListing {
    fn into_response(self) -> Response {
        match self {
            AttendeeListing::Json(page) => JsonBody(page).into_response(),
            AttendeeListing::Csv(export) => export.into_response(),
        }
    }
}

impl ApiResponse for AttendeeListing {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "A page of records (`application/json`, the default), or with \
                              `Accept: text/csv` every record (no pagination) as CSV with a \
                              header row `id,user_id,email,full_name,status,waitlist_position,\
                              registered_at,checked_in_at`; text starting with `=`, `+`, `-` or \
                              `@` gets a leading `'`.",
                status: Some(200),
                status_range: None,
                content: vec![
                    MetaMediaType {
                        content_type: <JsonBody<AttendeePage> as Payload>::CONTENT_TYPE,
                        schema: AttendeePage::schema_ref(),
                    },
                    MetaMediaType {
                        content_type: TEXT_CSV,
                        schema: MetaSchemaRef::Inline(Box::new(MetaSchema::new("string"))),
                    },
                ],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        AttendeePage::register(registry);
    }
}

/// An export's pages, written as CSV into the response body as they are read.
pub struct CsvExport {
    /// The event, for the file name.
    pub event_id: Uuid,
    /// The records, a page at a time.
    pub pages:
        futures_util::stream::BoxStream<'static, Result<Vec<AttendeeExportRow>, service::Error>>,
}

impl CsvExport {
    /// The export of an event from its pages.
    pub fn new(
        event_id: Uuid,
        pages: impl Stream<Item = Result<Vec<AttendeeExportRow>, service::Error>> + Send + 'static,
    ) -> Self {
        Self {
            event_id,
            pages: pages.boxed(),
        }
    }
}

impl IntoResponse for CsvExport {
    fn into_response(self) -> Response {
        let header_row = futures_util::stream::once(async { Ok(csv_chunk(None)) });
        let rows = self.pages.map(|page| match page {
            Ok(rows) => Ok(csv_chunk(Some(&rows))),
            Err(e) => {
                // The status has been sent: all that is left is to cut the body short, so
                // the client sees a broken transfer rather than a complete-looking file.
                tracing::warn!(error = %e, "an attendee export failed midway");
                Err(std::io::Error::other("the export could not be completed"))
            }
        });
        Response::builder()
            .content_type("text/csv; charset=utf-8")
            .header(
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"attendees-{}.csv\"", self.event_id),
            )
            .header(header::CACHE_CONTROL, "no-store")
            .body(Body::from_bytes_stream(header_row.chain(rows)))
    }
}

/// The header row (`None`) or a page of rows as CSV bytes.
fn csv_chunk(rows: Option<&[AttendeeExportRow]>) -> Bytes {
    let mut out = csv::Writer::from_writer(Vec::with_capacity(256 * rows.map_or(1, |r| r.len())));
    let written = match rows {
        None => out.write_record(EXPORT_COLUMNS),
        Some(rows) => rows.iter().try_for_each(|row| {
            out.write_record([
                row.id.to_string(),
                row.user_id.to_string(),
                defuse(&row.email),
                defuse(&row.full_name),
                status_text(row.status).to_owned(),
                row.waitlist_position
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                row.registered_at.to_rfc3339(),
                row.checked_in_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default(),
            ])
        }),
    };
    // Writing into a Vec cannot fail.
    debug_assert!(written.is_ok());
    Bytes::from(out.into_inner().unwrap_or_default())
}

/// Text a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) gets a leading `'`.
pub fn defuse(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    }
}

fn status_text(status: crate::model::AttendeeStatus) -> &'static str {
    use crate::model::AttendeeStatus::*;
    match status {
        Confirmed => "confirmed",
        Waitlisted => "waitlisted",
        Cancelled => "cancelled",
        CheckedIn => "checked_in",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_is_chosen_only_when_asked_for_and_not_ranked_below_json() {
        assert!(!prefers_csv(None));
        assert!(!prefers_csv(Some("*/*")));
        assert!(!prefers_csv(Some("application/json")));
        assert!(prefers_csv(Some("text/csv")));
        assert!(prefers_csv(Some("text/csv, application/json")));
        assert!(prefers_csv(Some("application/json;q=0.5, text/csv")));
        assert!(!prefers_csv(Some("application/json, text/csv;q=0.5")));
        assert!(!prefers_csv(Some("text/csv;q=0")));
    }

    #[test]
    fn formula_like_text_is_defused_and_other_text_is_kept() {
        assert_eq!(defuse("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(defuse("+1"), "'+1");
        assert_eq!(defuse("-2"), "'-2");
        assert_eq!(defuse("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(defuse("Ada = Lovelace"), "Ada = Lovelace");
    }
}
