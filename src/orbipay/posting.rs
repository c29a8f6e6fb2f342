//! The Orbipay posting use case (docs/orbipay.md): a parsed payment, reversal or
//! refund posting becomes a ledger command, the ledger decides it under the store's lock, and
//! the store commits the change with the stored copy of the posting, durably.
//!
//! The decisions run inside `Store::execute` and may run more than once: they only read through
//! the view and return what to write.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use super::endpoint::Endpoint;
use super::wire;
use crate::ledger::orbipay::{
    decide_payment, decide_refund, decide_reversal, PaymentCommand, PaymentContext, RefundCommand, RefundContext,
};
use crate::ledger::{BusinessCode, Change, Channel, RecordKind, Rejection};
use crate::store::{Committed, Decision, Keys, Store, StoreError, Writes};

/// Why a posting was not applied.
#[derive(Debug)]
pub enum PostingError {
    /// A business rule refused it (a duplicate among them, answered once the original it names
    /// is durable).
    Rejected(Rejection),
    Store(StoreError),
}

impl From<StoreError> for PostingError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// An applied posting, durable.
#[derive(Debug)]
pub struct Posted {
    /// What the ledger changed: the payment, and the refund for a refund posting.
    pub change: Change,
    pub committed: Committed,
}

/// What a posting use case needs besides the command.
pub struct Posting {
    pub endpoint: Endpoint,
    /// The sanitised body, kept as the stored copy of an accepted posting (§6).
    pub stored_copy: Value,
}

/// Posts a payment (`Endpoint::Payment`) or a reversal (`Endpoint::Reversal`).
pub async fn post_payment(
    store: &Store,
    posting: Posting,
    cmd: PaymentCommand,
    default_min_payment: Decimal,
) -> Result<Posted, PostingError> {
    let keys = Keys {
        records: vec![(RecordKind::Payment, cmd.id.clone())],
        accounts: vec![cmd.account_number.clone()],
        profiles: cmd.customer_reference.iter().cloned().collect(),
        ..Keys::default()
    };
    let Posting { endpoint, stored_copy } = posting;
    let copy = accepted_copy(
        endpoint,
        &cmd.id,
        &cmd.client_key,
        &cmd.request_id,
        cmd.now,
        stored_copy,
    );
    let executed = store
        .execute(keys, move |view| {
            let existing = view.record(RecordKind::Payment, &cmd.id)?;
            let refunds = match &existing {
                Some(p) => view.refunds_of(p)?,
                None => Vec::new(),
            };
            let account = view.account(&cmd.account_number)?;
            let profile = match &cmd.customer_reference {
                Some(r) => view.profile(r)?,
                None => None,
            };
            let fresh_reference = if existing.is_none() && cmd.payment_reference.is_none() {
                view.fresh_reference('P')?
            } else {
                String::new()
            };
            let ctx = PaymentContext {
                existing: existing.as_ref(),
                refunds: &refunds,
                account: account.as_ref(),
                profile: profile.as_ref(),
                default_min_payment,
                fresh_reference,
            };
            let decided = match endpoint {
                Endpoint::Reversal => decide_reversal(&cmd, &ctx),
                _ => decide_payment(&cmd, &ctx),
            };
            Ok(commit(decided, &copy, cmd.now))
        })
        .await?;
    posted(executed.outcome, executed.committed)
}

/// Posts a refund of an earlier payment.
pub async fn post_refund(store: &Store, posting: Posting, cmd: RefundCommand) -> Result<Posted, PostingError> {
    let keys = Keys {
        records: vec![
            (RecordKind::Refund, cmd.id.clone()),
            (RecordKind::Payment, cmd.source_payment_id.clone()),
        ],
        ..Keys::default()
    };
    let copy = accepted_copy(
        posting.endpoint,
        &cmd.id,
        &cmd.client_key,
        &cmd.request_id,
        cmd.now,
        posting.stored_copy,
    );
    let executed = store
        .execute(keys, move |view| {
            let existing = view.record(RecordKind::Refund, &cmd.id)?;
            let payment = view.record(RecordKind::Payment, &cmd.source_payment_id)?;
            let refunds = match &payment {
                Some(p) => view.refunds_of(p)?,
                None => Vec::new(),
            };
            let fresh_reference = if existing.is_none() && cmd.refund_reference.is_none() {
                view.fresh_reference('R')?
            } else {
                String::new()
            };
            let ctx = RefundContext {
                existing: existing.as_ref(),
                payment: payment.as_ref(),
                refunds: &refunds,
                fresh_reference,
            };
            Ok(commit(decide_refund(&cmd, &ctx), &copy, cmd.now))
        })
        .await?;
    posted(executed.outcome, executed.committed)
}

/// An accepted change commits with the stored copy; a duplicate is confirmed once what it
/// names is durable; any other refusal is answered at once.
fn commit(decided: Result<Change, Rejection>, copy: &Value, now: DateTime<Utc>) -> Decision<Result<(), Rejection>> {
    match decided {
        Ok(change) => {
            let mut writes = Writes::new(Channel::Orbipay, now);
            writes.change = Some(change);
            writes.accepted_copy = Some(copy.clone());
            Decision::commit(writes, Ok(()))
        }
        Err(r) if r.code == BusinessCode::DuplicatePosting => Decision::Confirm(Err(r)),
        Err(r) => Decision::Refuse(Err(r)),
    }
}

fn posted(outcome: Result<(), Rejection>, committed: Option<Committed>) -> Result<Posted, PostingError> {
    outcome.map_err(PostingError::Rejected)?;
    let mut committed = committed.ok_or_else(|| StoreError::Corrupt("a commit without its record".into()))?;
    let change = committed
        .change
        .take()
        .ok_or_else(|| StoreError::Corrupt("a commit without its record".into()))?;
    Ok(Posted { change, committed })
}

/// The ledger's view of a parsed payment or reversal posting (also what the benchmark of the
/// ledger decision feeds it, so the two cannot drift apart).
pub fn payment_command(
    posting: wire::PaymentPosting,
    client_key: String,
    request_id: String,
    now: DateTime<Utc>,
) -> PaymentCommand {
    PaymentCommand {
        details: payment_details(&posting),
        id: posting.id,
        amount: posting.amount,
        currency: posting.currency,
        account_number: posting.account_number,
        confirmation_number: posting.confirmation_number,
        customer_reference: posting.customer_reference,
        status: posting.status,
        payment_reference: posting.payment_reference,
        payment_method: posting.payment_method,
        client_key,
        request_id,
        now,
    }
}

/// The ledger's view of a parsed refund posting.
pub fn refund_command(
    posting: wire::RefundPosting,
    client_key: String,
    request_id: String,
    now: DateTime<Utc>,
) -> RefundCommand {
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
    RefundCommand {
        fee_only: posting.refund_type.as_deref() == Some("fee_only"),
        id: posting.id,
        source_payment_id: posting.source_payment_id,
        refund_amount: posting.refund_amount,
        confirmation_number: posting.confirmation_number,
        status: posting.status,
        refund_reference: posting.refund_reference,
        details,
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

/// The stored copy of an accepted posting (docs/orbipay.md), written in the posting's
/// commit. The body was sanitised by the wire parser: no CVV, PAN masked, no SSN.
fn accepted_copy(
    endpoint: Endpoint,
    id: &str,
    client_key: &str,
    request_id: &str,
    at: DateTime<Utc>,
    body: Value,
) -> Value {
    json!({
        "endpoint": endpoint.path(),
        "id": id,
        "client_key": client_key,
        "request_id": request_id,
        "received_at": crate::http::rfc3339(at),
        "body": body,
    })
}
