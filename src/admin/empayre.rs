//! Admin routes of the Empayre channel (docs/operations.md, Admin API): stored events, quarantine, and
//! unmatched payments with the operator's assignment of an account.

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{OpenApi, ToSchema};

use super::error::{parse_json, AdminError, ErrorBody};
use super::feeds::ListQuery;
use crate::domain::money::format_amount;
use crate::domain::AccountNumber;
use crate::empayre::sink::{self, AssignError, Assigned};
use crate::http::{read_body, resource, rfc3339, RequestId};
use crate::state::AppState;
use crate::store::{EventFilter, Store, StoredEvent};

#[derive(OpenApi)]
#[openapi(paths(events, event, quarantine, unmatched, assign))]
pub struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource::<AdminError>(
        "/empayre/events",
        vec![(Method::GET, web::to(events))],
    ))
    .service(resource::<AdminError>(
        "/empayre/events/{source}/{event_id}",
        vec![(Method::GET, web::to(event))],
    ))
    .service(resource::<AdminError>(
        "/empayre/unmatched",
        vec![(Method::GET, web::to(unmatched))],
    ))
    .service(resource::<AdminError>(
        "/empayre/unmatched/{key}/assign",
        vec![(Method::POST, web::to(assign))],
    ))
    .service(resource::<AdminError>(
        "/quarantine",
        vec![(Method::GET, web::to(quarantine))],
    ));
}

/// What became of a stored event: kept and applied (`stored`), or kept in quarantine.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    Stored,
    Quarantined,
}

/// A stored event without its body.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventSummary {
    /// Arrival order; pass the last one seen as `after` for the next page.
    pub seq: u64,
    pub source: String,
    pub event_id: Option<i64>,
    pub event_type: Option<String>,
    pub invoice_id: Option<String>,
    #[schema(value_type = EventStatus)]
    pub status: String,
    /// Why it was quarantined.
    pub reason: Option<String>,
    pub received_at: String,
    pub body_sha256: String,
    /// Records it changed: `{kind, id, status}` and `{account_number, delta}`.
    #[schema(value_type = Vec<Object>)]
    pub changes: Vec<Value>,
    /// Entities whose snapshot was older than the recorded one (not applied).
    pub stale: Vec<String>,
}

impl From<&StoredEvent> for EventSummary {
    fn from(e: &StoredEvent) -> Self {
        Self {
            seq: e.seq,
            source: e.source.clone(),
            event_id: e.event_id,
            event_type: e.event_type.clone(),
            invoice_id: e.invoice_id.clone(),
            status: e.status.clone(),
            reason: e.reason.clone(),
            received_at: rfc3339(e.received_at),
            body_sha256: e.body_sha256.clone(),
            changes: e.changes.clone(),
            stale: e.stale.clone(),
        }
    }
}

/// One stored event with its raw body and the key that verified it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventDetail {
    #[serde(flatten)]
    pub summary: EventSummary,
    pub key_id: String,
    pub request_id: String,
    /// The body exactly as received.
    pub body: String,
    #[schema(schema_with = body_encoding_schema)]
    pub body_encoding: String,
}

/// How a stored body is shown (`StoredEvent::body_from`).
fn body_encoding_schema() -> utoipa::openapi::Object {
    crate::openapi::string_enum(
        "text: the body as it came (UTF-8); base64: the bytes were not UTF-8",
        ["text", "base64"],
        false,
    )
}

fn unmatched_reason_schema() -> utoipa::openapi::Object {
    use crate::ledger::empayre::UnmatchedReason;
    crate::openapi::string_enum(
        "no_account: the event names no account; unknown_account: it names one the biller does \
         not have; currency_mismatch: the account keeps another currency",
        crate::openapi::wire_names!(UnmatchedReason {
            NoAccount,
            UnknownAccount,
            CurrencyMismatch
        }),
        false,
    )
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    /// Newest first.
    pub items: Vec<EventSummary>,
}

/// A verified but unusable webhook body.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuarantineItem {
    pub id: u64,
    pub source: String,
    pub received_at: String,
    pub reason: Option<String>,
    pub body_sha256: String,
    pub body: String,
    #[schema(schema_with = body_encoding_schema)]
    pub body_encoding: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuarantineList {
    /// Newest first.
    pub items: Vec<QuarantineItem>,
}

/// An Empayre payment recorded without an account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UnmatchedItem {
    /// The payment record id (`source:invoice:payment`), used to assign an account.
    pub key: String,
    pub source: String,
    pub invoice_id: String,
    pub payment_id: String,
    pub status: Option<String>,
    pub amount: String,
    pub currency: String,
    #[schema(schema_with = unmatched_reason_schema)]
    pub reason: String,
    pub received_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnmatchedList {
    /// Newest first.
    pub items: Vec<UnmatchedItem>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"account_number": "ACC-100200"}))]
