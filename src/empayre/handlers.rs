//! `POST {empayre.path}` and `POST {empayre.path}/{source}`: read the raw bytes, verify the
//! signature before any parsing, store durably, then answer (A2, A3). A verified request is
//! never answered 4xx: unusable bodies are quarantined with 200, storage trouble is 503.

use actix_web::http::header::RETRY_AFTER;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use chrono::Utc;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::schema::{WebhookAnswer, WebhookBody, WebhookMessage};
use super::signature::SignatureError;
use super::sink::{self, Delivery, Outcome, Parsed};
use crate::http::{read_body, BodyError, RefuseMethod, RequestId};
use crate::ledger::RecordKind;
use crate::state::AppState;
use crate::store::StoreError;
use crate::throttle::Throttled;

const SIGNATURE_HEADER: &str = "content-signature";

/// The webhook paths as the OpenAPI attributes below spell them; `routes::openapi` moves them to
/// the configured `empayre.path`.
pub(super) const DOCUMENTED_PATH: &str = "/empayre/webhook";
pub(super) const DOCUMENTED_SOURCE_PATH: &str = "/empayre/webhook/{source}";

#[derive(Debug)]
pub enum EmpayreError {
    NotConfigured,
    UnknownSource,
    PayloadTooLarge,
    Signature(SignatureError),
    /// A signature failure from an address past its failures (`throttle`): 429.
    Throttled(Throttled),
    Unavailable(String),
    /// Any method but POST.
    MethodNotAllowed,
}

impl std::fmt::Display for EmpayreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotConfigured => f.write_str("no Empayre source configured"),
            Self::UnknownSource => f.write_str("unknown Empayre source"),
            Self::PayloadTooLarge => f.write_str("request body is too large"),
            Self::Signature(SignatureError::Missing) => f.write_str("Content-Signature header is missing"),
            Self::Signature(_) => f.write_str("signature is invalid"),
            Self::Throttled(t) => write!(
                f,
                "too many requests with a failing signature from this address; retry in {} seconds",
                t.retry_after_secs()
            ),
            Self::Unavailable(_) => f.write_str("the store is unavailable, retry later"),
            Self::MethodNotAllowed => f.write_str("this route takes POST only"),
        }
    }
}

impl ResponseError for EmpayreError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotConfigured | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::UnknownSource => StatusCode::NOT_FOUND,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Signature(_) => StatusCode::UNAUTHORIZED,
            Self::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        if let Self::Throttled(t) = self {
            res.insert_header((RETRY_AFTER, t.retry_after_secs()));
        }
        res.json(json!({ "message": self.to_string() }))
    }
}

impl RefuseMethod for EmpayreError {
    /// The webhook routes take POST only.
    fn method_not_allowed(_allowed: &str) -> Self {
        Self::MethodNotAllowed
    }
}

impl From<StoreError> for EmpayreError {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

/// A signed Empayre event: the signature is tried against every configured source's keys.
#[utoipa::path(
    post,
    path = DOCUMENTED_PATH,
    operation_id = "empayre_webhook",
    tag = "empayre",
    request_body(content = WebhookBody, description = "The event exactly as signed (the raw bytes are verified before parsing). A verified body is never refused: an event is stored and applied, anything else is quarantined", content_type = "application/json"),
    responses(
        (status = 200, description = "Stored (and applied), duplicate, or quarantined", body = WebhookAnswer),
        (status = 401, description = "Missing, malformed or non-verifying signature", body = WebhookMessage),
        (status = 429, description = "The signature failed, and this address has failed too often within a minute (a correctly signed request is never refused)", body = WebhookMessage, headers(("Retry-After" = u64, description = "Seconds until this address's failures are forgotten"))),
        (status = 413, description = "Body over server.max_body_bytes", body = WebhookMessage),
        (status = 503, description = "No Empayre source configured, or the store is unavailable (the sender retries)", body = WebhookMessage),
    ),
    security(("empayre_signature" = []))
)]
pub async fn webhook_any(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    rid: RequestId,
) -> Result<HttpResponse, EmpayreError> {
    receive(None, req, payload, state, rid).await
}

