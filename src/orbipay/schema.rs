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
    #[response(
        status = 429,
        description = "Too many failed authentications from this address within a minute (error_too_many_requests); no credential was checked. Retry-After: seconds to wait",
        headers(("Retry-After" = u64, description = "Seconds until this address may authenticate again"))
    )]
    TooManyRequests(OrbipayErrors),
    #[response(
        status = 413,
        description = "Body over server.max_body_bytes (error_payload_too_large)"
    )]
    PayloadTooLarge(OrbipayErrors),
    #[response(
        status = 500,
        description = "A bug (error_processing); the details are only in the log"
    )]
    Internal(OrbipayErrors),
    #[response(
        status = 503,
        description = "No client configured, or the store is unavailable (error_processing); retry"
    )]
    Unavailable(OrbipayErrors),
}

fn has_more_results_schema() -> utoipa::openapi::Object {
    crate::openapi::string_enum(
        "Whether more profiles matched than are listed",
        ["true", "false"],
        false,
    )
}

/// EBPP knows four account statuses; closed and repair accounts are shown as inactive
/// (`AccountStatus::as_ebpp`).
fn ebpp_account_status_schema() -> utoipa::openapi::Object {
    use crate::domain::account::AccountStatus;
    let mut statuses: Vec<&str> = Vec::new();
    for status in crate::openapi::wire_names!(AccountStatus {
        Active,
        Inactive,
        Incollections,
        Inbankruptcy,
        Closed,
        Repair
    })
    .into_iter()
    .filter_map(AccountStatus::parse)
    .map(AccountStatus::as_ebpp)
    {
        if !statuses.contains(&status) {
            statuses.push(status);
        }
    }
    crate::openapi::string_enum(
        "active, inactive, incollections or inbankruptcy (a closed or repair account is shown as inactive)",
        statuses,
        false,
    )
}

fn posting_status_schema() -> utoipa::openapi::Object {
    crate::openapi::string_enum(
        "The posting's status as stored (the one posted, or returned after a reversal)",
        crate::domain::status::PostingStatus::ALL.map(|s| s.as_str()),
        false,
    )
}

/// The EBPP list envelope of a lookup (every scalar a string).
#[derive(Serialize, ToSchema)]
pub struct LookupAnswer {
    pub list: Vec<LookupProfile>,
    pub total_results_count: String,
    #[schema(schema_with = has_more_results_schema)]
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
    #[schema(schema_with = crate::admin::views::profile_status_schema)]
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
    #[schema(schema_with = ebpp_account_status_schema)]
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

// The request bodies (`LookupForm`, `PaymentPostingRequest`, `ReversalPostingRequest`,
// `RefundPostingRequest`) are hand-written JSON Schemas in `request_schema`: the handlers'
// attributes name these types, and `openapi::document_json` puts the real schemas in.
pub struct LookupForm;
pub struct PaymentPostingRequest;
pub struct ReversalPostingRequest;
pub struct RefundPostingRequest;
crate::openapi::hand_written!(
    LookupForm,
    PaymentPostingRequest,
    ReversalPostingRequest,
    RefundPostingRequest
);

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
    #[schema(schema_with = posting_status_schema)]
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
    #[schema(schema_with = posting_status_schema)]
    pub status: String,
    pub source_payment_id: Option<String>,
    pub account_number: Option<String>,
    pub refund_amount: String,
    pub current_balance: Option<String>,
    pub posted_at: String,
}

fn error_code_schema() -> utoipa::openapi::Object {
    crate::openapi::string_enum(
        "What went wrong; each endpoint's answers say which codes it gives and when",
        super::error::OrbipayError::every_code(),
        false,
    )
}

/// The EBPP error envelope: every invalid field is reported.
#[derive(Serialize, ToSchema)]
pub struct OrbipayErrors {
    pub errors: Vec<OrbipayErrorItem>,
}

#[derive(Serialize, ToSchema)]
pub struct OrbipayErrorItem {
    #[schema(schema_with = error_code_schema)]
    pub code: String,
    pub message: String,
    /// Dotted path in the posted object, or the form field; omitted when no single field.
    pub field: Option<String>,
}
