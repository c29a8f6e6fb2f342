//! The client for the Empayre API calls biller-inbox makes (the Empayre API subset in docs/empayre.md):
//! `getWebhooks`, `createWebhook`, `searchPayments`, `searchRefunds`, `getInvoiceByID`.
//!
//! Every request carries `Authorization: Bearer <api_token>`, a fresh `X-Request-ID` (32 hex
//! characters, the API's limit) and an `X-Request-Deadline` (RFC 3339, the time this attempt
//! gives up). Each attempt is logged with the call, its request id, the status and the time it
//! took, never with the token. Retries, with exponential backoff and jitter:
//! - connection failures (nothing was sent): always;
//! - 429: after `Retry-After` (seconds or an HTTP date), always — the request was not processed;
//! - 5xx and timeouts: only for reads. The reference says their outcome is undefined, so a
//!   `createWebhook` is not repeated blindly; the caller finds out what happened (it lists the
//!   webhooks) instead.
//!
//! No retry on any other 4xx. Answers are read with a size limit and checked field by field
//! (`model`); a malformed one is an error naming the call and the field, and nothing of it is
//! returned.

pub mod model;
pub mod token;

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use reqwest::{Method, StatusCode, Url};
use serde_json::{json, Value};

pub use model::{Invoice, Malformed, Page, PaymentSearchResult, RefundSearchResult, Webhook};
pub use token::ApiToken;

/// The API's public base URL (Part C), used when a source sets `api_token` without `api_url`.
pub const DEFAULT_API_URL: &str = "https://api.empayre.com/v2";

/// The largest answer read: a search page of 1000 results is well under 2 MiB.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// The page size asked of the searches (the API allows 1..1000).
pub const SEARCH_LIMIT: u32 = 1000;

/// A search that keeps handing out continuation tokens past this many pages is treated as
/// broken rather than followed for ever.
const MAX_PAGES: usize = 100_000;

/// The calls, by the reference's operation names (used in logs and error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    GetWebhooks,
    CreateWebhook,
    SearchPayments,
    SearchRefunds,
    GetInvoiceById,
}

impl Call {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GetWebhooks => "getWebhooks",
            Self::CreateWebhook => "createWebhook",
            Self::SearchPayments => "searchPayments",
            Self::SearchRefunds => "searchRefunds",
            Self::GetInvoiceById => "getInvoiceByID",
        }
    }

    /// Whether repeating the call after an undefined outcome (5xx, timeout) is harmless.
    fn is_read(self) -> bool {
        !matches!(self, Self::CreateWebhook)
    }
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a call failed. Never carries the token: messages the API sent back are scrubbed of it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// No answer: connection refused, DNS, TLS, timeout — after every attempt.
    #[error("{call}: Empayre API unreachable after {attempts} attempt(s): {detail}")]
    Unreachable { call: Call, attempts: u32, detail: String },
    /// A final non-success status (a 4xx, or a 5xx/429 once the attempts are used up).
    #[error("{call}: Empayre API answered {status}{}{} after {attempts} attempt(s)",
        code.as_ref().map(|c| format!(" {c}")).unwrap_or_default(),
        message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Status {
        call: Call,
        status: u16,
        code: Option<String>,
        message: Option<String>,
        attempts: u32,
    },
    /// The answer does not have the shape we rely on; nothing of it was used.
    #[error("{call}: malformed answer: {}: {}", malformed.field, malformed.problem)]
    Malformed { call: Call, malformed: Malformed },
}

impl ApiError {
    /// True when a `createWebhook` may or may not have happened (5xx, timeout): look before
    /// trying again.
    pub fn outcome_undefined(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status >= 500,
            Self::Unreachable { detail, .. } => !detail.starts_with("connect"),
            Self::Malformed { .. } => true,
        }
    }
}

/// How failed attempts are repeated.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The first backoff; each retry doubles it, up to `max_delay`. The wait is drawn between
    /// half and all of it (jitter), so clients that failed together do not retry together.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A `Retry-After` longer than this ends the call instead of stalling it.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (attempt counts from 1).
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX))
            .min(self.max_delay);
        let half = exp / 2;
        half + rand::thread_rng().gen_range(Duration::ZERO..=half)
    }
}

/// What a client needs to know about its source.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// The source's name, on every log line.
    pub source: String,
    pub base_url: String,
    pub token: ApiToken,
    /// Time one attempt may take, connect included; also what `X-Request-Deadline` says.
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

