//! The four EBPP endpoints. Each reads top to bottom: authenticate → read body → parse →
//! decide and commit (as the single writer) → wait for durability → answer.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::json;

use super::auth::AuthFailure;
use super::endpoint::Endpoint;
use super::error::OrbipayError;
use super::posting::{self, payment_command, refund_command, Posting};
use super::responses;
use super::schema::{
    LookupAnswer, LookupForm, OrbipayErrors, PaymentPostingAnswer, PaymentPostingRequest, RefundPostingAnswer,
    RefundPostingRequest, ReversalPostingRequest, SharedErrors,
};
use super::wire;
use crate::domain::account::ssn_digest;
use crate::http::{media_type, read_body, RequestId};
use crate::ledger::RecordKind;
use crate::state::AppState;
use crate::store::LookupCriteria;
use crate::tls::ClientIdentity;

/// Look up customer profiles and their accounts (all given criteria must hold).
#[utoipa::path(
    post,
    path = Endpoint::Lookup.path(),
    tag = "orbipay",
    request_body(content = LookupForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        SharedErrors,
        (status = 200, description = "Matching profiles with their accounts", body = LookupAnswer),
        (status = 404, description = "Nothing matched (error_customer_missing)", body = OrbipayErrors),
    ),
    security(("orbipay_client_key" = [], "orbipay_api_key" = []))
)]
pub async fn lookup(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    rid: RequestId,
) -> Result<HttpResponse, OrbipayError> {
    let result = async {
        authenticate(&req, &state)?;
        if media_type(&req) != "application/x-www-form-urlencoded" {
            return Err(OrbipayError::malformed(
                "content type must be application/x-www-form-urlencoded",
            ));
        }
        let body = read_body(&req, payload, state.settings.server.max_body_bytes).await?;
        let query = wire::parse_lookup(&body).map_err(OrbipayError::Fields)?;
        let criteria = LookupCriteria {
            customer_reference: query.customer_reference,
            account_number: query.account_number,
            ssn_sha256: query.ssn.as_deref().map(ssn_digest),
            email: query.email,
            lookup_reference: query.lookup_reference,
        };
        let max = state.settings.orbipay.lookup_max_results;
        let (matches, total) = state.store.lookup(&criteria, max).await?;
        if matches.is_empty() {
            return Err(OrbipayError::CustomerMissing);
        }
        Ok(HttpResponse::Ok().json(responses::lookup(&matches, total)))
    }
    .await;
    finish(&state, Endpoint::Lookup, &rid, None, result).await
}

/// Post a payment; answers with the account's balance after it, once it is on disk.
#[utoipa::path(
    post,
    path = Endpoint::Payment.path(),
    tag = "orbipay",
    request_body(content = PaymentPostingRequest, content_type = "application/json"),
    responses(
        SharedErrors,
        (status = 200, description = "Applied (or a status update of a known payment)", body = PaymentPostingAnswer),
        (status = 422, description = "Business rule (error_duplicate_posting, error_account_closed, error_payment_amount_low, ...)", body = OrbipayErrors),
    ),
    security(("orbipay_client_key" = [], "orbipay_api_key" = []))
)]
pub async fn payment(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    rid: RequestId,
) -> Result<HttpResponse, OrbipayError> {
    post_payment(Endpoint::Payment, req, payload, state, rid).await
}

/// Post a cancelled, returned, declined or disputed payment.
#[utoipa::path(
    post,
    path = Endpoint::Reversal.path(),
    tag = "orbipay",
    request_body(content = ReversalPostingRequest, content_type = "application/json"),
    responses(
        SharedErrors,
        (status = 200, description = "Applied", body = PaymentPostingAnswer),
        (status = 422, description = "Business rule (error_posting_rejected, error_duplicate_posting, ...)", body = OrbipayErrors),
    ),
    security(("orbipay_client_key" = [], "orbipay_api_key" = []))
)]
pub async fn reversal(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    rid: RequestId,
) -> Result<HttpResponse, OrbipayError> {
    post_payment(Endpoint::Reversal, req, payload, state, rid).await
}

