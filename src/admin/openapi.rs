//! `/openapi.json`: the OpenAPI document of every route, generated from the `#[utoipa::path]`
//! attributes on the handlers and the `ToSchema` types they answer with.
//!
//! Admin areas contribute their own `Api` (see `admin::AREAS`), the ops routes theirs, and the
//! Orbipay handlers carry their attributes in `orbipay::handlers`. The Orbipay and Empayre wire
//! bodies are parsed by hand (`orbipay::wire`, `empayre`), so the schema types describing them
//! live here; the Empayre webhook routes are described by the bodiless functions below. Paths
//! that depend on configuration (`orbipay.base_path`, `empayre.path`) are rewritten at runtime.

use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::settings::Settings;

/// Paths of the Orbipay routes as the attributes spell them, before `orbipay.base_path`.
const ORBIPAY_PATHS: [&str; 4] = [
    "/mpacustomers",
    "/paymentposting",
    "/paymentreversalposting",
    "/paymentrefundposting",
];
/// The Empayre webhook paths as documented below, before `empayre.path`.
const EMPAYRE_PATH: &str = "/empayre/webhook";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "biller-inbox",
        description = "Biller-side receiver for Orbipay EBPP postings and Empayre webhooks, with its admin and ops API"
    ),
    paths(
        crate::orbipay::handlers::lookup,
        crate::orbipay::handlers::payment,
        crate::orbipay::handlers::reversal,
        crate::orbipay::handlers::refund,
        empayre_webhook,
        empayre_webhook_source,
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "orbipay", description = "Orbipay EBPP lookup and postings (client-key + API-key headers)"),
        (name = "empayre", description = "Empayre signed webhooks (Content-Signature)"),
        (name = "admin", description = "Operator API (Authorization: Bearer <admin.token>)"),
        (name = "ops", description = "Health, metrics and this document (no auth)"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "orbipay_client_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("client-key"))),
        );
        components.add_security_scheme(
            "orbipay_api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("api-key"))),
        );
    }
}

/// The document for a server running with `settings`.
pub fn document(settings: &Settings) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(super::ops::Api::openapi());
    for area in super::AREAS {
        doc.merge((area.openapi)());
    }
    let paths = &mut doc.paths.paths;
    let base = settings.orbipay.base_path.trim_end_matches('/');
    for p in ORBIPAY_PATHS {
        if let Some(item) = paths.remove(p) {
            paths.insert(format!("{base}{p}"), item);
        }
    }
    let hook = settings.empayre.path.trim_end_matches('/');
    let source = format!("{EMPAYRE_PATH}/{{source}}");
    if let Some(item) = paths.remove(EMPAYRE_PATH) {
        paths.insert(hook.to_string(), item);
    }
    if let Some(item) = paths.remove(&source) {
        paths.insert(format!("{hook}/{{source}}"), item);
    }
    doc
}

// ---- Empayre webhook routes (handlers live in `empayre`; described here) ----

/// A signed Empayre event: the signature is tried against every configured source's keys.
#[utoipa::path(
    post,
    path = "/empayre/webhook",
    tag = "empayre",
    params(("Content-Signature" = String, Header, description = "alg=RS256; digest=<URL-safe base64 RSASSA-PKCS1-v1_5 SHA-256 signature of the raw body>")),
    request_body(content = EmpayreEvent, description = "The event exactly as signed (raw bytes are verified before parsing)", content_type = "application/json"),
    responses(
        (status = 200, description = "Stored (and applied), duplicate, or quarantined", body = WebhookAnswer),
        (status = 401, description = "Missing, malformed or non-verifying signature", body = WebhookMessage),
        (status = 413, description = "Body over server.max_body_bytes", body = WebhookMessage),
        (status = 503, description = "No Empayre source configured, or the store is unavailable (the sender retries)", body = WebhookMessage),
    )
)]
#[allow(dead_code)]
fn empayre_webhook() {}

/// A signed Empayre event for one named source: only that source's keys are tried.
#[utoipa::path(
    post,
    path = "/empayre/webhook/{source}",
    tag = "empayre",
    params(
        ("source" = String, Path, description = "A configured `[[empayre.sources]]` name"),
        ("Content-Signature" = String, Header, description = "alg=RS256; digest=<URL-safe base64 signature>"),
    ),
    request_body(content = EmpayreEvent, description = "The event exactly as signed", content_type = "application/json"),
    responses(
        (status = 200, description = "Stored (and applied), duplicate, or quarantined", body = WebhookAnswer),
        (status = 401, description = "Missing, malformed or non-verifying signature", body = WebhookMessage),
        (status = 404, description = "Unknown source", body = WebhookMessage),
        (status = 413, description = "Body over server.max_body_bytes", body = WebhookMessage),
        (status = 503, description = "No Empayre source configured, or the store is unavailable", body = WebhookMessage),
    )
)]
#[allow(dead_code)]
fn empayre_webhook_source() {}

