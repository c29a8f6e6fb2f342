//! A fake Empayre API for the tests: an HTTP server on port 0 inside the test process that
//! implements the subset biller-inbox calls (the Empayre API subset in docs/empayre.md) the way the reference
//! (Empayre Payment API 2.0.1) describes it:
//!
//! - every call needs `Authorization: Bearer <token>` (401 `{"message"}` otherwise) and an
//!   `X-Request-ID` of 1..32 characters (400 `invalidRequest`); `X-Request-Deadline`, when sent,
//!   is 1..40 characters and an RFC 3339 time or a relative `<n>ms|s|m` (400 `invalidDeadline`);
//! - `GET /processing/webhooks` (200 `[Webhook]`), `POST /processing/webhooks` (201 `Webhook`,
//!   400 `invalidRequest`/`invalidShopID`, 429 `{"message":"Webhook limit exceeded"}` past 10
//!   per shop), every webhook of the party carrying the party's one public key (B2.2);
//! - `GET /analytics/shops/{shopID}/payments|refunds?fromTime=&toTime=&limit=
//!   [&paymentStatus=][&continuationToken=]`: results whose `createdAt` is in the window, oldest
//!   first, pages of at most `limit` (and of the test's `page_size`), a continuation token while
//!   more remain, bound to the query's conditions (400 when reused with other ones);
//! - `GET /processing/invoices/{invoiceID}` (200 `Invoice`, 404 `{"message":"Invoice not found"}`).
//!
//! Tests script it: answers queued per route are served first (429 with `Retry-After`, 5xx, a
//! malformed body), and every request is recorded (method, path, query, headers of interest).

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// The test token the fake accepts.
pub const FAKE_TOKEN: &str = "fake-empayre-token-7f3a9c";

/// The subscribe names `createWebhook` accepts (B1.10).
const SUBSCRIBE_NAMES: &[&str] = &[
    "InvoiceCreated",
    "InvoicePaid",
    "InvoiceCancelled",
    "InvoiceFulfilled",
    "PaymentStarted",
    "PaymentProcessed",
    "PaymentCaptured",
    "PaymentCancelled",
    "PaymentRefunded",
    "PaymentFailed",
    "PaymentRefundCreated",
    "PaymentRefundSucceeded",
    "PaymentRefundFailed",
    "PaymentUserInteractionRequested",
    "PaymentUserInteractionCompleted",
];

/// The `paymentStatus` values the reference's searchPayments accepts (no `charged_back`).
const PAYMENT_STATUS_FILTER: &[&str] = &["pending", "processed", "captured", "cancelled", "refunded", "failed"];

/// Which call a scripted answer replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    GetWebhooks,
    CreateWebhook,
    SearchPayments,
    SearchRefunds,
    GetInvoice,
}

/// An answer served instead of the fake's own.
#[derive(Debug, Clone)]
pub struct Scripted {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Do what the call asks anyway (create the webhook), then answer this: an answer lost on
    /// the way back.
    pub perform: bool,
}

impl Scripted {
    pub fn status(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: vec![],
            body: body.to_string(),
            perform: false,
        }
    }

    /// Does the work, then answers `status` as if it had failed (504 after the fact).
    pub fn performed_then(status: u16) -> Self {
        Self {
            perform: true,
            ..Self::status(status, json!({"message": "Gateway timeout"}))
        }
    }

    pub fn too_many(retry_after: &str) -> Self {
        Self {
            status: 429,
            headers: vec![("Retry-After".into(), retry_after.into())],
            body: json!({"message": "Too many requests"}).to_string(),
            perform: false,
        }
    }

    pub fn raw(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![],
            body: body.to_string(),
            perform: false,
        }
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub authorization: Option<String>,
    pub request_id: Option<String>,
    pub deadline: Option<String>,
    pub body: Option<Value>,
    pub status: u16,
}

pub struct FakeState {
    pub token: String,
    pub party_id: String,
    /// The party's key as `Webhook.publicKey` carries it.
    pub public_key: String,
    pub shops: Vec<String>,
    pub webhooks: Vec<Value>,
    pub next_webhook_id: u64,
    pub invoices: BTreeMap<String, Value>,
    /// `PaymentSearchResult` objects.
    pub payments: Vec<Value>,
    /// `(shopID, RefundSearchResult)`: a refund result names no shop.
    pub refunds: Vec<(String, Value)>,
    /// The largest page served whatever `limit` asks (servers cap pages too).
    pub page_size: usize,
    pub script: VecDeque<(Route, Scripted)>,
    pub seen: Vec<Seen>,
}

