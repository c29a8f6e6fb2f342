//! The four EBPP endpoints. Each reads top to bottom: authenticate → read body → parse →
//! decide and commit (as the single writer) → wait for durability → answer.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::{json, Map, Value};

use super::error::OrbipayError;
use super::responses;
use super::routes::Endpoint;
use super::schema::{
    LookupAnswer, LookupForm, OrbipayErrors, PaymentPostingAnswer, PaymentPostingRequest, RefundPostingAnswer,
    RefundPostingRequest, SharedErrors,
};
use super::wire;
use crate::domain::account::ssn_digest;
use crate::http::{media_type, read_body, RequestId};
use crate::ledger::orbipay::{
    decide_payment, decide_refund, decide_reversal, PaymentCommand, PaymentContext, RefundCommand, RefundContext,
};
use crate::ledger::{Channel, RecordKind};
use crate::state::AppState;
use crate::store::{LookupCriteria, WarmKey};

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
        state.orbipay_auth.authenticate(req.headers())?;
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
        let (matches, total) = state.store.lookup(&criteria, max)?;
        if matches.is_empty() {
            return Err(OrbipayError::CustomerMissing);
        }
        Ok(HttpResponse::Ok().json(responses::lookup(&matches, total)))
    }
    .await;
    finish(&state, Endpoint::Lookup, &rid, None, result)
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
    request_body(content = PaymentPostingRequest, content_type = "application/json"),
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
        let client_key = state.orbipay_auth.authenticate(req.headers())?;
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
        let now = Utc::now();
        let cmd = payment_command(posting, client_key, rid.0.clone(), now);
        let mut warm = vec![
            WarmKey::Record(RecordKind::Payment, &cmd.id),
            WarmKey::Account(&cmd.account_number),
        ];
        warm.extend(cmd.customer_reference.as_deref().map(WarmKey::Profile));
        state.store.warm(&warm);
        let written = state.store.write(|w| {
            let existing = w.record(RecordKind::Payment, &cmd.id)?;
            let refunds = match &existing {
                Some(p) => w.refunds_of(p)?,
                None => Vec::new(),
            };
            let account = w.account(&cmd.account_number)?;
            let profile = match &cmd.customer_reference {
                Some(r) => w.profile(r)?,
                None => None,
            };
            let fresh_reference = if existing.is_none() && cmd.payment_reference.is_none() {
                w.fresh_reference('P')?
            } else {
                String::new()
            };
            let ctx = PaymentContext {
                existing: existing.as_ref(),
                refunds: &refunds,
                account: account.as_ref(),
                profile: profile.as_ref(),
                default_min_payment: state.min_payment_amount,
                fresh_reference,
            };
            let change = match endpoint {
                Endpoint::Reversal => decide_reversal(&cmd, &ctx)?,
                _ => decide_payment(&cmd, &ctx)?,
            };
            w.stage_accepted_copy(&accepted_copy(
                endpoint,
                &cmd.id,
                &cmd.client_key,
                &rid,
                now,
                stored_copy,
            ))?;
            let applied = w.apply(&change, Channel::Orbipay, now)?;
            Ok::<_, OrbipayError>((change, applied))
        });
        let (change, applied) = settle(&state, written).await?;
        state.metrics.posting_applied("orbipay", RecordKind::Payment.as_str());
        Ok(HttpResponse::Ok().json(responses::payment(&change.payment, &applied, now)))
    }
    .await;
    finish(&state, endpoint, &rid, posted_id, result)
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
        let client_key = state.orbipay_auth.authenticate(req.headers())?;
        let body = read_json_body(&req, payload, &state).await?;
        let (posting, stored_copy) = wire::parse_refund(&body).map_err(|errors| {
            posted_id = wire::posting_id(&body);
            OrbipayError::from_field_errors(errors)
        })?;
        posted_id = Some(posting.id.clone());
        let now = Utc::now();
        let mut details = Map::new();
        insert_opt(
            &mut details,
            "refund_type",
            posting.refund_type.clone().map(Value::String),
        );
        insert_opt(
            &mut details,
            "refund_date",
            posting.refund_date.clone().map(Value::String),
        );
        insert_opt(
            &mut details,
            "fee_refund_amount",
            posting.fee_refund_amount.map(|a| Value::String(a.to_string())),
        );
        let cmd = RefundCommand {
            fee_only: posting.refund_type.as_deref() == Some("fee_only"),
            id: posting.id,
            source_payment_id: posting.source_payment_id,
            refund_amount: posting.refund_amount,
            confirmation_number: posting.confirmation_number,
            status: posting.status.as_str().to_string(),
            live: posting.status.is_live(),
            refund_reference: posting.refund_reference,
            details,
            client_key,
            request_id: rid.0.clone(),
            now,
        };
        state.store.warm(&[
            WarmKey::Record(RecordKind::Refund, &cmd.id),
            WarmKey::Record(RecordKind::Payment, &cmd.source_payment_id),
        ]);
        let written = state.store.write(|w| {
            let existing = w.record(RecordKind::Refund, &cmd.id)?;
            let payment = w.record(RecordKind::Payment, &cmd.source_payment_id)?;
            let refunds = match &payment {
                Some(p) => w.refunds_of(p)?,
                None => Vec::new(),
            };
            let fresh_reference = if existing.is_none() && cmd.refund_reference.is_none() {
                w.fresh_reference('R')?
            } else {
                String::new()
            };
            let ctx = RefundContext {
                existing: existing.as_ref(),
                payment: payment.as_ref(),
                refunds: &refunds,
                fresh_reference,
            };
            let change = decide_refund(&cmd, &ctx)?;
            w.stage_accepted_copy(&accepted_copy(
                Endpoint::Refund,
                &cmd.id,
                &cmd.client_key,
                &rid,
                now,
                stored_copy,
            ))?;
            let applied = w.apply(&change, Channel::Orbipay, now)?;
            Ok::<_, OrbipayError>((change, applied))
        });
        let (change, applied) = settle(&state, written).await?;
        state.metrics.posting_applied("orbipay", RecordKind::Refund.as_str());
        let refund = change.subject();
        Ok(HttpResponse::Ok().json(responses::refund(refund, &applied, now)))
    }
    .await;
    finish(&state, Endpoint::Refund, &rid, posted_id, result)
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

