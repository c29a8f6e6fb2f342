//! Domain types shared by both channels: money, accounts and statuses.

pub mod account;
pub mod accounts_file;
pub mod money;
pub mod status;
