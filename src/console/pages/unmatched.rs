//! Unmatched Empayre payments: the list, and assigning one to an account in two steps — a
//! confirmation that shows the amount, the account's balance now and after (the ledger's own
//! decision, run without writing), then the assignment through the admin API's function.

use actix_web::http::header::LOCATION;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;
use serde::Deserialize;

use super::super::error::ConsoleError;
use super::super::layout::urlencode;
use super::super::layout::{self, Nav};
use super::super::Operator;
use crate::admin::empayre::{assign_unmatched, preview_assignment, unmatched_list};
use crate::http::RequestId;
use crate::state::AppState;

pub async fn list(state: web::Data<AppState>, op: Operator) -> Result<HttpResponse, ConsoleError> {
    let list = unmatched_list(&state.store).await?;
    let body = html! {
        h1 { "Unmatched Empayre payments" }
        p.lead { "Payments Empayre reported without a usable account. Assign each to the account it pays; the account is credited through the ledger like any posting." }
        @if list.items.is_empty() {
            p.notice role="status" { "No payment is waiting for an account." }
        } @else {
            div.table-wrap {
                table {
                    caption { (list.items.len()) " waiting, newest first" }
                    thead { tr {
                        th scope="col" { "Received" } th scope="col" { "Invoice / payment" } th scope="col" { "Why" }
                        th.num scope="col" { "Amount" } th scope="col" { "Status" } th scope="col" { "Assign to account" }
                    } }
                    tbody {
                        @for (i, item) in list.items.iter().enumerate() {
                            tr {
                                td { (layout::time(&item.received_at)) }
                                td { a href=(layout::record_href("empayre-payment", &item.key)) { (item.invoice_id) " / " (item.payment_id) } }
                                td { (reason(&item.reason)) }
                                td.num { (layout::money(&item.amount, &item.currency)) }
                                td { (layout::text_or_dash(item.status.as_deref())) }
                                td {
                                    form.assign method="get" action=(format!("/console/unmatched/{}/assign", urlencode(&item.key))) {
                                        label for=(format!("acct-{i}")) .visually-hidden { "Account number for " (item.invoice_id) }
                                        input id=(format!("acct-{i}")) type="text" name="account_number" required placeholder="ACC-100200" autocomplete="off";
                                        " "
                                        button type="submit" { "Review…" }
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
        "Unmatched payments",
        Nav::Unmatched,
        &op.csrf,
        None,
        body,
    )))
}

fn reason(code: &str) -> &'static str {
    match code {
        "no_account" => "The invoice named no account",
        "unknown_account" => "The invoice named an unknown account",
        "currency_mismatch" => "The account has another currency",
        _ => "Other",
    }
}

#[derive(Deserialize)]
pub struct AssignQuery {
    account_number: Option<String>,
}

/// Step 1: what assigning would do.
pub async fn confirm(
    state: web::Data<AppState>,
    op: Operator,
    path: web::Path<String>,
    query: web::Query<AssignQuery>,
    rid: RequestId,
) -> Result<HttpResponse, ConsoleError> {
    let key = path.into_inner();
    let account = query.account_number.as_deref().map(str::trim).unwrap_or("").to_string();
    if account.is_empty() {
        return Err(ConsoleError::BadRequest(
            "Enter the account number to assign the payment to.".into(),
        ));
    }
    let p = preview_assignment(&state.store, key.clone(), account, &rid).await?;
    let body = html! {
        p { a href="/console/unmatched" { "← Unmatched payments" } }
        h1 { "Assign this payment?" }
        section.confirm aria-labelledby="confirm-h" {
            h2 #confirm-h { "Payment " code { (p.key) } " to account " (layout::account_link(Some(&p.account_number))) }
            dl.facts {
                dt { "Amount" } dd #confirm-amount .amount { (layout::money(&p.amount, &p.currency)) }
                dt { "Balance now" } dd #confirm-balance .amount { (layout::money(&p.current_balance, &p.currency)) }
                dt { "Balance change" } dd .amount { (layout::money(&p.delta, &p.currency)) }
                dt { "Balance after" } dd #confirm-after .amount { strong { (layout::money(&p.balance_after, &p.currency)) } }
            }
            form method="post" action=(format!("/console/unmatched/{}/assign", urlencode(&p.key))) {
                input type="hidden" name="csrf" value=(op.csrf);
                input type="hidden" name="account_number" value=(p.account_number);
                div.actions {
                    button type="submit" { "Assign and credit the account" }
                    a.button.secondary href="/console/unmatched" { "Cancel" }
                }
            }
        }
    };
    Ok(layout::ok(layout::page(
        "Assign payment",
        Nav::Unmatched,
        &op.csrf,
        None,
        body,
    )))
}

#[derive(Deserialize)]
pub struct AssignForm {
    csrf: Option<String>,
    account_number: Option<String>,
}

/// Step 2: assign, then show the account with its new balance.
pub async fn assign(
    req: HttpRequest,
    state: web::Data<AppState>,
    op: Operator,
    path: web::Path<String>,
    form: web::Form<AssignForm>,
    rid: RequestId,
) -> Result<HttpResponse, ConsoleError> {
    op.check_change(&req, form.csrf.as_deref())?;
    let key = path.into_inner();
    let account = form.account_number.as_deref().map(str::trim).unwrap_or("").to_string();
    if account.is_empty() {
        return Err(ConsoleError::BadRequest(
            "Enter the account number to assign the payment to.".into(),
        ));
    }
    let done = assign_unmatched(&state.store, key, account, &rid).await?;
    let target = format!(
        "{}?assigned={}",
        layout::account_href(&done.account_number),
        urlencode(&done.key)
    );
    Ok(HttpResponse::SeeOther().insert_header((LOCATION, target)).finish())
}
