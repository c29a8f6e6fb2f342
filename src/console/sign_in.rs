//! Sign-in with the admin credential, and sign-out.

use std::time::Duration;

use actix_web::http::header::{HeaderValue, LOCATION, RETRY_AFTER, SET_COOKIE};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

use super::error::ConsoleError;
use super::layout;
use super::session::{self, SESSION_COOKIE, SIGN_IN_COOKIE};
use super::Operator;
use crate::admin::auth::log_refusal;
use crate::http::RequestId;
use crate::state::AppState;

/// How long a wrong token waits before its answer: guessing gets slow, an operator who
/// mistyped barely notices.
pub const WRONG_TOKEN_DELAY: Duration = Duration::from_secs(1);
/// How long a sign-in form stays usable.
const SIGN_IN_FORM_AGE: Duration = Duration::from_secs(15 * 60);

#[derive(Deserialize)]
pub struct SignInQuery {
    next: Option<String>,
    signed_out: Option<String>,
}

#[derive(Deserialize)]
pub struct SignInForm {
    token: Option<String>,
    csrf: Option<String>,
    next: Option<String>,
}

/// Where to go after sign-in: only a console page, never another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/console") && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/console".to_string(),
    }
}

fn form_page(next: &str, csrf: &str, message: Option<Markup>) -> Markup {
    layout::bare(
        "Sign in",
        html! {
            section.signin {
                h1 { "Sign in to the console" }
                @if let Some(m) = message { (m) }
                form method="post" action="/console/sign-in" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="next" value=(next);
                    label for="token" { "Admin token" }
                    input #token type="password" name="token" required autocomplete="current-password" autofocus
                        aria-describedby="token-help";
                    p #token-help .help { "The admin credential of this server (" code { "admin.token" } " in its configuration)." }
                    button type="submit" { "Sign in" }
                }
            }
        },
    )
}

/// A sign-in form with a fresh CSRF token in a short-lived cookie of its own.
fn form_response(req: &HttpRequest, status: StatusCode, next: &str, message: Option<Markup>) -> HttpResponse {
    let csrf = session::random_token();
    let mut res = layout::html_response(status, form_page(next, &csrf, message));
    let cookie = session::cookie(
        SIGN_IN_COOKIE,
        &csrf,
        "/console/sign-in",
        SIGN_IN_FORM_AGE,
        super::secure(req),
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(SET_COOKIE, v);
    }
    res
}

pub async fn form(req: HttpRequest, query: web::Query<SignInQuery>) -> HttpResponse {
    let next = safe_next(query.next.as_deref());
    let message = query
        .signed_out
        .is_some()
        .then(|| html! { p.notice role="status" { "You are signed out." } });
    form_response(&req, StatusCode::OK, &next, message)
}

pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    rid: RequestId,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, ConsoleError> {
    super::same_origin(&req)?;
    let form = form.into_inner();
    let next = safe_next(form.next.as_deref());
    let cookie_token = req
        .headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| session::cookie_value(h, SIGN_IN_COOKIE).map(str::to_string));
    let form_ok = matches!((&cookie_token, &form.csrf), (Some(c), Some(f)) if session::tokens_equal(c, f));
    if !form_ok {
        let message = html! { p.notice.error role="alert" { "The sign-in form expired. Enter the token again." } };
        return Ok(form_response(&req, StatusCode::FORBIDDEN, &next, Some(message)));
    }
    // The same per-address throttle as the admin API and EBPP: past it, no token is checked.
    let peer = req.peer_addr().map(|a| a.ip());
    if let Err(throttled) = state.auth_throttle.check(peer) {
        let secs = throttled.retry_after_secs();
        tracing::warn!(retry_after_secs = secs, "console sign-in throttled");
        log_refusal(&state, &req, Some(rid.as_str()), "throttled", "too_many_requests").await;
        let message = html! {
            p.notice.error role="alert" {
                "Too many wrong tokens from this address. Nothing was checked; try again in " (secs) " seconds."
            }
        };
        let mut res = form_response(&req, StatusCode::TOO_MANY_REQUESTS, &next, Some(message));
        res.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
        return Ok(res);
    }
    let given = form.token.unwrap_or_default();
    if !crate::admin::auth::admin_credential_ok(&state.settings, given.trim().as_bytes()) {
        state.auth_throttle.failed(peer);
        tracing::warn!("console sign-in refused: wrong admin token");
        log_refusal(&state, &req, Some(rid.as_str()), "unauthorized", "unauthorized").await;
        actix_rt::time::sleep(WRONG_TOKEN_DELAY).await;
        let message = html! {
            p.notice.error role="alert" {
                "That token is not valid. Nothing was signed in; check the server's admin token and try again."
            }
        };
        return Ok(form_response(&req, StatusCode::UNAUTHORIZED, &next, Some(message)));
    }
    let id = state.console_sessions.start();
    tracing::info!("console session started");
    let secure = super::secure(&req);
    let mut res = HttpResponse::SeeOther().finish();
    let headers = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&next) {
        headers.insert(LOCATION, v);
    }
    for cookie in [
        session::cookie(SESSION_COOKIE, &id, "/console", session::MAX_AGE, secure),
        session::cookie(SIGN_IN_COOKIE, "", "/console/sign-in", Duration::ZERO, secure),
    ] {
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            headers.append(SET_COOKIE, v);
        }
    }
    Ok(res)
}

#[derive(Deserialize)]
pub struct SignOutForm {
    csrf: Option<String>,
}

pub async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
    operator: Operator,
    form: web::Form<SignOutForm>,
) -> Result<HttpResponse, ConsoleError> {
    operator.check_change(&req, form.csrf.as_deref())?;
    if let Some(id) = super::session_cookie(&req) {
        state.console_sessions.end(&id);
    }
    let mut res = HttpResponse::SeeOther().finish();
    res.headers_mut()
        .insert(LOCATION, HeaderValue::from_static("/console/sign-in?signed_out=1"));
    let cookie = session::cookie(SESSION_COOKIE, "", "/console", Duration::ZERO, super::secure(&req));
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(SET_COOKIE, v);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn sign_in_returns_only_to_console_pages() {
        for (given, want) in [
            (Some("/console/search?x=1"), "/console/search?x=1"),
            (Some("https://evil.example/"), "/console"),
            (Some("//evil.example/console"), "/console"),
            (Some("/admin/journal"), "/console"),
            (Some("/console\\..\\x"), "/console"),
            (None, "/console"),
        ] {
            assert_eq!(safe_next(given), want, "{given:?}");
        }
    }
}
