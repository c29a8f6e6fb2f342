//! Domain types shared by both channels: money, accounts, the names that tie them together
//! (account number, currency) and statuses.

pub mod account;
pub mod accounts_file;
pub mod money;
pub mod names;
pub mod status;

pub use names::{AccountNumber, Currency};
