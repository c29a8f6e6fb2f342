//! The bearer token guard of `/admin`. It wraps the whole scope, so a route added under it is
//! guarded without doing anything, and so is a path no route matches (no probing for routes).

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};

use super::error::AdminError;
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
            tracing::info!(code = e.code(), "admin request refused");
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
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .ok_or_else(|| AdminError::unauthorized("an Authorization: Bearer <admin token> header is required"))?;
    if admin_credential_ok(&state.settings, given.as_bytes()) {
        Ok(())
    } else {
        Err(AdminError::unauthorized("the bearer token is not valid"))
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
