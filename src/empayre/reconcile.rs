//! Reconciliation with the Empayre API (issue 16, Part C): what the platform captured, refunded
//! or charged back in a time window, applied to the ledger where no webhook did.
//!
//! A run, for one source and one window:
//! 1. pages through `searchPayments` and `searchRefunds` of each of the source's shops (every
//!    answer checked; any failure — unreachable, 5xx after the retries, a malformed answer —
//!    ends the run before anything is applied);
//! 2. keeps the payments whose status moves money (`captured`, `refunded`, `charged_back`) and the
//!    `succeeded` refunds; the others are counted as ignored;
//! 3. fetches the invoice (`getInvoiceByID`) of each payment the ledger does not know, to find
//!    its account with the source's `account_pointer`, exactly where a webhook's invoice has it;
//! 4. applies each through the Empayre use case (`sink::reconcile_payment` / `reconcile_refund`):
//!    the same projection, ledger and unmatched list as a webhook, keyed by invoice, payment and
//!    refund id, so a webhook before or after changes nothing twice;
//! 5. each item is durable before the next is decided; the run reports: seen, already applied, applied now,
//!    unmatched, failed (and ignored), with every item that was not already applied.
//!
//! Runs of one source never overlap (a per-source lock), whether the background job or an
//! operator started them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::api::{ApiClient, ApiError, Invoice, PaymentSearchResult, RefundSearchResult, SearchWindow};
use super::sink::{self, PlatformPayment, PlatformRefund, Reconciled, Reconciling};
use super::sources::Source;
use crate::domain::money::{currency_exponent, format_amount};
use crate::domain::Currency;
use crate::ledger::empayre::payment_record_id;
use crate::ledger::RecordKind;
use crate::store::{Store, StoreError};

/// Payment statuses that move money, which a reconciliation applies.
const PAYMENT_STATUSES: &[&str] = &["captured", "refunded", "charged_back"];
/// Refund statuses a reconciliation applies.
const REFUND_STATUSES: &[&str] = &["succeeded"];
/// The newest runs kept for `GET /admin/empayre/reconcile`.
const RUNS_KEPT: usize = 50;
/// Items listed in one report; the counts are always complete.
const ITEMS_LISTED: usize = 200;

/// Who started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// `biller-inbox empayre reconcile` or `POST /admin/empayre/reconcile`.
    Manual,
    /// The background job of `serve` (`reconcile_interval_secs`).
    Schedule,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Schedule => "schedule",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Every answer was read and every item decided (some may have failed: see `failed`).
    Ok,
    /// The run stopped: the API could not be read, or the store could not write. Nothing of an
    /// unread answer was applied.
    Failed,
}

/// How many payments and refunds the run saw, and what became of them.
/// `seen = ignored + already_applied + applied + unmatched + failed`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Counts {
    /// Payments and refunds the API listed in the window.
    pub seen: u64,
    /// Their status moves no money (pending, processed, cancelled, failed payments; pending or
    /// failed refunds): nothing to apply.
    pub ignored: u64,
    /// The ledger already holds this state (a webhook brought it), or a later one.
    pub already_applied: u64,
    /// Applied now (in a dry run: would be).
    pub applied: u64,
    /// Recorded without an account (the invoice names none, or an unknown one, or another
    /// currency): listed in `GET /admin/empayre/unmatched`, nothing credited.
    pub unmatched: u64,
    /// Could not be applied: see the items' `reason`.
    pub failed: u64,
}

/// What an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    Payment,
    Refund,
}

/// What became of an item the report lists (one already applied is only counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ItemOutcome {
    /// Applied now (in a dry run: would be).
    Applied,
    /// Recorded without an account: listed in `GET /admin/empayre/unmatched`.
    Unmatched,
    /// Could not be applied: see `reason`.
    Failed,
}

impl ItemOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Unmatched => "unmatched",
            Self::Failed => "failed",
        }
    }
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Payment => "payment",
            Self::Refund => "refund",
        }
    }
}

