//! The admin API's one error type and its wire shape `{"code", "message", "field"}`.
//! A 5xx body is opaque; its cause goes to the log only.

use actix_web::http::header::{HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::{BodyError, RefuseMethod};
use crate::store::StoreError;
use crate::throttle::Throttled;

/// What went wrong, for a program: the `code` of every admin error body. A closed set, so the
/// document can list it and a client can match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminErrorCode {
    Unauthorized,
    TooManyRequests,
    AdminDisabled,
    NotFound,
    MethodNotAllowed,
    Malformed,
    PayloadTooLarge,
    UnsupportedMediaType,
    Validation,
    BadValue,
    UnknownName,
    UnknownMethod,
    WrongArity,
    WindowRequired,
    BadPaging,
    UnknownSortField,
    BadOrder,
    StoreUnavailable,
}

impl AdminErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::TooManyRequests => "too_many_requests",
            Self::AdminDisabled => "admin_disabled",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Malformed => "malformed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Validation => "validation",
            Self::BadValue => "bad_value",
            Self::UnknownName => "unknown_name",
            Self::UnknownMethod => "unknown_method",
            Self::WrongArity => "wrong_arity",
            Self::WindowRequired => "window_required",
            Self::BadPaging => "bad_paging",
            Self::UnknownSortField => "unknown_sort_field",
            Self::BadOrder => "bad_order",
            Self::StoreUnavailable => "store_unavailable",
        }
    }
}

fn error_code_schema() -> utoipa::openapi::Object {
    crate::openapi::string_enum(
        "Machine-readable; each route's answers say which of these it gives and when",
        crate::openapi::wire_names!(AdminErrorCode {
            Unauthorized,
            TooManyRequests,
            AdminDisabled,
            NotFound,
            MethodNotAllowed,
            Malformed,
            PayloadTooLarge,
            UnsupportedMediaType,
            Validation,
            BadValue,
            UnknownName,
            UnknownMethod,
            WrongArity,
            WindowRequired,
            BadPaging,
            UnknownSortField,
            BadOrder,
            StoreUnavailable,
        }),
        false,
    )
}

/// The body of every admin error.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable; the document lists every value ([`AdminErrorCode`]).
    #[schema(schema_with = error_code_schema)]
    pub code: AdminErrorCode,
    pub message: String,
    /// The offending field (a JSON path such as `searchParameters[1].method`, a query
    /// parameter, or a path segment), or null.
    pub field: Option<String>,
    /// Every problem, for answers that can report several (`PUT /admin/accounts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<EntryProblem>>,
}

/// One bad entry of an accounts body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EntryProblem {
    /// `entry N` (0-based index in an array) or `line N` (JSON lines).
    pub location: String,
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct AdminError {
    status: StatusCode,
    body: ErrorBody,
    /// With 429: the `Retry-After` seconds.
    retry_after: Option<u64>,
}

impl AdminError {
    pub fn new(status: StatusCode, code: AdminErrorCode, field: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                code,
                message: message.into(),
                field: field.map(str::to_string),
                errors: None,
            },
            retry_after: None,
        }
    }

    /// 400 with a code and the field it is about.
    pub fn bad(code: AdminErrorCode, field: impl AsRef<str>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, Some(field.as_ref()), message)
    }

    /// 400 `bad_value`: a value that breaks its rule, and the field it is in.
    pub fn bad_value(field: impl AsRef<str>, message: impl Into<String>) -> Self {
        Self::bad(AdminErrorCode::BadValue, field, message)
    }

    /// 400 for a body that cannot be read as what the route takes.
    pub fn malformed(field: Option<&str>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, AdminErrorCode::Malformed, field, message)
    }

    pub fn not_found(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, AdminErrorCode::NotFound, Some(field), message)
    }

    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, AdminErrorCode::Unauthorized, None, message)
    }

    /// 429: the client's address failed authentication too often; no token was checked.
    pub fn throttled(t: Throttled) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            AdminErrorCode::TooManyRequests,
            None,
            format!(
                "too many failed authentications from this address; retry in {} seconds",
                t.retry_after_secs()
            ),
        );
        e.retry_after = Some(t.retry_after_secs());
        e
    }

    pub fn disabled() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            AdminErrorCode::AdminDisabled,
            None,
            "the admin API is disabled (admin.token is empty)",
        )
    }

    /// The store failed: 503, cause logged, body opaque.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "admin request failed in the store");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            AdminErrorCode::StoreUnavailable,
            None,
            "the store cannot answer right now; try again",
        )
    }

    /// 405: the route exists but takes another method (the `Allow` header is added by
    /// `http::resource`).
    pub fn method_not_allowed(allowed: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            AdminErrorCode::MethodNotAllowed,
            None,
            format!("this route takes {allowed} only"),
        )
    }

    pub fn with_errors(mut self, errors: Vec<EntryProblem>) -> Self {
        self.body.errors = Some(errors);
        self
    }

    pub fn code(&self) -> AdminErrorCode {
        self.body.code
    }

    pub fn message(&self) -> &str {
        &self.body.message
    }

    pub fn field(&self) -> Option<&str> {
        self.body.field.as_deref()
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.body.code.as_str(), self.body.message)
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status).json(&self.body);
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"admin\""));
        }
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

impl RefuseMethod for AdminError {
    fn method_not_allowed(allowed: &str) -> Self {
        Self::method_not_allowed(allowed)
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        Self::unavailable(e)
    }
}

impl From<actix_web::error::BlockingError> for AdminError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        Self::unavailable(e)
    }
}

impl From<BodyError> for AdminError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                AdminErrorCode::PayloadTooLarge,
                None,
                e.to_string(),
            ),
            BodyError::Read(_) => Self::malformed(None, e.to_string()),
        }
    }
}

/// Parses a JSON object body into `T`, naming the JSON path of the first problem.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    from_value(parse_object(body)?)
}

/// A body that must be a JSON object. serde's derive would also take an array of a struct's
/// fields in order, which no client means and the document does not allow.
pub fn parse_object(body: &[u8]) -> Result<serde_json::Value, AdminError> {
    match serde_json::from_slice(body) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value),
        Ok(_) => Err(AdminError::malformed(None, "the body must be a JSON object")),
        Err(e) => Err(AdminError::malformed(None, e.to_string())),
    }
}

/// `T` from a parsed JSON value, naming the JSON path of the first problem.
pub fn from_value<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, AdminError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = (path != ".").then_some(path);
        AdminError::malformed(field.as_deref(), e.into_inner().to_string())
    })
}
