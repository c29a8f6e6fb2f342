//! Process metrics, rendered in the Prometheus text format by `GET /metrics`.
//!
//! Counters are plain atomics or small maps behind a mutex held for a few nanoseconds; the
//! series are few and known, so a registry crate would add more than it saves.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::store::{CommitStats, BATCH_BOUNDS, LATENCY_BOUNDS_MICROS};

/// Request latency bucket bounds, in seconds.
const REQUEST_BOUNDS: [f64; 10] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5];

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    postings: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    duplicates: Mutex<BTreeMap<&'static str, u64>>,
    rejections: Mutex<BTreeMap<&'static str, u64>>,
    quarantined: AtomicU64,
    unmatched: AtomicU64,
    /// (source, trigger, status) → runs.
    reconcile_runs: Mutex<BTreeMap<(String, &'static str, &'static str), u64>>,
    /// (source, outcome) → payments and refunds, of runs that were not dry runs.
    reconcile_items: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// source → end of the last window a run finished (Unix seconds).
    reconcile_window_end: Mutex<BTreeMap<String, i64>>,
    latency_buckets: [AtomicU64; REQUEST_BOUNDS.len() + 1],
    latency_micros_sum: AtomicU64,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    if let Ok(mut m) = map.lock() {
        *m.entry(key).or_default() += 1;
    }
}

