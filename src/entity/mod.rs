//! SeaORM entities: the shape of the tables, nothing more.

pub mod user;
