//! The four EBPP routes, declared once in `Endpoint::ALL`: registered (`configure`) and
//! documented (`openapi`) from it here, and iterated by the tests; nothing else spells their
//! paths.

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use utoipa::OpenApi;

use super::endpoint::Endpoint;
use super::error::OrbipayError;
use super::handlers;
use super::schema::{OrbipayErrorItem, OrbipayErrors};
use crate::http::{resource, RequestId};
use crate::state::AppState;

/// Serves a POST to `endpoint`.
async fn serve(
    endpoint: Endpoint,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    rid: RequestId,
) -> Result<HttpResponse, OrbipayError> {
    match endpoint {
        Endpoint::Lookup => handlers::lookup(req, payload, state, rid).await,
        Endpoint::Payment => handlers::payment(req, payload, state, rid).await,
        Endpoint::Reversal => handlers::reversal(req, payload, state, rid).await,
        Endpoint::Refund => handlers::refund(req, payload, state, rid).await,
    }
}

/// Registers every EBPP route under `base` (`orbipay.base_path`). Each also answers any other
/// method with 405 and `Allow: POST` in the EBPP error envelope (spec §2).
pub fn configure(cfg: &mut web::ServiceConfig, base: &str) {
    for endpoint in Endpoint::ALL {
        let post = web::to(
            move |req: HttpRequest, payload: web::Payload, state: web::Data<AppState>, rid: RequestId| {
                serve(endpoint, req, payload, state, rid)
            },
        );
        cfg.service(resource::<OrbipayError>(
            &format!("{base}{}", endpoint.path()),
            vec![(Method::POST, post)],
        ));
    }
}

#[derive(OpenApi)]
#[openapi(
    paths(handlers::lookup, handlers::payment, handlers::reversal, handlers::refund),
    components(schemas(OrbipayErrors, OrbipayErrorItem))
)]
struct Api;

/// The EBPP part of `/openapi.json`, at the paths served under `base`.
pub fn openapi(base: &str) -> utoipa::openapi::OpenApi {
    let mut doc = Api::openapi();
    let paths = &mut doc.paths.paths;
    let base = base.trim_end_matches('/');
    for endpoint in Endpoint::ALL {
        if let Some(item) = paths.shift_remove(endpoint.path()) {
            paths.insert(format!("{base}{}", endpoint.path()), item);
        }
    }
    doc
}