pub struct AssignRequest {
    pub account_number: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AssignResult {
    pub key: String,
    pub account_number: String,
    pub status: String,
    /// The balance change it made (negative: a credit).
    pub delta: String,
    pub balance_after: Option<String>,
    pub journal_seq: Option<u64>,
}

/// The filters of `GET /admin/empayre/events`.
fn event_filter(query: &ListQuery) -> Result<EventFilter, AdminError> {
    let status = query.text("status")?;
    if status.is_some_and(|s| !matches!(s, "stored" | "quarantined")) {
        return Err(AdminError::bad_value("status", "status is stored or quarantined"));
    }
    Ok(EventFilter {
        invoice_id: query.text("invoice_id")?.map(str::to_string),
        status: status.map(str::to_string),
        before: query.after()?,
        limit: query.limit()?,
    })
}

/// Stored Empayre events, newest first.
#[utoipa::path(
    get,
    path = "/admin/empayre/events",
    tag = "admin",
    params(
        ("invoice_id" = Option<String>, Query, description = "Only events of this invoice"),
        ("status" = Option<EventStatus>, Query, description = "Only events stored (and applied) or only those quarantined"),
        ("after" = Option<u64>, Query, description = "Paging: events that arrived before this seq (0 to 2^63−1)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "At most this many, 1–1000 (default 100)"),
    ),
    responses(
        (status = 200, description = "The events", body = EventList),
        (status = 400, description = "`bad_value`: `status` is not stored or quarantined, `after` or `limit` is not a whole number in its range, or a parameter is given twice (`field` names it)", body = ErrorBody),
        (status = 401, description = "No or wrong bearer token", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address within a minute (too_many_requests); no token was checked", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until this address may authenticate again"))),
    ),
    security(("admin_token" = []))
)]
pub async fn events(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    let filter = event_filter(&ListQuery::parse(&req)?)?;
    let found = state.store.events(&filter).await?;
    let items = found.iter().map(EventSummary::from).collect();
    Ok(HttpResponse::Ok().json(EventList { items }))
}

/// One event: the raw body, the key that verified it and what it changed.
#[utoipa::path(
    get,
    path = "/admin/empayre/events/{source}/{event_id}",
    tag = "admin",
    params(
        ("source" = String, Path, description = "Source name", example = "demo"),
        ("event_id" = i64, Path, description = "eventID", example = 184415),
    ),
    responses(
        (status = 200, description = "The event", body = EventDetail),
        (status = 400, description = "`bad_value`: `event_id` is not an integer (`field` is `event_id`)", body = ErrorBody),
        (status = 401, description = "No or wrong bearer token", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address within a minute (too_many_requests); no token was checked", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until this address may authenticate again"))),
        (status = 404, description = "No such event", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn event(state: web::Data<AppState>, path: web::Path<(String, String)>) -> Result<HttpResponse, AdminError> {
    let (source, event_id) = path.into_inner();
    let event_id: i64 = event_id
        .parse()
        .map_err(|_| AdminError::bad_value("event_id", "event_id must be an integer"))?;
    let found = state
        .store
        .event(&source, event_id)
        .await?
        .ok_or_else(|| AdminError::not_found("event_id", "no such event for this source"))?;
    Ok(HttpResponse::Ok().json(EventDetail {
        summary: EventSummary::from(&found),
        key_id: found.key_id,
        request_id: found.request_id,
        body: found.body,
        body_encoding: found.body_encoding,
    }))
}

/// Verified but unusable webhook bodies, newest first.
#[utoipa::path(
    get,
    path = "/admin/quarantine",
    tag = "admin",
    params(("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "At most this many, 1–1000 (default 100)")),
    responses(
        (status = 200, description = "The quarantined bodies", body = QuarantineList),
        (status = 400, description = "`bad_value`: `limit` is not a whole number from 1 to 1000, or is given twice (`field` is `limit`)", body = ErrorBody),
        (status = 401, description = "No or wrong bearer token", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address within a minute (too_many_requests); no token was checked", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until this address may authenticate again"))),
    ),
    security(("admin_token" = []))
)]
pub async fn quarantine(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    let n = ListQuery::parse(&req)?.limit()?;
    Ok(HttpResponse::Ok().json(quarantine_list(&state.store, n).await?))
}

/// The newest quarantined bodies, for the admin API and the console.
pub async fn quarantine_list(store: &Store, limit: usize) -> Result<QuarantineList, AdminError> {
    let found = store.quarantined(limit).await?;
    let items = found
        .into_iter()
        .map(|e| QuarantineItem {
            id: e.seq,
            source: e.source,
            received_at: rfc3339(e.received_at),
            reason: e.reason,
            body_sha256: e.body_sha256,
            body: e.body,
            body_encoding: e.body_encoding,
        })
        .collect();
    Ok(QuarantineList { items })
}

