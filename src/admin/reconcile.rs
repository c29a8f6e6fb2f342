//! Admin routes of the Empayre reconciliation: start a run for a window
//! (`POST /admin/empayre/reconcile`, what `biller-inbox empayre reconcile` calls) and list the
//! newest runs, the background job's included (`GET /admin/empayre/reconcile`).

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::error::{parse_json, AdminError, ErrorBody};
use super::feeds::ListQuery;
use crate::empayre::reconcile::{Report, Request, Trigger};
use crate::http::{read_body, resource};
use crate::state::AppState;

/// The longest window one request may ask for.
const MAX_WINDOW_DAYS: i64 = 366;

#[derive(OpenApi)]
#[openapi(paths(start, runs))]
pub struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource::<AdminError>(
        "/empayre/reconcile",
        vec![(Method::GET, web::to(runs)), (Method::POST, web::to(start))],
    ));
}

/// A reconciliation to run now.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileRequest {
    /// The `[[empayre.sources]]` entry (it needs `api_token` and `shop_ids`).
    pub source: String,
    /// Start of the window (RFC 3339): payments and refunds the platform created from then on.
    #[schema(format = DateTime, example = "2026-11-21T00:00:00Z")]
    pub since: String,
    /// End of the window (RFC 3339), after `since` and at most 366 days later; now when absent.
    #[schema(format = DateTime, example = "2026-11-22T00:00:00Z")]
    pub until: Option<String>,
    /// Decide and report, apply nothing.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunList {
    /// Newest first.
    pub items: Vec<Report>,
}

fn time(field: &str, text: &str) -> Result<DateTime<Utc>, AdminError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| AdminError::bad_value(field, format!("{field} must be an RFC 3339 date-time")))
}

/// Reconciles one source's payments and refunds in a window with the Empayre API, and answers
/// with the report once what it applied is on disk. A run that could not read the API answers
/// 200 too, with `status: failed` and the reason: nothing of an unread answer is applied.
#[utoipa::path(
    post,
    path = "/admin/empayre/reconcile",
    tag = "admin",
    request_body = ReconcileRequest,
    responses(
        (status = 200, description = "The run's report (status ok or failed)", body = Report),
        (status = 400, description = "Unknown source, a source without API access or shops, or a bad window", body = ErrorBody),
        (status = 401, description = "No or wrong bearer token", body = ErrorBody),
        (status = 413, description = "Body over server.max_body_bytes (default 256 KiB)", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address within a minute (too_many_requests); no token was checked", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until this address may authenticate again"))),
    ),
    security(("admin_token" = []))
)]
pub async fn start(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, AdminError> {
    let body = read_body(&req, payload, state.settings.server.max_body_bytes).await?;
    let asked: ReconcileRequest = parse_json(&body)?;
    let from = time("since", &asked.since)?;
    let to = match &asked.until {
        Some(text) => time("until", text)?,
        None => Utc::now(),
    };
    if from >= to {
        return Err(AdminError::bad_value("until", "until must be after since"));
    }
    if to - from > chrono::Duration::days(MAX_WINDOW_DAYS) {
        return Err(AdminError::bad_value(
            "since",
            format!("the window is longer than {MAX_WINDOW_DAYS} days; reconcile it in parts"),
        ));
    }
    let report = crate::empayre::reconcile_job::run_now(
        &state,
        &asked.source,
        Request {
            source: asked.source.clone(),
            from,
            to,
            dry_run: asked.dry_run,
            trigger: Trigger::Manual,
        },
    )
    .await
    .map_err(|why| AdminError::bad_value("source", why))?;
    Ok(HttpResponse::Ok().json(report))
}

/// The newest reconciliation runs (the background job's and the operators'), newest first.
#[utoipa::path(
    get,
    path = "/admin/empayre/reconcile",
    tag = "admin",
    params(
        ("source" = Option<String>, Query, description = "Only this source's runs"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "At most this many, 1–1000 (default 100)"),
    ),
    responses(
        (status = 200, description = "The runs", body = RunList),
        (status = 400, description = "`bad_value`: `limit` is not a whole number from 1 to 1000, or a parameter is given twice (`field` names it)", body = ErrorBody),
        (status = 401, description = "No or wrong bearer token", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address within a minute (too_many_requests); no token was checked", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until this address may authenticate again"))),
    ),
    security(("admin_token" = []))
)]
pub async fn runs(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    let query = ListQuery::parse(&req)?;
    let limit = query.limit()?;
    let items = state.reconciler.recent(query.text("source")?, limit);
    Ok(HttpResponse::Ok().json(RunList { items }))
}