/// What `createWebhook` sends.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub shop_id: String,
    pub url: String,
    pub event_types: Vec<String>,
}

/// A search's conditions: the shop and the time window.
#[derive(Debug, Clone)]
pub struct SearchWindow {
    pub shop_id: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    settings: ClientSettings,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("source", &self.settings.source)
            .field("base", &self.base.as_str())
            .finish()
    }
}

/// A successful answer: its status and parsed JSON.
struct Answer {
    json: Value,
}

impl ApiClient {
    pub fn new(settings: ClientSettings) -> Result<Self, String> {
        let base = parse_base_url(&settings.base_url)?;
        let http = reqwest::Client::builder()
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .timeout(settings.timeout)
            // A redirect would carry the bearer token to wherever it points; the API has none.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self { http, base, settings })
    }

    pub fn source(&self) -> &str {
        &self.settings.source
    }

    /// `GET /processing/webhooks`.
    pub async fn get_webhooks(&self) -> Result<Vec<Webhook>, ApiError> {
        let call = Call::GetWebhooks;
        let answer = self
            .request(
                call,
                Method::GET,
                &["processing", "webhooks"],
                &[],
                None,
                StatusCode::OK,
            )
            .await?;
        model::webhooks(&answer.json).map_err(|malformed| ApiError::Malformed { call, malformed })
    }

    /// `POST /processing/webhooks` for `InvoicesTopic`.
    pub async fn create_webhook(&self, new: &NewWebhook) -> Result<Webhook, ApiError> {
        let call = Call::CreateWebhook;
        let body = json!({
            "scope": {"topic": "InvoicesTopic", "shopID": new.shop_id, "eventTypes": new.event_types},
            "url": new.url,
        });
        let answer = self
            .request(
                call,
                Method::POST,
                &["processing", "webhooks"],
                &[],
                Some(&body),
                StatusCode::CREATED,
            )
            .await?;
        model::created_webhook(&answer.json).map_err(|malformed| ApiError::Malformed { call, malformed })
    }

    /// One page of `GET /analytics/shops/{shopID}/payments` (no status filter: the reference's
    /// `paymentStatus` cannot ask for `charged_back`, so the caller picks the statuses).
    pub async fn search_payments(
        &self,
        window: &SearchWindow,
        continuation: Option<&str>,
    ) -> Result<Page<PaymentSearchResult>, ApiError> {
        let call = Call::SearchPayments;
        let query = search_query(window, continuation);
        let answer = self
            .request(
                call,
                Method::GET,
                &["analytics", "shops", &window.shop_id, "payments"],
                &query,
                None,
                StatusCode::OK,
            )
            .await?;
        model::payments_page(&answer.json).map_err(|malformed| ApiError::Malformed { call, malformed })
    }

    /// One page of `GET /analytics/shops/{shopID}/refunds`.
    pub async fn search_refunds(
        &self,
        window: &SearchWindow,
        continuation: Option<&str>,
    ) -> Result<Page<RefundSearchResult>, ApiError> {
        let call = Call::SearchRefunds;
        let query = search_query(window, continuation);
        let answer = self
            .request(
                call,
                Method::GET,
                &["analytics", "shops", &window.shop_id, "refunds"],
                &query,
                None,
                StatusCode::OK,
            )
            .await?;
        model::refunds_page(&answer.json).map_err(|malformed| ApiError::Malformed { call, malformed })
    }

