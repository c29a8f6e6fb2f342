//! `POST /admin/postings/search` and `GET /admin/postings/{kind}/{id}`.

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use utoipa::OpenApi;

use super::error::{AdminError, ErrorBody};
use super::search::{SearchRequest, SearchResponse};
use super::views::{JournalEntryView, JournalFormatter, RecordView};
use crate::http::{read_body, resource};
use crate::ledger::RecordKind;
use crate::state::AppState;
use crate::store::{SearchQuery, Store};

#[derive(OpenApi)]
#[openapi(paths(search, record), components(schemas(RecordKindInPath)))]
pub struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource::<AdminError>(
        "/postings/search",
        vec![(Method::POST, web::to(search))],
    ))
    .service(resource::<AdminError>(
        "/postings/{kind}/{id}",
        vec![(Method::GET, web::to(record))],
    ));
}

/// Search the records of both channels in a received_at window (docs/operations.md).
#[utoipa::path(
    post,
    path = "/admin/postings/search",
    tag = "admin",
    request_body = SearchRequest,
    responses(
        (status = 200, description = "The matching records' count and the requested page; with `Accept: text/csv`, that page as CSV (a header row, then one row per record; the count in `x-total-count`)",
            content((SearchResponse = "application/json"), (String = "text/csv"))),
        (status = 400, description = "Bad name, method, arity, value, paging or order, or no received_at window; `field` names it", body = ErrorBody),
        (status = 401, description = "No or wrong bearer token", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address within a minute (too_many_requests); no token was checked", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until this address may authenticate again"))),
    ),
    security(("admin_token" = []))
)]
pub async fn search(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let body = read_body(&req, payload, state.settings.server.max_body_bytes).await?;
    let request = SearchRequest::from_body(&body)?;
    let query = request.to_query()?;
    let found = run_search(&state.store, query).await?;
    if wants_csv(&req) {
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header(("x-total-count", found.total_count.to_string()))
            .body(records_csv(&found.records)));
    }
    Ok(HttpResponse::Ok().json(found))
}

/// The search the admin API and the console both run: the matching count and one page.
pub async fn run_search(store: &Store, query: SearchQuery) -> Result<SearchResponse, AdminError> {
    let page = store.search(&query).await?;
    Ok(SearchResponse {
        total_count: page.total,
        records: page.records.iter().map(RecordView::from).collect(),
    })
}

/// Whether the caller asked for CSV (`Accept: text/csv`) rather than JSON.
fn wants_csv(req: &HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            accept.split(',').any(|part| {
                part.split(';')
                    .next()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/csv"))
            })
        })
}

/// The CSV columns of a record, in order.
pub const CSV_COLUMNS: [&str; 13] = [
    "received_at",
    "channel",
    "kind",
    "id",
    "account_number",
    "status",
    "amount",
    "currency",
    "confirmation_number",
    "reference",
    "payment_method",
    "client_key",
    "updated_at",
];

/// Records as CSV (RFC 4180, header row first). A text cell that a spreadsheet would run as a
/// formula (starting with `=`, `+`, `-`, `@`) gets a leading `'`; amounts are numbers and keep
/// their sign.
pub fn records_csv(records: &[RecordView]) -> String {
    let mut out = String::with_capacity(64 + records.len() * 160);
    out.push_str(&CSV_COLUMNS.join(","));
    out.push_str("\r\n");
    for r in records {
        let text = |v: &str| csv_cell(v, true);
        let opt = |v: &Option<String>| v.as_deref().map_or_else(String::new, |s| csv_cell(s, true));
        let row = [
            text(&r.received_at),
            text(&r.channel),
            text(&r.kind),
            text(&r.id),
            opt(&r.account_number),
            text(&r.status),
            csv_cell(&r.amount, false),
            text(&r.currency),
            opt(&r.confirmation_number),
            opt(&r.reference),
            opt(&r.payment_method),
            opt(&r.client_key),
            text(&r.updated_at),
        ];
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

fn csv_cell(value: &str, is_text: bool) -> String {
    let guarded = if is_text && value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// One record with its history of status changes.
#[utoipa::path(
    get,
    path = "/admin/postings/{kind}/{id}",
    tag = "admin",
    params(
        ("kind" = RecordKindInPath, Path, description = "payment, refund, empayre-payment or empayre-refund", example = "payment"),
        ("id" = String, Path, description = "The record id (EBPP posting id, or the Empayre key)", example = "1001"),
    ),
    responses(
        (status = 200, description = "The record", body = RecordView),
        (status = 401, description = "No or wrong bearer token", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address within a minute (too_many_requests); no token was checked", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until this address may authenticate again"))),
        (status = 404, description = "Unknown kind or no such record", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn record(path: web::Path<(String, String)>, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    let (kind, id) = path.into_inner();
    Ok(HttpResponse::Ok().json(find_record(&state.store, &kind, &id).await?))
}

/// The record kinds as the path spells them, for the document (`RecordKind::parse` reads them;
/// a unit test in `openapi` checks the two lists agree).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub enum RecordKindInPath {
    #[schema(rename = "payment")]
    Payment,
    #[schema(rename = "refund")]
    Refund,
    #[schema(rename = "empayre-payment")]
    EmpayrePayment,
    #[schema(rename = "empayre-refund")]
    EmpayreRefund,
}

/// One record by its kind (as the path spells it) and id, for the admin API and the console.
pub async fn find_record(store: &Store, kind: &str, id: &str) -> Result<RecordView, AdminError> {
    let kind = RecordKind::parse(kind)
        .ok_or_else(|| AdminError::not_found("kind", "kind is payment, refund, empayre-payment or empayre-refund"))?;
    match store.record(kind, id).await? {
        Some(r) => Ok(RecordView::from(&r)),
        None => Err(AdminError::not_found(
            "id",
            format!("no {} with id {id:?}", kind.as_str()),
        )),
    }
}

/// The journal entries one record made, oldest first (the console's record page; the same
/// entries as in its account's journal, found by the record instead of among the newest).
pub async fn record_journal(store: &Store, kind: &str, id: &str) -> Result<Vec<JournalEntryView>, AdminError> {
    let Some(kind) = RecordKind::parse(kind) else {
        return Ok(Vec::new());
    };
    let mut format = JournalFormatter::new(store);
    let mut out = Vec::new();
    for entry in store.record_journal(kind, id).await? {
        out.push(format.view(&entry).await?);
    }
    Ok(out)
}
