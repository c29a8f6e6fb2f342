//! Reconciliation runs inside the server: one started by an operator (`POST
//! /admin/empayre/reconcile`, which `biller-inbox empayre reconcile` calls), and the background
//! job of each source with `reconcile_interval_secs` > 0.
//!
//! The job takes one window at a time: from where the last successful window ended, minus
//! `reconcile_overlap_secs` (so a payment the platform's search shows late, or one on the
//! boundary, is not missed — applying it twice changes nothing), to now, at most a day at once
//! (after a long outage it catches up window by window). A failed window is tried again at the
//! next tick from the same place. Where it got to is kept in the store, so a restart goes on
//! from there. With several replicas on one database, only the one holding the source's job
//! lock runs it (see `holds_job_lock`).

use std::time::Duration;

use actix_web::web;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::api::ApiClient;
use super::reconcile::{Context, Report, Request, RunStatus, Trigger};
use crate::settings::EmpayreSource;
use crate::state::AppState;
use crate::store::JobLock;

/// The largest window the background job takes at once.
const MAX_JOB_WINDOW: chrono::Duration = chrono::Duration::days(1);

/// Runs one window for `source` now (after a run of that source in progress), counts it in the
/// metrics and keeps its report. `Err` says why the source cannot be reconciled.
pub async fn run_now(state: &AppState, source: &str, request: Request) -> Result<Report, String> {
    let settings = state
        .settings
        .empayre
        .sources
        .iter()
        .find(|s| s.name == source)
        .ok_or_else(|| format!("no Empayre source named {source}"))?;
    let loaded = state
        .empayre_sources
        .get(source)
        .ok_or_else(|| format!("no Empayre source named {source}"))?;
    let client_settings = settings
        .api_client_settings()
        .ok_or_else(|| format!("source {source} has no Empayre API access (api_token, api_url)"))?;
    if settings.shop_ids.is_empty() {
        return Err(format!("source {source} lists no shop_ids to reconcile"));
    }
    let client = ApiClient::new(client_settings)?;
    let ctx = Context {
        store: &state.store,
        source: loaded,
        shop_ids: &settings.shop_ids,
        client: &client,
    };
    // Counted before the report is listed: whoever sees the run listed sees it counted.
    let report = state
        .reconciler
        .run(&ctx, &request, |report| state.metrics.reconciled(report))
        .await;
    Ok(report)
}

/// Starts the background job of every source that asks for one. Each stops when `shutdown`
/// changes (the server stopped), between two windows or in the middle of one (every item it
/// applied is whole; the window is done again after a restart).
pub fn spawn_jobs(state: &web::Data<AppState>, shutdown: &watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>> {
    state
        .settings
        .empayre
        .sources
        .iter()
        .filter(|s| s.reconcile_interval_secs > 0)
        .map(|source| {
            let state = state.clone();
            let name = source.name.clone();
            let mut shutdown = shutdown.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = job(&state, &name) => {}
                    _ = shutdown.changed() => {}
                }
                tracing::info!(source = %name, "Empayre reconciliation job stopped");
            })
        })
        .collect()
}

/// The next window after one that ended at `cursor` (None: the job never finished one).
pub fn next_window(
    source: &EmpayreSource,
    cursor: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let overlap = chrono::Duration::seconds(source.reconcile_overlap_secs as i64);
    let interval = chrono::Duration::seconds(source.reconcile_interval_secs as i64);
    let from = match cursor {
        Some(end) => end - overlap,
        // The first window looks back one interval and the overlap.
        None => now - interval - overlap,
    };
    let to = (from + MAX_JOB_WINDOW)
        .min(now)
        .max(from + chrono::Duration::seconds(1));
    (from, to)
}

/// Whether this process may run the job of source `name` now: it holds the source's job lock,
/// or takes it. With several replicas on one database only the holder asks the Empayre API;
/// the others try again every tick and take over when the holder is gone (its lock goes with
/// its database session).
async fn holds_job_lock(state: &AppState, name: &str, lock: &mut Option<JobLock>) -> bool {
    if let Some(held) = lock.as_ref() {
        if held.still_held().await {
            return true;
        }
        tracing::warn!(source = %name, "Empayre reconciliation job lost its lock (database session gone); taking it again");
        *lock = None;
    }
    match state.store.try_job_lock(&format!("empayre-reconcile:{name}")).await {
        Ok(Some(taken)) => {
            tracing::info!(source = %name, "this replica runs the Empayre reconciliation job");
            *lock = Some(taken);
            true
        }
        Ok(None) => {
            tracing::debug!(source = %name, "another replica runs the Empayre reconciliation job");
            false
        }
        Err(e) => {
            tracing::warn!(source = %name, error = %e, "Empayre reconciliation job cannot take its lock");
            false
        }
    }
}

async fn job(state: &AppState, name: &str) {
    let Some(source) = state.settings.empayre.sources.iter().find(|s| s.name == name) else {
        return;
    };
    let interval = Duration::from_secs(source.reconcile_interval_secs);
    tracing::info!(source = %name, interval_secs = source.reconcile_interval_secs,
        overlap_secs = source.reconcile_overlap_secs, "Empayre reconciliation job started");
    let mut lock = None;
    loop {
        if !holds_job_lock(state, name, &mut lock).await {
            tokio::time::sleep(interval).await;
            continue;
        }
        let now = Utc::now();
        let cursor = match state.reconciler.cursor(&state.store, name).await {
            Ok(cursor) => cursor,
            Err(e) => {
                tracing::warn!(source = %name, error = %e, "Empayre reconciliation job cannot read where it got to");
                tokio::time::sleep(interval).await;
                continue;
            }
        };
        let (from, to) = next_window(source, cursor, now);
        let request = Request {
            source: name.to_string(),
            from,
            to,
            dry_run: false,
            trigger: Trigger::Schedule,
        };
        let caught_up = match run_now(state, name, request).await {
            Ok(report) if report.status == RunStatus::Ok => {
                if let Err(e) = state.reconciler.set_cursor(&state.store, name, to).await {
                    tracing::warn!(source = %name, error = %e, "Empayre reconciliation job cannot note where it got to");
                }
                to >= now
            }
            Ok(_) => true,
            Err(why) => {
                tracing::warn!(source = %name, %why, "Empayre reconciliation job cannot run");
                true
            }
        };
        // Behind (after an outage): the next window at once; else wait for the next tick.
        if caught_up {
            tokio::time::sleep(interval).await;
        }
    }
}
