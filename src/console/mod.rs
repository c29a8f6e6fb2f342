//! The operator console: server-rendered pages under `/console` for a biller's back office,
//! served by the same binary when the admin API is enabled (404 otherwise).
//!
//! - Sign-in takes the admin credential through the same check as the admin API's bearer token
//!   (`admin::auth::admin_credential_ok`); a wrong one is delayed, counted and logged in the
//!   request log (`/admin/rejections`).
//! - Sessions live in memory (`session`); every change (a POST) carries the session's CSRF token
//!   and must come from the console's own origin.
//! - Every answer carries a strict Content-Security-Policy (no inline script or style) and
//!   `X-Frame-Options: DENY`. The one script (`assets/console.js`) only enhances: local times on
//!   hover and the overview's refresh in place.
//! - The pages render the results of the same functions the admin handlers call (`admin::*`),
//!   so the JSON of the admin API and the HTML here are two renderings of one result.
//!
//! The routes are not in `/openapi.json`: they are pages for a browser, not an API (see
//! docs/console.md). The CSV download is the admin search's CSV rendering, which is.

pub mod assets;
mod chart;
mod error;
mod layout;
mod mask;
mod pages;
pub mod session;
mod sign_in;

use std::future::{ready, Ready};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, FromRequest, HttpRequest};

pub use error::ConsoleError;
pub use session::Sessions;

use crate::http::resource;
use crate::state::AppState;

/// The Content-Security-Policy of every console answer: only the console's own script and
/// stylesheet, no inline script or style, no framing, forms only to itself.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Registers `/console/*` when the admin API is enabled; otherwise nothing (404).
pub fn configure(cfg: &mut web::ServiceConfig, state: &web::Data<AppState>) {
    if !crate::admin::auth::admin_enabled(&state.settings) {
        return;
    }
    let get = |h| vec![(Method::GET, h)];
    cfg.service(
        web::scope("/console")
            .service(resource::<ConsoleError>("", get(web::to(pages::overview::page))))
            .service(resource::<ConsoleError>(
                "/sign-in",
                vec![
                    (Method::GET, web::to(sign_in::form)),
                    (Method::POST, web::to(sign_in::submit)),
                ],
            ))
            .service(resource::<ConsoleError>(
                "/sign-out",
                vec![(Method::POST, web::to(sign_in::sign_out))],
            ))
            .service(resource::<ConsoleError>("/search", get(web::to(pages::search::page))))
            .service(resource::<ConsoleError>(
                "/search.csv",
                get(web::to(pages::search::csv)),
            ))
            .service(resource::<ConsoleError>(
                "/records/{kind}/{id}",
                get(web::to(pages::record::page)),
            ))
            .service(resource::<ConsoleError>(
                "/accounts",
                get(web::to(pages::account::jump)),
            ))
            .service(resource::<ConsoleError>(
                "/accounts/{number}",
                get(web::to(pages::account::page)),
            ))
            .service(resource::<ConsoleError>(
                "/unmatched",
                get(web::to(pages::unmatched::list)),
            ))
            .service(resource::<ConsoleError>(
                "/unmatched/{key}/assign",
                vec![
                    (Method::GET, web::to(pages::unmatched::confirm)),
                    (Method::POST, web::to(pages::unmatched::assign)),
                ],
            ))
            .service(resource::<ConsoleError>(
                "/quarantine",
                get(web::to(pages::lists::quarantine)),
            ))
            .service(resource::<ConsoleError>(
                "/refusals",
                get(web::to(pages::lists::refusals)),
            ))
            .service(resource::<ConsoleError>(
                "/reconcile",
                get(web::to(pages::reconcile::page)),
            ))
            .service(resource::<ConsoleError>("/assets/{name}", get(web::to(serve_asset))))
            .default_service(web::to(not_found))
            .wrap(from_fn(security_headers)),
    );
}

async fn not_found() -> Result<actix_web::HttpResponse, ConsoleError> {
    Err(ConsoleError::NotFound("There is no such console page.".into()))
}

/// Adds the console's security headers to every answer under `/console`, errors included.
async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    let fixed: [(HeaderName, &'static str); 6] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
        (
            HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=()",
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}

/// A signed-in operator: the extractor every page takes. Without a live session the request is
/// sent to sign-in (and back here after).
pub struct Operator {
    pub csrf: String,
}

impl FromRequest for Operator {
    type Error = ConsoleError;
    type Future = Ready<Result<Self, ConsoleError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(operator(req))
    }
}

fn operator(req: &HttpRequest) -> Result<Operator, ConsoleError> {
    let state = req.app_data::<web::Data<AppState>>().ok_or(ConsoleError::Unavailable)?;
    let found = session_cookie(req).and_then(|id| state.console_sessions.find(&id));
    match found {
        Some(info) => Ok(Operator { csrf: info.csrf }),
        None => {
            let next = match req.query_string() {
                "" => req.path().to_string(),
                q => format!("{}?{q}", req.path()),
            };
            // Only a GET is worth coming back to; a change is redone from its page.
            let next = if req.method() == Method::GET {
                next
            } else {
                "/console".into()
            };
            Err(ConsoleError::SignIn { next })
        }
    }
}

pub(crate) fn session_cookie(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| session::cookie_value(h, session::SESSION_COOKIE).map(str::to_string))
}

impl Operator {
    /// Checks a change: the form's CSRF token must be this session's, and a browser's `Origin`
    /// (when sent) must be this server.
    pub fn check_change(&self, req: &HttpRequest, form_token: Option<&str>) -> Result<(), ConsoleError> {
        same_origin(req)?;
        match form_token {
            Some(t) if session::tokens_equal(t, &self.csrf) => Ok(()),
            _ => Err(ConsoleError::Forbidden(
                "This change was refused: the form's security token is missing or stale. Reload the page and try again."
                    .into(),
            )),
        }
    }
}

/// Refuses a request whose `Origin` header names another site.
pub(crate) fn same_origin(req: &HttpRequest) -> Result<(), ConsoleError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let info = req.connection_info();
    let expected = format!("{}://{}", info.scheme(), info.host());
    if origin.to_str().ok() == Some(expected.as_str()) {
        Ok(())
    } else {
        Err(ConsoleError::Forbidden(
            "This change was refused: it came from another site.".into(),
        ))
    }
}

/// Whether cookies get `Secure`: the console is reached over TLS.
pub(crate) fn secure(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

/// `GET /console/assets/{name}`: the stylesheet or the script, else the console's 404 page.
async fn serve_asset(name: web::Path<String>) -> Result<actix_web::HttpResponse, ConsoleError> {
    assets::response(&name).ok_or_else(|| ConsoleError::NotFound("There is no such asset.".into()))
}
