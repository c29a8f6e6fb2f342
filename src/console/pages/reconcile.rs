//! Reconciliation runs with the Empayre API: what each run saw and did, newest first (the same
//! list as `GET /admin/empayre/reconcile`).

use actix_web::{web, HttpResponse};
use maud::html;

use super::super::error::ConsoleError;
use super::super::layout::{self, Nav};
use super::super::Operator;
use crate::empayre::reconcile::RunStatus;
use crate::state::AppState;

const RUNS_SHOWN: usize = 50;

pub async fn page(state: web::Data<AppState>, op: Operator) -> Result<HttpResponse, ConsoleError> {
    let runs = state.reconciler.recent(None, RUNS_SHOWN);
    let body = html! {
        h1 { "Reconciliation with Empayre" }
        p.lead { "Each run reads the payments and refunds Empayre lists in a window and applies what the webhooks missed. Newest first, at most " (RUNS_SHOWN) "." }
        @if runs.is_empty() {
            p.notice role="status" { "No reconciliation has run since the server started (see " code { "empayre.sources[].reconcile_interval_secs" } " and " code { "biller-inbox empayre reconcile" } ")." }
        } @else {
            div.table-wrap {
                table {
                    thead { tr {
                        th scope="col" { "Started" } th scope="col" { "Window" } th scope="col" { "Status" }
                        th.num scope="col" { "Seen" } th.num scope="col" { "Applied" } th.num scope="col" { "Unmatched" }
                        th.num scope="col" { "Failed" } th scope="col" { "Details" }
                    } }
                    tbody {
                        @for run in &runs {
                            tr {
                                // Two lines per cell keep the table inside 1280 px.
                                td {
                                    (layout::time(&run.started_at)) br;
                                    span.source { (run.source) } ", " (run.trigger.as_str()) @if run.dry_run { " (dry run)" }
                                }
                                td { (layout::time(&run.from)) " –" br; (layout::time(&run.to)) }
                                td {
                                    @match run.status {
                                        RunStatus::Ok => span.status-ok { "ok" },
                                        RunStatus::Failed => span.status-bad { "failed" },
                                    }
                                }
                                td.num { (run.counts.seen) }
                                td.num { (run.counts.applied) }
                                td.num { (run.counts.unmatched) }
                                td.num { (run.counts.failed) }
                                td.wrap {
                                    @if let Some(e) = &run.error { p.notice.error { (e) } }
                                    @if !run.items.is_empty() {
                                        details {
                                            summary { (run.items.len()) " item(s)" @if run.items_truncated { " (first 200)" } }
                                            ul {
                                                @for item in &run.items {
                                                    li {
                                                        (item.kind) " " (item.invoice_id) "/" (item.payment_id)
                                                        @if let Some(r) = &item.refund_id { "/" (r) }
                                                        ": " (layout::money(&item.amount, &item.currency)) " — " (item.outcome)
                                                        @if let Some(why) = &item.reason { " (" (why) ")" }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::ok(layout::page(
        "Reconciliation",
        Nav::Reconcile,
        &op.csrf,
        None,
        body,
    )))
}
