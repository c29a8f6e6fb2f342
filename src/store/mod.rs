//! Storage. `sled_store` is the embedded backend; `postgres` the one several replicas share.

pub mod postgres;
mod sled_store;

pub use sled_store::*;
