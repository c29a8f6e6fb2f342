//! The Orbipay EBPP channel (docs/orbipay.md): authentication, wire formats, handlers, and the
//! table of its four routes.

pub mod auth;
pub mod endpoint;
pub mod enums;
pub mod error;
pub mod handlers;
pub mod posting;
pub mod request_schema;
pub mod responses;
pub mod routes;
pub mod schema;
pub mod wire;

pub use endpoint::Endpoint;
