//! Orbipay's wire errors (docs/orbipay.md), mapped to status and envelope in one place.

use actix_web::http::header::RETRY_AFTER;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use super::auth::AuthFailure;
use super::posting::PostingError;
use super::wire::FieldError;
use crate::http::{BodyError, RefuseMethod};
use crate::ledger::{BusinessCode, Rejection};
use crate::store::StoreError;
use crate::throttle::Throttled;

#[derive(Debug)]
pub enum OrbipayError {
    NotConfigured,
    Unauthorized,
    /// Too many failed authentications from this address: refused before any credential check.
    Throttled(Throttled),
    Forbidden,
    PayloadTooLarge,
    /// Any method but POST.
    MethodNotAllowed,
    /// The body is not what the endpoint takes at all (content type, JSON, form).
    Malformed(Vec<FieldError>),
    /// Field rules broken.
    Fields(Vec<FieldError>),
    CustomerMissing,
    Business(Rejection),
    Unavailable(String),
    Internal(String),
}

impl OrbipayError {
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::Malformed(vec![FieldError {
            field: None,
            message: message.into(),
        }])
    }

    /// Wire parsers report a body they cannot read at all as one error without a field.
    pub fn from_field_errors(errors: Vec<FieldError>) -> Self {
        if errors.len() == 1 && errors[0].field.is_none() {
            Self::Malformed(errors)
        } else {
            Self::Fields(errors)
        }
    }

    /// The rejection cause of the request log (a closed set, docs/operations.md, Admin API).
    pub fn cause(&self) -> Option<&'static str> {
        Some(match self {
            Self::Unauthorized | Self::Forbidden => "unauthorized",
            Self::Throttled(_) => "throttled",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Malformed(_) | Self::MethodNotAllowed => "malformed",
            Self::Fields(_) | Self::CustomerMissing => "validation",
            Self::Business(_) => "business_rule",
            Self::NotConfigured | Self::Unavailable(_) | Self::Internal(_) => return None,
        })
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "error_unauthorized",
            Self::Throttled(_) => "error_too_many_requests",
            Self::Forbidden => "error_forbidden",
            Self::PayloadTooLarge => "error_payload_too_large",
            Self::Malformed(_) | Self::Fields(_) | Self::MethodNotAllowed => "error_field",
            Self::CustomerMissing => "error_customer_missing",
            Self::Business(r) => r.code.as_str(),
            Self::NotConfigured | Self::Unavailable(_) | Self::Internal(_) => "error_processing",
        }
    }

    /// Every code an EBPP error item can carry, as the document lists them: the codes above
    /// and every business rule's. The tests check that `code` gives nothing else.
    pub fn every_code() -> Vec<&'static str> {
        let mut codes = vec![
            "error_unauthorized",
            "error_too_many_requests",
            "error_forbidden",
            "error_payload_too_large",
            "error_field",
            "error_customer_missing",
            "error_processing",
        ];
        codes.extend(crate::openapi::wire_names!(BusinessCode {
            DuplicatePosting,
            PostingRejected,
            AccountClosed,
            AccountStatusInvalid,
            PaymentAmountLow,
            PaymentAmountHigh,
            MemberWarning,
            AccountWarning,
            RefundInitiate,
        }));
        codes
    }

    pub fn is_duplicate(&self) -> bool {
        matches!(self, Self::Business(r) if r.code == BusinessCode::DuplicatePosting)
    }
}

impl std::fmt::Display for OrbipayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unavailable(cause) | Self::Internal(cause) => write!(f, "{}: {cause}", self.code()),
            _ => f.write_str(self.code()),
        }
    }
}

impl ResponseError for OrbipayError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Malformed(_) | Self::Fields(_) => StatusCode::BAD_REQUEST,
            Self::CustomerMissing => StatusCode::NOT_FOUND,
            Self::Business(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotConfigured | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = self.code();
        let errors: Vec<serde_json::Value> = match self {
            Self::Malformed(list) | Self::Fields(list) => list
                .iter()
                .map(|e| match &e.field {
                    Some(field) => json!({"code": code, "message": e.message, "field": field}),
                    None => json!({"code": code, "message": e.message}),
                })
                .collect(),
            Self::Business(r) => vec![match r.field {
                Some(field) => json!({"code": code, "message": r.message, "field": field}),
                None => json!({"code": code, "message": r.message}),
            }],
            other => vec![json!({"code": code, "message": other.public_message()})],
        };
        let mut res = HttpResponse::build(self.status_code());
        if let Self::Throttled(t) = self {
            res.insert_header((RETRY_AFTER, t.retry_after_secs()));
        }
        res.json(json!({ "errors": errors }))
    }
}

