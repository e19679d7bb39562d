//! Request and response types of the HTTP API. Doc comments here become the OpenAPI spec.

pub mod common;
pub mod user;

pub use common::*;
pub use user::*;