/// Their wire names (the console shows them as they are).
impl std::fmt::Display for ItemOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for ItemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One payment or refund the run applied, recorded unmatched, or could not apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Item {
    pub kind: ItemKind,
    pub invoice_id: String,
    pub payment_id: String,
    pub refund_id: Option<String>,
    /// The status the platform reports.
    pub status: String,
    /// Decimal amount in the currency's units.
    pub amount: String,
    pub currency: String,
    pub outcome: ItemOutcome,
    /// The balance change it made (negative: a credit), for applied items.
    pub delta: Option<String>,
    /// Why it failed, or why it is unmatched.
    pub reason: Option<String>,
}

/// The report of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Report {
    /// The run's id; also the `request_id` of the history steps it wrote.
    pub id: String,
    pub source: String,
    pub trigger: Trigger,
    /// The window (platform `createdAt` of payments and refunds), inclusive.
    #[schema(format = DateTime)]
    pub from: String,
    #[schema(format = DateTime)]
    pub to: String,
    pub dry_run: bool,
    #[schema(format = DateTime)]
    pub started_at: String,
    #[schema(format = DateTime)]
    pub finished_at: String,
    pub status: RunStatus,
    /// Why the run failed.
    pub error: Option<String>,
    pub counts: Counts,
    /// Every item applied, unmatched or failed (at most 200; the counts are complete).
    pub items: Vec<Item>,
    pub items_truncated: bool,
}

/// What to reconcile.
#[derive(Debug, Clone)]
pub struct Request {
    pub source: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub dry_run: bool,
    pub trigger: Trigger,
}

/// What a run needs.
pub struct Context<'a> {
    pub store: &'a Store,
    pub source: &'a Source,
    pub shop_ids: &'a [String],
    pub client: &'a ApiClient,
}

fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Where the newest reports are kept in the store (`Store::meta`), newest first.
const RUNS_KEY: &str = "empayre.reconcile.runs";

/// Where the background job of a source got to (the end of its last successful window).
fn cursor_key(source: &str) -> String {
    format!("empayre.reconcile.cursor.{source}")
}

/// Runs of every source: one at a time per source, and the newest reports, kept in the store so
/// they (and where each background job got to) survive a restart.
#[derive(Default)]
pub struct Reconciler {
    locks: Mutex<HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
    runs: Mutex<VecDeque<Report>>,
}

impl Reconciler {
    /// The reports kept by the store (none in a fresh one).
    pub async fn load(store: &Store) -> Result<Self, StoreError> {
        let runs = match store.meta(RUNS_KEY).await? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::Corrupt(format!("the stored reconciliation runs cannot be read: {e}")))?,
            None => VecDeque::new(),
        };
        Ok(Self {
            locks: Mutex::default(),
            runs: Mutex::new(runs),
        })
    }

    fn lock_of(&self, source: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(source.to_string()).or_default().clone()
    }

    /// Runs one window, after any run of the same source in progress, hands its report to
    /// `finished` (the metrics), then keeps it.
    pub async fn run(&self, ctx: &Context<'_>, request: &Request, finished: impl FnOnce(&Report)) -> Report {
        let lock = self.lock_of(&request.source);
        let _one_at_a_time = lock.lock().await;
        let report = run(ctx, request).await;
        finished(&report);
        let kept = {
            let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
            runs.push_front(report.clone());
            runs.truncate(RUNS_KEPT);
            serde_json::to_vec(&*runs)
        };
        // The run's ledger effects are durable already; a list that cannot be stored only
        // costs its history after a restart.
        match kept {
            Ok(bytes) => {
                if let Err(e) = ctx.store.put_meta(RUNS_KEY, bytes).await {
                    tracing::warn!(error = %e, "the reconciliation run list could not be stored");
                }
            }
            Err(e) => tracing::warn!(error = %e, "the reconciliation run list could not be encoded"),
        }
        report
    }

    /// Where the background job of `source` got to.
    pub async fn cursor(&self, store: &Store, source: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let Some(bytes) = store.meta(&cursor_key(source)).await? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&bytes);
        DateTime::parse_from_rfc3339(&text)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| StoreError::Corrupt(format!("the reconciliation cursor of {source} is not a time")))
    }

    pub async fn set_cursor(&self, store: &Store, source: &str, end: DateTime<Utc>) -> Result<(), StoreError> {
        store.put_meta(&cursor_key(source), time_text(end).into_bytes()).await
    }

    /// The newest reports, of one source or all.
    pub fn recent(&self, source: Option<&str>, limit: usize) -> Vec<Report> {
        let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.iter()
            .filter(|r| source.is_none_or(|s| r.source == s))
            .take(limit)
            .cloned()
            .collect()
    }
}