    /// Every payment of the window, following continuation tokens to the last page.
    pub async fn all_payments(&self, window: &SearchWindow) -> Result<Vec<PaymentSearchResult>, ApiError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self.search_payments(window, token.as_deref()).await?;
            out.extend(page.result);
            match next_token(Call::SearchPayments, token.as_deref(), page.continuation_token)? {
                Some(next) => token = Some(next),
                None => return Ok(out),
            }
        }
        Err(too_many_pages(Call::SearchPayments))
    }

    /// Every refund of the window, following continuation tokens to the last page.
    pub async fn all_refunds(&self, window: &SearchWindow) -> Result<Vec<RefundSearchResult>, ApiError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self.search_refunds(window, token.as_deref()).await?;
            out.extend(page.result);
            match next_token(Call::SearchRefunds, token.as_deref(), page.continuation_token)? {
                Some(next) => token = Some(next),
                None => return Ok(out),
            }
        }
        Err(too_many_pages(Call::SearchRefunds))
    }

    /// `GET /processing/invoices/{invoiceID}`. The answer must be the invoice asked for.
    pub async fn get_invoice(&self, invoice_id: &str) -> Result<Invoice, ApiError> {
        let call = Call::GetInvoiceById;
        let answer = self
            .request(
                call,
                Method::GET,
                &["processing", "invoices", invoice_id],
                &[],
                None,
                StatusCode::OK,
            )
            .await?;
        let invoice = model::invoice(&answer.json).map_err(|malformed| ApiError::Malformed { call, malformed })?;
        if invoice.id != invoice_id {
            return Err(ApiError::Malformed {
                call,
                malformed: Malformed {
                    field: "id".into(),
                    problem: "is not the invoice asked for".into(),
                },
            });
        }
        Ok(invoice)
    }

    /// Sends one call, repeating it as the module docs say, and returns the parsed JSON of a
    /// success (`expect`).
    async fn request(
        &self,
        call: Call,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
        expect: StatusCode,
    ) -> Result<Answer, ApiError> {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            // Segments are percent-encoded here, so an id cannot change the path.
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let policy = &self.settings.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request_id = uuid::Uuid::new_v4().simple().to_string();
            let started = std::time::Instant::now();
            let outcome = self.attempt(&method, &url, body, &request_id).await;
            let elapsed_ms = started.elapsed().as_millis() as u64;
            let last = attempt >= policy.max_attempts;
            let wait = match outcome {
                Ok((status, headers, bytes)) => {
                    tracing::info!(source = %self.settings.source, call = call.as_str(), request_id = %request_id,
                        attempt, status = status.as_u16(), elapsed_ms, "Empayre API call");
                    if status == expect {
                        return parse_json(call, &bytes).map(|json| Answer { json });
                    }
                    let error = self.status_error(call, status, &bytes, attempt);
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        let asked = retry_after(headers.get(RETRY_AFTER), Utc::now());
                        match asked {
                            Some(d) if d > policy.max_retry_after => return Err(error),
                            _ if last => return Err(error),
                            // Honour the ask, plus a little jitter so a crowd does not return at once.
                            Some(d) => d + policy.backoff(1) / 4,
                            None => policy.backoff(attempt),
                        }
                    } else if status.is_server_error() && call.is_read() && !last {
                        policy.backoff(attempt)
                    } else {
                        return Err(error);
                    }
                }
                Err(e) => {
                    let connect = e.is_connect();
                    let detail = describe(&e);
                    tracing::warn!(source = %self.settings.source, call = call.as_str(), request_id = %request_id,
                        attempt, elapsed_ms, error = %detail, "Empayre API call failed");
                    // A failed connect sent nothing, so even a create may be repeated.
                    if last || !(connect || call.is_read()) {
                        return Err(ApiError::Unreachable {
                            call,
                            attempts: attempt,
                            detail,
                        });
                    }
                    policy.backoff(attempt)
                }
            };
            tracing::info!(source = %self.settings.source, call = call.as_str(), attempt,
                wait_ms = wait.as_millis() as u64, "Empayre API call will be retried");
            tokio::time::sleep(wait).await;
        }
    }

    /// One HTTP exchange: status, headers and the body (bounded).
    async fn attempt(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&Value>,
        request_id: &str,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, Vec<u8>), reqwest::Error> {
        let deadline = (Utc::now()
            + chrono::Duration::from_std(self.settings.timeout).unwrap_or(chrono::Duration::seconds(30)))
        .to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", self.settings.token.expose()))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
        authorization.set_sensitive(true);
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .header(AUTHORIZATION, authorization)
            .header("X-Request-ID", request_id)
            .header("X-Request-Deadline", deadline)
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, concat!("biller-inbox/", env!("CARGO_PKG_VERSION")));
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json; charset=utf-8")
                .body(serde_json::to_vec(body).unwrap_or_default());
        }
        let mut response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                // Keep what fits: the JSON check then reports the answer as cut off.
                break;
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok((status, headers, bytes))
    }

    fn status_error(&self, call: Call, status: StatusCode, bytes: &[u8], attempts: u32) -> ApiError {
        let body: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
        let text = |name: &str| {
            body.get(name)
                .and_then(Value::as_str)
                .map(|s| self.settings.token.scrub(&s.chars().take(300).collect::<String>()))
        };
        ApiError::Status {
            call,
            status: status.as_u16(),
            code: text("code"),
            message: text("message"),
            attempts,
        }
    }
}

