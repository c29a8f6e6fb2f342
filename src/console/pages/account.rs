//! Account: balance, profiles (never an SSN), the latest journal entries and the balance over
//! them.

use actix_web::http::header::LOCATION;
use actix_web::{web, HttpResponse};
use maud::html;
use serde::Deserialize;

use super::super::chart::{self, Series};
use super::super::error::ConsoleError;
use super::super::layout::{self, Nav};
use super::super::Operator;
use crate::admin::accounts::account_page;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct Jump {
    number: Option<String>,
}

/// The header's "Account" box: straight to the account's page.
pub async fn jump(_op: Operator, query: web::Query<Jump>) -> HttpResponse {
    let target = match query.number.as_deref().map(str::trim) {
        Some(n) if !n.is_empty() => layout::account_href(n),
        _ => "/console/search".to_string(),
    };
    HttpResponse::SeeOther().insert_header((LOCATION, target)).finish()
}

#[derive(Deserialize)]
pub struct Notice {
    assigned: Option<String>,
}

pub async fn page(
    state: web::Data<AppState>,
    op: Operator,
    path: web::Path<String>,
    notice: web::Query<Notice>,
) -> Result<HttpResponse, ConsoleError> {
    let number = path.into_inner();
    let Some(view) = account_page(&state.store, number.clone()).await? else {
        return Err(ConsoleError::NotFound(format!("There is no account {number}.")));
    };
    let a = &view.account;
    // Oldest first for the chart: the journal comes newest first.
    let balances: Vec<f64> = view
        .journal
        .iter()
        .rev()
        .filter_map(|e| e.balance_after.parse::<f64>().ok())
        .collect();
    let body = html! {
        h1 { "Account " code { (a.account_number) } }
        @if let Some(key) = &notice.assigned {
            p.notice.ok role="status" { "Payment " code { (key) } " was assigned to this account. The balance below includes it." }
        }
        div.panels {
            section.panel aria-labelledby="bal-h" {
                h2 #bal-h { "Current balance" }
                p.figure { (layout::money(&a.current_balance, &a.currency)) }
                dl.facts {
                    dt { "Holder" } dd { (layout::text_or_dash(a.account_holder_name.as_deref())) }
                    dt { "Nickname" } dd { (layout::text_or_dash(a.nickname.as_deref())) }
                    dt { "Status" } dd { (a.status) }
                    dt { "Statement balance" } dd { (layout::text_or_dash(a.current_statement_balance.as_deref())) }
                    dt { "Minimum due" } dd { (layout::text_or_dash(a.minimum_payment_due.as_deref())) }
                    dt { "Due date" } dd { (layout::text_or_dash(a.payment_due_date.as_deref())) }
                    @if let Some(w) = &a.warning { dt { "Warning" } dd { (w) } }
                }
            }
            section.panel aria-labelledby="chart-h" {
                h2 #chart-h { "Balance over the latest entries" }
                @if balances.len() < 2 {
                    p.muted { "Not enough journal entries for a chart yet." }
                } @else {
                    figure.chart {
                        (chart::lines(
                            &format!("Balance after each of the last {} journal entries, from {} to {} {}", balances.len(),
                                view.journal.last().map(|e| e.balance_after.as_str()).unwrap_or(""),
                                a.current_balance, a.currency),
                            &[Series { class: "series-balance", values: balances.clone() }],
                            "older", "newest"))
                        figcaption { "Balance after each journal entry (" (a.currency) ")" }
                    }
                }
            }
        }
        h2 { "Profiles" }
        @if view.customers.is_empty() {
            p.muted { "No profile is linked to this account." }
        } @else {
            div.table-wrap {
                table {
                    thead { tr {
                        th scope="col" { "Customer reference" } th scope="col" { "Name" } th scope="col" { "Email" }
                        th scope="col" { "Phone" } th scope="col" { "Status" } th scope="col" { "Accounts" }
                    } }
                    tbody {
                        @for p in &view.customers {
                            tr {
                                td { code { (p.customer_reference) } }
                                td.wrap { (p.first_name.as_deref().unwrap_or("")) " " (p.last_name.as_deref().unwrap_or("")) }
                                td { (layout::text_or_dash(p.email.as_deref())) }
                                td { (layout::text_or_dash(p.home_phone.as_deref())) }
                                td { (p.status) }
                                td {
                                    @for (i, n) in p.account_numbers.iter().enumerate() {
                                        @if i > 0 { ", " }
                                        a href=(layout::account_href(n)) { (n) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Latest journal entries" }
        @if view.journal.is_empty() {
            p.muted { "No balance change yet (an import sets the opening balance without an entry)." }
        } @else {
            div.table-wrap {
                table {
                    caption { "Newest first, at most 100" }
                    thead { tr {
                        th.num scope="col" { "Seq" } th scope="col" { "At" } th scope="col" { "Channel" } th scope="col" { "Record" }
                        th scope="col" { "Status" } th.num scope="col" { "Balance change" } th.num scope="col" { "Balance after" }
                    } }
                    tbody {
                        @for e in &view.journal {
                            tr {
                                td.num { (e.seq) }
                                td { (layout::time(&e.at)) }
                                td { (e.channel) }
                                td { a href=(layout::record_href(&e.kind, &e.record_id)) { (e.kind) " " (e.record_id) } }
                                td { (e.status) }
                                td.num { (layout::money(&e.delta, &a.currency)) }
                                td.num { (layout::money(&e.balance_after, &a.currency)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::ok(layout::page(
        &format!("Account {}", a.account_number),
        Nav::Accounts,
        &op.csrf,
        None,
        body,
    )))
}
