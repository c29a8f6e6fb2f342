//! The read side as queries: point reads, the EBPP lookup, the journal feed, stored events and
//! the lists operators read. Every feed reads committed rows only, and with
//! `synchronous_commit` on a committed row is a durable one: a poller never sees an entry that
//! later changes or vanishes.

use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use serde_json::Value;
use tokio_postgres::types::ToSql;

use super::rows;
use super::{error_text, PgError};
use crate::domain::account::{Account, Profile};
use crate::domain::AccountNumber;
use crate::ledger::{JournalEntry, Record, RecordKind};
use crate::store::{EventFilter, LookupCriteria, LookupMatch, MinuteCount, RecordCursor, StoreError, StoredEvent};

/// A driver error on the read side: the database is unreachable or refused (503, retry).
pub fn unavailable(what: &str) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
    move |e| StoreError::Unavailable(format!("PostgreSQL: {what}: {}", error_text(&e)))
}

pub fn pg_unavailable(e: PgError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

async fn query(
    conn: &Object,
    what: &str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, StoreError> {
    let statement = conn.prepare_cached(sql).await.map_err(unavailable(what))?;
    conn.query(&statement, params).await.map_err(unavailable(what))
}

pub async fn account(conn: &Object, number: &str) -> Result<Option<Account>, StoreError> {
    let sql = format!(
        "SELECT {} FROM accounts WHERE account_number = $1",
        rows::ACCOUNT_COLUMNS
    );
    query(conn, "reading an account", &sql, &[&number])
        .await?
        .first()
        .map(rows::account_from_row)
        .transpose()
}

pub async fn accounts(conn: &Object, numbers: &[AccountNumber]) -> Result<Vec<Account>, StoreError> {
    let sql = format!(
        "SELECT {} FROM accounts WHERE account_number = ANY($1::text[])",
        rows::ACCOUNT_COLUMNS
    );
    query(conn, "reading accounts", &sql, &[&numbers])
        .await?
        .iter()
        .map(rows::account_from_row)
        .collect()
}

pub async fn profile(conn: &Object, reference: &str) -> Result<Option<Profile>, StoreError> {
    let sql = format!(
        "SELECT {} FROM profiles WHERE customer_reference = $1",
        rows::PROFILE_COLUMNS
    );
    query(conn, "reading a profile", &sql, &[&reference])
        .await?
        .first()
        .map(rows::profile_from_row)
        .transpose()
}

pub async fn record(conn: &Object, kind: RecordKind, id: &str) -> Result<Option<Record>, StoreError> {
    let sql = format!(
        "SELECT {} FROM records WHERE kind = $1 AND id = $2",
        rows::RECORD_COLUMNS
    );
    query(conn, "reading a record", &sql, &[&kind.as_str(), &id])
        .await?
        .first()
        .map(rows::record_from_row)
        .transpose()
}

pub async fn has_accounts(conn: &Object) -> Result<bool, StoreError> {
    let rows = query(conn, "counting accounts", "SELECT EXISTS (SELECT 1 FROM accounts)", &[]).await?;
    rows.first()
        .map(|r| r.get::<_, bool>(0))
        .ok_or_else(|| StoreError::Corrupt("EXISTS returned no row".into()))
}

/// Profiles matching every criterion given (by customer reference, at most `max`), with their
/// accounts (only the one asked for, when an account number is a criterion), and how many
/// matched in all.
pub async fn lookup(
    conn: &Object,
    criteria: &LookupCriteria,
    max: usize,
) -> Result<(Vec<LookupMatch>, usize), StoreError> {
    let only_account = match &criteria.account_number {
        Some(number) => match account(conn, number).await? {
            Some(a) => Some(a),
            None => return Ok((Vec::new(), 0)),
        },
        None => None,
    };
    // Only the criteria given become conditions, so each combination gets a plan that uses
    // its index (a generic plan with "$1 IS NULL OR ..." would not).
    let email = criteria.email.as_ref().map(|e| e.to_lowercase());
    let linked: Option<Vec<String>> = only_account.as_ref().map(|a| a.customer_references.clone());
    let given: [(&str, Option<&(dyn ToSql + Sync)>); 5] = [
        (
            "customer_reference = $$",
            criteria.customer_reference.as_ref().map(|r| r as &(dyn ToSql + Sync)),
        ),
        (
            "email IS NOT NULL AND lower(email) = $$",
            email.as_ref().map(|e| e as &(dyn ToSql + Sync)),
        ),
        (
            "ssn_sha256 IS NOT NULL AND ssn_sha256 = $$",
            criteria.ssn_sha256.as_ref().map(|d| d as &(dyn ToSql + Sync)),
        ),
        (
            "lookup_reference IS NOT NULL AND lookup_reference = $$",
            criteria.lookup_reference.as_ref().map(|r| r as &(dyn ToSql + Sync)),
        ),
        (
            "customer_reference = ANY($$::text[])",
            linked.as_ref().map(|l| l as &(dyn ToSql + Sync)),
        ),
    ];
    let mut conditions = Vec::new();
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
    for (condition, param) in given {
        if let Some(param) = param {
            params.push(param);
            conditions.push(condition.replace("$$", &format!("${}", params.len())));
        }
    }
    let limit = max as i64;
    params.push(&limit);
    let sql = format!(
        "SELECT {}, count(*) OVER () AS total FROM profiles WHERE {} \
         ORDER BY customer_reference COLLATE \"C\" LIMIT ${}",
        rows::PROFILE_COLUMNS,
        if conditions.is_empty() {
            "false".to_string()
        } else {
            conditions.join(" AND ")
        },
        params.len()
    );
    let found = query(conn, "looking up profiles", &sql, &params).await?;
    let total = found
        .first()
        .map(|r| r.try_get::<_, i64>("total"))
        .transpose()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?
        .unwrap_or(0) as usize;
    let profiles: Vec<Profile> = found.iter().map(rows::profile_from_row).collect::<Result<_, _>>()?;
    let mut wanted: Vec<AccountNumber> = match &only_account {
        Some(_) => Vec::new(),
        None => profiles
            .iter()
            .flat_map(|p| p.account_numbers.iter().cloned())
            .collect(),
    };
    wanted.sort_unstable();
    wanted.dedup();
    let loaded = if wanted.is_empty() {
        Vec::new()
    } else {
        accounts(conn, &wanted).await?
    };
    let matches = profiles
        .into_iter()
        .map(|profile| {
            let accounts = match &only_account {
                Some(a) => vec![a.clone()],
                None => profile
                    .account_numbers
                    .iter()
                    .filter_map(|n| loaded.iter().find(|a| &a.account_number == n).cloned())
                    .collect(),
            };
            LookupMatch { profile, accounts }
        })
        .collect();
    Ok((matches, total))
}

pub async fn journal_after(conn: &Object, after: u64, limit: usize) -> Result<Vec<JournalEntry>, StoreError> {
    let sql = format!(
        "SELECT {} FROM journal WHERE seq > $1 ORDER BY seq LIMIT $2",
        rows::JOURNAL_COLUMNS
    );
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    query(conn, "reading the journal", &sql, &[&after, &(limit as i64)])
        .await?
        .iter()
        .map(rows::journal_from_row)
        .collect()
}

pub async fn account_journal(conn: &Object, number: &str, limit: usize) -> Result<Vec<JournalEntry>, StoreError> {
    let sql = format!(
        "SELECT {} FROM journal WHERE account_number = $1 ORDER BY seq DESC LIMIT $2",
        rows::JOURNAL_COLUMNS
    );
    query(conn, "reading an account's journal", &sql, &[&number, &(limit as i64)])
        .await?
        .iter()
        .map(rows::journal_from_row)
        .collect()
}

/// The journal entries one record made, in seq order. Every committed entry is durable here.
pub async fn record_journal(conn: &Object, kind: RecordKind, id: &str) -> Result<Vec<JournalEntry>, StoreError> {
    let sql = format!(
        "SELECT {} FROM journal WHERE kind = $1 AND record_id = $2 ORDER BY seq",
        rows::JOURNAL_COLUMNS
    );
    query(conn, "reading a record's journal", &sql, &[&kind.as_str(), &id])
        .await?
        .iter()
        .map(rows::journal_from_row)
        .collect()
}

/// Records in receive order (time, kind, id) from `since` and after `cursor`.
pub async fn records_received(
    conn: &Object,
    since: Option<DateTime<Utc>>,
    cursor: Option<RecordCursor>,
    limit: usize,
) -> Result<Vec<Record>, StoreError> {
    let since = since.unwrap_or_else(time_floor);
    let (at, kind, id) = match &cursor {
        Some(c) => (
            DateTime::from_timestamp_nanos(c.received_at_nanos),
            c.kind.as_str(),
            c.id.as_str(),
        ),
        None => (time_floor(), "", ""),
    };
    let sql = format!(
        "SELECT {} FROM records WHERE received_at >= $1 AND (received_at, kind, id) > ($2, $3, $4) \
         ORDER BY received_at, kind, id LIMIT $5",
        rows::RECORD_COLUMNS
    );
    query(
        conn,
        "reading records",
        &sql,
        &[&since, &at, &kind, &id, &(limit as i64)],
    )
    .await?
    .iter()
    .map(rows::record_from_row)
    .collect()
}

/// Before any record: 1970 (PostgreSQL's timestamps do not reach chrono's minimum).
fn time_floor() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

pub async fn events(conn: &Object, filter: &EventFilter) -> Result<Vec<StoredEvent>, StoreError> {
    let before = filter.before.map(|b| i64::try_from(b).unwrap_or(i64::MAX));
    let mut conditions = Vec::new();
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
    if let Some(i) = &filter.invoice_id {
        params.push(i);
        conditions.push(format!("invoice_id = ${}", params.len()));
    }
    if let Some(s) = &filter.status {
        params.push(s);
        conditions.push(format!("status = ${}", params.len()));
    }
    if let Some(b) = &before {
        params.push(b);
        conditions.push(format!("seq < ${}", params.len()));
    }
    let limit = filter.limit as i64;
    params.push(&limit);
    let sql = format!(
        "SELECT {} FROM events {} ORDER BY seq DESC LIMIT ${}",
        rows::EVENT_COLUMNS,
        if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        },
        params.len()
    );
    query(conn, "reading events", &sql, &params)
        .await?
        .iter()
        .map(rows::event_from_row)
        .collect()
}

pub async fn event(conn: &Object, source: &str, event_id: i64) -> Result<Option<StoredEvent>, StoreError> {
    let sql = format!(
        "SELECT {} FROM events WHERE source = $1 AND event_id = $2",
        rows::EVENT_COLUMNS
    );
    query(conn, "reading an event", &sql, &[&source, &event_id])
        .await?
        .first()
        .map(rows::event_from_row)
        .transpose()
}

pub async fn quarantined(conn: &Object, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
    let sql = format!(
        "SELECT {} FROM events WHERE status = 'quarantined' ORDER BY seq DESC LIMIT $1",
        rows::EVENT_COLUMNS
    );
    query(conn, "reading quarantine", &sql, &[&(limit as i64)])
        .await?
        .iter()
        .map(rows::event_from_row)
        .collect()
}

pub async fn unmatched(conn: &Object) -> Result<Vec<Value>, StoreError> {
    Ok(query(
        conn,
        "reading unmatched payments",
        "SELECT item FROM unmatched ORDER BY received_at DESC, key DESC",
        &[],
    )
    .await?
    .iter()
    .map(|r| r.get::<_, Value>(0))
    .collect())
}

pub async fn recent_rejections(conn: &Object, limit: usize) -> Result<Vec<Value>, StoreError> {
    Ok(query(
        conn,
        "reading the request log",
        "SELECT entry FROM rejections ORDER BY id DESC LIMIT $1",
        &[&(limit as i64)],
    )
    .await?
    .iter()
    .map(|r| r.get::<_, Value>(0))
    .collect())
}

/// Appends to the request log and drops what falls beyond the newest `kept`. Nothing about
/// money depends on it, so its commit does not wait for the WAL flush.
pub async fn log_rejection(conn: &Object, entry: &Value, kept: usize) -> Result<(), StoreError> {
    let statement = conn
        .prepare_cached(
            "WITH ins AS (INSERT INTO rejections (entry) VALUES ($1) RETURNING id) \
             DELETE FROM rejections WHERE id <= (SELECT id FROM ins) - $2",
        )
        .await
        .map_err(unavailable("logging a rejection"))?;
    let kept = kept as i64;
    let params: [&(dyn ToSql + Sync); 2] = [entry, &kept];
    let (begun, logged, committed) = tokio::join!(
        conn.batch_execute("BEGIN; SET LOCAL synchronous_commit = off"),
        conn.execute(&statement, &params),
        conn.batch_execute("COMMIT"),
    );
    begun.map_err(unavailable("logging a rejection"))?;
    logged.map_err(unavailable("logging a rejection"))?;
    committed.map_err(unavailable("logging a rejection"))?;
    Ok(())
}

/// How many records of each channel were received in each of `minutes` whole minutes from
/// `first_minute` (minutes since the epoch): the per-minute rows of `record_counts` (see
/// `counts`), a few per minute whatever the number of records.
pub async fn received_per_minute(
    conn: &Object,
    first_minute: i64,
    minutes: usize,
) -> Result<Vec<MinuteCount>, StoreError> {
    let until = first_minute.saturating_add(minutes as i64);
    let rows = query(
        conn,
        "counting records per minute",
        "SELECT slot, kind, sum(n)::bigint FROM record_counts \
         WHERE level = 1 AND slot >= $1 AND slot < $2 GROUP BY 1, 2",
        &[&first_minute, &until],
    )
    .await?;
    let mut counts = vec![MinuteCount::default(); minutes];
    for row in rows {
        let minute: i64 = row.try_get(0).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let kind: String = row.try_get(1).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let n = u64::try_from(
            row.try_get::<_, i64>(2)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        )
        .unwrap_or(0);
        let Some(slot) = usize::try_from(minute - first_minute)
            .ok()
            .and_then(|i| counts.get_mut(i))
        else {
            continue;
        };
        // By kind, as sled counts: the channel a record's kind belongs to.
        match RecordKind::parse(&kind) {
            Some(RecordKind::Payment | RecordKind::Refund) => slot.orbipay += n,
            Some(RecordKind::EmpayrePayment | RecordKind::EmpayreRefund) => slot.empayre += n,
            None => return Err(StoreError::Corrupt(format!("a record's kind is {kind:?}"))),
        }
    }
    Ok(counts)
}

pub async fn meta(conn: &Object, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(
        query(conn, "reading meta", "SELECT value FROM meta WHERE key = $1", &[&key])
            .await?
            .first()
            .map(|r| r.get::<_, Vec<u8>>(0)),
    )
}

pub async fn put_meta(conn: &Object, key: &str, value: &[u8]) -> Result<(), StoreError> {
    query(
        conn,
        "writing meta",
        "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        &[&key, &value],
    )
    .await
    .map(|_| ())
}
