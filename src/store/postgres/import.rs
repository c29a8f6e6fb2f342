//! Accounts import (`accounts import`, `PUT /admin/accounts`, the start-up seed) into
//! PostgreSQL: chunks of entries in account-number order, each one transaction that locks the
//! stored accounts and profiles it touches (`FOR UPDATE`, sorted, like the batch writer, so
//! the two never deadlock), merges with `import_merge`, and writes with `COPY`: rows that were
//! not stored go straight into their table, rows that were go into a temporary table and are
//! upserted from it in one statement. (Every row through the temporary table, as before, wrote
//! each new row twice and paid the upsert's speculative insertion for it; on a first import of
//! a million accounts that was about a third of the database's time.) Should another writer
//! store one of the new rows between the lock and the `COPY` (an import through another
//! replica), the `COPY` fails on the primary key and the chunk is written again, every row
//! through the upsert.
//!
//! Like the sled backend, a chunk commits on its own: a posting waits for one chunk's locks,
//! never for a whole million-account import. A file with any bad entry was refused before any
//! chunk runs; an import cut short by a crash is completed by running it again.

use std::collections::HashMap;

use deadpool_postgres::Object;
use futures_util::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{Json, ToSql, Type};

use super::reads::unavailable;
use super::rows;
use crate::domain::account::{Account, AccountEntry, Address, Profile};
use crate::store::import_merge::{merge, profiles_to_load};
use crate::store::{ImportSummary, StoreError};

/// Entries per transaction.
const CHUNK: usize = 5_000;

const TEMP_TABLES: &str = "CREATE TEMP TABLE IF NOT EXISTS import_accounts (LIKE accounts INCLUDING DEFAULTS) \
       ON COMMIT DELETE ROWS; \
     CREATE TEMP TABLE IF NOT EXISTS import_profiles (LIKE profiles INCLUDING DEFAULTS) ON COMMIT DELETE ROWS";

/// A table an import writes: its columns (in `COPY` order) with their types, and its key.
struct CopyTable<const N: usize> {
    table: &'static str,
    key: &'static str,
    columns: &'static str,
    types: [Type; N],
}

const ACCOUNTS: CopyTable<20> = CopyTable {
    table: "accounts",
    key: "account_number",
    columns: rows::ACCOUNT_COLUMNS,
    types: [
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
    ],
};

const PROFILES: CopyTable<11> = CopyTable {
    table: "profiles",
    key: "customer_reference",
    columns: rows::PROFILE_COLUMNS,
    types: [
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
    ],
};

