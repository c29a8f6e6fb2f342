//! `biller-inbox empayre ...`: the commands that call the Empayre API (Part C).
//!
//! `register` touches no store, so it runs beside a running server. Its API calls are logged on
//! stderr (call, X-Request-ID, status), at `log.level`.

use std::path::PathBuf;

use super::Failure;
use crate::empayre::api::ApiClient;
use crate::empayre::register::{self, Registered};
use crate::settings::{EmpayreSource, Settings};

pub struct RegisterOptions {
    pub source: String,
    pub shop_id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub dry_run: bool,
    pub force: bool,
}

/// The configured source, and its API client settings (exit 2 when either is missing).
fn source<'a>(settings: &'a Settings, name: &str) -> Result<&'a EmpayreSource, Failure> {
    let sources = &settings.empayre.sources;
    let source = sources.iter().find(|s| s.name == name).ok_or_else(|| {
        let names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
        Failure::usage(format!(
            "--source {name}: no such Empayre source (configured: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ))
    })?;
    Ok(source)
}

fn client(source: &EmpayreSource) -> Result<ApiClient, Failure> {
    let settings = source.api_client_settings().ok_or_else(|| {
        Failure::usage(format!(
            "source {} has no Empayre API access: set api_token (and api_url) in its [[empayre.sources]] entry",
            source.name
        ))
    })?;
    ApiClient::new(settings).map_err(Failure::usage)
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::check(format!("cannot start the runtime: {e}")))
}

pub fn register(settings: &Settings, options: RegisterOptions) -> Result<(), Failure> {
    crate::telemetry::init(&settings.log);
    let source = source(settings, &options.source)?;
    let key_file: PathBuf = source.public_key_files.first().cloned().ok_or_else(|| {
        Failure::usage(format!(
            "source {} lists no public_key_files: add the file register should write the webhook's key to",
            source.name
        ))
    })?;
    register::check_webhook_url(&options.url).map_err(Failure::usage)?;
    let shop = options.shop_id.trim();
    if shop.is_empty() || shop.chars().count() > 40 {
        return Err(Failure::usage("--shop-id must be 1 to 40 characters"));
    }
    if !source.shop_ids.is_empty() && !source.shop_ids.iter().any(|s| s == shop) {
        eprintln!(
            "biller-inbox: note: shop {shop} is not in source {}'s shop_ids; reconciliation will not look at it",
            source.name
        );
    }
    let event_types = register::event_types(&options.event_types).map_err(Failure::usage)?;
    let client = client(source)?;
    let request = register::Request {
        shop_id: shop.to_string(),
        url: options.url.clone(),
        event_types,
        key_file: key_file.clone(),
        dry_run: options.dry_run,
        force: options.force,
    };
    let outcome = runtime()?.block_on(register::register(&client, &request));
    match outcome {
        Ok(Registered::DryRun) => {
            println!(
                "dry run: would create a webhook for shop {shop} to {} ({} event types: {}) and write its key to {}",
                request.url,
                request.event_types.len(),
                request.event_types.join(", "),
                key_file.display()
            );
            Ok(())
        }
        Ok(Registered::Created {
            webhook,
            key_id,
            written,
            recovered,
        }) => {
            if let Some(note) = recovered {
                eprintln!("biller-inbox: note: {note}; the webhook was found in the account's list");
            }
            println!(
                "webhook {} created for shop {shop} to {} ({} event types)",
                webhook.id,
                webhook.url,
                webhook.event_types.len()
            );
            if written {
                println!(
                    "key {key_id} written to {} (restart the server to trust it)",
                    key_file.display()
                );
            } else {
                println!("key {key_id} is already in {}", key_file.display());
            }
            Ok(())
        }
        // A duplicate, a key conflict or an API failure: a failed check (exit 1).
        Err(e) => Err(Failure::check(e.to_string())),
    }
}
