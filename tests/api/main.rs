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
mod logs;
mod openapi;
mod patch;
mod permissions;
mod reliability;
mod sessions;
mod users;
mod webhooks;
