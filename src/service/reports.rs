//! Attendance statistics and the attendance export: read-only, for whoever may read the
//! event's attendance.

use std::collections::BTreeMap;

use futures_util::{Stream, stream};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::{
    Caller, Error, Result,
    events::visible,
    policy::{self, Action},
};
use crate::{
    entity::{attendee, event},
    model::{
        AttendeeExportRow, AttendeeStatus, ChangeType, EventStats, HourlyActivity, StatusCounts,
        Timestamp,
    },
    repository::{
        self,
        reports::{ExportCursor, HourCount},
    },
};

/// Records an export reads per query: big enough that round trips do not dominate, small
/// enough that a page is a few hundred KiB whatever the event's size.
pub const EXPORT_PAGE: u64 = 1000;

/// Most hours `per_hour` lists (a year): an event whose activity spans more is cut there.
pub const MAX_HOURS: i64 = 366 * 24;

/// Statistics and exports.
#[derive(Clone)]
pub struct ReportService {
    db: DatabaseConnection,
}

impl ReportService {
    /// The service over a pool.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// 404 when the caller may not see the event, 403 when they may see it but not its
    /// attendance.
    async fn readable(&self, caller: &Caller, event_id: Uuid) -> Result<event::Model> {
        let (event, standing) = visible(&self.db, Some(caller), event_id).await?;
        policy::require(
            standing,
            Action::ReadAttendance,
            &event,
            "only the organizer, the event's staff or an administrator may read its attendance",
        )?;
        Ok(event)
    }

    /// An event's attendance statistics: four aggregate queries, whatever its size.
    #[tracing::instrument(skip_all, fields(event_id = %event_id))]
    pub async fn stats(&self, caller: &Caller, event_id: Uuid) -> Result<EventStats> {
        self.readable(caller, event_id).await?;
        let db = &self.db;
        let mut counts = StatusCounts::default();
        for row in repository::reports::count_by_status(db, event_id).await? {
            let n = u64::try_from(row.n).unwrap_or(0);
            match row.status.as_str() {
                "confirmed" => counts.confirmed = n,
                "waitlisted" => counts.waitlisted = n,
                "cancelled" => counts.cancelled = n,
                "checked_in" => counts.checked_in = n,
                _ => {}
            }
            counts.total += n;
        }
        let registrations = repository::reports::registrations_per_hour(db, event_id).await?;
        let check_ins = repository::reports::check_ins_per_hour(db, event_id).await?;
        let cancellations = repository::reports::changes_per_hour(
            db,
            event_id,
            ChangeType::AttendeeCancelled.as_str(),
        )
        .await?;
        let seated = counts.confirmed + counts.checked_in;
        Ok(EventStats {
            event_id,
            check_in_rate: (seated > 0)
                .then(|| counts.checked_in as f64 / seated as f64)
                .into(),
            cancellations: cancellations.iter().map(|h| h.n.max(0) as u64).sum(),
            per_hour: hourly(&registrations, &cancellations, &check_ins),
            counts,
        })
    }

    /// Every attendance record of an event (optionally of one status) by registration time,
    /// a page at a time: the permission is checked now, the pages are read as the stream is
    /// polled, so memory stays flat however many records there are.
    #[tracing::instrument(skip_all, fields(event_id = %event_id))]
    pub async fn export(
        &self,
        caller: &Caller,
        event_id: Uuid,
        status: Option<AttendeeStatus>,
    ) -> Result<impl Stream<Item = Result<Vec<AttendeeExportRow>>> + Send + 'static + use<>> {
        self.readable(caller, event_id).await?;
        let status: Option<attendee::AttendeeStatus> = status.map(Into::into);
        let db = self.db.clone();
        // `None` once a short page showed the end.
        let start: Option<Option<ExportCursor>> = Some(None);
        Ok(stream::try_unfold(start, move |cursor| {
            let db = db.clone();
            async move {
                let Some(after) = cursor else {
                    return Ok(None);
                };
                let rows =
                    repository::reports::export_page(&db, event_id, status, after, EXPORT_PAGE)
                        .await?;
                if rows.is_empty() {
                    return Ok(None);
                }
                let next = if (rows.len() as u64) < EXPORT_PAGE {
                    None
                } else {
                    rows.last().map(|r| Some((r.registered_at, r.id)))
                };
                let page = rows
                    .into_iter()
                    .map(|r| AttendeeExportRow {
                        id: r.id,
                        user_id: r.user_id,
                        email: r.email,
                        full_name: r.full_name,
                        status: r.status.into(),
                        waitlist_position: r.waitlist_position,
                        registered_at: r.registered_at.into(),
                        checked_in_at: r.checked_in_at.map(Into::into),
                    })
                    .collect::<Vec<_>>();
                Ok::<_, Error>(Some((page, next)))
            }
        }))
    }
}

/// The three hourly series merged, from the first registration's hour to the last activity's,
/// empty hours included (at most [`MAX_HOURS`]).
fn hourly(
    registrations: &[HourCount],
    cancellations: &[HourCount],
    check_ins: &[HourCount],
) -> Vec<HourlyActivity> {
    let Some(first) = registrations.iter().map(|h| h.hour).min() else {
        return Vec::new();
    };
    let last = registrations
        .iter()
        .chain(cancellations)
        .chain(check_ins)
        .map(|h| h.hour)
        .max()
        .unwrap_or(first)
        .min(first + MAX_HOURS - 1);
    let mut hours: BTreeMap<i64, [u64; 3]> = (first..=last).map(|h| (h, [0; 3])).collect();
    for (series, counts) in [registrations, cancellations, check_ins]
        .into_iter()
        .enumerate()
    {
        for h in counts {
            if let Some(slot) = hours.get_mut(&h.hour) {
                slot[series] += h.n.max(0) as u64;
            }
        }
    }
    hours
        .into_iter()
        .filter_map(|(hour, [registrations, cancellations, check_ins])| {
            let start = chrono::DateTime::from_timestamp(hour * 3600, 0)?;
            Some(HourlyActivity {
                hour: Timestamp(start),
                registrations,
                cancellations,
                check_ins,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(hour: i64, n: i64) -> HourCount {
        HourCount { hour, n }
    }

    #[test]
    fn hours_run_from_the_first_registration_to_the_last_activity_without_gaps() {
        let series = hourly(&[h(10, 2), h(12, 1)], &[h(13, 1)], &[h(11, 1)]);
        let hours: Vec<i64> = series.iter().map(|a| a.hour.0.timestamp() / 3600).collect();
        assert_eq!(hours, vec![10, 11, 12, 13]);
        assert_eq!(series[0].registrations, 2);
        assert_eq!(series[1].check_ins, 1);
        assert_eq!(series[2].registrations, 1);
        assert_eq!(series[3].cancellations, 1);
    }

    #[test]
    fn no_registration_means_no_hours() {
        assert!(hourly(&[], &[h(1, 1)], &[]).is_empty());
    }

    #[test]
    fn a_span_longer_than_a_year_is_cut_at_a_year() {
        let series = hourly(&[h(0, 1)], &[h(MAX_HOURS * 3, 1)], &[]);
        assert_eq!(series.len() as i64, MAX_HOURS);
    }
}
