//! Faults with PostgreSQL through the real binary. This test binary runs a cluster of its own
//! (it stops and starts it, which would break the other test binary's tests), and its tests run
//! one at a time for the same reason.

// Table-driven tests spell their rows as tuples; naming each row type would hide the table.
#![allow(clippy::type_complexity)]

// The helpers of tests/api, whole: some of them (the TLS macro) serve only that binary.
#[path = "../api/helpers/mod.rs"]
#[allow(unused_macros, unused_imports)]
mod helpers;
#[path = "../api/pg.rs"]
mod pg;
mod proof;
#[path = "../api/test_ca.rs"]
mod test_ca;
mod unreachable;

/// Held by each test for its whole run: they stop and start the one cluster.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A fresh database on this binary's own cluster.
fn own_database() -> pg::TestDatabase {
    pg::OWN_CLUSTER.store(true, std::sync::atomic::Ordering::SeqCst);
    pg::test_database()
}