/// Why a run stopped.
enum Stop {
    Api(ApiError),
    Store(StoreError),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Api(e) => write!(f, "{e}; nothing was applied"),
            Self::Store(e) => write!(f, "store: {e}; the items before it were applied"),
        }
    }
}

/// The run itself (see the module docs); never panics, a failure is in the report.
pub async fn run(ctx: &Context<'_>, request: &Request) -> Report {
    let started = Utc::now();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let mut report = Report {
        id: id.clone(),
        source: request.source.clone(),
        trigger: request.trigger,
        from: time_text(request.from),
        to: time_text(request.to),
        dry_run: request.dry_run,
        started_at: time_text(started),
        finished_at: String::new(),
        status: RunStatus::Ok,
        error: None,
        counts: Counts::default(),
        items: Vec::new(),
        items_truncated: false,
    };
    tracing::info!(source = %request.source, run = %id, from = %report.from, to = %report.to,
        dry_run = request.dry_run, trigger = request.trigger.as_str(), "Empayre reconciliation started");
    if let Err(stop) = reconcile(ctx, request, &id, &mut report).await {
        report.status = RunStatus::Failed;
        report.error = Some(stop.to_string());
    }
    report.finished_at = time_text(Utc::now());
    let c = &report.counts;
    tracing::info!(source = %request.source, run = %id, status = ?report.status, seen = c.seen,
        already_applied = c.already_applied, applied = c.applied, unmatched = c.unmatched, failed = c.failed,
        ignored = c.ignored, error = report.error.as_deref(), "Empayre reconciliation finished");
    report
}

/// A payment to apply: the search result and, for one the ledger does not know, its invoice.
struct Candidate {
    shop: String,
    payment: PaymentSearchResult,
    invoice: Option<Invoice>,
}

