//! Event imports: a CSV upload becomes a job; a worker validates every row with the rules of
//! `POST /api/v1/events` and creates them all in one transaction, or none.

use std::{sync::Arc, time::Duration};

use sea_orm::{DatabaseConnection, DbBackend, Set};
use tokio::sync::Notify;
use uuid::Uuid;
use validator::Validate;

use super::{
    Begun, Caller, Error, Result, begin_background_write, begin_write,
    changes::{self, Recorded},
    commit_or_rollback, finish_background_write,
    idempotency::{Idempotency, Keyed, Written},
    policy::{self, AccountAction},
    totals::EventCountCache,
};
use crate::{
    entity::{
        event::EventStatus as StoredStatus,
        import::{self, ImportStatus},
    },
    model::{
        ChangeType, EventCreate, EventRead, EventStatus, EventVisibility, ImportJob, InitialStatus,
        MAX_IMPORT_ERRORS, RowProblem, Timestamp, field_errors,
    },
    repository::{self, events::EventFields, imports::Outcome},
    time::now,
};

/// The columns of an import file; `title`, `starts_at` and `ends_at` are required.
pub const COLUMNS: [&str; 9] = [
    "title",
    "description",
    "location",
    "starts_at",
    "ends_at",
    "capacity",
    "waitlist_enabled",
    "status",
    "visibility",
];
const REQUIRED: [&str; 3] = ["title", "starts_at", "ends_at"];

/// A job claimed this many times without finishing (each claim lost to a crash) fails
/// rather than crash its instance again.
pub const MAX_ATTEMPTS: i32 = 3;

/// Rows between two progress writes (and lease renewals) on PostgreSQL.
const PROGRESS_EVERY: usize = 500;

/// Import jobs.
#[derive(Clone)]
pub struct ImportService {
    db: DatabaseConnection,
    event_counts: Arc<EventCountCache>,
    idempotency: Idempotency,
    lease: Duration,
    /// Wakes this process's worker when a job is queued here.
    queued: Arc<Notify>,
}

impl ImportService {
    /// The service; a claimed job is held for `lease` at a time.
    pub fn new(
        db: DatabaseConnection,
        event_counts: Arc<EventCountCache>,
        idempotency: Idempotency,
        lease: Duration,
    ) -> Self {
        Self {
            db,
            event_counts,
            idempotency,
            lease,
            queued: Arc::new(Notify::new()),
        }
    }

    /// Resolves when a job was queued by this process since the last call.
    pub async fn queued(&self) {
        self.queued.notified().await;
    }

    /// Queues an uploaded CSV file (already within `MAX_IMPORT_BYTES`); the caller will
    /// organize the imported events. Nothing is parsed here: the worker does it.
    #[tracing::instrument(skip_all, fields(bytes = content.len()))]
    pub async fn create(
        &self,
        caller: &Caller,
        content: Vec<u8>,
        key: Option<Keyed<'_, ImportJob>>,
    ) -> Result<Written<ImportJob>> {
        let content = String::from_utf8(content).map_err(|_| {
            Error::BadRequest("the file is not UTF-8 text; save the CSV as UTF-8".to_owned())
        })?;
        if content.contains('\0') {
            return Err(Error::BadRequest(
                "the file contains NUL characters; it is not a CSV text file".to_owned(),
            ));
        }
        let now = now();
        let job = import::ActiveModel {
            id: Set(Uuid::now_v7()),
            created_by: Set(caller.id),
            status: Set(ImportStatus::Queued),
            content: Set(content),
            rows_total: Set(0),
            rows_imported: Set(0),
            errors: Set("[]".to_owned()),
            attempts: Set(0),
            lease_until: Set(None),
            created_at: Set(now),
            started_at: Set(None),
            finished_at: Set(None),
        };
        let claim = self.idempotency.claim(key)?;
        let write = match begin_write(&self.db, &claim).await? {
            Begun::Write(write) => write,
            Begun::Replay(answer) => return Ok(answer),
        };
        let result = repository::imports::insert(write.txn(), job)
            .await
            .map(ImportJob::from)
            .map_err(Error::from);
        let written = commit_or_rollback(write, result).await?;
        self.queued.notify_one();
        Ok(written)
    }

    /// A job, for its creator or an administrator (404 for anyone else).
    pub async fn get(&self, caller: &Caller, id: Uuid) -> Result<ImportJob> {
        match repository::imports::find(&self.db, id).await? {
            Some(job) if policy::may_account(caller, AccountAction::Own(job.created_by)) => {
                Ok(job.into())
            }
            _ => Err(Error::NotFound("import")),
        }
    }

