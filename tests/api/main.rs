//! Integration tests: real HTTP against a real database, on SQLite and PostgreSQL.

#![allow(dead_code)]

mod helpers;

mod auth;
mod concurrency;
mod errors;
mod health;
mod openapi;
mod patch;
mod reliability;
mod users;
