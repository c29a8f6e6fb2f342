//! `GET /admin/accounts/{account_number}` and `PUT /admin/accounts` (the accounts file as the
//! body, with the same validation and all-or-nothing rule as `accounts import`).

use actix_web::http::Method;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::error::{AdminError, EntryProblem, ErrorBody};
use super::views::{AccountView, ImportAnswer, JournalEntryView, JournalFormatter, ProfileView};
use crate::domain::account::{parse_accounts_file, EntryError};
use crate::domain::AccountNumber;
use crate::http::{read_body, resource};
use crate::state::AppState;
use crate::store::Store;

/// How many journal entries the account view shows.
pub const ACCOUNT_JOURNAL_ENTRIES: usize = 100;

#[derive(OpenApi)]
#[openapi(paths(account, put_accounts))]
pub struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource::<AdminError>(
        "/accounts/{account_number}",
        vec![(Method::GET, web::to(account))],
    ))
    .service(resource::<AdminError>(
        "/accounts",
        vec![(Method::PUT, web::to(put_accounts))],
    ));
}

/// An account, its profiles and its last journal entries.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountPage {
    pub account: AccountView,
    pub customers: Vec<ProfileView>,
    /// The last 100 journal entries of the account, newest first.
    pub journal: Vec<JournalEntryView>,
}

/// The account with its live balance, its profiles and its last 100 journal entries.
#[utoipa::path(
    get,
    path = "/admin/accounts/{account_number}",
    tag = "admin",
    params(("account_number" = String, Path, description = "The biller account number", example = "ACC-100200")),
    responses(
        (status = 200, description = "The account", body = AccountPage),
        (status = 401, description = "No or wrong bearer token", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address within a minute (too_many_requests); no token was checked", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until this address may authenticate again"))),
        (status = 404, description = "No such account", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn account(path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    match account_page(&state.store, path.into_inner()).await? {
        Some(p) => Ok(HttpResponse::Ok().json(p)),
        None => Err(AdminError::not_found("account_number", "no such account")),
    }
}

/// The account with its profiles and last journal entries, for the admin API and the console.
/// A number that is not an account number names no account.
pub async fn account_page(store: &Store, number: String) -> Result<Option<AccountPage>, AdminError> {
    let Ok(number) = AccountNumber::try_from(number) else {
        return Ok(None);
    };
    let Some(account) = store.account(&number).await? else {
        return Ok(None);
    };
    let mut customers = Vec::with_capacity(account.customer_references.len());
    for reference in &account.customer_references {
        if let Some(p) = store.profile(reference).await? {
            customers.push(ProfileView::from(&p));
        }
    }
    let mut format = JournalFormatter::new(store);
    let mut journal = Vec::new();
    for entry in store.account_journal(&number, ACCOUNT_JOURNAL_ENTRIES).await? {
        journal.push(format.view(&entry).await?);
    }
    Ok(Some(AccountPage {
        account: AccountView::from(&account),
        customers,
        journal,
    }))
}
/// Upsert accounts and profiles. The body is the accounts file: a JSON array, or JSON lines.
/// Any bad entry imports nothing and every bad entry is reported. Answers once the import is on
/// disk.
#[utoipa::path(
    put,
    path = "/admin/accounts",
    tag = "admin",
    request_body(
        content = Vec<AccountsFileEntry>,
        description = "The accounts file (docs/operations.md): a JSON array, or one account per line (JSON lines)",
        content_type = "application/json"
    ),
    responses(
        (status = 200, description = "What the import did", body = ImportAnswer),
        (status = 400, description = "Bad entries (nothing imported); `errors` lists each with its location and field", body = ErrorBody),
        (status = 401, description = "No or wrong bearer token", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address within a minute (too_many_requests); no token was checked", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until this address may authenticate again"))),
        (status = 413, description = "Body over admin.max_body_bytes (default 64 MiB)", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn put_accounts(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    // An account set is much larger than a posting: it has its own cap. Larger sets go
    // through `accounts import` on a stopped server.
    let body = read_body(&req, payload, state.settings.admin.max_body_bytes).await?;
    let text = String::from_utf8(body.to_vec()).map_err(|_| AdminError::malformed(None, "the body is not UTF-8"))?;
    if text.trim().is_empty() {
        return Err(AdminError::bad("validation", "(body)", "the body holds no account"));
    }
    // Parsing a large set takes a while: not on the worker.
    let entries = web::block(move || parse_accounts_file(&text)).await?.map_err(refused)?;
    let summary = state.store.import_accounts(entries).await?;
    tracing::info!(
        accounts_created = summary.accounts_created,
        accounts_updated = summary.accounts_updated,
        "accounts upserted through the admin API"
    );
    Ok(HttpResponse::Ok().json(ImportAnswer::from(summary)))
}

fn refused(errors: Vec<EntryError>) -> AdminError {
    let first = errors.first().map_or_else(|| "(body)".to_string(), |e| e.field.clone());
    let message = format!(
        "nothing imported; {} bad entr{}: {}",
        errors.len(),
        if errors.len() == 1 { "y" } else { "ies" },
        errors.first().map(ToString::to_string).unwrap_or_default()
    );
    AdminError::new(StatusCode::BAD_REQUEST, "validation", Some(&first), message).with_errors(
        errors
            .into_iter()
            .map(|e| EntryProblem {
                location: e.location,
                field: e.field,
                message: e.message,
            })
            .collect(),
    )
}

// ---- The accounts file, described for `/openapi.json` (parsed by `domain::account`) ----

/// One account of the accounts file (docs/operations.md). Amounts are decimal strings.
#[derive(Serialize, ToSchema)]
pub struct AccountsFileEntry {
    pub account_number: String,
    pub customer_account_reference: Option<String>,
    pub account_holder_name: Option<String>,
    pub nickname: Option<String>,
    /// active (default), inactive, incollections, inbankruptcy, closed, repair.
    pub status: Option<String>,
    /// ISO 4217, default USD.
    pub currency: Option<String>,
    pub warning: Option<String>,
    /// The opening balance on first import; later imports keep the live balance unless
    /// `reset_balance` is true.
    pub current_balance: Option<String>,
    pub current_statement_balance: Option<String>,
    pub minimum_payment_due: Option<String>,
    pub past_amount_due: Option<String>,
    pub payment_due_date: Option<String>,
    pub statement_date: Option<String>,
    pub payoff_amount: Option<String>,
    pub payoff_expiry_date: Option<String>,
    pub min_payment_amount: Option<String>,
    pub max_payment_amount: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub address: Option<serde_json::Value>,
    pub reset_balance: Option<bool>,
    pub customers: Option<Vec<AccountsFileProfile>>,
}

/// A profile under an account; merged across accounts by `customer_reference`.
#[derive(Serialize, ToSchema)]
pub struct AccountsFileProfile {
    pub customer_reference: String,
    pub lookup_reference: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    /// 9 digits; kept only as a SHA-256 digest for lookups.
    pub ssn: Option<String>,
    pub home_phone: Option<String>,
    /// active (default), suspended, revoked.
    pub status: Option<String>,
    pub warning: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub address: Option<serde_json::Value>,
}