async fn post_payment(
    endpoint: Endpoint,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    rid: RequestId,
) -> Result<HttpResponse, OrbipayError> {
    let mut posted_id = None;
    let result = async {
        let client_key = authenticate(&req, &state)?;
        let body = read_json_body(&req, payload, &state).await?;
        let parsed = match endpoint {
            Endpoint::Reversal => wire::parse_reversal(&body),
            _ => wire::parse_payment(&body),
        };
        let (posting, stored_copy) = parsed.map_err(|errors| {
            posted_id = wire::posting_id(&body);
            OrbipayError::from_field_errors(errors)
        })?;
        posted_id = Some(posting.id.clone());
        let cmd = payment_command(posting, client_key, rid.0.clone(), Utc::now());
        let now = cmd.now;
        let posted = posting::post_payment(
            &state.store,
            Posting { endpoint, stored_copy },
            cmd,
            state.min_payment_amount,
        )
        .await?;
        state.metrics.posting_applied("orbipay", RecordKind::Payment.as_str());
        Ok(HttpResponse::Ok().json(responses::payment(&posted.change.payment, &posted.committed, now)))
    }
    .await;
    finish(&state, endpoint, &rid, posted_id, result).await
}

/// Post a refund of an earlier payment (no refund_amount: what is still refundable).
#[utoipa::path(
    post,
    path = Endpoint::Refund.path(),
    tag = "orbipay",
    request_body(content = RefundPostingRequest, content_type = "application/json"),
    responses(
        SharedErrors,
        (status = 200, description = "Applied", body = RefundPostingAnswer),
        (status = 422, description = "Business rule (error_refund_initiate, error_duplicate_posting, ...)", body = OrbipayErrors),
    ),
    security(("orbipay_client_key" = [], "orbipay_api_key" = []))
)]
pub async fn refund(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    rid: RequestId,
) -> Result<HttpResponse, OrbipayError> {
    let mut posted_id = None;
    let result = async {
        let client_key = authenticate(&req, &state)?;
        let body = read_json_body(&req, payload, &state).await?;
        let (posting, stored_copy) = wire::parse_refund(&body).map_err(|errors| {
            posted_id = wire::posting_id(&body);
            OrbipayError::from_field_errors(errors)
        })?;
        posted_id = Some(posting.id.clone());
        let cmd = refund_command(posting, client_key, rid.0.clone(), Utc::now());
        let now = cmd.now;
        let posting = Posting {
            endpoint: Endpoint::Refund,
            stored_copy,
        };
        let posted = posting::post_refund(&state.store, posting, cmd).await?;
        state.metrics.posting_applied("orbipay", RecordKind::Refund.as_str());
        Ok(HttpResponse::Ok().json(responses::refund(posted.change.subject(), &posted.committed, now)))
    }
    .await;
    finish(&state, Endpoint::Refund, &rid, posted_id, result).await
}

/// The EBPP credential check behind the per-address throttle: an address past its failures is
/// refused before its credentials are looked at, and a wrong credential counts against it (a
/// disabled client's right credentials are not a guess).
fn authenticate(req: &HttpRequest, state: &AppState) -> Result<String, OrbipayError> {
    let peer = req.peer_addr().map(|a| a.ip());
    state.auth_throttle.check(peer).map_err(OrbipayError::Throttled)?;
    state
        .orbipay_auth
        .authenticate(req.headers(), req.conn_data::<ClientIdentity>())
        .map_err(|failure| {
            if failure == AuthFailure::Unauthorized {
                state.auth_throttle.failed(peer);
            }
            failure.into()
        })
}

async fn read_json_body(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<web::Bytes, OrbipayError> {
    if media_type(req) != "application/json" {
        return Err(OrbipayError::malformed("content type must be application/json"));
    }
    Ok(read_body(req, payload, state.settings.server.max_body_bytes).await?)
}

/// Logs and counts the outcome. A refused request leaves one request-log entry and nothing
/// else; a duplicate answer waits until the original is durable, so "duplicate" never names
/// a posting that could still vanish.
async fn finish(
    state: &AppState,
    endpoint: Endpoint,
    rid: &RequestId,
    posted_id: Option<String>,
    result: Result<HttpResponse, OrbipayError>,
) -> Result<HttpResponse, OrbipayError> {
    let Err(error) = result else {
        return result;
    };
    match &error {
        OrbipayError::Unavailable(cause) | OrbipayError::Internal(cause) => {
            tracing::error!(endpoint = endpoint.path(), %cause, "posting failed");
        }
        other => tracing::info!(
            endpoint = endpoint.path(),
            code = other.code(),
            id = posted_id.as_deref(),
            "request refused"
        ),
    }
    if let Some(cause) = error.cause() {
        state.metrics.rejection(cause);
        if error.is_duplicate() {
            state.metrics.duplicate("orbipay");
        }
        let entry = json!({
            "at": crate::http::rfc3339(Utc::now()),
            "channel": "orbipay",
            "endpoint": endpoint.path(),
            "cause": cause,
            "code": error.code(),
            "request_id": rid.as_str(),
            "id": posted_id,
        });
        if let Err(e) = state.store.log_rejection(entry).await {
            tracing::warn!(error = %e, "could not write the request log");
        }
    }
    Err(error)
}