impl<const N: usize> CopyTable<N> {
    /// Inserts the rows, or replaces every column but the key of those already stored.
    fn upsert_from_temp(&self) -> String {
        let (table, key, columns) = (self.table, self.key, self.columns);
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

    /// `COPY`s `rows` into `into` (the table itself, or its temporary twin, emptied at commit).
    async fn copy<'a>(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        into: &str,
        rows: impl Iterator<Item = [&'a (dyn ToSql + Sync); N]>,
    ) -> Result<(), tokio_postgres::Error> {
        let sink = tx
            .copy_in(&format!("COPY {into} ({}) FROM STDIN BINARY", self.columns))
            .await?;
        let writer = BinaryCopyInWriter::new(sink, &self.types);
        pin_mut!(writer);
        for row in rows {
            writer.as_mut().write(&row).await?;
        }
        writer.finish().await?;
        Ok(())
    }

    /// Writes `rows`: those `is_new` marks (not stored when the chunk locked) by `COPY` into the
    /// table when `direct`; the others through the temporary twin and one upsert.
    async fn write(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        rows: Vec<[&(dyn ToSql + Sync); N]>,
        is_new: &[bool],
        direct: bool,
    ) -> Result<(), ChunkFailed> {
        let (new, stored): (Vec<_>, Vec<_>) = rows.into_iter().zip(is_new).partition(|(_, new)| direct && **new);
        if !new.is_empty() {
            self.copy(tx, self.table, new.into_iter().map(|(row, _)| row))
                .await
                .map_err(ChunkFailed::from_direct_copy)?;
        }
        if !stored.is_empty() {
            let temp = format!("import_{}", self.table);
            self.copy(tx, &temp, stored.into_iter().map(|(row, _)| row))
                .await
                .map_err(ChunkFailed::Other)?;
            tx.execute(&self.upsert_from_temp(), &[])
                .await
                .map_err(ChunkFailed::Other)?;
        }
        Ok(())
    }
}

/// Why a chunk did not commit.
enum ChunkFailed {
    /// A row the chunk found absent was stored meanwhile by another writer: write it again.
    Raced,
    Other(tokio_postgres::Error),
}

impl ChunkFailed {
    fn from_direct_copy(e: tokio_postgres::Error) -> Self {
        if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
            ChunkFailed::Raced
        } else {
            ChunkFailed::Other(e)
        }
    }
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

/// An address as a JSON object for its `jsonb` column (NULL when absent), from the map itself.
fn json(address: &Option<Address>) -> Option<Json<&Address>> {
    address.as_ref().map(Json)
}

async fn import_chunk(conn: &mut Object, chunk: &[AccountEntry]) -> Result<ImportSummary, StoreError> {
    let what = "importing accounts";
    match write_chunk(conn, chunk, true).await? {
        Ok(summary) => Ok(summary),
        Err(ChunkFailed::Raced) => match write_chunk(conn, chunk, false).await? {
            Ok(summary) => Ok(summary),
            Err(ChunkFailed::Raced) => Err(StoreError::Conflict("an account was imported twice at once".into())),
            Err(ChunkFailed::Other(e)) => Err(unavailable(what)(e)),
        },
        Err(ChunkFailed::Other(e)) => Err(unavailable(what)(e)),
    }
}

/// One chunk in one transaction (see the module comment); `direct`: new rows by `COPY` into
/// their tables. The inner error is a failed write (the transaction is rolled back).
async fn write_chunk(
    conn: &mut Object,
    chunk: &[AccountEntry],
    direct: bool,
) -> Result<Result<ImportSummary, ChunkFailed>, StoreError> {
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

    // The values a row holds that are not fields as they are: the status's name and the address.
    let account_values: Vec<_> = merged
        .accounts
        .iter()
        .map(|a| (a.status.as_str(), json(&a.address)))
        .collect();
    let accounts = merged
        .accounts
        .iter()
        .zip(&account_values)
        .map(|(a, (status, address))| {
            let row: [&(dyn ToSql + Sync); 20] = [
                &a.account_number,
                &a.customer_account_reference,
                &a.account_holder_name,
                &a.nickname,
                status,
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
                address,
                &a.customer_references,
            ];
            row
        })
        .collect();
    let new_accounts: Vec<bool> = merged
        .accounts
        .iter()
        .map(|a| !stored.contains_key(a.account_number.as_str()))
        .collect();
    if let Err(e) = ACCOUNTS.write(&tx, accounts, &new_accounts, direct).await {
        return Ok(Err(e));
    }

    let profile_values: Vec<_> = merged
        .profiles
        .iter()
        .map(|(_, p)| (p.status.as_str(), json(&p.address)))
        .collect();
    let profiles = merged
        .profiles
        .iter()
        .zip(&profile_values)
        .map(|((_, p), (status, address))| {
            let row: [&(dyn ToSql + Sync); 11] = [
                &p.customer_reference,
                &p.lookup_reference,
                &p.first_name,
                &p.last_name,
                &p.email,
                &p.ssn_sha256,
                &p.home_phone,
                status,
                &p.warning,
                address,
                &p.account_numbers,
            ];
            row
        })
        .collect();
    let new_profiles: Vec<bool> = merged.profiles.iter().map(|(before, _)| before.is_none()).collect();
    if let Err(e) = PROFILES.write(&tx, profiles, &new_profiles, direct).await {
        return Ok(Err(e));
    }
    tx.commit().await.map_err(unavailable(what))?;
    Ok(Ok(merged.summary))
}
