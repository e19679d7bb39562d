//! Queries on `event_staff`, and the caller's relation to an event.

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Statement,
    sea_query::OnConflict,
};
use uuid::Uuid;

use super::Result;
use crate::{
    entity::event_staff::{self, Entity as EventStaff, StaffRole},
    time::UtcDateTime,
};

/// What a signed-in user is to an event besides organizer or administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Relation {
    /// Their staff role, if they have one.
    pub staff: Option<StaffRole>,
    /// Whether they hold an active (not cancelled) registration.
    pub registered: bool,
}

/// The user's staff role and registration on the event, in one round trip.
pub async fn relation(
    db: &impl ConnectionTrait,
    event_id: Uuid,
    user_id: Uuid,
) -> Result<Relation> {
    let backend = db.get_database_backend();
    let sql = "SELECT (SELECT role FROM event_staff WHERE event_id = $1 AND user_id = $2) AS role, \
               EXISTS (SELECT 1 FROM attendees WHERE event_id = $1 AND user_id = $2 \
               AND status <> 'cancelled') AS registered";
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [event_id.into(), user_id.into()],
        ))
        .await?;
    let Some(row) = row else {
        return Ok(Relation::default());
    };
    let role: Option<String> = row.try_get("", "role")?;
    Ok(Relation {
        staff: match role.as_deref() {
            Some("co_organizer") => Some(StaffRole::CoOrganizer),
            Some("checker") => Some(StaffRole::Checker),
            _ => None,
        },
        registered: row.try_get::<bool>("", "registered")?,
    })
}

/// The event's staff, by the time they were added.
pub async fn list(db: &impl ConnectionTrait, event_id: Uuid) -> Result<Vec<event_staff::Model>> {
    Ok(EventStaff::find()
        .filter(event_staff::Column::EventId.eq(event_id))
        .order_by_asc(event_staff::Column::AddedAt)
        .order_by_asc(event_staff::Column::UserId)
        .all(db)
        .await?)
}

/// One staff member of the event.
pub async fn find(
    db: &impl ConnectionTrait,
    event_id: Uuid,
    user_id: Uuid,
) -> Result<Option<event_staff::Model>> {
    Ok(EventStaff::find_by_id((event_id, user_id)).one(db).await?)
}

/// Adds a staff member or changes their role (keeping `added_at`).
pub async fn upsert(
    db: &impl ConnectionTrait,
    event_id: Uuid,
    user_id: Uuid,
    role: StaffRole,
    now: UtcDateTime,
) -> Result<event_staff::Model> {
    let model = event_staff::ActiveModel {
        event_id: sea_orm::Set(event_id),
        user_id: sea_orm::Set(user_id),
        role: sea_orm::Set(role),
        added_at: sea_orm::Set(now),
    };
    Ok(EventStaff::insert(model)
        .on_conflict(
            OnConflict::columns([event_staff::Column::EventId, event_staff::Column::UserId])
                .update_column(event_staff::Column::Role)
                .to_owned(),
        )
        .exec_with_returning(db)
        .await?)
}

/// Removes a staff member; whether a row went.
pub async fn delete(db: &impl ConnectionTrait, event_id: Uuid, user_id: Uuid) -> Result<bool> {
    Ok(EventStaff::delete_by_id((event_id, user_id))
        .exec(db)
        .await?
        .rows_affected
        > 0)
}

/// Every staff role of a user, by event id (the order multi-event writes lock in).
pub async fn roles_of(db: &impl ConnectionTrait, user_id: Uuid) -> Result<Vec<event_staff::Model>> {
    Ok(EventStaff::find()
        .filter(event_staff::Column::UserId.eq(user_id))
        .order_by_asc(event_staff::Column::EventId)
        .all(db)
        .await?)
}