/// An Empayre event (the sender's model; anything verified is stored, whatever its shape).
#[derive(Serialize, ToSchema)]
pub struct EmpayreEvent {
    #[serde(rename = "eventID")]
    pub event_id: i64,
    #[serde(rename = "occuredAt")]
    pub occured_at: String,
    /// InvoicesTopic or CustomersTopic.
    pub topic: String,
    /// InvoiceCreated, InvoicePaid, PaymentCaptured, PaymentRefunded, RefundSucceeded, ...
    #[serde(rename = "eventType")]
    pub event_type: String,
    #[schema(value_type = Option<Object>)]
    pub invoice: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub payment: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub refund: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookAnswer {
    /// stored, duplicate or quarantined.
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookMessage {
    pub message: String,
}

// ---- Orbipay wire bodies (parsed by hand in `orbipay::wire`; described here) ----

/// Lookup criteria (form fields, all optional, at least one; all given must hold).
#[derive(Serialize, ToSchema)]
pub struct LookupForm {
    pub customer_reference: Option<String>,
    pub account_number: Option<String>,
    /// 9 digits; never returned.
    pub ssn: Option<String>,
    pub email: Option<String>,
    pub lookup_reference: Option<String>,
}

/// The EBPP list envelope of a lookup (every scalar a string).
#[derive(Serialize, ToSchema)]
pub struct LookupAnswer {
    pub list: Vec<LookupProfile>,
    pub total_results_count: String,
    /// "true" or "false".
    pub has_more_results: String,
}

#[derive(Serialize, ToSchema)]
pub struct LookupProfile {
    pub customer_reference: String,
    pub lookup_reference: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub home_phone: Option<String>,
    pub status: String,
    #[schema(value_type = Option<Object>)]
    pub address: Option<serde_json::Value>,
    pub customer_accounts: LookupAccountList,
}

#[derive(Serialize, ToSchema)]
pub struct LookupAccountList {
    pub list: Vec<LookupAccount>,
}

#[derive(Serialize, ToSchema)]
pub struct LookupAccount {
    pub account_number: String,
    pub customer_account_reference: Option<String>,
    pub account_holder_name: Option<String>,
    pub nickname: Option<String>,
    /// active, inactive, incollections or inbankruptcy.
    pub status: String,
    pub currency_code3d: String,
    pub current_balance: String,
    pub current_statement_balance: Option<String>,
    pub minimum_payment_due: Option<String>,
    pub past_amount_due: Option<String>,
    pub payment_due_date: Option<String>,
    pub statement_date: Option<String>,
    pub payoff_amount: Option<String>,
    pub payoff_expiry_date: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub address: Option<serde_json::Value>,
}

/// A payment or reversal posting (a bare payment object without `posting_info` is accepted too).
#[derive(Serialize, ToSchema)]
pub struct PaymentPostingRequest {
    pub posting_info: PaymentPosting,
}

/// The EBPP payment object: every scalar a string, `""` means absent, unknown fields accepted.
#[derive(Serialize, ToSchema)]
pub struct PaymentPosting {
    pub id: String,
    /// Decimal string, e.g. "25.00".
    pub amount: String,
    pub confirmation_number: String,
    pub currency_code3d: String,
    #[schema(value_type = Object)]
    pub custom_fields: serde_json::Value,
    /// {id, url, customer_reference, first_name, last_name, middle_name, email, home_phone, address}
    #[schema(value_type = Object)]
    pub customer: serde_json::Value,
    /// {id, url, account_number (required)}
    #[schema(value_type = Object)]
    pub customer_account: serde_json::Value,
    /// {id, url, account_number (masked), account_type, ...}
    #[schema(value_type = Object)]
    pub funding_account: serde_json::Value,
    pub payment_date: String,
    pub payment_method: String,
    /// {payment_auth_code, payment_response_code, payment_response_msg}
    #[schema(value_type = Object)]
    pub payment_network_response: serde_json::Value,
    pub payment_schedule_type: String,
    /// Live (processed, scheduled, ...) or not (returned, declined, cancelled, disputed, ...).
    pub status: String,
    pub payment_amount_type: Option<String>,
    pub payment_entry_date: Option<String>,
    pub payment_request_date: Option<String>,
    pub expected_payment_settlement_date: Option<String>,
    pub payment_return_date: Option<String>,
    pub return_code: Option<String>,
    pub payment_reference: Option<String>,
    pub token: Option<String>,
    pub payment_notification_email: Option<String>,
    pub comments: Option<String>,
    pub url: Option<String>,
    /// {fee_type, fee_amount, id, url}
    #[schema(value_type = Option<Object>)]
    pub fee: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct RefundPostingRequest {
    pub posting_info: RefundPosting,
}

/// The EBPP refund object.
#[derive(Serialize, ToSchema)]
pub struct RefundPosting {
    pub id: String,
    pub status: String,
    pub confirmation_number: String,
    /// {id (required), customer, customer_account, funding_account}
    #[schema(value_type = Object)]
    pub source_payment: serde_json::Value,
    /// Left out: what is still refundable.
    pub refund_amount: Option<String>,
    pub refund_reference: Option<String>,
    /// e.g. payment_only, fee_only.
    pub refund_type: Option<String>,
    /// {fee_refund_amount, fee_type}
    #[schema(value_type = Option<Object>)]
    pub fee_refund: Option<serde_json::Value>,
    pub refund_date: Option<String>,
    pub refund_entry_date: Option<String>,
    pub expected_refund_settlement_date: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub payment_network_response: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<serde_json::Value>,
    pub comments: Option<String>,
    pub url: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentPostingAnswer {
    pub posting_info: PaymentPostingResult,
}

/// What a payment posting or reversal answers (absent values omitted).
#[derive(Serialize, ToSchema)]
pub struct PaymentPostingResult {
    pub id: String,
    pub payment_reference: Option<String>,
    pub confirmation_number: Option<String>,
    pub status: String,
    pub account_number: Option<String>,
    pub amount: String,
    pub currency_code3d: String,
    /// The account's balance after the posting.
    pub current_balance: Option<String>,
    pub posted_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct RefundPostingAnswer {
    pub posting_info: RefundPostingResult,
}

#[derive(Serialize, ToSchema)]
pub struct RefundPostingResult {
    pub id: String,
    pub refund_reference: Option<String>,
    pub confirmation_number: Option<String>,
    pub status: String,
    pub source_payment_id: Option<String>,
    pub account_number: Option<String>,
    pub refund_amount: String,
    pub current_balance: Option<String>,
    pub posted_at: String,
}

/// The EBPP error envelope: every invalid field is reported.
#[derive(Serialize, ToSchema)]
pub struct OrbipayErrors {
    pub errors: Vec<OrbipayErrorItem>,
}

#[derive(Serialize, ToSchema)]
pub struct OrbipayErrorItem {
    /// error_field, error_unauthorized, error_forbidden, error_customer_missing,
    /// error_payload_too_large, error_duplicate_posting, ..., error_processing.
    pub code: String,
    pub message: String,
    /// Dotted path in the posted object, or the form field; omitted when no single field.
    pub field: Option<String>,
}

// ---- The accounts file (parsed by `domain::account::parse_accounts_file`) ----

/// One account of the accounts file (interfaces.md §3). Amounts are decimal strings.
#[derive(Serialize, ToSchema)]
pub struct AccountsFileEntry {
    pub account_number: String,
    pub customer_account_reference: Option<String>,
    pub account_holder_name: Option<String>,
    pub nickname: Option<String>,
    /// active (default), inactive, incollections, inbankruptcy, closed, repair.
    pub status: Option<String>,
    /// ISO 4217, default USD.
    pub currency: Option<String>,
    pub warning: Option<String>,
    /// The opening balance on first import; later imports keep the live balance unless
    /// `reset_balance` is true.
    pub current_balance: Option<String>,
    pub current_statement_balance: Option<String>,
    pub minimum_payment_due: Option<String>,
    pub past_amount_due: Option<String>,
    pub payment_due_date: Option<String>,
    pub statement_date: Option<String>,
    pub payoff_amount: Option<String>,
    pub payoff_expiry_date: Option<String>,
    pub min_payment_amount: Option<String>,
    pub max_payment_amount: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub address: Option<serde_json::Value>,
    pub reset_balance: Option<bool>,
    pub customers: Option<Vec<AccountsFileProfile>>,
}

/// A profile under an account; merged across accounts by `customer_reference`.
#[derive(Serialize, ToSchema)]
pub struct AccountsFileProfile {
    pub customer_reference: String,
    pub lookup_reference: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    /// 9 digits; kept only as a SHA-256 digest for lookups.
    pub ssn: Option<String>,
    pub home_phone: Option<String>,
    /// active (default), suspended, revoked.
    pub status: Option<String>,
    pub warning: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub address: Option<serde_json::Value>,
}
