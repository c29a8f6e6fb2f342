//! The Empayre (Vality, ex-RBKmoney) webhook channel (docs/empayre.md): keys, the
//! `Content-Signature` check over the raw body, the event model, the sink and projections, and
//! the client of the Empayre API (registration, reconciliation).

pub mod api;
pub mod event;
pub mod handlers;
pub mod keys;
pub mod reconcile;
pub mod reconcile_job;
pub mod register;
pub mod routes;
pub mod schema;
pub mod signature;
pub mod sink;
pub mod sources;
