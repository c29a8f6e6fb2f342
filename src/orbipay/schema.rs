//! The OpenAPI description of the EBPP wire bodies. The bodies are parsed by hand
//! (`wire`), field by field with every error reported, so these types only describe them for
//! `/openapi.json`; nothing deserializes into them.

use serde::Serialize;
use utoipa::{IntoResponses, ToSchema};

/// The error answers every EBPP route shares (the EBPP envelope). Each route adds its own 200
/// and its own 404 or 422.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum SharedErrors {
    #[response(
        status = 400,
        description = "Malformed body, invalid fields or the wrong content type (error_field)"
    )]
    BadRequest(OrbipayErrors),
    #[response(status = 401, description = "Authentication failed (error_unauthorized)")]
    Unauthorized(OrbipayErrors),
    #[response(status = 403, description = "Client disabled (error_forbidden)")]
    Forbidden(OrbipayErrors),
    #[response(status = 413, description = "Body over server.max_body_bytes")]
    PayloadTooLarge(OrbipayErrors),
    #[response(
        status = 503,
        description = "No client configured, or the store is unavailable (error_processing); retry"
    )]
    Unavailable(OrbipayErrors),
}

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
    pub posting_info: PaymentObject,
}

/// The EBPP payment object: every scalar a string, `""` means absent, unknown fields accepted.
// Named `PaymentPosting` in the document; `wire::PaymentPosting` is what it parses into.
#[derive(Serialize, ToSchema)]
#[schema(as = PaymentPosting)]
pub struct PaymentObject {
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
    pub posting_info: RefundObject,
}

/// The EBPP refund object.
// Named `RefundPosting` in the document; `wire::RefundPosting` is what it parses into.
#[derive(Serialize, ToSchema)]
#[schema(as = RefundPosting)]
pub struct RefundObject {
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
