//! `biller-inbox accounts import FILE`: offline upsert into the store.

use std::path::Path;

use super::Failure;
use crate::domain::account::parse_accounts_file;
use crate::settings::{ConfigSources, Settings};
use crate::store::{Store, StoreError};

pub fn run(settings: &Settings, sources: &ConfigSources, file: &Path) -> Result<(), Failure> {
    let text =
        std::fs::read_to_string(file).map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?;
    let entries = parse_accounts_file(&text).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| format!("{}: {e}", file.display())).collect();
        Failure::check(format!(
            "nothing imported; {} bad entr{}:\n{}",
            errors.len(),
            if errors.len() == 1 { "y" } else { "ies" },
            lines.join("\n")
        ))
    })?;
    crate::startup::require_sled(settings, "accounts import").map_err(|e| Failure::usage(e.to_string()))?;
    let store = Store::open(&settings.store).map_err(|e| match e {
        StoreError::Locked { path } => Failure::check(format!(
            "the store at {path} is held by a running server; import through it instead: PUT /admin/accounts with the same file as the body"
        )),
        other => Failure::check(other.to_string()),
    })?;
    if sources.demo_found {
        eprintln!(
            "biller-inbox: importing {} into the store at {} (configuration: {sources})",
            file.display(),
            settings.store.path.display()
        );
    }
    let started = std::time::Instant::now();
    let summary = super::block_on(store.import_accounts(entries))?.map_err(|e| Failure::check(e.to_string()))?;
    println!(
        "imported {} accounts ({} created, {} updated), {} profiles ({} created, {} updated) in {:.1} s",
        summary.accounts_created + summary.accounts_updated,
        summary.accounts_created,
        summary.accounts_updated,
        summary.profiles_created + summary.profiles_updated,
        summary.profiles_created,
        summary.profiles_updated,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