#[derive(Clone)]
pub struct FakeEmpayre {
    /// The API base, as `api_url` takes it (`http://127.0.0.1:PORT/v2`).
    pub url: String,
    state: Arc<Mutex<FakeState>>,
    handle: actix_web::dev::ServerHandle,
}

/// The fixture public key as the platform returns it today: SPKI PEM, LF line ends, no newline
/// after the END line (B2.2).
pub fn platform_key_pem() -> String {
    crate::helpers::repo_text("fixtures/keys/empayre_test_public.pem")
        .trim_end()
        .replace("\r\n", "\n")
}

impl FakeEmpayre {
    /// A fake for one party with the given shops, serving the fixture key.
    pub async fn start(shops: &[&str]) -> Self {
        let state = Arc::new(Mutex::new(FakeState {
            token: FAKE_TOKEN.into(),
            party_id: "party-1".into(),
            public_key: platform_key_pem(),
            shops: shops.iter().map(|s| s.to_string()).collect(),
            webhooks: Vec::new(),
            next_webhook_id: 1,
            invoices: BTreeMap::new(),
            payments: Vec::new(),
            refunds: Vec::new(),
            page_size: 1000,
            script: VecDeque::new(),
            seen: Vec::new(),
        }));
        let shared = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(shared.clone()))
                .default_service(web::to(handle))
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .expect("fake Empayre binds");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/v2"),
            state,
            handle,
        }
    }

    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake state")
    }

    pub fn script(&self, route: Route, answer: Scripted) {
        self.state().script.push_back((route, answer));
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state().seen.clone()
    }

    /// Requests to paths ending in `suffix`.
    pub fn seen_at(&self, suffix: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path.ends_with(suffix)).collect()
    }

    pub fn add_invoice(&self, invoice: Value) {
        let id = invoice["id"].as_str().expect("invoice id").to_string();
        self.state().invoices.insert(id, invoice);
    }

    pub fn add_payment(&self, payment: Value) {
        self.state().payments.push(payment);
    }

    pub fn add_refund(&self, shop: &str, refund: Value) {
        self.state().refunds.push((shop.to_string(), refund));
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

/// An `Invoice` as getInvoiceByID answers it, paying `account` (in `metadata.account_number`).
pub fn api_invoice(id: &str, shop: &str, account: Option<&str>, amount: i64, currency: &str) -> Value {
    let mut invoice = json!({
        "id": id, "shopID": shop, "externalID": format!("ext-{id}"),
        "createdAt": "2026-11-21T09:00:00Z", "dueDate": "2026-11-22T09:00:00Z",
        "amount": amount, "currency": currency, "product": "Bill", "description": "Monthly bill",
        "metadata": {}, "status": "paid",
    });
    if let Some(a) = account {
        invoice["metadata"] = json!({ "account_number": a });
    }
    invoice
}

/// A `PaymentSearchResult`.
pub fn api_payment(
    invoice: &str,
    id: &str,
    shop: &str,
    created_at: &str,
    amount: i64,
    currency: &str,
    status: &str,
) -> Value {
    json!({
        "id": id, "invoiceID": invoice, "shopID": shop, "createdAt": created_at,
        "amount": amount, "currency": currency, "status": status, "statusChangedAt": created_at,
        "fee": 0, "payer": {"payerType": "PaymentResourcePayer"},
    })
}

/// A `RefundSearchResult`.
pub fn api_refund(
    invoice: &str,
    payment: &str,
    id: &str,
    created_at: &str,
    amount: i64,
    currency: &str,
    status: &str,
) -> Value {
    json!({
        "id": id, "invoiceID": invoice, "paymentID": payment, "amount": amount, "currency": currency,
        "status": status, "createdAt": created_at,
    })
}

fn error(status: u16, code: Option<&str>, message: &str) -> (u16, Vec<(String, String)>, String) {
    let body = match code {
        Some(c) => json!({"code": c, "message": message}),
        None => json!({"message": message}),
    };
    (status, vec![], body.to_string())
}

fn ok(status: u16, body: Value) -> (u16, Vec<(String, String)>, String) {
    (status, vec![], body.to_string())
}

async fn handle(req: HttpRequest, body: web::Bytes, state: web::Data<Arc<Mutex<FakeState>>>) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let query: BTreeMap<String, String> = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let mut seen = Seen {
        at: Instant::now(),
        method: req.method().to_string(),
        path: req.path().to_string(),
        query: query.clone(),
        authorization: header("authorization"),
        request_id: header("x-request-id"),
        deadline: header("x-request-deadline"),
        body: serde_json::from_slice(&body).ok(),
        status: 0,
    };
    let (status, headers, text) = {
        let mut state = state.lock().expect("fake state");
        let answer = answer(&mut state, &req, &query, &seen);
        seen.status = answer.0;
        state.seen.push(seen);
        answer
    };
    let mut response = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status"));
    response.content_type("application/json; charset=utf-8");
    for (name, value) in headers {
        response.insert_header((name, value));
    }
    response.body(text)
}

