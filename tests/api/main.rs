//! Integration tests: real HTTP against a real database, on SQLite and PostgreSQL.

#![allow(dead_code)]

mod helpers;

mod access;
mod access_matrix;
mod attendees;
mod auth;
mod changes;
mod compression;
mod concurrency;
mod conditional;
mod cors;
mod errors;
mod events;
mod health;
mod idempotency;
mod imports;
mod logs;
mod metrics;
mod openapi;
mod patch;
mod permissions;
mod reliability;
mod reports;
mod sessions;
mod users;
mod webhooks;
