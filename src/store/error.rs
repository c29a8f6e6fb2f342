//! The one error every backend answers with. A duplicate is not an error: it is a decision's
//! answer (`Decision::Confirm`), taken by the backend atomically with the commit.

/// Cloneable, so one failed group commit can answer every request that waited on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The embedded store's directory is held by another process (a server running on it).
    #[error("the store at {path} is in use by another process (is a server running on it?)")]
    Locked { path: String },
    /// Retry later: an I/O error, a full disk, a lost connection, the store reopening.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A concurrent writer got there first and re-running the decision did not settle it within
    /// the backend's retries. Answered like `Unavailable` (retry later), never as a duplicate.
    #[error("store conflict: {0}")]
    Conflict(String),
    /// Stored data cannot be read back or breaks an invariant: an operator must look.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}
