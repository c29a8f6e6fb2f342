//! Test harness, by what it helps with:
//! - `app`: a server in this process on port 0 with a temp store (`spawn_app`), and its client;
//! - `remote`: a client for any running server (in-process or the real binary), every channel;
//! - `process`: the real binary as a child process, and its config files;
//! - `bodies`: request bodies, signed events, and reading answers;
//! - `ledger`: the balances the demo accounts must show (`LedgerModel`) and journal checks;
//! - `repo`: files of the repository, credentials, byte searches.

// Shared by every test module; not every module uses every helper.
#![allow(dead_code)]

mod app;
mod bodies;
mod ledger;
mod load;
mod openapi;
mod process;
mod remote;
mod repo;

pub use app::*;
pub use bodies::*;
pub use ledger::*;
pub use load::*;
pub use openapi::*;
pub use process::*;
pub use remote::*;
pub use repo::*;
