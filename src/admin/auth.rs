//! The bearer token guard of `/admin`. It wraps the whole scope, so a route added under it is
//! guarded without doing anything, and so is a path no route matches (no probing for routes).

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpRequest, ResponseError};
use chrono::Utc;
use serde_json::json;

use super::error::AdminError;
use crate::http::RequestId;
use crate::settings::Settings;
use crate::state::AppState;

/// Middleware (`actix_web::middleware::from_fn`) admitting only requests that carry
/// `Authorization: Bearer <admin.token>`. An empty `admin.token` disables the admin API: every
/// request under `/admin` gets 404 `admin_disabled`.
pub async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    match check(&req) {
        Ok(()) => next.call(req).await.map(ServiceResponse::map_into_left_body),
        Err(e) => {
            tracing::info!(code = e.code().as_str(), "admin request refused");
            if let Some(state) = req.app_data::<web::Data<AppState>>() {
                if let Some(cause) = refusal_cause(&e) {
                    let rid = RequestId::from_request(req.request(), &mut actix_web::dev::Payload::None)
                        .into_inner()
                        .ok();
                    log_refusal(
                        state,
                        req.request(),
                        rid.as_ref().map(RequestId::as_str),
                        cause,
                        e.code().as_str(),
                    )
                    .await;
                }
            }
            let res = e.error_response();
            Ok(req.into_response(res).map_into_right_body())
        }
    }
}

fn check(req: &ServiceRequest) -> Result<(), AdminError> {
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return Err(AdminError::unavailable("admin request without application state"));
    };
    if !admin_enabled(&state.settings) {
        return Err(AdminError::disabled());
    }
    let peer = req.peer_addr().map(|a| a.ip());
    state.auth_throttle.check(peer).map_err(AdminError::throttled)?;
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer);
    let Some(given) = given else {
        state.auth_throttle.failed(peer);
        return Err(AdminError::unauthorized(
            "an Authorization: Bearer <admin token> header is required",
        ));
    };
    if admin_credential_ok(&state.settings, given.as_bytes()) {
        Ok(())
    } else {
        state.auth_throttle.failed(peer);
        Err(AdminError::unauthorized("the bearer token is not valid"))
    }
}

/// The request-log cause of a refused admin request: a wrong or missing token, or the throttle.
fn refusal_cause(e: &AdminError) -> Option<&'static str> {
    match e.status() {
        StatusCode::UNAUTHORIZED => Some("unauthorized"),
        StatusCode::TOO_MANY_REQUESTS => Some("throttled"),
        _ => None,
    }
}

/// Counts a refused admin credential (or a throttled address) in `/metrics` and writes it to
/// the request log (`/admin/rejections`), as the other channels do. The console's sign-in
/// uses it too. Never the token itself.
pub async fn log_refusal(
    state: &AppState,
    req: &HttpRequest,
    request_id: Option<&str>,
    cause: &'static str,
    code: &str,
) {
    let peer = req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    state.metrics.rejection(cause);
    let entry = json!({
        "at": crate::http::rfc3339(Utc::now()),
        "channel": "admin",
        "endpoint": req.path(),
        "cause": cause,
        "code": code,
        "request_id": request_id,
        "peer": peer,
    });
    if let Err(e) = state.store.log_rejection(entry).await {
        tracing::warn!(error = %e, "could not write the request log");
    }
}

/// Whether the admin API (and the console, which signs in with the same credential) is on.
pub fn admin_enabled(settings: &Settings) -> bool {
    !settings.admin.token.is_empty()
}

/// The one check of an admin credential, for the bearer header and the console's sign-in form
/// alike: constant time (`Secret::matches`), whatever form `admin.token` is given in, and never
/// true while the admin API is disabled.
pub fn admin_credential_ok(settings: &Settings, given: &[u8]) -> bool {
    admin_enabled(settings) && settings.admin.token.matches(given)
}

/// The token of an `Authorization` value with the `Bearer` scheme (case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_values() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("abc"), None);
    }
}