/// Empayre payments recorded without an account, newest first.
#[utoipa::path(
    get,
    path = "/admin/empayre/unmatched",
    tag = "admin",
    responses(
        (status = 200, description = "The unmatched payments", body = UnmatchedList),
        (status = 401, description = "No or wrong bearer token", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address within a minute (too_many_requests); no token was checked", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until this address may authenticate again"))),
    ),
    security(("admin_token" = []))
)]
pub async fn unmatched(state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    Ok(HttpResponse::Ok().json(unmatched_list(&state.store).await?))
}

/// Every unmatched Empayre payment, for the admin API and the console.
pub async fn unmatched_list(store: &Store) -> Result<UnmatchedList, AdminError> {
    let stored = store.unmatched().await?;
    let items = stored
        .into_iter()
        .map(serde_json::from_value)
        .collect::<Result<Vec<UnmatchedItem>, _>>()
        .map_err(AdminError::unavailable)?;
    Ok(UnmatchedList { items })
}

/// Assigns an account to an unmatched payment: it takes effect on that account through the
/// ledger like any posting (journal entry, durable before the answer).
#[utoipa::path(
    post,
    path = "/admin/empayre/unmatched/{key}/assign",
    tag = "admin",
    params(("key" = String, Path, description = "The unmatched payment's key (`source:invoice:payment`)", example = "demo:2RpE7xK5:1")),
    request_body = AssignRequest,
    responses(
        (status = 200, description = "Assigned and applied", body = AssignResult),
        (status = 400, description = "`malformed`: the body is not a JSON object with a string `account_number`; `bad_value`: no such account, or the account keeps another currency (`field` is `account_number`)", body = ErrorBody),
        (status = 401, description = "No or wrong bearer token", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address within a minute (too_many_requests); no token was checked", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until this address may authenticate again"))),
        (status = 404, description = "No unmatched payment with this key", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn assign(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
    rid: RequestId,
) -> Result<HttpResponse, AdminError> {
    let key = path.into_inner();
    let body = read_body(&req, payload, state.settings.server.max_body_bytes).await?;
    let AssignRequest { account_number } = parse_json(&body)?;
    Ok(HttpResponse::Ok().json(assign_unmatched(&state.store, key, account_number, &rid).await?))
}

/// The admin API's words for a refused assignment.
fn assign_refused(e: AssignError) -> AdminError {
    match e {
        AssignError::NotUnmatched => AdminError::not_found("key", "no unmatched payment with this key"),
        AssignError::UnknownAccount => AdminError::bad_value("account_number", "no such account"),
        AssignError::Refused(why) => AdminError::bad_value("account_number", why),
        AssignError::Store(e) => e.into(),
    }
}

/// Assigns an account to an unmatched payment through the ledger (durable before it returns),
/// for the admin API and the console.
pub async fn assign_unmatched(
    store: &Store,
    key: String,
    account_number: String,
    rid: &RequestId,
) -> Result<AssignResult, AdminError> {
    // A number that is not an account number's shape names no account.
    let number =
        AccountNumber::try_from(account_number.clone()).map_err(|_| assign_refused(AssignError::UnknownAccount))?;
    let Assigned { change, committed } = sink::assign(store, key.clone(), number, rid.as_str().to_string(), Utc::now())
        .await
        .map_err(assign_refused)?;
    tracing::info!(key = %key, account = %account_number, "unmatched Empayre payment assigned");
    Ok(AssignResult {
        key,
        account_number,
        status: change.payment.status.to_string(),
        delta: change.delta.to_string(),
        balance_after: committed
            .balance_after
            .map(|b| format_amount(b, committed.currency_exponent)),
        journal_seq: committed.journal_seq,
    })
}

/// What assigning would do, without doing it: the same checks and the same ledger decision
/// as [`assign_unmatched`] (`empayre::sink::preview_assign`), for the console's confirmation.
#[derive(Debug, Serialize)]
pub struct AssignPreview {
    pub key: String,
    pub amount: String,
    pub currency: String,
    pub account_number: String,
    pub current_balance: String,
    /// The balance change assigning would make (negative: a credit).
    pub delta: String,
    pub balance_after: String,
}

pub async fn preview_assignment(
    store: &Store,
    key: String,
    account_number: String,
    rid: &RequestId,
) -> Result<AssignPreview, AdminError> {
    let number = AccountNumber::try_from(account_number).map_err(|_| assign_refused(AssignError::UnknownAccount))?;
    let sink::AssignPreview { change, account } =
        sink::preview_assign(store, key.clone(), number, rid.as_str().to_string(), Utc::now())
            .await
            .map_err(assign_refused)?;
    let now = account.current_balance();
    Ok(AssignPreview {
        key,
        amount: account.format(change.payment.amount),
        currency: change.payment.currency.to_string(),
        current_balance: account.format(now),
        delta: account.format(change.delta),
        balance_after: account.format(now + change.delta),
        account_number: account.account_number.into(),
    })
}