async fn reconcile(ctx: &Context<'_>, request: &Request, run_id: &str, report: &mut Report) -> Result<(), Stop> {
    // 1. Read everything first: an answer that cannot be read applies nothing.
    let mut payments: BTreeMap<(String, String), (String, PaymentSearchResult)> = BTreeMap::new();
    let mut refunds: BTreeMap<(String, String, String), RefundSearchResult> = BTreeMap::new();
    for shop in ctx.shop_ids {
        let window = SearchWindow {
            shop_id: shop.clone(),
            from: request.from,
            to: request.to,
        };
        for p in ctx.client.all_payments(&window).await.map_err(Stop::Api)? {
            payments.insert((p.invoice_id.clone(), p.id.clone()), (shop.clone(), p));
        }
        for r in ctx.client.all_refunds(&window).await.map_err(Stop::Api)? {
            refunds.insert((r.invoice_id.clone(), r.payment_id.clone(), r.id.clone()), r);
        }
    }
    report.counts.seen = (payments.len() + refunds.len()) as u64;

    // 2. What moves money; 3. the invoices of payments the ledger does not know.
    let mut candidates = Vec::new();
    for (shop, payment) in payments.into_values() {
        if !PAYMENT_STATUSES.contains(&payment.status.as_str()) {
            report.counts.ignored += 1;
            continue;
        }
        if payment.shop_id != shop {
            let why = format!(
                "the API listed it for shop {shop}, but it belongs to shop {}",
                payment.shop_id
            );
            record(report, payment_item(&payment, ItemOutcome::Failed, None, Some(why)));
            continue;
        }
        let known = ctx
            .store
            .record(
                RecordKind::EmpayrePayment,
                &payment_record_id(&ctx.source.name, &payment.invoice_id, &payment.id),
            )
            .await
            .map_err(Stop::Store)?
            .is_some();
        candidates.push(Candidate {
            shop,
            payment,
            invoice: None,
        });
        if known {
            continue;
        }
        let candidate = candidates.last_mut().expect("just pushed");
        match ctx.client.get_invoice(&candidate.payment.invoice_id).await {
            Ok(invoice) => candidate.invoice = Some(invoice),
            Err(ApiError::Status { status: 404, .. }) => {}
            Err(e) => return Err(Stop::Api(e)),
        }
    }
    let mut relevant_refunds = Vec::new();
    for refund in refunds.into_values() {
        if REFUND_STATUSES.contains(&refund.status.as_str()) {
            relevant_refunds.push(refund);
        } else {
            report.counts.ignored += 1;
        }
    }

    // 4. Apply, payments first (a refund needs its payment), oldest first.
    candidates.sort_by(|a, b| {
        (a.payment.created_at, &a.payment.invoice_id).cmp(&(b.payment.created_at, &b.payment.invoice_id))
    });
    relevant_refunds.sort_by(|a, b| (a.created_at, &a.invoice_id).cmp(&(b.created_at, &b.invoice_id)));
    let reconciling = Reconciling {
        source: ctx.source.name.clone(),
        account_pointer: ctx.source.account_pointer.clone(),
        request_id: run_id.to_string(),
        now: Utc::now(),
        dry_run: request.dry_run,
    };
    for candidate in &candidates {
        let payment = &candidate.payment;
        let known = ctx
            .store
            .record(
                RecordKind::EmpayrePayment,
                &payment_record_id(&ctx.source.name, &payment.invoice_id, &payment.id),
            )
            .await
            .map_err(Stop::Store)?
            .is_some();
        let named_in = match (&candidate.invoice, known) {
            (_, true) => None,
            (Some(invoice), false) if invoice.shop_id != candidate.shop => {
                let why = format!(
                    "its invoice belongs to shop {}, not {}",
                    invoice.shop_id, candidate.shop
                );
                record(report, payment_item(payment, ItemOutcome::Failed, None, Some(why)));
                continue;
            }
            (Some(invoice), false) => Some(webhook_shaped(invoice, payment)),
            (None, false) => {
                let why = "getInvoiceByID: the invoice was not found (404)".to_string();
                record(report, payment_item(payment, ItemOutcome::Failed, None, Some(why)));
                continue;
            }
        };
        let Ok(currency) = Currency::parse(&payment.currency) else {
            let why = format!(
                "searchPayments: currency {:?} is not an ISO 4217 code",
                payment.currency
            );
            record(report, payment_item(payment, ItemOutcome::Failed, None, Some(why)));
            continue;
        };
        let platform = PlatformPayment {
            invoice_id: payment.invoice_id.clone(),
            payment_id: payment.id.clone(),
            status: payment.status.clone(),
            amount_minor: payment.amount,
            currency,
            state_at: payment.status_changed_at,
            named_in,
        };
        // Each item is durable before the next is decided: a failure later in the run leaves
        // the earlier ones whole.
        let outcome = sink::reconcile_payment(ctx.store, reconciling.clone(), platform)
            .await
            .map_err(Stop::Store)?;
        count(report, outcome, |outcome, delta, reason| {
            payment_item(payment, outcome, delta, reason)
        });
    }
    for refund in &relevant_refunds {
        let Ok(currency) = Currency::parse(&refund.currency) else {
            let why = format!("searchRefunds: currency {:?} is not an ISO 4217 code", refund.currency);
            record(report, refund_item(refund, ItemOutcome::Failed, None, Some(why)));
            continue;
        };
        let platform = PlatformRefund {
            invoice_id: refund.invoice_id.clone(),
            payment_id: refund.payment_id.clone(),
            refund_id: refund.id.clone(),
            status: refund.status.clone(),
            amount_minor: refund.amount,
            currency,
        };
        let outcome = sink::reconcile_refund(ctx.store, reconciling.clone(), platform)
            .await
            .map_err(Stop::Store)?;
        count(report, outcome, |outcome, delta, reason| {
            refund_item(refund, outcome, delta, reason)
        });
    }
    Ok(())
}