    /// Claims the next job and runs it to its end; `false` when there was none.
    pub async fn run_next(&self) -> Result<bool> {
        let now = now();
        let Some(job) =
            repository::imports::claim(&self.db, now, now + self.lease_chrono()).await?
        else {
            return Ok(false);
        };
        tracing::info!(import_id = %job.id, attempt = job.attempts, "import started");
        let outcome = self.run(&job).await?;
        crate::metric::import_finished(outcome);
        tracing::info!(import_id = %job.id, outcome, "import finished");
        Ok(true)
    }

    fn lease_chrono(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::seconds(60))
    }

    /// Runs a claimed job; returns how it ended.
    async fn run(&self, job: &import::Model) -> Result<&'static str> {
        if job.attempts > MAX_ATTEMPTS {
            let error = RowProblem {
                row: 0,
                field: None,
                message: format!(
                    "the import was interrupted {} times; upload the file again",
                    job.attempts - 1
                ),
            };
            self.fail(job, 0, vec![error]).await?;
            return Ok("failed");
        }
        let parsed = parse(&job.content);
        let rows_total = i32::try_from(parsed.rows_total).unwrap_or(i32::MAX);
        if !parsed.errors.is_empty() {
            self.fail(job, rows_total, parsed.errors).await?;
            return Ok("failed");
        }
        if parsed.events.is_empty() {
            let error = RowProblem {
                row: 0,
                field: None,
                message: "the file has no data rows".to_owned(),
            };
            self.fail(job, 0, vec![error]).await?;
            return Ok("failed");
        }
        let organizer = job.created_by;
        let report_progress = self.db.get_database_backend() == DbBackend::Postgres;
        let txn = begin_background_write(&self.db).await?;
        let result = async {
            let now = now();
            for (done, input) in parsed.events.into_iter().enumerate() {
                let fields = EventFields {
                    title: input.title.trim().to_owned(),
                    description: input.description,
                    location: input.location,
                    starts_at: input.starts_at.0,
                    ends_at: input.ends_at.0,
                    capacity: input.capacity.map(|c| c as i32),
                    waitlist_enabled: input.waitlist_enabled,
                    status: input.status.map(Into::into).unwrap_or(StoredStatus::Draft),
                    visibility: input.visibility.into(),
                };
                let created =
                    repository::events::insert(&txn, Uuid::now_v7(), organizer, fields, now)
                        .await?;
                let read = EventRead::from(created.clone());
                let recorded = vec![Recorded::new(ChangeType::EventCreated, &read)];
                changes::record(&txn, &created, Some(organizer), now, recorded).await?;
                // Progress goes over another connection, outside the import's transaction, so
                // it shows while the rows stay invisible until the commit. (SQLite has one
                // writer: the transaction holds it, so progress there is the status alone.)
                if report_progress && (done + 1) % PROGRESS_EVERY == 0 {
                    let held = repository::imports::progress(
                        &self.db,
                        job.id,
                        job.attempts,
                        rows_total,
                        i32::try_from(done + 1).unwrap_or(i32::MAX),
                        crate::time::now() + self.lease_chrono(),
                    )
                    .await?;
                    if !held {
                        return Err(lost(job));
                    }
                }
            }
            let outcome = Outcome {
                status: ImportStatus::Completed,
                rows_total,
                rows_imported: rows_total,
                errors: "[]".to_owned(),
                finished_at: crate::time::now(),
            };
            // In the import's transaction: the rows and the job's completion commit together,
            // and an attempt that lost its claim commits nothing.
            if !repository::imports::finish(&txn, job.id, job.attempts, outcome).await? {
                return Err(lost(job));
            }
            Ok(())
        }
        .await;
        finish_background_write(txn, result).await?;
        self.event_counts.invalidate();
        Ok("completed")
    }

    async fn fail(
        &self,
        job: &import::Model,
        rows_total: i32,
        errors: Vec<RowProblem>,
    ) -> Result<()> {
        let outcome = Outcome {
            status: ImportStatus::Failed,
            rows_total,
            rows_imported: 0,
            errors: serde_json::to_string(&errors).unwrap_or_else(|_| "[]".to_owned()),
            finished_at: now(),
        };
        if !repository::imports::finish(&self.db, job.id, job.attempts, outcome).await? {
            return Err(lost(job));
        }
        Ok(())
    }
}

fn lost(job: &import::Model) -> Error {
    Error::Internal(anyhow::anyhow!(
        "import {} attempt {} lost its claim to another worker",
        job.id,
        job.attempts
    ))
}

/// An import file read and checked.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Data rows seen.
    pub rows_total: usize,
    /// The valid rows, in file order (all of them when `errors` is empty).
    pub events: Vec<EventCreate>,
    /// The first [`MAX_IMPORT_ERRORS`] problems.
    pub errors: Vec<RowProblem>,
}

