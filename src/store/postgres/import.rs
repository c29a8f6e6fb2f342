//! Accounts import (`accounts import`, `PUT /admin/accounts`, the start-up seed) into
//! PostgreSQL: chunks of entries in account-number order, each one transaction that locks the
//! stored accounts and profiles it touches (`FOR UPDATE`, sorted, like the batch writer, so
//! the two never deadlock), merges with `import_merge`, and writes through `COPY` into a
//! temporary table and one upsert from it.
//!
//! Like the sled backend, a chunk commits on its own: a posting waits for one chunk's locks,
//! never for a whole million-account import. A file with any bad entry was refused before any
//! chunk runs; an import cut short by a crash is completed by running it again.

use std::collections::HashMap;

use deadpool_postgres::Object;
use futures_util::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use super::reads::unavailable;
use super::rows;
use crate::domain::account::{Account, AccountEntry, Profile};
use crate::store::import_merge::{merge, profiles_to_load};
use crate::store::{ImportSummary, StoreError};

/// Entries per transaction.
const CHUNK: usize = 5_000;

const TEMP_TABLES: &str = "CREATE TEMP TABLE IF NOT EXISTS import_accounts (LIKE accounts INCLUDING DEFAULTS) \
       ON COMMIT DELETE ROWS; \
     CREATE TEMP TABLE IF NOT EXISTS import_profiles (LIKE profiles INCLUDING DEFAULTS) ON COMMIT DELETE ROWS";

const ACCOUNT_TYPES: [Type; 20] = [
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::NUMERIC,
    Type::NUMERIC,
    Type::NUMERIC,
    Type::NUMERIC,
    Type::NUMERIC,
    Type::TEXT,
    Type::TEXT,
    Type::NUMERIC,
    Type::TEXT,
    Type::NUMERIC,
    Type::NUMERIC,
    Type::JSONB,
    Type::TEXT_ARRAY,
];

const PROFILE_TYPES: [Type; 11] = [
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::JSONB,
    Type::TEXT_ARRAY,
];

fn upsert_from_temp(table: &str, key: &str, columns: &str) -> String {
    let updates: Vec<String> = columns
        .split(", ")
        .filter(|c| *c != key)
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect();
    format!(
        "INSERT INTO {table} ({columns}) SELECT {columns} FROM import_{table} \
         ON CONFLICT ({key}) DO UPDATE SET {}",
        updates.join(", ")
    )
}

pub async fn import_accounts(conn: &mut Object, mut entries: Vec<AccountEntry>) -> Result<ImportSummary, StoreError> {
    entries.sort_by(|a, b| a.account.account_number.cmp(&b.account.account_number));
    conn.batch_execute(TEMP_TABLES)
        .await
        .map_err(unavailable("preparing an import"))?;
    let mut summary = ImportSummary::default();
    for chunk in entries.chunks(CHUNK) {
        let done = import_chunk(conn, chunk).await?;
        summary.accounts_created += done.accounts_created;
        summary.accounts_updated += done.accounts_updated;
        summary.profiles_created += done.profiles_created;
        summary.profiles_updated += done.profiles_updated;
    }
    Ok(summary)
}

async fn import_chunk(conn: &mut Object, chunk: &[AccountEntry]) -> Result<ImportSummary, StoreError> {
    let what = "importing accounts";
    let tx = conn.transaction().await.map_err(unavailable(what))?;
    let numbers: Vec<&str> = chunk.iter().map(|e| e.account.account_number.as_str()).collect();
    let stored: HashMap<String, Account> = tx
        .query(
            &format!(
                "SELECT {} FROM accounts WHERE account_number = ANY($1::text[]) ORDER BY account_number FOR UPDATE",
                rows::ACCOUNT_COLUMNS
            ),
            &[&numbers],
        )
        .await
        .map_err(unavailable(what))?
        .iter()
        .map(|r| rows::account_from_row(r).map(|a| (a.account_number.to_string(), a)))
        .collect::<Result<_, _>>()?;
    let refs = profiles_to_load(chunk, &stored);
    let stored_profiles: HashMap<String, Profile> = tx
        .query(
            &format!(
                "SELECT {} FROM profiles WHERE customer_reference = ANY($1::text[]) \
                 ORDER BY customer_reference FOR UPDATE",
                rows::PROFILE_COLUMNS
            ),
            &[&refs],
        )
        .await
        .map_err(unavailable(what))?
        .iter()
        .map(|r| rows::profile_from_row(r).map(|p| (p.customer_reference.clone(), p)))
        .collect::<Result<_, _>>()?;
    let merged = merge(chunk, &stored, &stored_profiles);

    let sink = tx
        .copy_in("COPY import_accounts FROM STDIN BINARY")
        .await
        .map_err(unavailable(what))?;
    let writer = BinaryCopyInWriter::new(sink, &ACCOUNT_TYPES);
    pin_mut!(writer);
    for a in &merged.accounts {
        let address = a.address.clone().map(serde_json::Value::Object);
        let row: [&(dyn ToSql + Sync); 20] = [
            &a.account_number,
            &a.customer_account_reference,
            &a.account_holder_name,
            &a.nickname,
            &a.status.as_str(),
            &a.currency,
            &a.warning,
            &a.opening_balance,
            &a.posted_delta,
            &a.current_statement_balance,
            &a.minimum_payment_due,
            &a.past_amount_due,
            &a.payment_due_date,
            &a.statement_date,
            &a.payoff_amount,
            &a.payoff_expiry_date,
            &a.min_payment_amount,
            &a.max_payment_amount,
            &address,
            &a.customer_references,
        ];
        writer.as_mut().write(&row).await.map_err(unavailable(what))?;
    }
    writer.finish().await.map_err(unavailable(what))?;
    tx.execute(
        &upsert_from_temp("accounts", "account_number", rows::ACCOUNT_COLUMNS),
        &[],
    )
    .await
    .map_err(unavailable(what))?;

    let sink = tx
        .copy_in("COPY import_profiles FROM STDIN BINARY")
        .await
        .map_err(unavailable(what))?;
    let writer = BinaryCopyInWriter::new(sink, &PROFILE_TYPES);
    pin_mut!(writer);
    for (_, p) in &merged.profiles {
        let address = p.address.clone().map(serde_json::Value::Object);
        let row: [&(dyn ToSql + Sync); 11] = [
            &p.customer_reference,
            &p.lookup_reference,
            &p.first_name,
            &p.last_name,
            &p.email,
            &p.ssn_sha256,
            &p.home_phone,
            &p.status.as_str(),
            &p.warning,
            &address,
            &p.account_numbers,
        ];
        writer.as_mut().write(&row).await.map_err(unavailable(what))?;
    }
    writer.finish().await.map_err(unavailable(what))?;
    tx.execute(
        &upsert_from_temp("profiles", "customer_reference", rows::PROFILE_COLUMNS),
        &[],
    )
    .await
    .map_err(unavailable(what))?;
    tx.commit().await.map_err(unavailable(what))?;
    Ok(merged.summary)
}