fn parse_base_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim_end_matches('/')).map_err(|e| format!("api_url {text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() || url.host_str().is_none() {
        return Err(format!("api_url {text:?} must be an http or https URL"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "api_url {text:?} must not carry a query, a fragment or credentials"
        ));
    }
    Ok(url)
}

/// Checks an `api_url` as the configuration gives it.
pub fn check_base_url(text: &str) -> Result<(), String> {
    parse_base_url(text).map(|_| ())
}

fn search_query(window: &SearchWindow, continuation: Option<&str>) -> Vec<(&'static str, String)> {
    let mut query = vec![
        ("fromTime", window.from.to_rfc3339_opts(SecondsFormat::Millis, true)),
        ("toTime", window.to.to_rfc3339_opts(SecondsFormat::Millis, true)),
        ("limit", SEARCH_LIMIT.to_string()),
    ];
    if let Some(token) = continuation {
        query.push(("continuationToken", token.to_string()));
    }
    query
}

/// The token of the next page; the same token twice in a row would loop for ever.
fn next_token(call: Call, current: Option<&str>, next: Option<String>) -> Result<Option<String>, ApiError> {
    match next {
        Some(next) if Some(next.as_str()) == current => Err(ApiError::Malformed {
            call,
            malformed: Malformed {
                field: "continuationToken".into(),
                problem: "the same token as the page before (the paging would never end)".into(),
            },
        }),
        other => Ok(other),
    }
}

fn too_many_pages(call: Call) -> ApiError {
    ApiError::Malformed {
        call,
        malformed: Malformed {
            field: "continuationToken".into(),
            problem: format!("still more pages after {MAX_PAGES}"),
        },
    }
}

fn parse_json(call: Call, bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::Malformed {
        call,
        malformed: Malformed {
            field: "(answer)".into(),
            problem: format!("not JSON ({e})"),
        },
    })
}

/// `Retry-After` as a delay: seconds, or an HTTP date (RFC 7231), relative to `now`.
fn retry_after(value: Option<&HeaderValue>, now: DateTime<Utc>) -> Option<Duration> {
    let text = value?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(text).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// A transport error in one line, without the URL's query (it names shops and windows, which
/// are not secret, but the line is long enough) and never with headers.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "connect"
    } else if e.is_timeout() {
        "timeout"
    } else if e.is_body() || e.is_decode() {
        "reading the answer"
    } else {
        "request"
    };
    let mut detail = kind.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = DateTime::parse_from_rfc3339("2026-11-21T09:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let header = |s: &str| HeaderValue::from_str(s).expect("header");
        assert_eq!(retry_after(Some(&header("2")), now), Some(Duration::from_secs(2)));
        assert_eq!(
            retry_after(Some(&header("Sat, 21 Nov 2026 09:00:03 GMT")), now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(Some(&header("Sat, 21 Nov 2026 08:00:00 GMT")), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(Some(&header("soon")), now), None);
        assert_eq!(retry_after(None, now), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_stays_capped() {
        let policy = RetryPolicy::default();
        for attempt in 1..=40 {
            let d = policy.backoff(attempt);
            let full = (policy.base_delay * 2u32.saturating_pow(attempt - 1).min(1 << 20)).min(policy.max_delay);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?} vs {full:?}");
        }
    }

    #[test]
    fn base_urls_are_checked() {
        assert!(check_base_url("https://api.empayre.com/v2").is_ok());
        assert!(check_base_url("http://127.0.0.1:9/v2/").is_ok());
        for bad in [
            "api.empayre.com",
            "ftp://x/v2",
            "https://x/v2?a=1",
            "https://u:p@x/v2",
            "",
        ] {
            assert!(check_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_same_continuation_token_twice_is_refused() {
        assert!(next_token(Call::SearchPayments, Some("a"), Some("a".into())).is_err());
        assert_eq!(
            next_token(Call::SearchPayments, Some("a"), Some("b".into())).expect("next"),
            Some("b".into())
        );
        assert_eq!(next_token(Call::SearchPayments, Some("a"), None).expect("last"), None);
    }
}
