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
            "empayre_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Content-Signature",
                "alg=RS256; digest=<URL-safe base64 of the RSASSA-PKCS1-v1_5 SHA-256 signature of \
                 the raw body>, made with a private key whose public key a configured Empayre \
                 source trusts. Verified over the exact bytes before anything is parsed.",
            ))),
        );
        components.add_security_scheme(
            "orbipay_api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("api-key"))),
        );
    }
}

/// Marks the stand-in of a hand-written schema; a served document must not contain it.
pub const PLACEHOLDER: &str = "stand-in: replaced by a hand-written schema when served";

/// Gives each type a stand-in schema under its name, so that utoipa attributes can name it; the
/// hand-written JSON Schema of that name replaces it in [`document_json`]. For bodies whose rules
/// utoipa's model cannot say (`""` meaning absent, type lists, `not`, numbers or digit strings).
macro_rules! hand_written {
    ($($name:ident),*) => {$(
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new().description(Some($crate::openapi::PLACEHOLDER)).into()
            }
        }
        impl utoipa::ToSchema for $name {}
    )*};
}
pub(crate) use hand_written;

/// Every hand-written schema, by its name under `components/schemas`.
fn hand_written_schemas() -> Vec<(&'static str, serde_json::Value)> {
    let mut all = crate::orbipay::request_schema::request_schemas();
    all.extend(crate::admin::search::request_schemas());
    all.extend(crate::empayre::schema::request_schemas());
    all
}

/// The document as served: [`document`] with the hand-written request schemas in place of their
/// placeholders.
pub fn document_json(settings: &Settings) -> serde_json::Value {
    // Serializing our own document cannot fail: every map key is a string.
    let mut doc = serde_json::to_value(document(settings)).unwrap_or_default();
    if let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(|s| s.as_object_mut()) {
        for (name, schema) in hand_written_schemas() {
            schemas.insert(name.to_string(), schema);
        }
    }
    crate::admin::document_shared_answers(&mut doc);
    doc
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
    HttpResponse::Ok().json(document_json(&state.settings))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every stand-in is replaced, and every hand-written schema has a stand-in or is referenced.
    #[test]
    fn the_served_document_has_no_stand_in() {
        let doc = document_json(&Settings::defaults());
        let text = doc.to_string();
        assert!(!text.contains(PLACEHOLDER), "a stand-in schema is served");
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for (name, _) in hand_written_schemas() {
            assert!(schemas.contains_key(name), "{name}");
        }
    }

    /// The guard's answers are on every admin operation, whatever its own attribute lists.
    #[test]
    fn every_admin_operation_lists_the_shared_answers() {
        let doc = document_json(&Settings::defaults());
        let paths = doc["paths"].as_object().expect("paths");
        let mut seen = 0;
        for (path, item) in paths.iter().filter(|(p, _)| p.starts_with("/admin/")) {
            for (method, op) in item.as_object().expect("path item") {
                let responses = &op["responses"];
                let not_found = responses["404"]["description"].as_str().unwrap_or_default();
                assert!(not_found.contains("admin_disabled"), "{method} {path}: {not_found}");
                assert!(responses.get("401").is_some(), "{method} {path}");
                if op.get("requestBody").is_some() {
                    assert!(responses.get("413").is_some(), "{method} {path}");
                }
                if path != "/admin/empayre/reconcile" {
                    assert!(responses.get("503").is_some(), "{method} {path}");
                }
                seen += 1;
            }
        }
        assert!(seen >= 13, "{seen} admin operations");
    }
}
