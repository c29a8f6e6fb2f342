//! The four EBPP routes, declared once. `Endpoint::ALL` registers them (`configure`), documents
//! them (`openapi`) and is what the tests iterate; nothing else spells their paths.

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use utoipa::OpenApi;

use super::error::OrbipayError;
use super::handlers;
use super::schema::{OrbipayErrorItem, OrbipayErrors};
use crate::http::{resource, RequestId};
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Lookup,
    Payment,
    Reversal,
    Refund,
}

impl Endpoint {
    /// Every EBPP route, in the order `orbipay-mpa.md` gives them.
    pub const ALL: [Endpoint; 4] = [Self::Lookup, Self::Payment, Self::Reversal, Self::Refund];

    /// The route's path before `orbipay.base_path`.
    pub const fn path(self) -> &'static str {
        match self {
            Self::Lookup => "/mpacustomers",
            Self::Payment => "/paymentposting",
            Self::Reversal => "/paymentreversalposting",
            Self::Refund => "/paymentrefundposting",
        }
    }

    /// Serves a POST to this route.
    async fn handle(
        self,
        req: HttpRequest,
        payload: web::Payload,
        state: web::Data<AppState>,
        rid: RequestId,
    ) -> Result<HttpResponse, OrbipayError> {
        match self {
            Self::Lookup => handlers::lookup(req, payload, state, rid).await,
            Self::Payment => handlers::payment(req, payload, state, rid).await,
            Self::Reversal => handlers::reversal(req, payload, state, rid).await,
            Self::Refund => handlers::refund(req, payload, state, rid).await,
        }
    }
}

/// Registers every EBPP route under `base` (`orbipay.base_path`). Each also answers any other
/// method with 405 and `Allow: POST` in the EBPP error envelope (spec §2).
pub fn configure(cfg: &mut web::ServiceConfig, base: &str) {
    for endpoint in Endpoint::ALL {
        let post = web::to(
            move |req: HttpRequest, payload: web::Payload, state: web::Data<AppState>, rid: RequestId| {
                endpoint.handle(req, payload, state, rid)
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
        if let Some(item) = paths.remove(endpoint.path()) {
            paths.insert(format!("{base}{}", endpoint.path()), item);
        }
    }
    doc
}
