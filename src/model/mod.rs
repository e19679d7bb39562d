//! Request and response types of the HTTP API. Doc comments here become the OpenAPI spec.

pub mod access;
pub mod attendee;
pub mod change;
pub mod common;
pub mod event;
pub mod import;
pub mod report;
pub mod user;
pub mod webhook;

pub use access::*;
pub use attendee::*;
pub use change::*;
pub use common::*;
pub use event::*;
pub use import::*;
pub use report::*;
pub use user::*;
pub use webhook::*;