/// The ledger's view of a parsed payment or reversal posting (also what the benchmark of the
/// ledger decision feeds it, so the two cannot drift apart).
pub fn payment_command(
    posting: wire::PaymentPosting,
    client_key: String,
    request_id: String,
    now: chrono::DateTime<Utc>,
) -> PaymentCommand {
    PaymentCommand {
        details: payment_details(&posting),
        id: posting.id,
        amount: posting.amount,
        currency: posting.currency,
        account_number: posting.account_number,
        confirmation_number: posting.confirmation_number,
        customer_reference: posting.customer_reference,
        status: posting.status.as_str().to_string(),
        live: posting.status.is_live(),
        payment_reference: posting.payment_reference,
        payment_method: posting.payment_method,
        client_key,
        request_id,
        now,
    }
}

fn payment_details(p: &wire::PaymentPosting) -> Map<String, Value> {
    let mut d = Map::new();
    d.insert("payment_date".into(), Value::String(p.payment_date.clone()));
    d.insert(
        "payment_schedule_type".into(),
        Value::String(p.payment_schedule_type.clone()),
    );
    d.insert(
        "payment_amount_type".into(),
        Value::String(p.payment_amount_type.clone()),
    );
    insert_opt(&mut d, "return_code", p.return_code.clone().map(Value::String));
    insert_opt(
        &mut d,
        "payment_return_date",
        p.payment_return_date.clone().map(Value::String),
    );
    insert_opt(&mut d, "token", p.token.clone().map(Value::String));
    insert_opt(&mut d, "fee_amount", p.fee_amount.map(|a| Value::String(a.to_string())));
    insert_opt(
        &mut d,
        "funding_account_number",
        p.funding_account_masked.clone().map(Value::String),
    );
    d
}

fn insert_opt(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        map.insert(key.to_string(), v);
    }
}

/// The stored copy of an accepted posting (`orbipay-mpa.md` §6), written in the posting's
/// transaction. The body was sanitised by the wire parser: no CVV, PAN masked, no SSN.
fn accepted_copy(
    endpoint: Endpoint,
    id: &str,
    client_key: &str,
    rid: &RequestId,
    at: chrono::DateTime<Utc>,
    body: Value,
) -> Value {
    json!({
        "endpoint": endpoint.path(),
        "id": id,
        "client_key": client_key,
        "request_id": rid.as_str(),
        "received_at": crate::http::rfc3339(at),
        "body": body,
    })
}

/// Logs and counts the outcome. A refused request leaves one request-log entry and nothing
/// else; a duplicate answer waits until the original is durable, so "duplicate" never names
/// a posting that could still vanish.
fn finish(
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
        if let Err(e) = state.store.log_rejection(&entry) {
            tracing::warn!(error = %e, "could not write the request log");
        }
    }
    Err(error)
}

/// Waits for durability before answering: an applied posting is acknowledged only once it is
/// on disk, and a duplicate answer only once the original it names is.
async fn settle<T>(state: &AppState, written: Result<T, OrbipayError>) -> Result<T, OrbipayError> {
    if written.is_ok() || written.as_ref().err().is_some_and(OrbipayError::is_duplicate) {
        state.store.durable().await?;
    }
    written
}
