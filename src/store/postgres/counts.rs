//! The `record_counts` table (migration 0004): records per minute and per hour by kind,
//! status and amount bucket, kept in the same transaction as the records they count.
//!
//! The batch writer adds ONE statement per batch: the batch's changes to the counts, summed
//! per row in the database and applied with `INSERT ... ON CONFLICT DO UPDATE SET n = n + delta`
//! in primary-key order. Every writer of every replica locks the count rows it touches in that
//! same order, so two writers adding to the same minute never deadlock; the statement runs just
//! before the journal counter is bumped, so a writer that waits for another's count row waits
//! where it would have waited for the journal counter anyway. A record whose status changes
//! moves one count from its old status to its new one. The search (`search.rs`) sums these rows.
//!
//! The amount bucket is computed here (`store::amount_bucket`), not by the SQL function
//! `biller_inbox_amount_bucket` in the statement: that function cannot be inlined and cost
//! ~18 µs a call, twice per posting (minute and hour row) — the batch's most expensive
//! statement. The function stays for the backfills (migrations, `store copy`) and must agree
//! with the Rust definition (tested below).

use chrono::{DateTime, Utc};

use crate::ledger::Record;
use crate::store::amount_bucket::amount_bucket;

/// What a record is counted by: when it was received, its kind, status and amount bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Facet {
    at: DateTime<Utc>,
    kind: &'static str,
    channel: &'static str,
    status: String,
    bucket: i16,
}

impl Facet {
    pub fn of(record: &Record) -> Self {
        Self {
            at: record.received_at,
            kind: record.kind.as_str(),
            channel: record.kind.channel().as_str(),
            status: record.status.as_str().to_string(),
            bucket: bucket_of(record.amount),
        }
    }
}

/// A batch's changes to the counts, one entry per record counted (+1) or uncounted (-1); the
/// database sums them per count row.
#[derive(Debug, Default)]
pub struct CountDeltas {
    at: Vec<DateTime<Utc>>,
    kind: Vec<&'static str>,
    channel: Vec<&'static str>,
    status: Vec<String>,
    bucket: Vec<i16>,
    delta: Vec<i64>,
}

impl CountDeltas {
    /// A record stored: counted under `now`, and no longer under `before` (what it was when
    /// the batch loaded it; None for a new record). Nothing when the two are the same.
    pub fn moved(&mut self, before: Option<&Facet>, now: &Facet) {
        if before == Some(now) {
            return;
        }
        if let Some(before) = before {
            self.push(before, -1);
        }
        self.push(now, 1);
    }

    fn push(&mut self, f: &Facet, delta: i64) {
        self.at.push(f.at);
        self.kind.push(f.kind);
        self.channel.push(f.channel);
        self.status.push(f.status.clone());
        self.bucket.push(f.bucket);
        self.delta.push(delta);
    }

    pub fn is_empty(&self) -> bool {
        self.delta.is_empty()
    }

    pub fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 6] {
        [
            &self.at,
            &self.kind,
            &self.channel,
            &self.status,
            &self.bucket,
            &self.delta,
        ]
    }
}

/// The batch's deltas, summed per count row (minute and hour), applied in primary-key order.
/// Rows whose changes cancel out are not touched.
pub const UPSERT_COUNTS: &str = "INSERT INTO record_counts (level, slot, kind, status, bucket, channel, n) \
     SELECT l.level, floor(extract(epoch FROM d.at) / l.seconds)::bigint, d.kind, d.status, \
            d.bucket, min(d.channel), sum(d.delta) \
     FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::smallint[], $6::bigint[]) \
            AS d(at, kind, channel, status, bucket, delta) \
     CROSS JOIN (VALUES (1::smallint, 60), (2::smallint, 3600)) AS l(level, seconds) \
     GROUP BY 1, 2, 3, 4, 5 HAVING sum(d.delta) <> 0 \
     ORDER BY 1, 2, 3, 4, 5 \
     ON CONFLICT (level, slot, kind, status, bucket) DO UPDATE SET n = record_counts.n + EXCLUDED.n";

/// Counts every record of `records` (used once the rows are in: `store copy`).
pub const COUNT_ALL_RECORDS: &str = "SELECT biller_inbox_count_records()";

/// The `bucket` column's value of an amount (buckets end at `amount_bucket::LAST`, 3602).
pub fn bucket_of(amount: rust_decimal::Decimal) -> i16 {
    i16::try_from(amount_bucket(amount)).unwrap_or(i16::MAX)
}

/// Slot sizes of the count levels, in microseconds (the database's time resolution).
pub const MINUTE_MICROS: i64 = 60_000_000;
pub const HOUR_MICROS: i64 = 3_600_000_000;
