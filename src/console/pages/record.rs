//! Record: one payment or refund with its status history, what it did to its account's balance
//! and the journal entries it made.

use actix_web::{web, HttpResponse};
use maud::html;
use serde_json::Value;

use super::super::error::ConsoleError;
use super::super::layout::{self, Nav};
use super::super::mask::mask_secrets;
use super::super::Operator;
use crate::admin::postings::{find_record, record_journal};
use crate::state::AppState;

pub async fn page(
    state: web::Data<AppState>,
    op: Operator,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ConsoleError> {
    let (kind, id) = path.into_inner();
    let r = find_record(&state.store, &kind, &id).await?;
    // Every journal entry this record made, however old (the store indexes them by record).
    let entries = record_journal(&state.store, &kind, &id).await?;
    let details = mask_secrets(&Value::Object(r.details.clone()).to_string());
    let title = format!("{} {}", r.kind, r.id);
    let body = html! {
        p { a href="/console/search" { "← Search" } }
        h1 { (r.kind) " " code { (r.id) } }
        div.panels {
            section.panel aria-labelledby="facts-h" {
                h2 #facts-h { "The record" }
                dl.facts {
                    dt { "Status" } dd { strong { (r.status) } @if r.live { " (moves the balance)" } @else { " (does not move the balance)" } }
                    dt { "Amount" } dd.amount { (layout::money(&r.amount, &r.currency)) }
                    dt { "Account" } dd { (layout::account_link(r.account_number.as_deref())) }
                    dt { "Channel" } dd { (r.channel) }
                    dt { "Confirmation number" } dd { (layout::text_or_dash(r.confirmation_number.as_deref())) }
                    dt { "Reference" } dd { (layout::text_or_dash(r.reference.as_deref())) }
                    dt { "Payment method" } dd { (layout::text_or_dash(r.payment_method.as_deref())) }
                    dt { "Client key" } dd { (layout::text_or_dash(r.client_key.as_deref())) }
                    dt { "Received" } dd { (layout::time(&r.received_at)) }
                    dt { "Last change" } dd { (layout::time(&r.updated_at)) }
                    @if let Some(parent) = &r.parent_id {
                        dt { "Refund of" } dd { a href=(layout::record_href(if r.channel == "empayre" { "empayre-payment" } else { "payment" }, parent)) { (parent) } }
                    }
                    @if !r.refund_ids.is_empty() {
                        dt { "Refunds" }
                        dd {
                            @for (i, refund) in r.refund_ids.iter().enumerate() {
                                @if i > 0 { ", " }
                                a href=(layout::record_href(if r.channel == "empayre" { "empayre-refund" } else { "refund" }, refund)) { (refund) }
                            }
                        }
                    }
                }
            }
            section.panel aria-labelledby="hist-h" {
                h2 #hist-h { "Status history" }
                div.table-wrap {
                    table {
                        thead { tr { th scope="col" { "At" } th scope="col" { "Status" } th scope="col" { "Request id" } } }
                        tbody {
                            @for h in &r.history {
                                tr { td { (layout::time(&h.at)) } td { (h.status) } td { code { (h.request_id) } } }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Ledger effects" }
        @if entries.is_empty() {
            p.notice role="status" {
                @if r.account_number.is_none() { "No account: this record has not moved any balance." }
                @else { "This record has made no journal entry: it has not moved the balance." }
            }
        } @else {
            div.table-wrap {
                table {
                    caption { "Journal entries this record made" }
                    thead { tr {
                        th.num scope="col" { "Seq" } th scope="col" { "At" } th scope="col" { "Channel" } th scope="col" { "Status" }
                        th.num scope="col" { "Balance change" } th.num scope="col" { "Balance after" }
                    } }
                    tbody {
                        @for e in &entries {
                            tr {
                                td.num { (e.seq) }
                                td { (layout::time(&e.at)) }
                                td { (e.channel) }
                                td { (e.status) }
                                td.num { (layout::money(&e.delta, &r.currency)) }
                                td.num { (layout::money(&e.balance_after, &r.currency)) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Channel details" }
        pre.body { (details) }
    };
    Ok(layout::ok(layout::page(&title, Nav::Search, &op.csrf, None, body)))
}