/// Reads an import file: the header row, then every data row checked with the rules of
/// `POST /api/v1/events`. Every row is read, so `rows_total` is exact even when there are
/// more errors than are kept.
pub fn parse(content: &str) -> Parsed {
    let mut parsed = Parsed::default();
    let content = content.strip_prefix('\u{feff}').unwrap_or(content);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(content.as_bytes());
    let columns = match reader.headers() {
        Ok(header) => match columns_of(header) {
            Ok(columns) => columns,
            Err(errors) => {
                parsed.errors = errors;
                return parsed;
            }
        },
        Err(e) => {
            parsed.errors.push(RowProblem {
                row: 0,
                field: None,
                message: format!("the header row cannot be read: {e}"),
            });
            return parsed;
        }
    };
    let mut record = csv::StringRecord::new();
    loop {
        let row = parsed.rows_total as u64 + 1;
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                parsed.rows_total += 1;
                match row_to_event(&columns, &record) {
                    Ok(event) if parsed.errors.is_empty() => parsed.events.push(event),
                    Ok(_) => {}
                    Err(errors) => {
                        // Valid rows are not kept once the file is known to fail.
                        parsed.events.clear();
                        let room = MAX_IMPORT_ERRORS.saturating_sub(parsed.errors.len());
                        parsed.errors.extend(errors.into_iter().take(room).map(
                            |(field, message)| RowProblem {
                                row,
                                field: Some(field),
                                message,
                            },
                        ));
                    }
                }
            }
            Err(e) => {
                parsed.rows_total += 1;
                parsed.events.clear();
                if parsed.errors.len() < MAX_IMPORT_ERRORS {
                    parsed.errors.push(RowProblem {
                        row,
                        field: None,
                        message: describe_csv_error(&e),
                    });
                }
                if !matches!(e.kind(), csv::ErrorKind::UnequalLengths { .. }) {
                    // The reader cannot resynchronise after a broken record.
                    break;
                }
            }
        }
    }
    parsed
}

/// Where each known column is in the file.
type Columns = [Option<usize>; 9];

fn columns_of(header: &csv::StringRecord) -> Result<Columns, Vec<RowProblem>> {
    let mut columns: Columns = [None; 9];
    let mut errors = Vec::new();
    for (index, name) in header.iter().enumerate() {
        let name = name.trim();
        match COLUMNS.iter().position(|c| c.eq_ignore_ascii_case(name)) {
            Some(known) if columns[known].is_some() => errors.push(RowProblem {
                row: 0,
                field: Some(COLUMNS[known].to_owned()),
                message: "the column appears twice in the header row".to_owned(),
            }),
            Some(known) => columns[known] = Some(index),
            None => errors.push(RowProblem {
                row: 0,
                field: Some(name.to_owned()),
                message: format!("unknown column; the columns are {}", COLUMNS.join(", ")),
            }),
        }
    }
    for required in REQUIRED {
        let index = COLUMNS.iter().position(|c| *c == required).unwrap_or(0);
        if columns[index].is_none() {
            errors.push(RowProblem {
                row: 0,
                field: Some(required.to_owned()),
                message: "the header row lacks this required column".to_owned(),
            });
        }
    }
    if errors.is_empty() {
        Ok(columns)
    } else {
        Err(errors)
    }
}

fn describe_csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("the row has {len} fields; the header row has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "the row is not valid UTF-8".to_owned(),
        _ => format!("the row cannot be read as CSV: {e}"),
    }
}

