//! `biller-inbox migrate`: apply the PostgreSQL schema migrations and exit.

use super::Failure;
use crate::settings::{Backend, Settings};
use crate::store::postgres::{self, PgRuntime};

pub fn run(settings: &Settings) -> Result<(), Failure> {
    if settings.store.backend != Backend::Postgres {
        return Err(Failure::usage(
            "migrate applies the PostgreSQL schema: set store.backend = \"postgres\" and store.postgres.url",
        ));
    }
    let pg = &settings.store.postgres;
    let runtime = PgRuntime::new().map_err(|e| Failure::check(format!("cannot start the database runtime: {e}")))?;
    let report = runtime
        .block_on(async {
            let pool = postgres::pool(pg)?;
            postgres::migrate_only(&pool, pg).await
        })
        .map_err(|e| Failure::check(e.to_string()))?;
    let target = pg.redacted_url();
    if report.applied.is_empty() {
        println!("schema of {target} is at version {}: nothing to apply", report.to);
    } else {
        let applied: Vec<String> = report.applied.iter().map(ToString::to_string).collect();
        println!(
            "schema of {target} migrated from version {} to {} (applied {})",
            report.from,
            report.to,
            applied.join(", ")
        );
    }
    Ok(())
}
