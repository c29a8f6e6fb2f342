//! The Orbipay EBPP channel (`orbipay-mpa.md`): authentication, wire formats, handlers.

pub mod auth;
pub mod enums;
pub mod error;
pub mod handlers;
pub mod responses;
pub mod wire;
