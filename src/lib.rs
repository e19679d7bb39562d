//! event-manager: a REST backend for events, users and attendees.
//!
//! Layers: `router` (HTTP) -> `service` (rules, transactions) -> `repository` (queries) ->
//! `entity` (tables). `model` holds the API's request and response types.

pub mod config;
pub mod db;
pub mod entity;
pub mod error;
pub mod metric;
pub mod model;
pub mod repository;
pub mod router;
pub mod service;
pub mod state;
pub mod telemetry;
pub mod time;
pub mod worker;

pub use router::build as build_app;
pub use state::AppState;
