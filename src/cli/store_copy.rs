//! `biller-inbox store copy --from sled:PATH --to postgres:URL`: a stopped sled store copied
//! whole into an empty PostgreSQL database (docs/postgres.md, Moving a sled store to
//! PostgreSQL).
//!
//! Two threads: this one drives the database side (`store::postgres::copy_in`, one
//! transaction), a reader thread walks the sled store (`SledStore::dump`) and hands batches
//! over a short queue, so reading and writing overlap. The comparison of both sides goes to
//! stdout; progress to stderr. Nothing is committed unless every compared figure matches.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::Failure;
use crate::settings::{PostgresSettings, Settings};
use crate::store::copy::Compared;
use crate::store::postgres::copy_in::{copy_into, CopyError, Incoming};
use crate::store::postgres::PgRuntime;
use crate::store::{SledStore, StoreError};

/// Items per batch handed from the reader to the writer (one `COPY` each).
const BATCH: usize = 5_000;
/// Batches the reader may run ahead of the writer.
const QUEUE: usize = 4;
/// Seconds between progress lines on stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

pub struct Options {
    pub from: String,
    pub to: String,
}

/// `sled:PATH`; `sled:` alone is the configured `store.path`.
fn source_path(from: &str, settings: &Settings) -> Result<PathBuf, Failure> {
    match from.strip_prefix("sled:") {
        Some("") => Ok(settings.store.path.clone()),
        Some(path) => Ok(PathBuf::from(path)),
        None => Err(Failure::usage(format!(
            "--from {from:?} is not sled:PATH (the directory of a stopped server's sled store)"
        ))),
    }
}

/// `postgres:URL`; `postgres:` alone is the configured `store.postgres.url` (so the password
/// can stay in the environment, out of the command line). A bare `postgres://...` URL is taken
/// as it is. The value is never repeated in a message: it may hold a password.
fn target_url(to: &str, settings: &Settings) -> Result<String, Failure> {
    let usage = || {
        Failure::usage(
            "--to is not postgres:URL (postgres:postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE, or \
             postgres: alone for store.postgres.url); the value is not repeated here since it may hold a password",
        )
    };
    let url =
        match to.strip_prefix("postgres:") {
            Some("") if settings.store.postgres.url.is_empty() => return Err(Failure::usage(
                "--to postgres: without a URL takes store.postgres.url (or env BILLER_INBOX__STORE__POSTGRES__URL), \
                 which is not set",
            )),
            Some("") => settings.store.postgres.url.clone(),
            Some(rest) if rest.starts_with("//") => to.to_string(),
            Some(rest) => rest.to_string(),
            None if to.starts_with("postgresql://") => to.to_string(),
            None => return Err(usage()),
        };
    if url.parse::<tokio_postgres::Config>().is_err() {
        return Err(usage());
    }
    Ok(url)
}

/// Whether `path` holds a sled store (its `db` file), before opening it would create one.
fn check_is_store(path: &Path) -> Result<(), Failure> {
    if path.join("db").is_file() && path.join("conf").is_file() {
        Ok(())
    } else {
        Err(Failure::check(format!(
            "there is no sled store at {}: --from names the directory of store.path",
            path.display()
        )))
    }
}

