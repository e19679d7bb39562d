//! SeaORM entities: the shape of the tables, nothing more.

pub mod attendee;
pub mod change;
pub mod event;
pub mod event_staff;
pub mod idempotency_key;
pub mod import;
pub mod invitation;
pub mod refresh_token;
pub mod user;
pub mod webhook;
pub mod webhook_delivery;