impl OrbipayError {
    /// What the caller may read. Internal causes stay in the log.
    fn public_message(&self) -> &'static str {
        match self {
            Self::NotConfigured => "no Orbipay client is configured; the channel is closed",
            Self::Unauthorized => "authentication failed",
            Self::Throttled(_) => "too many failed authentications from this address; retry after Retry-After seconds",
            Self::Forbidden => "the client is disabled",
            Self::PayloadTooLarge => "request body is too large",
            Self::MethodNotAllowed => "this endpoint takes POST only",
            Self::CustomerMissing => "no customer matches the criteria",
            Self::Unavailable(_) => "the store is unavailable, retry later",
            Self::Internal(_) => "internal error",
            Self::Malformed(_) | Self::Fields(_) | Self::Business(_) => "request refused",
        }
    }
}

impl RefuseMethod for OrbipayError {
    /// Every EBPP route takes POST only.
    fn method_not_allowed(_allowed: &str) -> Self {
        Self::MethodNotAllowed
    }
}

impl From<AuthFailure> for OrbipayError {
    fn from(f: AuthFailure) -> Self {
        match f {
            AuthFailure::NotConfigured => Self::NotConfigured,
            AuthFailure::Unauthorized => Self::Unauthorized,
            AuthFailure::Forbidden => Self::Forbidden,
        }
    }
}

impl From<BodyError> for OrbipayError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge { .. } => Self::PayloadTooLarge,
            BodyError::Read(m) => Self::malformed(m),
        }
    }
}

impl From<Rejection> for OrbipayError {
    fn from(r: Rejection) -> Self {
        Self::Business(r)
    }
}

impl From<PostingError> for OrbipayError {
    fn from(e: PostingError) -> Self {
        match e {
            PostingError::Rejected(r) => Self::Business(r),
            PostingError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for OrbipayError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt(m) => Self::Internal(m),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// One error of every kind: the match makes a new variant fail to compile here until it is
    /// added, so `every_code` cannot fall behind `code`.
    fn one_of_each() -> Vec<OrbipayError> {
        let business = |code| OrbipayError::Business(Rejection::new(code, None, "refused"));
        let all = vec![
            OrbipayError::NotConfigured,
            OrbipayError::Unauthorized,
            OrbipayError::Throttled(Throttled {
                retry_after: Duration::from_secs(1),
            }),
            OrbipayError::Forbidden,
            OrbipayError::PayloadTooLarge,
            OrbipayError::MethodNotAllowed,
            OrbipayError::malformed("not JSON"),
            OrbipayError::Fields(Vec::new()),
            OrbipayError::CustomerMissing,
            business(BusinessCode::DuplicatePosting),
            business(BusinessCode::PostingRejected),
            business(BusinessCode::AccountClosed),
            business(BusinessCode::AccountStatusInvalid),
            business(BusinessCode::PaymentAmountLow),
            business(BusinessCode::PaymentAmountHigh),
            business(BusinessCode::MemberWarning),
            business(BusinessCode::AccountWarning),
            business(BusinessCode::RefundInitiate),
            OrbipayError::Unavailable("down".into()),
            OrbipayError::Internal("bug".into()),
        ];
        for e in &all {
            match e {
                OrbipayError::NotConfigured
                | OrbipayError::Unauthorized
                | OrbipayError::Throttled(_)
                | OrbipayError::Forbidden
                | OrbipayError::PayloadTooLarge
                | OrbipayError::MethodNotAllowed
                | OrbipayError::Malformed(_)
                | OrbipayError::Fields(_)
                | OrbipayError::CustomerMissing
                | OrbipayError::Business(_)
                | OrbipayError::Unavailable(_)
                | OrbipayError::Internal(_) => {}
            }
        }
        all
    }

    #[test]
    fn every_code_is_exactly_the_codes_errors_give() {
        let listed: std::collections::BTreeSet<_> = OrbipayError::every_code().into_iter().collect();
        let given: std::collections::BTreeSet<_> = one_of_each().iter().map(OrbipayError::code).collect();
        assert_eq!(listed, given);
    }
}
