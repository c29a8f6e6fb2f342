//! biller-inbox: a biller-side receiver for Orbipay EBPP postings and Empayre webhooks.

pub mod admin;
pub mod cli;
pub mod console;
pub mod domain;
pub mod empayre;
pub mod http;
pub mod ledger;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod orbipay;
pub mod secret;
pub mod serve;
pub mod settings;
pub mod shutdown;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
#[cfg(test)]
mod test_data;
pub mod throttle;
pub mod tls;

// The test harness shared with the integration tests (`tests/api/pg.rs`) names this crate as
// they do.
#[cfg(test)]
extern crate self as biller_inbox;