fn route_of(method: &str, segments: &[&str]) -> Option<Route> {
    Some(match (method, segments) {
        ("GET", ["v2", "processing", "webhooks"]) => Route::GetWebhooks,
        ("POST", ["v2", "processing", "webhooks"]) => Route::CreateWebhook,
        ("GET", ["v2", "analytics", "shops", _, "payments"]) => Route::SearchPayments,
        ("GET", ["v2", "analytics", "shops", _, "refunds"]) => Route::SearchRefunds,
        ("GET", ["v2", "processing", "invoices", _]) => Route::GetInvoice,
        _ => return None,
    })
}

fn answer(
    state: &mut FakeState,
    req: &HttpRequest,
    query: &BTreeMap<String, String>,
    seen: &Seen,
) -> (u16, Vec<(String, String)>, String) {
    // Percent-decoded path segments, so an id with reserved characters is read back as sent.
    let decoded: Vec<String> = req
        .path()
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let Some(route) = route_of(req.method().as_str(), &segments) else {
        return error(404, None, "Not found");
    };
    if seen.authorization.as_deref() != Some(&format!("Bearer {}", state.token)) {
        return error(401, None, "Unauthorized");
    }
    match seen.request_id.as_deref() {
        Some(id) if (1..=32).contains(&id.chars().count()) => {}
        _ => return error(400, Some("invalidRequest"), "X-Request-ID must be 1..32 characters"),
    }
    if let Some(deadline) = &seen.deadline {
        if !valid_deadline(deadline) {
            return error(400, Some("invalidDeadline"), "Invalid X-Request-Deadline");
        }
    }
    if let Some(i) = state.script.iter().position(|(r, _)| *r == route) {
        let (_, scripted) = state.script.remove(i).expect("scripted answer");
        if scripted.perform && route == Route::CreateWebhook {
            create_webhook(state, seen.body.as_ref());
        }
        return (scripted.status, scripted.headers, scripted.body);
    }
    match route {
        Route::GetWebhooks => ok(200, Value::Array(state.webhooks.clone())),
        Route::CreateWebhook => create_webhook(state, seen.body.as_ref()),
        Route::SearchPayments => {
            let shop = segments[3];
            if let Some(status) = query.get("paymentStatus") {
                if !PAYMENT_STATUS_FILTER.contains(&status.as_str()) {
                    return error(400, Some("invalidRequest"), "Invalid paymentStatus");
                }
            }
            let items: Vec<Value> = state
                .payments
                .iter()
                .filter(|p| p["shopID"] == shop)
                .filter(|p| query.get("paymentStatus").is_none_or(|s| p["status"] == s.as_str()))
                .cloned()
                .collect();
            search(state, shop, query, items)
        }
        Route::SearchRefunds => {
            let shop = segments[3];
            let items: Vec<Value> = state
                .refunds
                .iter()
                .filter(|(s, _)| s == shop)
                .map(|(_, r)| r.clone())
                .collect();
            search(state, shop, query, items)
        }
        Route::GetInvoice => match state.invoices.get(segments[3]) {
            Some(invoice) => ok(200, invoice.clone()),
            None => error(404, None, "Invoice not found"),
        },
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn valid_deadline(text: &str) -> bool {
    if text.is_empty() || text.chars().count() > 40 {
        return false;
    }
    if DateTime::parse_from_rfc3339(text).is_ok() {
        return true;
    }
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &text[digits.len()..];
    digits.parse::<u64>().is_ok() && matches!(unit, "ms" | "s" | "m")
}

fn create_webhook(state: &mut FakeState, body: Option<&Value>) -> (u16, Vec<(String, String)>, String) {
    let Some(body) = body else {
        return error(400, Some("invalidRequest"), "Request body is not JSON");
    };
    let scope = &body["scope"];
    if scope["topic"] != "InvoicesTopic" {
        return error(400, Some("invalidRequest"), "scope.topic must be InvoicesTopic");
    }
    let Some(shop) = scope["shopID"].as_str() else {
        return error(400, Some("invalidRequest"), "scope.shopID is required");
    };
    if !state.shops.iter().any(|s| s == shop) {
        return error(400, Some("invalidShopID"), "Shop not found");
    }
    let types: Vec<&str> = scope["eventTypes"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if types.is_empty() || types.iter().any(|t| !SUBSCRIBE_NAMES.contains(t)) {
        return error(400, Some("invalidRequest"), "scope.eventTypes is invalid");
    }
    let url = body["url"].as_str().unwrap_or("");
    if url.is_empty() || url.len() > 1000 || !(url.starts_with("http://") || url.starts_with("https://")) {
        return error(400, Some("invalidRequest"), "url is invalid");
    }
    let per_shop = state.webhooks.iter().filter(|w| w["scope"]["shopID"] == shop).count();
    if per_shop >= 10 {
        return error(429, None, "Webhook limit exceeded");
    }
    let webhook = json!({
        "id": state.next_webhook_id.to_string(),
        "active": true,
        "scope": {"topic": "InvoicesTopic", "shopID": shop, "eventTypes": types},
        "partyID": state.party_id,
        "url": url,
        "publicKey": state.public_key,
    });
    state.next_webhook_id += 1;
    state.webhooks.push(webhook.clone());
    ok(201, webhook)
}

/// Conditions a continuation token is bound to.
fn conditions(shop: &str, query: &BTreeMap<String, String>) -> String {
    let get = |k: &str| query.get(k).cloned().unwrap_or_default();
    format!(
        "{shop}|{}|{}|{}|{}",
        get("fromTime"),
        get("toTime"),
        get("limit"),
        get("paymentStatus")
    )
}

fn search(
    state: &FakeState,
    shop: &str,
    query: &BTreeMap<String, String>,
    mut items: Vec<Value>,
) -> (u16, Vec<(String, String)>, String) {
    if !state.shops.iter().any(|s| s == shop) {
        return error(400, Some("invalidShopID"), "Shop not found");
    }
    let time = |name: &str| {
        query
            .get(name)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let (Some(from), Some(to)) = (time("fromTime"), time("toTime")) else {
        return error(
            400,
            Some("invalidRequest"),
            "fromTime and toTime are required date-times",
        );
    };
    if from > to {
        return error(400, Some("invalidRequest"), "fromTime is after toTime");
    }
    let limit = match query.get("limit").and_then(|l| l.parse::<usize>().ok()) {
        Some(l) if (1..=1000).contains(&l) => l,
        _ => return error(400, Some("invalidRequest"), "limit must be 1..1000"),
    };
    let offset = match query.get("continuationToken") {
        None => 0,
        Some(token) => match decode_token(token) {
            Some((offset, bound)) if bound == conditions(shop, query) => offset,
            _ => return error(400, Some("invalidRequest"), "Invalid continuationToken"),
        },
    };
    let created = |v: &Value| {
        v["createdAt"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    items.retain(|v| created(v).is_some_and(|t| t >= from && t <= to));
    items.sort_by_key(|v| (created(v), v["invoiceID"].to_string(), v["id"].to_string()));
    let size = limit.min(state.page_size);
    let page: Vec<Value> = items.iter().skip(offset).take(size).cloned().collect();
    let mut answer = json!({ "result": page });
    if offset + size < items.len() {
        answer["continuationToken"] = json!(encode_token(offset + size, &conditions(shop, query)));
    }
    ok(200, answer)
}

fn encode_token(offset: usize, bound: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json!({"o": offset, "q": bound}).to_string())
}

fn decode_token(token: &str) -> Option<(usize, String)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    Some((v["o"].as_u64()? as usize, v["q"].as_str()?.to_string()))
}
