//! Storage. `sled_store` is the embedded backend.

mod sled_store;

pub use sled_store::*;
