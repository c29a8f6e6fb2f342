//! What `/metrics` shows of a backend's commits: how many requests each durable commit carried
//! (group commit) and how long it took. sled counts one flush with fsync as a commit; a
//! database backend counts one batch transaction.

use std::sync::atomic::{AtomicU64, Ordering};

pub const BATCH_BOUNDS: [u64; 4] = [1, 4, 16, 64];
pub const LATENCY_BOUNDS_MICROS: [u64; 6] = [500, 1_000, 2_000, 5_000, 10_000, 50_000];

/// Counters the metrics endpoint reads.
#[derive(Debug, Default)]
pub struct CommitStats {
    pub flushes: AtomicU64,
    pub flushed_requests: AtomicU64,
    pub failures: AtomicU64,
    /// Batch sizes in buckets 1, 2-4, 5-16, 17-64, 65+.
    pub batch_buckets: [AtomicU64; 5],
    /// Commit latency in buckets ≤0.5ms, ≤1ms, ≤2ms, ≤5ms, ≤10ms, ≤50ms, >50ms.
    pub latency_buckets: [AtomicU64; 7],
    pub latency_micros_sum: AtomicU64,
}

impl CommitStats {
    /// Counts one durable commit that carried `size` requests and took `micros`.
    pub fn record(&self, size: u64, micros: u64, ok: bool) {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.flushed_requests.fetch_add(size, Ordering::Relaxed);
        if !ok {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        let b = BATCH_BOUNDS.iter().position(|&bound| size <= bound).unwrap_or(4);
        self.batch_buckets[b].fetch_add(1, Ordering::Relaxed);
        let l = LATENCY_BOUNDS_MICROS
            .iter()
            .position(|&bound| micros <= bound)
            .unwrap_or(6);
        self.latency_buckets[l].fetch_add(1, Ordering::Relaxed);
        self.latency_micros_sum.fetch_add(micros, Ordering::Relaxed);
    }
}
