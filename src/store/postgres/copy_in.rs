//! The PostgreSQL side of `biller-inbox store copy` (see `store::copy`): a whole store written
//! into an empty database in ONE transaction, with binary `COPY` per batch, and verified inside
//! that transaction before it commits.
//!
//! All-or-nothing rather than resumable: a copy cut short (a crash, a lost connection, a
//! verification that differs) leaves the database exactly as it was, so there is never a half
//! copy to recognise, finish or clean up, and running the command again is the whole recovery.
//! The price is that a copy starts over after a failure; it takes minutes even for a million
//! records, and the source is offline (stopped) anyway while it runs.
//!
//! The tables are locked against writers (`EXCLUSIVE`) for the whole copy, so a replica
//! started on the database meanwhile waits (and its requests time out) instead of writing
//! between the emptiness check and the commit.

use chrono::{DateTime, Utc};
use futures_util::{pin_mut, TryStreamExt};
use rust_decimal::Decimal;
use serde_json::Value;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use super::{connection, error_text, pool, preflight, PgError};
use crate::settings::PostgresSettings;
use crate::store::copy::{compare, Batch, Compared, Tally};
use crate::store::StoreError;

/// What the source hands over: batches, then the tally of everything it read.
pub enum Incoming {
    Batch(Batch),
    End(Tally),
}

/// How a copy that ran to the verification ended.
#[derive(Debug)]
pub struct Outcome {
    /// Every compared figure, source beside target.
    pub compared: Vec<Compared>,
    /// True when every figure matched and the transaction committed; false when it was rolled
    /// back (nothing written).
    pub committed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Pg(#[from] PgError),
    #[error(
        "the target database already holds {0}: store copy fills an empty database only \
         (a server started on it may have imported its seed accounts); copy into a new database"
    )]
    NotEmpty(String),
    #[error(
        "the target database is in use: its tables could not be locked within {0} s (a biller-inbox \
         replica or another copy is writing to it); stop everything that uses it, then copy"
    )]
    Busy(u64),
    #[error("the source stopped before the end of the copy; nothing was committed")]
    SourceStopped,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The tables the copy fills; each must be empty before.
const TABLES: [&str; 11] = [
    "accounts",
    "profiles",
    "records",
    "journal",
    "events",
    "accepted_postings",
    "invoice_snapshots",
    "unmatched",
    "rejections",
    "meta",
    "record_counts",
];

/// How long the copy waits for the table locks before it says the database is in use.
const LOCK_WAIT_SECS: u64 = 10;

fn failed(what: &'static str) -> impl Fn(tokio_postgres::Error) -> CopyError {
    move |e| {
        CopyError::Pg(PgError::Query {
            what: what.into(),
            detail: error_text(&e),
        })
    }
}

/// Connects to the database of `settings`, applies the migrations it lacks, and copies what
/// arrives on `incoming` into it (see the module comment). `progress` is told, after each batch,
/// the kind and how many of that kind are written so far.
pub async fn copy_into(
    settings: &PostgresSettings,
    mut incoming: tokio::sync::mpsc::Receiver<Incoming>,
    progress: &mut dyn FnMut(&'static str, u64),
) -> Result<Outcome, CopyError> {
    let settings = PostgresSettings {
        migrate: true,
        pool_size: 1,
        ..settings.clone()
    };
    let pool = pool(&settings)?;
    preflight(&pool, &settings).await?;
    let mut conn = connection(&pool, &settings.redacted_url()).await?;
    let tx = conn.transaction().await.map_err(failed("starting the copy"))?;
    // COPY of a large store and the final counts take longer than a request's statement.
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '{LOCK_WAIT_SECS}s'; \
         LOCK TABLE {}, journal_head IN EXCLUSIVE MODE",
        TABLES.join(", ")
    ))
    .await
    .map_err(|e| match e.code() {
        Some(code) if *code == tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE => CopyError::Busy(LOCK_WAIT_SECS),
        _ => failed("locking the tables")(e),
    })?;
    refuse_unless_empty(&tx).await?;

    let mut written: std::collections::HashMap<&'static str, u64> = Default::default();
    let source = loop {
        match incoming.recv().await {
            None => return Err(CopyError::SourceStopped),
            Some(Incoming::End(tally)) => break tally,
            Some(Incoming::Batch(batch)) => {
                let label = batch.label();
                let n = batch.len() as u64;
                write_batch(&tx, batch).await?;
                let total = written.entry(label).or_default();
                *total += n;
                progress(label, *total);
            }
        }
    };

    // The search's per-minute counts of what was copied, in one statement.
    tx.batch_execute(super::counts::COUNT_ALL_RECORDS)
        .await
        .map_err(failed("counting the copied records per minute"))?;
    tx.batch_execute(
        "UPDATE journal_head SET last_seq = (SELECT coalesce(max(seq), 0) FROM journal); \
         SELECT setval(pg_get_serial_sequence('events', 'seq'), max(seq)) FROM events HAVING max(seq) IS NOT NULL; \
         SELECT setval('reference_numbers', max(substr(reference, 2)::bigint) + 1, false) FROM records \
           WHERE reference ~ '^[PR][0-9]{12}$' HAVING max(reference) IS NOT NULL",
    )
    .await
    .map_err(failed("moving the journal head and the sequences past the copied rows"))?;

    let target = tally(&tx).await?;
    let compared = compare(&source, &target);
    let committed = compared.iter().all(Compared::matches);
    if committed {
        tx.commit().await.map_err(failed("committing the copy"))?;
    } else {
        tx.rollback().await.map_err(failed("rolling the copy back"))?;
    }
    Ok(Outcome { compared, committed })
}