/// A data row as an event, validated as `POST /api/v1/events` validates; else its errors
/// as `(column, message)`.
fn row_to_event(
    columns: &Columns,
    record: &csv::StringRecord,
) -> Result<EventCreate, Vec<(String, String)>> {
    let cell = |name: &str| -> &str {
        COLUMNS
            .iter()
            .position(|c| *c == name)
            .and_then(|i| columns[i])
            .and_then(|i| record.get(i))
            .unwrap_or("")
    };
    let mut errors: Vec<(String, String)> = Vec::new();
    let mut timestamp = |name: &str| match Timestamp::parse(cell(name).trim()) {
        Ok(t) => Some(t),
        Err(message) => {
            errors.push((name.to_owned(), message));
            None
        }
    };
    let starts_at = timestamp("starts_at");
    let ends_at = timestamp("ends_at");
    let capacity = match cell("capacity").trim() {
        "" => None,
        text => match text.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push((
                    "capacity".to_owned(),
                    format!("`{text}` is not a whole number; leave it empty for unlimited"),
                ));
                None
            }
        },
    };
    let waitlist_enabled = match cell("waitlist_enabled")
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "" | "false" | "0" | "no" => false,
        "true" | "1" | "yes" => true,
        other => {
            errors.push((
                "waitlist_enabled".to_owned(),
                format!("`{other}` is not true or false"),
            ));
            false
        }
    };
    let status = match cell("status").trim().to_ascii_lowercase().as_str() {
        "" => None,
        "draft" => Some(InitialStatus(EventStatus::Draft)),
        "published" => Some(InitialStatus(EventStatus::Published)),
        // Known statuses a new event may not have: the create rules name them.
        "cancelled" => Some(InitialStatus(EventStatus::Cancelled)),
        "completed" => Some(InitialStatus(EventStatus::Completed)),
        other => {
            errors.push((
                "status".to_owned(),
                format!("`{other}` is not draft or published"),
            ));
            None
        }
    };
    let visibility = match cell("visibility").trim().to_ascii_lowercase().as_str() {
        "" | "public" => EventVisibility::Public,
        "private" => EventVisibility::Private,
        other => {
            errors.push((
                "visibility".to_owned(),
                format!("`{other}` is not public or private"),
            ));
            EventVisibility::Public
        }
    };
    let (Some(starts_at), Some(ends_at)) = (starts_at, ends_at) else {
        return Err(errors);
    };
    let event = EventCreate {
        title: cell("title").to_owned(),
        description: cell("description").to_owned(),
        location: cell("location").to_owned(),
        starts_at,
        ends_at,
        capacity,
        waitlist_enabled,
        status,
        visibility,
    };
    if let Err(invalid) = event.validate() {
        errors.extend(
            field_errors(&invalid)
                .into_iter()
                .map(|e| (e.field, e.message)),
        );
    }
    if errors.is_empty() {
        Ok(event)
    } else {
        errors.sort();
        errors.dedup();
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "title,description,location,starts_at,ends_at,capacity,waitlist_enabled,status,visibility\n";

    #[test]
    fn a_valid_file_gives_every_row_as_an_event() {
        let file = format!(
            "{HEADER}Meetup,,Hall,2030-01-01T18:00:00Z,2030-01-01T20:00:00Z,10,true,published,private\n\
             \"Quoted, title\",\"multi\nline\",,2030-01-02T18:00:00Z,2030-01-02T20:00:00Z,,,,\n"
        );
        let parsed = parse(&file);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.rows_total, 2);
        assert_eq!(parsed.events[0].capacity, Some(10));
        assert!(parsed.events[0].waitlist_enabled);
        assert_eq!(parsed.events[0].visibility, EventVisibility::Private);
        assert_eq!(parsed.events[1].title, "Quoted, title");
        assert_eq!(parsed.events[1].description, "multi\nline");
        assert_eq!(parsed.events[1].status, None);
    }

    #[test]
    fn a_bad_row_is_named_with_its_field_and_no_event_is_kept() {
        let file = format!(
            "{HEADER}Ok,,,2030-01-01T18:00:00Z,2030-01-01T20:00:00Z,,,,\n\
             Bad,,,2030-01-01T18:00:00Z,2030-01-01T17:00:00Z,0,maybe,cancelled,\n"
        );
        let parsed = parse(&file);
        assert!(parsed.events.is_empty());
        let fields: Vec<_> = parsed
            .errors
            .iter()
            .map(|e| (e.row, e.field.clone().unwrap_or_default()))
            .collect();
        for field in ["capacity", "ends_at", "status", "waitlist_enabled"] {
            assert!(fields.contains(&(2, field.to_owned())), "{fields:?}");
        }
    }

    #[test]
    fn header_problems_are_row_zero() {
        let parsed = parse("title,starts_at,colour\nx,2030-01-01T18:00:00Z,red\n");
        let fields: Vec<_> = parsed
            .errors
            .iter()
            .map(|e| (e.row, e.field.clone().unwrap_or_default()))
            .collect();
        assert!(fields.contains(&(0, "colour".to_owned())), "{fields:?}");
        assert!(fields.contains(&(0, "ends_at".to_owned())), "{fields:?}");
    }

    #[test]
    fn a_row_with_the_wrong_number_of_fields_is_named_and_reading_goes_on() {
        let file = format!("{HEADER}a,b\nOk,,,2030-01-01T18:00:00Z,2030-01-01T20:00:00Z,,,,\nc\n");
        let parsed = parse(&file);
        assert_eq!(parsed.rows_total, 3);
        let rows: Vec<u64> = parsed.errors.iter().map(|e| e.row).collect();
        assert_eq!(rows, vec![1, 3]);
    }

    #[test]
    fn at_most_a_hundred_errors_are_kept_but_every_row_is_counted() {
        let mut file = HEADER.to_owned();
        for _ in 0..250 {
            file.push_str("x,,,nope,2030-01-01T20:00:00Z,,,,\n");
        }
        let parsed = parse(&file);
        assert_eq!(parsed.rows_total, 250);
        assert_eq!(parsed.errors.len(), MAX_IMPORT_ERRORS);
    }
}
