//! `GET /admin/journal` (the change feed a biller's core system polls) and
//! `GET /admin/rejections` (the request log of refused requests).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{OpenApi, ToSchema};

use super::error::{AdminError, ErrorBody};
use super::views::{JournalEntryView, JournalFormatter};
use crate::state::AppState;
use crate::store::StoreError;

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

#[derive(OpenApi)]
#[openapi(paths(journal, rejections))]
pub struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/journal", web::get().to(journal))
        .route("/rejections", web::get().to(rejections));
}

/// A page of the journal.
#[derive(Debug, Serialize, ToSchema)]
pub struct JournalPage {
    /// Entries with `seq > after`, in order.
    pub entries: Vec<JournalEntryView>,
    /// The last `seq` returned, or the request's `after` when there is none: pass it as the
    /// next `after`.
    pub next_after: u64,
}

/// One refused request.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectionItem {
    pub at: Option<String>,
    /// orbipay or empayre.
    pub channel: Option<String>,
    pub endpoint: Option<String>,
    /// unauthorized, signature_invalid, signature_missing, payload_too_large, malformed,
    /// validation or business_rule.
    pub cause: Option<String>,
    /// The error code the caller got.
    pub code: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RejectionList {
    /// Newest first.
    pub items: Vec<RejectionItem>,
}

#[derive(Deserialize)]
struct Params {
    after: Option<String>,
    limit: Option<String>,
}

fn params(req: &HttpRequest) -> Result<Params, AdminError> {
    serde_urlencoded::from_str(req.query_string())
        .map_err(|e| AdminError::malformed(None, format!("bad query string: {e}")))
}

fn number(value: Option<&str>, field: &str, default: u64, max: u64) -> Result<u64, AdminError> {
    let Some(s) = value.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(default);
    };
    match s.parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(AdminError::bad(
            "bad_value",
            field,
            format!("{field} is a whole number from 0 to {max}"),
        )),
    }
}

fn limit(value: Option<&str>) -> Result<usize, AdminError> {
    match number(value, "limit", DEFAULT_LIMIT as u64, MAX_LIMIT as u64)? {
        0 => Err(AdminError::bad(
            "bad_value",
            "limit",
            format!("limit is a whole number from 1 to {MAX_LIMIT}"),
        )),
        n => Ok(n as usize),
    }
}

/// Journal entries after a cursor: `seq` starts at 1 and has no gaps, so polling with the
/// previous `next_after` sees every balance change exactly once.
#[utoipa::path(
    get,
    path = "/admin/journal",
    tag = "admin",
    params(
        ("after" = Option<u64>, Query, description = "Return entries with seq above this (default 0)"),
        ("limit" = Option<u32>, Query, description = "At most this many entries, 1–1000 (default 100)"),
    ),
    responses(
        (status = 200, description = "The entries and the next cursor", body = JournalPage),
        (status = 400, description = "Bad after or limit", body = ErrorBody),
        (status = 401, description = "No or wrong bearer token", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn journal(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    let p = params(&req)?;
    let after = number(p.after.as_deref(), "after", 0, u64::MAX)?;
    let limit = limit(p.limit.as_deref())?;
    let store = state.store.clone();
    let entries = web::block(move || -> Result<Vec<JournalEntryView>, StoreError> {
        let mut format = JournalFormatter::new(&store);
        store
            .journal_after(after, limit)?
            .iter()
            .map(|e| format.view(e))
            .collect()
    })
    .await??;
    let next_after = entries.last().map_or(after, |e| e.seq);
    Ok(HttpResponse::Ok().json(JournalPage { entries, next_after }))
}

/// Recent refused requests with their cause, newest first.
#[utoipa::path(
    get,
    path = "/admin/rejections",
    tag = "admin",
    params(("limit" = Option<u32>, Query, description = "At most this many, 1–1000 (default 100)")),
    responses(
        (status = 200, description = "The refused requests", body = RejectionList),
        (status = 400, description = "Bad limit", body = ErrorBody),
        (status = 401, description = "No or wrong bearer token", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn rejections(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    let limit = limit(params(&req)?.limit.as_deref())?;
    let store = state.store.clone();
    let stored = web::block(move || store.recent_rejections(limit)).await??;
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    let items = stored
        .iter()
        .map(|v| RejectionItem {
            at: text(v, "at"),
            channel: text(v, "channel"),
            endpoint: text(v, "endpoint"),
            cause: text(v, "cause"),
            code: text(v, "code"),
            request_id: text(v, "request_id"),
        })
        .collect();
    Ok(HttpResponse::Ok().json(RejectionList { items }))
}
