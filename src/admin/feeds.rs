//! `GET /admin/journal` (the change feed a biller's core system polls) and
//! `GET /admin/rejections` (the request log of refused requests).

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::Value;
use utoipa::{OpenApi, ToSchema};

use super::error::{AdminError, ErrorBody};
use super::views::{JournalEntryView, JournalFormatter};
use crate::http::resource;
use crate::state::AppState;
use crate::store::Store;

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

#[derive(OpenApi)]
#[openapi(paths(journal, rejections))]
pub struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource::<AdminError>(
        "/journal",
        vec![(Method::GET, web::to(journal))],
    ))
    .service(resource::<AdminError>(
        "/rejections",
        vec![(Method::GET, web::to(rejections))],
    ));
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
    #[schema(schema_with = rejection_channel_schema)]
    pub channel: Option<String>,
    pub endpoint: Option<String>,
    #[schema(schema_with = rejection_cause_schema)]
    pub cause: Option<String>,
    /// The error code the caller got.
    pub code: Option<String>,
    pub request_id: Option<String>,
}

/// Every cause a refusal is logged with (the channels' handlers and the admin guard name them;
/// `/metrics` counts rejections by the same names).
pub const REJECTION_CAUSES: [&str; 8] = [
    "unauthorized",
    "throttled",
    "signature_invalid",
    "signature_missing",
    "payload_too_large",
    "malformed",
    "validation",
    "business_rule",
];

fn rejection_cause_schema() -> utoipa::openapi::Object {
    crate::openapi::string_enum(
        "Why it was refused: unauthorized, throttled (429: too many failed authentications from \
         the address), signature_invalid, signature_missing, payload_too_large, malformed, \
         validation or business_rule",
        REJECTION_CAUSES,
        true,
    )
}

fn rejection_channel_schema() -> utoipa::openapi::Object {
    use crate::ledger::Channel;
    crate::openapi::string_enum(
        "orbipay, empayre or admin (a wrong admin token or console sign-in)",
        crate::openapi::wire_names!(Channel {
            Orbipay,
            Empayre,
            Admin
        }),
        true,
    )
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RejectionList {
    /// Newest first.
    pub items: Vec<RejectionItem>,
}

/// The query string of a list route (`limit`, `after` and filters), read the same way by every
/// admin list so that one mistake gets one answer everywhere: `bad_value`, `field` naming the
/// parameter, and the range the service takes in the message.
pub struct ListQuery {
    pairs: Vec<(String, String)>,
}

/// The largest `after`: cursors are documented as int64, so nothing above it is taken or echoed.
pub const MAX_AFTER: u64 = i64::MAX as u64;

impl ListQuery {
    pub fn parse(req: &HttpRequest) -> Result<Self, AdminError> {
        // Percent-decoding is lossy (a bad escape is kept as text, bad UTF-8 replaced), so
        // string pairs always parse and a bad value is refused by the parameter that reads
        // it; the documented answer stays `bad_value` should this ever fail.
        let pairs = serde_urlencoded::from_str(req.query_string())
            .map_err(|e| AdminError::bad_value("(query)", format!("bad query string: {e}")))?;
        Ok(Self { pairs })
    }

    /// The value of `name`, if given; a parameter given twice is refused rather than guessed at.
    pub fn text(&self, name: &str) -> Result<Option<&str>, AdminError> {
        let mut values = self.pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(AdminError::bad_value(name, format!("{name} is given more than once")));
        }
        Ok(first)
    }

    /// `limit`: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when left out.
    pub fn limit(&self) -> Result<usize, AdminError> {
        let n = self.number("limit", 1, MAX_LIMIT as u64)?;
        Ok(n.map_or(DEFAULT_LIMIT, |n| n as usize))
    }

    /// `after` (a cursor): 0 to [`MAX_AFTER`], or `None` when left out.
    pub fn after(&self) -> Result<Option<u64>, AdminError> {
        self.number("after", 0, MAX_AFTER)
    }

    /// A whole number in `min..=max`: decimal digits only (no sign, no spaces, not empty).
    fn number(&self, name: &str, min: u64, max: u64) -> Result<Option<u64>, AdminError> {
        let Some(value) = self.text(name)? else {
            return Ok(None);
        };
        let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
        match value.parse::<u64>() {
            Ok(n) if digits && (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(AdminError::bad_value(
                name,
                format!("{name} is a whole number from {min} to {max}"),
            )),
        }
    }
}

/// Journal entries after a cursor: `seq` starts at 1 and has no gaps, so polling with the
/// previous `next_after` sees every balance change exactly once.
#[utoipa::path(
    get,
    path = "/admin/journal",
    tag = "admin",
    params(
        ("after" = Option<u64>, Query, description = "Return entries with seq above this, 0 to 2^63−1 (default 0)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "At most this many entries, 1–1000 (default 100)"),
    ),
    responses(
        (status = 200, description = "The entries and the next cursor", body = JournalPage),
        (status = 400, description = "`bad_value`: `after` or `limit` is not a whole number in its range, or is given twice (`field` names it, the message gives the range)", body = ErrorBody),
        (status = 401, description = "No or wrong bearer token", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address within a minute (too_many_requests); no token was checked", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until this address may authenticate again"))),
    ),
    security(("admin_token" = []))
)]
pub async fn journal(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    let query = ListQuery::parse(&req)?;
    let after = query.after()?.unwrap_or(0);
    let limit = query.limit()?;
    let mut format = JournalFormatter::new(&state.store);
    let mut entries = Vec::with_capacity(limit.min(1024));
    for entry in state.store.journal_after(after, limit).await? {
        entries.push(format.view(&entry).await?);
    }
    let next_after = entries.last().map_or(after, |e| e.seq);
    Ok(HttpResponse::Ok().json(JournalPage { entries, next_after }))
}

/// Recent refused requests with their cause, newest first.
#[utoipa::path(
    get,
    path = "/admin/rejections",
    tag = "admin",
    params(("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "At most this many, 1–1000 (default 100)")),
    responses(
        (status = 200, description = "The refused requests", body = RejectionList),
        (status = 400, description = "`bad_value`: `limit` is not a whole number from 1 to 1000, or is given twice (`field` is `limit`)", body = ErrorBody),
        (status = 401, description = "No or wrong bearer token", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address within a minute (too_many_requests); no token was checked", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until this address may authenticate again"))),
    ),
    security(("admin_token" = []))
)]
pub async fn rejections(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    let limit = ListQuery::parse(&req)?.limit()?;
    Ok(HttpResponse::Ok().json(rejection_list(&state.store, limit).await?))
}

/// The newest refused requests, for the admin API and the console.
pub async fn rejection_list(store: &Store, limit: usize) -> Result<RejectionList, AdminError> {
    let stored = store.recent_rejections(limit).await?;
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
    Ok(RejectionList { items })
}