pub fn run(settings: &Settings, options: &Options) -> Result<(), Failure> {
    let path = source_path(&options.from, settings)?;
    let target = PostgresSettings {
        url: target_url(&options.to, settings)?,
        ..settings.store.postgres.clone()
    };
    check_is_store(&path)?;
    let store = SledStore::open(&path, settings.store.cache_capacity_bytes).map_err(|e| match e {
        StoreError::Locked { path } => Failure::check(format!(
            "the sled store at {path} is held by a running server: stop it first (store copy is offline)"
        )),
        other => Failure::check(format!("cannot open the sled store at {}: {other}", path.display())),
    })?;
    let where_to = target.redacted_url();
    eprintln!(
        "store copy: sled store {} into PostgreSQL {where_to}, in one transaction (nothing is committed unless \
         every figure matches)",
        path.display()
    );

    let (queue, incoming) = tokio::sync::mpsc::channel(QUEUE);
    let reader = {
        let store = store.clone();
        std::thread::spawn(move || -> Result<(), StoreError> {
            let gone = || StoreError::Unavailable("the database side stopped".into());
            let tally = store.dump(BATCH, &mut |batch| {
                queue.blocking_send(Incoming::Batch(batch)).map_err(|_| gone())
            })?;
            queue.blocking_send(Incoming::End(tally)).map_err(|_| gone())
        })
    };

    let started = Instant::now();
    let mut last_line = Instant::now();
    let mut progress = |label: &'static str, written: u64| {
        if last_line.elapsed() >= PROGRESS_EVERY {
            last_line = Instant::now();
            eprintln!(
                "store copy: {written} {label} written ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    };
    let runtime = PgRuntime::new().map_err(|e| Failure::check(format!("cannot start the database runtime: {e}")))?;
    let copied = runtime.block_on(copy_into(&target, incoming, &mut progress));
    drop(runtime);
    let read = reader
        .join()
        .unwrap_or_else(|_| Err(StoreError::Unavailable("the sled reader panicked".into())));
    drop(store);

    let outcome = match (copied, read) {
        (Ok(outcome), _) => outcome,
        // The reader's own failure explains why the database side saw the source stop.
        (Err(CopyError::SourceStopped), Err(e)) => {
            return Err(Failure::check(format!(
                "reading the sled store at {} failed: {e}; nothing was committed",
                path.display()
            )))
        }
        (Err(e), _) => return Err(Failure::check(format!("{e}; nothing was committed to {where_to}"))),
    };
    print_comparison(&outcome.compared);
    if outcome.committed {
        println!(
            "copied and verified in {:.1} s: committed to {where_to}",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    } else {
        let differing: Vec<&str> = outcome
            .compared
            .iter()
            .filter(|c| !c.matches())
            .map(|c| c.name.as_str())
            .collect();
        Err(Failure::check(format!(
            "the copy differs from the source ({}): rolled back, nothing was committed to {where_to}",
            differing.join(", ")
        )))
    }
}

fn print_comparison(rows: &[Compared]) {
    let name_width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(6);
    let value_width = rows
        .iter()
        .flat_map(|r| [r.source.len(), r.target.len()])
        .max()
        .unwrap_or(0)
        .max(6);
    println!(
        "{:name_width$}  {:>value_width$}  {:>value_width$}",
        "", "source", "target"
    );
    for r in rows {
        println!(
            "{:name_width$}  {:>value_width$}  {:>value_width$}  {}",
            r.name,
            r.source,
            r.target,
            if r.matches() { "ok" } else { "DIFFERS" }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_and_to_take_their_prefix_or_the_configuration() {
        let mut s = Settings::defaults();
        s.store.path = PathBuf::from("/var/lib/biller");
        s.store.postgres.url = "postgres://u:configured@db/x".into();
        assert_eq!(source_path("sled:/srv/s", &s).ok(), Some(PathBuf::from("/srv/s")));
        assert_eq!(source_path("sled:", &s).ok(), Some(PathBuf::from("/var/lib/biller")));
        assert!(source_path("/srv/s", &s).is_err());
        assert!(source_path("postgres:/srv/s", &s).is_err());

        let url = "postgres://u:pw@db:5433/ledger";
        assert_eq!(target_url(&format!("postgres:{url}"), &s).ok().as_deref(), Some(url));
        assert_eq!(target_url(url, &s).ok().as_deref(), Some(url), "a bare URL");
        assert_eq!(
            target_url("postgres:", &s).ok().as_deref(),
            Some("postgres://u:configured@db/x")
        );
        assert_eq!(
            target_url("postgres:host=db user=u dbname=x", &s).ok().as_deref(),
            Some("host=db user=u dbname=x")
        );
        for bad in ["sled:/x", "mysql://u:pw@db/x", "postgres:postgres://u:pw@db:notaport/x"] {
            match target_url(bad, &s) {
                Ok(_) => panic!("{bad} accepted"),
                Err(f) => {
                    assert_eq!(f.code, 2, "{bad}");
                    assert!(!f.message.contains("pw"), "{bad}: {}", f.message);
                }
            }
        }
        s.store.postgres.url.clear();
        assert!(target_url("postgres:", &s).is_err());
    }
}
