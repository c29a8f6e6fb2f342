//! The console's pages. Each takes an `Operator` (a live session), asks the admin API's own
//! functions for its data, and renders it.

pub mod account;
pub mod lists;
pub mod overview;
pub mod reconcile;
pub mod record;
pub mod search;
pub mod unmatched;
