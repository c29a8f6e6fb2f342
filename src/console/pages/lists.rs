//! Quarantine and refusals: what was refused or parked, and why.

use actix_web::{web, HttpResponse};
use maud::{html, Markup};

use super::super::error::ConsoleError;
use super::super::layout::{self, Nav};
use super::super::mask::mask_secrets;
use super::super::Operator;
use crate::admin::empayre::quarantine_list;
use crate::admin::feeds::{rejection_list, RejectionItem};
use crate::state::AppState;

const LIST_LIMIT: usize = 200;

pub async fn quarantine(state: web::Data<AppState>, op: Operator) -> Result<HttpResponse, ConsoleError> {
    let list = quarantine_list(&state.store, LIST_LIMIT).await?;
    let body = html! {
        h1 { "Quarantine" }
        p.lead { "Empayre notifications whose signature was valid but whose body could not be used. Newest first, at most " (LIST_LIMIT) "." }
        @if list.items.is_empty() {
            p.notice role="status" { "Nothing is quarantined." }
        } @else {
            div.table-wrap {
                table {
                    thead { tr {
                        th scope="col" { "Received" } th scope="col" { "Source" } th scope="col" { "Why" }
                        th scope="col" { "Body" }
                    } }
                    tbody {
                        @for item in &list.items {
                            tr {
                                td { (layout::time(&item.received_at)) }
                                td { (item.source) }
                                td.wrap { (layout::text_or_dash(item.reason.as_deref())) }
                                td.wrap {
                                    details {
                                        summary { "Show body (" (item.body_encoding) ", SHA-256 " code { (&item.body_sha256[..item.body_sha256.len().min(12)]) } "…)" }
                                        @if item.body_encoding == "text" {
                                            pre.body { (mask_secrets(&item.body)) }
                                        } @else {
                                            p.muted { "Binary body, not shown." }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p.help { "Card numbers, CVV/CVC codes and fields named like secrets, passwords, tokens or keys are masked before display." }
        }
    };
    Ok(layout::ok(layout::page(
        "Quarantine",
        Nav::Quarantine,
        &op.csrf,
        None,
        body,
    )))
}

pub async fn refusals(state: web::Data<AppState>, op: Operator) -> Result<HttpResponse, ConsoleError> {
    let list = rejection_list(&state.store, LIST_LIMIT).await?;
    let body = html! {
        h1 { "Refusals" }
        p.lead { "Requests the service refused, with the cause and the error code the caller got. Newest first, at most " (LIST_LIMIT) "." }
        (refusal_rows(&list.items))
        p.help { "Causes: unauthorized, throttled, signature_invalid, signature_missing, payload_too_large, malformed, validation, business_rule. The request id finds the request in the server's log." }
    };
    Ok(layout::ok(layout::page(
        "Refusals",
        Nav::Refusals,
        &op.csrf,
        None,
        body,
    )))
}

/// The table of refused requests (the overview shows the newest few).
pub fn refusal_rows(items: &[RejectionItem]) -> Markup {
    html! {
        @if items.is_empty() {
            p.notice role="status" { "No request has been refused." }
        } @else {
            div.table-wrap {
                table {
                    thead { tr {
                        th scope="col" { "At" } th scope="col" { "Channel" } th scope="col" { "Endpoint" }
                        th scope="col" { "Cause" } th scope="col" { "Code" } th scope="col" { "Request id" }
                    } }
                    tbody {
                        @for r in items {
                            tr {
                                td { (layout::time_opt(r.at.as_deref())) }
                                td { (layout::text_or_dash(r.channel.as_deref())) }
                                td { (layout::text_or_dash(r.endpoint.as_deref())) }
                                td { (layout::text_or_dash(r.cause.as_deref())) }
                                td { (layout::text_or_dash(r.code.as_deref())) }
                                td { code { (r.request_id.as_deref().unwrap_or("")) } }
                            }
                        }
                    }
                }
            }
        }
    }
}
