//! Database migrations, portable across PostgreSQL and SQLite.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_users;
mod m20261122_000002_create_events_and_attendees;
mod m20261122_000003_index_events_by_organizer_and_status;
mod m20261130_000001_create_refresh_tokens;
mod m20261201_000001_create_changes;
mod m20261202_000001_notify_followed_events;
mod m20261202_000002_create_idempotency_keys;
mod m20261202_000003_create_webhooks;
mod m20261203_000001_private_events_staff_invitations;
mod m20261203_000002_create_imports;

/// Applies the migrations in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_users::Migration),
            Box::new(m20261122_000002_create_events_and_attendees::Migration),
            Box::new(m20261122_000003_index_events_by_organizer_and_status::Migration),
            Box::new(m20261130_000001_create_refresh_tokens::Migration),
            Box::new(m20261201_000001_create_changes::Migration),
            Box::new(m20261202_000001_notify_followed_events::Migration),
            Box::new(m20261202_000002_create_idempotency_keys::Migration),
            Box::new(m20261202_000003_create_webhooks::Migration),
            Box::new(m20261203_000001_private_events_staff_invitations::Migration),
            Box::new(m20261203_000002_create_imports::Migration),
        ]
    }
}
