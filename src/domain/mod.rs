//! Domain types shared by both channels: money and accounts.

pub mod account;
pub mod money;