/// Counts one decided item and lists it unless it was already applied.
fn count(report: &mut Report, outcome: Reconciled, item: impl Fn(ItemOutcome, Option<String>, Option<String>) -> Item) {
    match outcome {
        Reconciled::AlreadyApplied => report.counts.already_applied += 1,
        Reconciled::Applied { unmatched: None, delta } => {
            record(report, item(ItemOutcome::Applied, Some(delta.to_string()), None));
        }
        Reconciled::Applied {
            unmatched: Some(reason),
            delta,
        } => record(
            report,
            item(
                ItemOutcome::Unmatched,
                Some(delta.to_string()),
                Some(reason.as_str().to_string()),
            ),
        ),
        Reconciled::Conflict(why) => record(report, item(ItemOutcome::Failed, None, Some(why))),
        Reconciled::PaymentUnknown => record(
            report,
            item(
                ItemOutcome::Failed,
                None,
                Some("its payment is not in the ledger (run a window that includes the payment)".into()),
            ),
        ),
    }
}

fn record(report: &mut Report, item: Item) {
    match item.outcome {
        ItemOutcome::Applied => report.counts.applied += 1,
        ItemOutcome::Unmatched => report.counts.unmatched += 1,
        ItemOutcome::Failed => report.counts.failed += 1,
    }
    if report.items.len() < ITEMS_LISTED {
        report.items.push(item);
    } else {
        report.items_truncated = true;
    }
}

fn decimal_text(minor: i64, currency: &str) -> String {
    let exp = currency_exponent(currency).unwrap_or(0);
    format_amount(crate::domain::money::minor_to_decimal(minor, exp), exp)
}

fn payment_item(p: &PaymentSearchResult, outcome: ItemOutcome, delta: Option<String>, reason: Option<String>) -> Item {
    Item {
        kind: ItemKind::Payment,
        invoice_id: p.invoice_id.clone(),
        payment_id: p.id.clone(),
        refund_id: None,
        status: p.status.clone(),
        amount: decimal_text(p.amount, &p.currency),
        currency: p.currency.clone(),
        outcome,
        delta,
        reason,
    }
}

fn refund_item(r: &RefundSearchResult, outcome: ItemOutcome, delta: Option<String>, reason: Option<String>) -> Item {
    Item {
        kind: ItemKind::Refund,
        invoice_id: r.invoice_id.clone(),
        payment_id: r.payment_id.clone(),
        refund_id: Some(r.id.clone()),
        status: r.status.clone(),
        amount: decimal_text(r.amount, &r.currency),
        currency: r.currency.clone(),
        outcome,
        delta,
        reason,
    }
}

/// The invoice and payment in the shape a webhook body has them, so the source's
/// `account_pointer` finds the account in the same place. The API's `Invoice` spells the
/// external id `externalID`, a webhook's invoice `externalId` (B3.3): both are there.
fn webhook_shaped(invoice: &Invoice, payment: &PaymentSearchResult) -> Value {
    let mut fields = invoice.raw.clone();
    if !fields.contains_key("externalId") {
        if let Some(external) = fields.get("externalID").cloned() {
            fields.insert("externalId".into(), external);
        }
    }
    let mut shaped_payment = json!({
        "id": payment.id, "status": payment.status, "amount": payment.amount, "currency": payment.currency,
    });
    if let Some(metadata) = &payment.metadata {
        shaped_payment["metadata"] = metadata.clone();
    }
    json!({ "invoice": Value::Object(fields), "payment": shaped_payment })
}