async fn refuse_unless_empty(tx: &deadpool_postgres::Transaction<'_>) -> Result<(), CopyError> {
    let counts: Vec<String> = TABLES.iter().map(|t| format!("(SELECT count(*) FROM {t})")).collect();
    let row = tx
        .query_one(
            &format!("SELECT {}, (SELECT last_seq FROM journal_head)", counts.join(", ")),
            &[],
        )
        .await
        .map_err(failed("checking that the target is empty"))?;
    let mut held = Vec::new();
    for (i, table) in TABLES.iter().enumerate() {
        let n: i64 = row.get(i);
        if n > 0 {
            held.push(format!("{n} rows in {table}"));
        }
    }
    let head: i64 = row.get(TABLES.len());
    if head > 0 {
        held.push(format!("a journal head at seq {head}"));
    }
    if held.is_empty() {
        Ok(())
    } else {
        Err(CopyError::NotEmpty(held.join(", ")))
    }
}

/// Writes `rows` through one binary `COPY` (`sql` names the table and its columns).
macro_rules! copy_rows {
    ($tx:expr, $what:literal, $sql:expr, $types:expr, $items:expr, |$it:ident| [$($col:expr),* $(,)?]) => {{
        let sink = $tx.copy_in($sql).await.map_err(failed($what))?;
        let writer = BinaryCopyInWriter::new(sink, $types);
        pin_mut!(writer);
        for $it in $items {
            writer
                .as_mut()
                .write(&[$(&$col as &(dyn ToSql + Sync)),*])
                .await
                .map_err(failed($what))?;
        }
        writer.finish().await.map_err(failed($what))?;
    }};
}

/// A time inside a stored JSON value (RFC 3339), or now when it has none.
fn time_in(value: &Value, field: &str) -> DateTime<Utc> {
    value
        .get(field)
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(Utc::now)
}

