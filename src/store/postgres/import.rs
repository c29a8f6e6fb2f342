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

    /// `COPY`s the rows into the table's temporary twin (emptied at commit), then upserts
    /// them from there in one statement.
    async fn copy_and_upsert<'a>(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        rows: impl Iterator<Item = [&'a (dyn ToSql + Sync); N]>,
    ) -> Result<(), StoreError> {
        let what = "importing accounts";
        let sink = tx
            .copy_in(&format!("COPY import_{} FROM STDIN BINARY", self.table))
            .await
            .map_err(unavailable(what))?;
        let writer = BinaryCopyInWriter::new(sink, &self.types);
        pin_mut!(writer);
        for row in rows {
            writer.as_mut().write(&row).await.map_err(unavailable(what))?;
        }
        writer.finish().await.map_err(unavailable(what))?;
        tx.execute(&self.upsert_from_temp(), &[])
            .await
            .map_err(unavailable(what))?;
        Ok(())
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
        });
    ACCOUNTS.copy_and_upsert(&tx, accounts).await?;

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
        });
    PROFILES.copy_and_upsert(&tx, profiles).await?;
    tx.commit().await.map_err(unavailable(what))?;
    Ok(merged.summary)
}
