//! `/openapi.json`: the OpenAPI document of every route, generated from the `#[utoipa::path]`
//! attributes on the handlers and the `ToSchema` types they answer with.
//!
//! Each part of the service contributes its own document and this module only merges them: the
//! EBPP routes (`orbipay::routes`), the webhook routes (`empayre::routes`), the admin areas
//! (`admin::AREAS`) and the ops routes (`ops`). Each channel keeps the schema types of its wire
//! bodies (`orbipay::schema`, `empayre::schema`). Paths that depend on configuration
//! (`orbipay.base_path`, `empayre.path`) are placed by the channel that serves them.

use actix_web::http::Method;
use actix_web::{web, HttpResponse};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::admin::AdminError;
use crate::http::resource;
use crate::settings::Settings;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "biller-inbox",
        description = "Biller-side receiver for Orbipay EBPP postings and Empayre webhooks, with its admin and ops API"
    ),
    paths(openapi_json),
    modifiers(&SecuritySchemes),
    tags(
        (name = "orbipay", description = "Orbipay EBPP lookup and postings (client-key + API-key headers)"),
        (name = "empayre", description = "Empayre signed webhooks (Content-Signature)"),
        (name = "admin", description = "Operator API (Authorization: Bearer <admin.token>)"),
        (name = "ops", description = "Health, metrics and this document (no auth)"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "orbipay_client_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("client-key"))),
        );
        components.add_security_scheme(
            "orbipay_api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("api-key"))),
        );
    }
}

/// The document for a server running with `settings`.
pub fn document(settings: &Settings) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::orbipay::routes::openapi(&settings.orbipay.base_path));
    doc.merge(crate::empayre::routes::openapi(&settings.empayre.path));
    doc.merge(crate::ops::Api::openapi());
    for area in crate::admin::AREAS {
        doc.merge((area.openapi)());
    }
    doc
}

/// Registers `GET /openapi.json` (an ops route: no auth, the operator API's error format).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource::<AdminError>(
        "/openapi.json",
        vec![(Method::GET, web::to(openapi_json))],
    ));
}

/// This document: every route with its request and response schemas.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "ops",
    responses((status = 200, description = "OpenAPI 3.1 document", body = Object, content_type = "application/json"))
)]
pub async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(document(&state.settings))
}