async fn write_batch(tx: &deadpool_postgres::Transaction<'_>, batch: Batch) -> Result<(), CopyError> {
    use Type as T;
    match batch {
        Batch::Accounts(items) => copy_rows!(
            tx,
            "copying accounts",
            "COPY accounts (account_number, customer_account_reference, account_holder_name, nickname, \
             status, currency, warning, opening_balance, posted_delta, current_statement_balance, \
             minimum_payment_due, past_amount_due, payment_due_date, statement_date, payoff_amount, \
             payoff_expiry_date, min_payment_amount, max_payment_amount, address, customer_references) \
             FROM STDIN BINARY",
            &[
                T::TEXT,
                T::TEXT,
                T::TEXT,
                T::TEXT,
                T::TEXT,
                T::TEXT,
                T::TEXT,
                T::NUMERIC,
                T::NUMERIC,
                T::NUMERIC,
                T::NUMERIC,
                T::NUMERIC,
                T::TEXT,
                T::TEXT,
                T::NUMERIC,
                T::TEXT,
                T::NUMERIC,
                T::NUMERIC,
                T::JSONB,
                T::TEXT_ARRAY,
            ],
            &items,
            |a| [
                a.account_number,
                a.customer_account_reference,
                a.account_holder_name,
                a.nickname,
                a.status.as_str(),
                a.currency,
                a.warning,
                a.opening_balance,
                a.posted_delta,
                a.current_statement_balance,
                a.minimum_payment_due,
                a.past_amount_due,
                a.payment_due_date,
                a.statement_date,
                a.payoff_amount,
                a.payoff_expiry_date,
                a.min_payment_amount,
                a.max_payment_amount,
                a.address.clone().map(Value::Object),
                a.customer_references,
            ]
        ),
        Batch::Profiles(items) => copy_rows!(
            tx,
            "copying profiles",
            "COPY profiles (customer_reference, lookup_reference, first_name, last_name, email, ssn_sha256, \
             home_phone, status, warning, address, account_numbers) FROM STDIN BINARY",
            &[
                T::TEXT,
                T::TEXT,
                T::TEXT,
                T::TEXT,
                T::TEXT,
                T::TEXT,
                T::TEXT,
                T::TEXT,
                T::TEXT,
                T::JSONB,
                T::TEXT_ARRAY,
            ],
            &items,
            |p| [
                p.customer_reference,
                p.lookup_reference,
                p.first_name,
                p.last_name,
                p.email,
                p.ssn_sha256,
                p.home_phone,
                p.status.as_str(),
                p.warning,
                p.address.clone().map(Value::Object),
                p.account_numbers,
            ]
        ),
        Batch::Records(items) => {
            let mut history = Vec::with_capacity(items.len());
            for r in &items {
                history.push(
                    serde_json::to_value(&r.history)
                        .map_err(|e| StoreError::Corrupt(format!("record {} history: {e}", r.id)))?,
                );
            }
            copy_rows!(
                tx,
                "copying records",
                "COPY records (kind, id, channel, status, live, amount, currency, account_number, \
                 confirmation_number, reference, parent_id, refund_ids, counts_against_payment, posted_amount, \
                 payment_method, client_key, received_at, updated_at, history, details) FROM STDIN BINARY",
                &[
                    T::TEXT,
                    T::TEXT,
                    T::TEXT,
                    T::TEXT,
                    T::BOOL,
                    T::NUMERIC,
                    T::TEXT,
                    T::TEXT,
                    T::TEXT,
                    T::TEXT,
                    T::TEXT,
                    T::TEXT_ARRAY,
                    T::BOOL,
                    T::NUMERIC,
                    T::TEXT,
                    T::TEXT,
                    T::TIMESTAMPTZ,
                    T::TIMESTAMPTZ,
                    T::JSONB,
                    T::JSONB,
                ],
                items.iter().zip(&history),
                |rh| [
                    rh.0.kind.as_str(),
                    rh.0.id,
                    rh.0.kind.channel().as_str(),
                    rh.0.status.as_str(),
                    rh.0.is_live(),
                    rh.0.amount,
                    rh.0.currency,
                    rh.0.account_number,
                    rh.0.confirmation_number,
                    rh.0.reference,
                    rh.0.parent_id,
                    rh.0.refund_ids,
                    rh.0.counts_against_payment,
                    rh.0.posted_amount,
                    rh.0.payment_method,
                    rh.0.client_key,
                    rh.0.received_at,
                    rh.0.updated_at,
                    rh.1,
                    Value::Object(rh.0.details.clone()),
                ]
            )
        }
        Batch::Journal(items) => {
            copy_rows!(
            tx,
            "copying the journal",
            "COPY journal (seq, at, channel, kind, record_id, account_number, status, delta, balance_after, origin) \
             FROM STDIN BINARY",
            &[
                T::INT8, T::TIMESTAMPTZ, T::TEXT, T::TEXT, T::TEXT, T::TEXT, T::TEXT, T::NUMERIC, T::NUMERIC,
                T::TEXT,
            ],
            &items,
            |e| [
                i64::try_from(e.seq).map_err(|_| StoreError::Corrupt(format!("journal seq {} is too large", e.seq)))?,
                e.at,
                e.channel.as_str(),
                e.kind.as_str(),
                e.record_id,
                e.account_number,
                e.status,
                e.delta,
                e.balance_after,
                e.origin.map(|o| o.as_str()),
            ]
        )
        }
        Batch::Events(items) => copy_rows!(
            tx,
            "copying the Empayre events",
            "COPY events (seq, source, event_id, event_type, invoice_id, status, reason, key_id, received_at, \
             request_id, body_sha256, body, body_encoding, changes, stale) FROM STDIN BINARY",
            &[
                T::INT8,
                T::TEXT,
                T::INT8,
                T::TEXT,
                T::TEXT,
                T::TEXT,
                T::TEXT,
                T::TEXT,
                T::TIMESTAMPTZ,
                T::TEXT,
                T::TEXT,
                T::TEXT,
                T::TEXT,
                T::JSONB,
                T::TEXT_ARRAY,
            ],
            &items,
            |e| [
                i64::try_from(e.seq).map_err(|_| StoreError::Corrupt(format!("event seq {} is too large", e.seq)))?,
                e.source,
                e.event_id,
                e.event_type,
                e.invoice_id,
                e.status,
                e.reason,
                e.key_id,
                e.received_at,
                e.request_id,
                e.body_sha256,
                e.body,
                e.body_encoding,
                Value::Array(e.changes.clone()),
                e.stale,
            ]
        ),
        Batch::Accepted(items) => copy_rows!(
            tx,
            "copying the accepted posting copies",
            "COPY accepted_postings (received_at, entry) FROM STDIN BINARY",
            &[T::TIMESTAMPTZ, T::JSONB],
            &items,
            |entry| [time_in(entry, "received_at"), entry]
        ),
        Batch::Invoices(items) => copy_rows!(
            tx,
            "copying the invoice snapshots",
            "COPY invoice_snapshots (source, invoice_id, snapshot) FROM STDIN BINARY",
            &[T::TEXT, T::TEXT, T::JSONB],
            &items,
            |i| [i.0, i.1, i.2]
        ),
        Batch::Unmatched(items) => copy_rows!(
            tx,
            "copying the unmatched payments",
            "COPY unmatched (key, received_at, item) FROM STDIN BINARY",
            &[T::TEXT, T::TIMESTAMPTZ, T::JSONB],
            &items,
            |u| [u.0, time_in(&u.1, "received_at"), u.1]
        ),
        Batch::Rejections(items) => copy_rows!(
            tx,
            "copying the request log",
            "COPY rejections (at, entry) FROM STDIN BINARY",
            &[T::TIMESTAMPTZ, T::JSONB],
            &items,
            |entry| [time_in(entry, "at"), entry]
        ),
        Batch::Meta(items) => copy_rows!(
            tx,
            "copying the meta values",
            "COPY meta (key, value) FROM STDIN BINARY",
            &[T::TEXT, T::BYTEA],
            &items,
            |m| [m.0, m.1]
        ),
    }
    Ok(())
}