/// A signed Empayre event for one named source: only that source's keys are tried.
#[utoipa::path(
    post,
    path = DOCUMENTED_SOURCE_PATH,
    operation_id = "empayre_webhook_source",
    tag = "empayre",
    params(("source" = String, Path, description = "A configured `[[empayre.sources]]` name", example = "demo")),
    request_body(content = WebhookBody, description = "The event exactly as signed; as on the route without a source", content_type = "application/json"),
    responses(
        (status = 200, description = "Stored (and applied), duplicate, or quarantined", body = WebhookAnswer),
        (status = 401, description = "Missing, malformed or non-verifying signature", body = WebhookMessage),
        (status = 429, description = "The signature failed, and this address has failed too often within a minute (a correctly signed request is never refused)", body = WebhookMessage, headers(("Retry-After" = u64, description = "Seconds until this address's failures are forgotten"))),
        (status = 404, description = "Unknown source", body = WebhookMessage),
        (status = 413, description = "Body over server.max_body_bytes", body = WebhookMessage),
        (status = 503, description = "No Empayre source configured, or the store is unavailable", body = WebhookMessage),
    ),
    security(("empayre_signature" = []))
)]
pub async fn webhook_source(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
    rid: RequestId,
) -> Result<HttpResponse, EmpayreError> {
    receive(Some(path.into_inner()), req, payload, state, rid).await
}

async fn receive(
    source_name: Option<String>,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    rid: RequestId,
) -> Result<HttpResponse, EmpayreError> {
    let sources = &state.empayre_sources;
    if sources.is_empty() {
        return Err(EmpayreError::NotConfigured);
    }
    let only = match &source_name {
        Some(name) => Some(sources.get(name).ok_or(EmpayreError::UnknownSource)?),
        None => None,
    };
    let body = match read_body(&req, payload, state.settings.server.max_body_bytes).await {
        Ok(body) => body,
        Err(BodyError::TooLarge { .. }) => {
            reject(&state, &req, &rid, source_name.as_deref(), "payload_too_large", None).await;
            return Err(EmpayreError::PayloadTooLarge);
        }
        Err(BodyError::Read(e)) => return Err(EmpayreError::Unavailable(e)),
    };
    let header = req.headers().get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let (source, key) = match sources.verify(only, &body, header) {
        Ok(found) => found,
        Err(e) => {
            // Counted like a failed credential; only a failing request is ever answered 429, so
            // a correctly signed one from the same address still goes through.
            let peer = req.peer_addr().map(|a| a.ip());
            let throttled = state.auth_throttle.check(peer);
            state.auth_throttle.failed(peer);
            if let Err(t) = throttled {
                reject(
                    &state,
                    &req,
                    &rid,
                    source_name.as_deref(),
                    "throttled",
                    Some((&body, &e)),
                )
                .await;
                return Err(EmpayreError::Throttled(t));
            }
            reject(&state, &req, &rid, source_name.as_deref(), e.cause(), Some((&body, &e))).await;
            return Err(EmpayreError::Signature(e));
        }
    };
    let delivery = Delivery::new(source, &key.id, &body, rid.as_str(), Utc::now());
    let accepted = sink::receive(&state.store, delivery, Parsed::new(&body)).await?;
    tracing::info!(
        source = %source.name,
        event_id = accepted.event_id,
        event_type = accepted.event_type.as_deref(),
        outcome = accepted.outcome.as_str(),
        unmatched = accepted.unmatched.map(|r| r.as_str()),
        "empayre event"
    );
    match accepted.outcome {
        Outcome::Duplicate => state.metrics.duplicate("empayre"),
        Outcome::Quarantined => state.metrics.quarantined(),
        Outcome::Stored => {}
    }
    if accepted.unmatched.is_some() && accepted.applied {
        state.metrics.unmatched();
    }
    if accepted.applied {
        state
            .metrics
            .posting_applied("empayre", RecordKind::EmpayrePayment.as_str());
    }
    Ok(HttpResponse::Ok().json(json!({ "status": accepted.outcome.as_str() })))
}

/// Counts and logs a refused request with its cause; nothing of it is stored as an event.
async fn reject(
    state: &AppState,
    req: &HttpRequest,
    rid: &RequestId,
    source: Option<&str>,
    cause: &'static str,
    signature: Option<(&[u8], &SignatureError)>,
) {
    let peer = req.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let sha = signature.map(|(body, _)| hex::encode(Sha256::digest(body)));
    let detail = signature.map(|(_, e)| e.to_string());
    tracing::warn!(cause, source, body_sha256 = sha.as_deref(), %peer, detail = detail.as_deref(), "empayre request refused");
    state.metrics.rejection(cause);
    let entry = json!({
        "at": crate::http::rfc3339(Utc::now()),
        "channel": "empayre",
        "endpoint": req.path(),
        "cause": cause,
        "code": null,
        "request_id": rid.as_str(),
        "source": source,
        "body_sha256": sha,
        "peer": peer,
    });
    if let Err(e) = state.store.log_rejection(entry).await {
        tracing::warn!(error = %e, "could not write the request log");
    }
}
