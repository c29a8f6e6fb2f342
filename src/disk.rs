//! Free disk space of the filesystem holding the store, for the readiness check.

use std::path::Path;

/// Bytes available to the service on the filesystem holding `path` (statvfs via `fs2`, which
/// sled already depends on).
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    fs2::available_space(path)
}
