//! Versioned schema migrations, embedded in the binary.
//!
//! Several replicas may start at once against one database: whoever holds the advisory lock
//! migrates, the others wait for it and then find nothing left to do. Each migration runs in
//! its own transaction together with its row in `biller_inbox_schema`, so a crash leaves the
//! database at a whole version. A database at a version this binary does not know (a newer
//! binary migrated it) is refused, naming both versions: an old binary must not write into a
//! schema it does not understand.

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use super::PgError;

/// One versioned SQL file.
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration this binary knows, in order; versions are 1, 2, 3, ... without gaps.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "batch writer",
        sql: include_str!("migrations/0002_batch_writer.sql"),
    },
    Migration {
        version: 3,
        name: "journal by record",
        sql: include_str!("migrations/0003_journal_record.sql"),
    },
    Migration {
        version: 4,
        name: "record counts",
        sql: include_str!("migrations/0004_record_counts.sql"),
    },
    Migration {
        version: 5,
        name: "round amount buckets",
        sql: include_str!("migrations/0005_round_amount_buckets.sql"),
    },
    Migration {
        version: 6,
        name: "search indexes",
        sql: include_str!("migrations/0006_search_indexes.sql"),
    },
    Migration {
        version: 7,
        name: "search trigrams",
        sql: include_str!("migrations/0007_search_trigrams.sql"),
    },
];

/// The schema version this binary expects.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The advisory lock key migrations run under ("biller-inbox migrate" in ASCII, folded).
pub const MIGRATION_LOCK: i64 = 0x6269_6c6c_6d69_6772;

/// What `migrate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The version the database was at before (0: empty).
    pub from: i32,
    /// The version it is at now.
    pub to: i32,
    /// The versions this call applied.
    pub applied: Vec<i32>,
}

const SCHEMA_TABLE: &str = "CREATE TABLE IF NOT EXISTS biller_inbox_schema (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    sha256     text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)";

/// Brings the schema up to `latest_version()`, under the migration lock.
pub async fn migrate(client: &mut Client, lock_wait_ms: u64) -> Result<MigrationReport, PgError> {
    // The lock is per session; waiting is bounded so a replica stuck holding it cannot stall
    // every other start-up for ever.
    client
        .batch_execute(&format!("SET lock_timeout = {lock_wait_ms}"))
        .await
        .map_err(PgError::query("setting the lock timeout"))?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(PgError::query("waiting for the migration lock"))?;
    let result = migrate_locked(client).await;
    // The lock also goes when the session ends; unlock explicitly so a pooled connection does
    // not keep it.
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(PgError::query("releasing the migration lock"));
    let _ = client.batch_execute("RESET lock_timeout").await;
    let report = result?;
    unlocked?;
    Ok(report)
}

async fn migrate_locked(client: &mut Client) -> Result<MigrationReport, PgError> {
    client
        .batch_execute(SCHEMA_TABLE)
        .await
        .map_err(PgError::query("creating biller_inbox_schema"))?;
    let applied = applied_versions(client).await?;
    let from = verify(&applied)?;
    let mut report = MigrationReport {
        from,
        to: from,
        applied: Vec::new(),
    };
    for migration in MIGRATIONS.iter().filter(|m| m.version > from) {
        let tx = client
            .transaction()
            .await
            .map_err(PgError::query("starting a migration"))?;
        // A migration rewrites or indexes whole tables (a recount, an index build: seconds at
        // a million records), far past the statement timeout the service's queries run under.
        tx.batch_execute("SET LOCAL statement_timeout = 0")
            .await
            .map_err(PgError::query("lifting the statement timeout for a migration"))?;
        tx.batch_execute(migration.sql)
            .await
            .map_err(PgError::query(format!("applying migration {}", migration.version)))?;
        tx.execute(
            "INSERT INTO biller_inbox_schema (version, name, sha256) VALUES ($1, $2, $3)",
            &[&migration.version, &migration.name, &checksum(migration.sql)],
        )
        .await
        .map_err(PgError::query("recording a migration"))?;
        tx.commit()
            .await
            .map_err(PgError::query(format!("committing migration {}", migration.version)))?;
        report.applied.push(migration.version);
        report.to = migration.version;
    }
    Ok(report)
}

/// Without migrating: the database must be exactly at this binary's version.
pub async fn check(client: &Client) -> Result<i32, PgError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('biller_inbox_schema') IS NOT NULL", &[])
        .await
        .map_err(PgError::query("reading the schema version"))?
        .get(0);
    let applied = if exists {
        applied_versions(client).await?
    } else {
        Vec::new()
    };
    let at = verify(&applied)?;
    if at < latest_version() {
        return Err(PgError::SchemaBehind {
            database: at,
            binary: latest_version(),
        });
    }
    Ok(at)
}

/// The applied (version, sha256) rows, in version order.
async fn applied_versions(client: &Client) -> Result<Vec<(i32, String)>, PgError> {
    Ok(client
        .query("SELECT version, sha256 FROM biller_inbox_schema ORDER BY version", &[])
        .await
        .map_err(PgError::query("reading the schema version"))?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect())
}

/// Checks what the database has applied against what this binary knows; returns the version
/// the database is at.
pub fn verify(applied: &[(i32, String)]) -> Result<i32, PgError> {
    let at = applied.last().map_or(0, |(v, _)| *v);
    if at > latest_version() {
        return Err(PgError::SchemaNewer {
            database: at,
            binary: latest_version(),
        });
    }
    for (i, (version, sha)) in applied.iter().enumerate() {
        let known = MIGRATIONS
            .get(i)
            .filter(|m| m.version == *version)
            .ok_or(PgError::SchemaAltered { version: *version })?;
        if checksum(known.sql) != *sha {
            return Err(PgError::SchemaAltered { version: *version });
        }
    }
    Ok(at)
}

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied_through(n: usize) -> Vec<(i32, String)> {
        MIGRATIONS[..n].iter().map(|m| (m.version, checksum(m.sql))).collect()
    }

    #[test]
    fn versions_are_dense_from_one_and_files_are_named_by_them() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{}", m.name);
            assert!(!m.sql.trim().is_empty());
        }
        assert_eq!(latest_version() as usize, MIGRATIONS.len());
    }

    #[test]
    fn verify_knows_empty_current_newer_and_altered() {
        assert_eq!(verify(&[]).expect("empty"), 0);
        let all = applied_through(MIGRATIONS.len());
        assert_eq!(verify(&all).expect("current"), latest_version());
        let mut newer = all.clone();
        newer.push((latest_version() + 1, "x".into()));
        match verify(&newer) {
            Err(PgError::SchemaNewer { database, binary }) => {
                assert_eq!((database, binary), (latest_version() + 1, latest_version()))
            }
            other => panic!("{other:?}"),
        }
        let mut altered = all;
        altered[0].1 = "0".repeat(64);
        assert!(matches!(verify(&altered), Err(PgError::SchemaAltered { version: 1 })));
    }

    #[test]
    fn the_newer_database_message_names_both_versions() {
        let text = PgError::SchemaNewer { database: 7, binary: 3 }.to_string();
        assert!(text.contains("version 7") && text.contains("version 3"), "{text}");
    }
}
