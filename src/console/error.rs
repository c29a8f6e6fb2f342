//! What the console answers when a page cannot be shown: an HTML page in the console's look
//! (with the same security headers), or a redirect to sign-in when there is no session.

use actix_web::http::header::{HeaderValue, LOCATION};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use maud::html;

use super::layout::{self, urlencode};
use crate::admin::AdminError;
use crate::http::RefuseMethod;

#[derive(Debug)]
pub enum ConsoleError {
    /// No live session: go to sign-in, then come back to `next`.
    SignIn {
        next: String,
    },
    /// A change without a valid CSRF token, or from another origin.
    Forbidden(String),
    NotFound(String),
    BadRequest(String),
    MethodNotAllowed(String),
    /// The store or the server failed; the cause is logged, not shown.
    Unavailable,
}

impl std::fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SignIn { .. } => write!(f, "sign-in required"),
            Self::Forbidden(m) | Self::NotFound(m) | Self::BadRequest(m) | Self::MethodNotAllowed(m) => {
                write!(f, "{m}")
            }
            Self::Unavailable => write!(f, "the store cannot answer right now"),
        }
    }
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignIn { .. } => StatusCode::SEE_OTHER,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::SignIn { next } = self {
            let target = format!("/console/sign-in?next={}", urlencode(next));
            let mut res = HttpResponse::SeeOther().finish();
            if let Ok(v) = HeaderValue::from_str(&target) {
                res.headers_mut().insert(LOCATION, v);
            }
            return res;
        }
        let title = match self {
            Self::Forbidden(_) => "Refused",
            Self::NotFound(_) => "Not found",
            Self::BadRequest(_) => "Cannot do that",
            Self::MethodNotAllowed(_) => "Not allowed",
            _ => "Unavailable",
        };
        let body = html! {
            h1 { (title) }
            p.notice.error role="alert" { (self.to_string()) }
            p { a href="/console" { "Back to the overview" } }
        };
        layout::html_response(self.status_code(), layout::bare(title, body))
    }
}

impl RefuseMethod for ConsoleError {
    fn method_not_allowed(allowed: &str) -> Self {
        Self::MethodNotAllowed(format!("This page takes {allowed} only."))
    }
}

impl From<AdminError> for ConsoleError {
    /// The admin API's refusals, shown as pages: the same checks, the same words.
    fn from(e: AdminError) -> Self {
        let text = match e.field() {
            Some(f) if !f.starts_with('(') => format!("{} ({f})", e.message()),
            _ => e.message().to_string(),
        };
        match e.status() {
            StatusCode::NOT_FOUND => Self::NotFound(text),
            s if s.is_client_error() => Self::BadRequest(text),
            _ => Self::Unavailable,
        }
    }
}