impl Metrics {
    /// `route` is the matched route pattern (bounded cardinality), never the raw path.
    pub fn request(&self, route: &str, status: u16, elapsed: Duration) {
        if let Ok(mut m) = self.requests.lock() {
            match m.get_mut(&(route.to_string(), status)) {
                Some(n) => *n += 1,
                None => {
                    m.insert((route.to_string(), status), 1);
                }
            }
        }
        let secs = elapsed.as_secs_f64();
        let i = REQUEST_BOUNDS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(REQUEST_BOUNDS.len());
        self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
        self.latency_micros_sum
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn posting_applied(&self, channel: &'static str, kind: &'static str) {
        bump(&self.postings, (channel, kind));
    }

    pub fn duplicate(&self, channel: &'static str) {
        bump(&self.duplicates, channel);
    }

    pub fn quarantined(&self) {
        self.quarantined.fetch_add(1, Ordering::Relaxed);
    }

    pub fn unmatched(&self) {
        self.unmatched.fetch_add(1, Ordering::Relaxed);
    }

    pub fn rejection(&self, cause: &'static str) {
        // The document lists the causes `/admin/rejections` can show; a new one goes there first.
        debug_assert!(
            crate::admin::feeds::REJECTION_CAUSES.contains(&cause),
            "rejection cause {cause} is not in admin::feeds::REJECTION_CAUSES"
        );
        bump(&self.rejections, cause);
    }

    /// Counts a reconciliation run and, unless it was a dry run, what it did.
    pub fn reconciled(&self, report: &crate::empayre::reconcile::Report) {
        use crate::empayre::reconcile::RunStatus;
        let status = match report.status {
            RunStatus::Ok => "ok",
            RunStatus::Failed => "failed",
        };
        bump(
            &self.reconcile_runs,
            (report.source.clone(), report.trigger.as_str(), status),
        );
        if report.dry_run {
            return;
        }
        let c = &report.counts;
        if let Ok(mut m) = self.reconcile_items.lock() {
            for (outcome, n) in [
                ("seen", c.seen),
                ("ignored", c.ignored),
                ("already_applied", c.already_applied),
                ("applied", c.applied),
                ("unmatched", c.unmatched),
                ("failed", c.failed),
            ] {
                *m.entry((report.source.clone(), outcome)).or_default() += n;
            }
        }
        if report.status == RunStatus::Ok {
            if let (Ok(mut m), Ok(end)) = (
                self.reconcile_window_end.lock(),
                chrono::DateTime::parse_from_rfc3339(&report.to),
            ) {
                m.insert(report.source.clone(), end.timestamp());
            }
        }
    }

    /// Postings and events applied since start, by (channel, kind) (the console's overview).
    pub fn postings_applied(&self) -> Vec<(&'static str, &'static str, u64)> {
        self.postings
            .lock()
            .map(|m| m.iter().map(|((c, k), n)| (*c, *k, *n)).collect())
            .unwrap_or_default()
    }

    /// Refused requests since start, by cause (the console's overview).
    pub fn rejections_by_cause(&self) -> Vec<(&'static str, u64)> {
        self.rejections
            .lock()
            .map(|m| m.iter().map(|(c, n)| (*c, *n)).collect())
            .unwrap_or_default()
    }

    /// Duplicates since start, both channels.
    pub fn duplicates_total(&self) -> u64 {
        self.duplicates.lock().map(|m| m.values().sum()).unwrap_or(0)
    }

    pub fn rejections_total(&self) -> u64 {
        self.rejections.lock().map(|m| m.values().sum()).unwrap_or(0)
    }

    pub fn render(&self, flush: &CommitStats, unsafe_commit: bool) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str(
            "# HELP biller_inbox_store_unsafe_commit 1 when the store's commits are not crash-safe and \
             the operator allowed it (store.postgres.allow_unsafe_commit).\n# TYPE biller_inbox_store_unsafe_commit gauge\n",
        );
        let _ = writeln!(out, "biller_inbox_store_unsafe_commit {}", u8::from(unsafe_commit));
        out.push_str("# HELP biller_inbox_requests_total HTTP requests by route and status.\n# TYPE biller_inbox_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((route, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "biller_inbox_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        out.push_str("# HELP biller_inbox_postings_applied_total Postings and events applied to the ledger.\n# TYPE biller_inbox_postings_applied_total counter\n");
        if let Ok(m) = self.postings.lock() {
            for ((channel, kind), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "biller_inbox_postings_applied_total{{channel=\"{channel}\",kind=\"{kind}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP biller_inbox_duplicates_total Duplicate postings and events.\n# TYPE biller_inbox_duplicates_total counter\n");
        if let Ok(m) = self.duplicates.lock() {
            for (channel, n) in m.iter() {
                let _ = writeln!(out, "biller_inbox_duplicates_total{{channel=\"{channel}\"}} {n}");
            }
        }
        out.push_str("# HELP biller_inbox_rejections_total Rejected requests by cause.\n# TYPE biller_inbox_rejections_total counter\n");
        if let Ok(m) = self.rejections.lock() {
            for (cause, n) in m.iter() {
                let _ = writeln!(out, "biller_inbox_rejections_total{{cause=\"{cause}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP biller_inbox_quarantined_total Verified webhook bodies quarantined.\n# TYPE biller_inbox_quarantined_total counter\nbiller_inbox_quarantined_total {}",
            self.quarantined.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP biller_inbox_unmatched_total Empayre payments recorded without an account.\n# TYPE biller_inbox_unmatched_total counter\nbiller_inbox_unmatched_total {}",
            self.unmatched.load(Ordering::Relaxed)
        );
        self.render_reconcile(&mut out);
        let request_counts: Vec<u64> = self.latency_buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        histogram(
            &mut out,
            "biller_inbox_request_duration_seconds",
            "Request latency.",
            &REQUEST_BOUNDS.iter().map(|b| b.to_string()).collect::<Vec<_>>(),
            &request_counts,
            self.latency_micros_sum.load(Ordering::Relaxed) as f64 / 1e6,
        );
        let batch_counts: Vec<u64> = flush.batch_buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        histogram(
            &mut out,
            "biller_inbox_fsync_batch_size",
            "Requests made durable by one fsync (group commit).",
            &BATCH_BOUNDS.iter().map(|b| b.to_string()).collect::<Vec<_>>(),
            &batch_counts,
            flush.flushed_requests.load(Ordering::Relaxed) as f64,
        );
        let flush_counts: Vec<u64> = flush
            .latency_buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        histogram(
            &mut out,
            "biller_inbox_fsync_duration_seconds",
            "Duration of one store flush with fsync.",
            &LATENCY_BOUNDS_MICROS
                .iter()
                .map(|b| (*b as f64 / 1e6).to_string())
                .collect::<Vec<_>>(),
            &flush_counts,
            flush.latency_micros_sum.load(Ordering::Relaxed) as f64 / 1e6,
        );
        let _ = writeln!(
            out,
            "# HELP biller_inbox_fsync_failures_total Store flushes that failed.\n# TYPE biller_inbox_fsync_failures_total counter\nbiller_inbox_fsync_failures_total {}",
            flush.failures.load(Ordering::Relaxed)
        );
        out
    }
}

impl Metrics {
    fn render_reconcile(&self, out: &mut String) {
        out.push_str("# HELP biller_inbox_empayre_reconcile_runs_total Reconciliation runs with the Empayre API by source, trigger (manual, schedule) and status (ok, failed).\n# TYPE biller_inbox_empayre_reconcile_runs_total counter\n");
        if let Ok(m) = self.reconcile_runs.lock() {
            for ((source, trigger, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "biller_inbox_empayre_reconcile_runs_total{{source=\"{}\",trigger=\"{trigger}\",status=\"{status}\"}} {n}",
                    escape(source)
                );
            }
        }
        out.push_str("# HELP biller_inbox_empayre_reconcile_items_total Payments and refunds reconciliation saw, by outcome (seen, ignored, already_applied, applied, unmatched, failed); dry runs excluded.\n# TYPE biller_inbox_empayre_reconcile_items_total counter\n");
        if let Ok(m) = self.reconcile_items.lock() {
            for ((source, outcome), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "biller_inbox_empayre_reconcile_items_total{{source=\"{}\",outcome=\"{outcome}\"}} {n}",
                    escape(source)
                );
            }
        }
        out.push_str("# HELP biller_inbox_empayre_reconcile_window_end_seconds End of the last window a reconciliation finished (Unix time): alert when it falls behind.\n# TYPE biller_inbox_empayre_reconcile_window_end_seconds gauge\n");
        if let Ok(m) = self.reconcile_window_end.lock() {
            for (source, end) in m.iter() {
                let _ = writeln!(
                    out,
                    "biller_inbox_empayre_reconcile_window_end_seconds{{source=\"{}\"}} {end}",
                    escape(source)
                );
            }
        }
    }
}

/// Writes a cumulative histogram from per-bucket counts (the last count is the +Inf overflow).
fn histogram(out: &mut String, name: &str, help: &str, bounds: &[String], counts: &[u64], sum: f64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    let mut cumulative = 0;
    for (bound, count) in bounds.iter().zip(counts) {
        cumulative += count;
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    cumulative += counts.last().copied().unwrap_or(0);
    let _ = writeln!(
        out,
        "{name}_bucket{{le=\"+Inf\"}} {cumulative}\n{name}_sum {sum}\n{name}_count {cumulative}"
    );
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
