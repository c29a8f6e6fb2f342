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

pub struct ReconcileOptions {
    pub source: String,
    pub since: String,
    pub until: Option<String>,
    pub dry_run: bool,
    /// The running server's base URL; from `server.host` and `server.port` when absent.
    pub target: Option<String>,
    /// Print the report as JSON instead of lines.
    pub json: bool,
}

/// A whole window can take minutes to page through and apply.
const RECONCILE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

/// `empayre reconcile` asks the running server to reconcile (`POST /admin/empayre/reconcile`):
/// the server holds the store (sled admits one process), the API client and the per-source lock
/// the background job uses, so a run from the command line and the job never overlap, and the
/// run shows in `GET /admin/empayre/reconcile` and in `/metrics` like the job's.
pub fn reconcile(settings: &Settings, options: ReconcileOptions) -> Result<(), Failure> {
    let parse = |flag: &str, text: &str| {
        chrono::DateTime::parse_from_rfc3339(text).map_err(|_| {
            Failure::usage(format!(
                "{flag} {text:?} is not an RFC 3339 date-time (2026-11-21T00:00:00Z)"
            ))
        })
    };
    let since = parse("--since", &options.since)?;
    if let Some(until) = &options.until {
        if parse("--until", until)? <= since {
            return Err(Failure::usage("--until must be after --since"));
        }
    }
    source(settings, &options.source)?;
    if settings.admin.token.is_empty() {
        return Err(Failure::usage(
            "the admin API is disabled (admin.token is empty); reconcile runs inside the server through it",
        ));
    }
    let Some(admin_token) = settings.admin.token.expose() else {
        return Err(Failure::usage(
            "admin.token is configured as a sha256 digest, which this command cannot send: give it the token \
             for this run, e.g. BILLER_INBOX__ADMIN__TOKEN=... or admin.token = { file = \"...\" }",
        ));
    };
    let target = match &options.target {
        Some(t) => t.trim_end_matches('/').to_string(),
        None => {
            let host = match settings.server.host.as_str() {
                "0.0.0.0" | "::" | "[::]" => "127.0.0.1",
                h => h,
            };
            format!("http://{host}:{}", settings.server.port)
        }
    };
    let mut body = serde_json::json!({"source": options.source, "since": options.since, "dry_run": options.dry_run});
    if let Some(until) = &options.until {
        body["until"] = serde_json::json!(until);
    }
    let url = format!("{target}/admin/empayre/reconcile");
    let answer = runtime()?.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(RECONCILE_TIMEOUT)
            .build()
            .map_err(|e| Failure::check(format!("cannot build the HTTP client: {e}")))?;
        let response = client
            .post(&url)
            .bearer_auth(admin_token)
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                Failure::check(format!(
                    "cannot reach the server at {target} ({e}); reconcile runs inside the running server: start it with \
                     `biller-inbox serve`, or point --target at it"
                ))
            })?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| Failure::check(format!("{url}: the answer could not be read: {e}")))?;
        Ok::<_, Failure>((status, text))
    })?;
    let (status, text) = answer;
    let value: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    match status {
        200 => {}
        400 | 401 | 404 => {
            let message = value["message"].as_str().unwrap_or(&text);
            return Err(Failure::usage(format!(
                "the server refused the reconciliation ({status}): {message}"
            )));
        }
        other => {
            return Err(Failure::check(format!(
                "the server answered {other}: {}",
                value["message"].as_str().unwrap_or(&text)
            )))
        }
    }
    let report: crate::empayre::reconcile::Report = serde_json::from_value(value)
        .map_err(|e| Failure::check(format!("the server's report could not be read: {e}")))?;
    if options.json {
        println!("{text}");
    } else {
        print_report(&report);
    }
    use crate::empayre::reconcile::RunStatus;
    match (report.status, report.counts.failed) {
        (RunStatus::Failed, _) => Err(Failure::check(format!(
            "reconciliation {} failed: {}",
            report.id,
            report.error.as_deref().unwrap_or("unknown error")
        ))),
        (RunStatus::Ok, 0) => Ok(()),
        (RunStatus::Ok, n) => Err(Failure::check(format!(
            "reconciliation {}: {n} item(s) could not be applied (listed above)",
            report.id
        ))),
    }
}

fn print_report(report: &crate::empayre::reconcile::Report) {
    let c = &report.counts;
    println!(
        "reconciliation {} of source {}, {} to {}{}: {}",
        report.id,
        report.source,
        report.from,
        report.to,
        if report.dry_run {
            " (dry run: nothing applied)"
        } else {
            ""
        },
        match report.status {
            crate::empayre::reconcile::RunStatus::Ok => "ok",
            crate::empayre::reconcile::RunStatus::Failed => "failed",
        }
    );
    println!(
        "seen {}, already applied {}, applied now {}, unmatched {}, failed {}, ignored {}",
        c.seen, c.already_applied, c.applied, c.unmatched, c.failed, c.ignored
    );
    for item in &report.items {
        let what = match &item.refund_id {
            Some(r) => format!("refund {}/{}/{r}", item.invoice_id, item.payment_id),
            None => format!("payment {}/{}", item.invoice_id, item.payment_id),
        };
        let mut line = format!(
            "{:<9} {what} {} {} {}",
            item.outcome.as_str(),
            item.status,
            item.amount,
            item.currency
        );
        if let Some(delta) = &item.delta {
            line.push_str(&format!(" (delta {delta})"));
        }
        if let Some(reason) = &item.reason {
            line.push_str(&format!(": {reason}"));
        }
        println!("{line}");
    }
    if report.items_truncated {
        println!("(more items than the first 200 listed: see the counts)");
    }
}