/// What the target holds now, counted by its own queries (inside the copy's transaction).
async fn tally(tx: &deadpool_postgres::Transaction<'_>) -> Result<Tally, CopyError> {
    let what = "counting what the target holds";
    let row = tx
        .query_one(
            "SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM profiles), \
                    (SELECT count(*) FROM journal), (SELECT coalesce(max(seq), 0) FROM journal), \
                    (SELECT coalesce(sum(delta), 0) FROM journal), (SELECT last_seq FROM journal_head), \
                    (SELECT count(*) FROM accepted_postings), (SELECT count(*) FROM invoice_snapshots), \
                    (SELECT count(*) FROM unmatched), (SELECT count(*) FROM rejections), \
                    (SELECT count(*) FROM meta)",
            &[],
        )
        .await
        .map_err(failed(what))?;
    let count = |i: usize| -> u64 { row.get::<_, i64>(i).max(0) as u64 };
    let mut tally = Tally {
        profiles: count(1),
        journal_entries: count(2),
        journal_last_seq: count(3),
        journal_delta_sum: row.get::<_, Decimal>(4).normalize(),
        journal_head: count(5),
        accepted: count(6),
        invoices: count(7),
        unmatched: count(8),
        rejections: count(9),
        meta: count(10),
        ..Tally::default()
    };
    for r in tx
        .query("SELECT kind, count(*) FROM records GROUP BY kind", &[])
        .await
        .map_err(failed(what))?
    {
        tally.records.insert(r.get(0), r.get::<_, i64>(1) as u64);
    }
    for r in tx
        .query("SELECT status, count(*) FROM events GROUP BY status", &[])
        .await
        .map_err(failed(what))?
    {
        tally.events.insert(r.get(0), r.get::<_, i64>(1) as u64);
    }
    // Every balance, streamed (a million rows need not be in memory at once).
    let rows = tx
        .query_raw(
            "SELECT account_number, currency, opening_balance + posted_delta FROM accounts",
            std::iter::empty::<&(dyn ToSql + Sync)>(),
        )
        .await
        .map_err(failed(what))?;
    pin_mut!(rows);
    while let Some(r) = rows.try_next().await.map_err(failed(what))? {
        let number: &str = r.get(0);
        let currency: &str = r.get(1);
        tally.accounts += 1;
        tally.balances.add(number, currency, r.get::<_, Decimal>(2));
    }
    Ok(tally)
}
