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

pub mod examples;

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

/// The schema of a string field whose values are a closed set of the code's (a kind, a channel,
/// a status, a cause): `enum` lists them, so a client (and the gate) knows every value it can
/// get. `nullable` adds `null`, for a field that is null on the wire when unknown. Use it with
/// `#[schema(schema_with = ...)]` and the values from the code (`wire_names!`), never retyped.
pub fn string_enum<'a>(
    description: &str,
    values: impl IntoIterator<Item = &'a str>,
    nullable: bool,
) -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    let mut values: Vec<serde_json::Value> = values.into_iter().map(serde_json::Value::from).collect();
    let schema_type = if nullable {
        values.push(serde_json::Value::Null);
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(schema_type)
        .enum_values(Some(values))
        .description(Some(description))
        .build()
}

/// The wire names (`as_str`) of the listed variants of a closed enum, for [`string_enum`]. The
/// list is checked to be complete: a variant added to the enum and not listed here does not
/// compile, so the document cannot miss a value the service sends.
macro_rules! wire_names {
    ($ty:ident { $($variant:ident),+ $(,)? }) => {{
        let _every_variant_is_listed = |v: $ty| match v {
            $($ty::$variant => (),)+
        };
        [$($ty::$variant.as_str(),)+]
    }};
}
pub(crate) use wire_names;

/// Every hand-written schema, by its name under `components/schemas`.
fn hand_written_schemas() -> Vec<(&'static str, serde_json::Value)> {
    let mut all = crate::orbipay::request_schema::request_schemas();
    all.extend(crate::admin::search::request_schemas());
    all.extend(crate::admin::accounts::request_schemas());
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
    examples::insert(&mut doc);
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

    /// Fields whose values are a closed set of the code's are enums in the document, with
    /// exactly the values the code spells.
    #[test]
    fn closed_sets_are_documented_as_enums() {
        use crate::domain::account::{AccountStatus, ProfileStatus};
        use crate::ledger::{Channel, Origin, RecordKind};
        use serde_json::json;
        let doc = document_json(&Settings::defaults());
        let values = |schema: &str, field: &str| -> Vec<String> {
            let property = &doc["components"]["schemas"][schema]["properties"][field];
            property["enum"]
                .as_array()
                .unwrap_or_else(|| panic!("{schema}.{field} is not an enum: {property}"))
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        };
        for (schema, field) in [
            ("RecordView", "origin"),
            ("HistoryView", "origin"),
            ("JournalEntryView", "origin"),
        ] {
            assert_eq!(values(schema, field), ["webhook", "reconcile"], "{schema}.{field}");
            assert!(values(schema, field).iter().all(|v| Origin::parse(v).is_some()));
        }
        for (schema, field) in [("RecordView", "kind"), ("JournalEntryView", "kind")] {
            let kinds = values(schema, field);
            assert_eq!(kinds.len(), 4, "{schema}.{field}");
            assert!(kinds.iter().all(|v| RecordKind::parse(v).is_some()));
        }
        assert_eq!(values("RecordView", "channel"), ["orbipay", "empayre"]);
        let kind = doc["paths"]["/admin/postings/{kind}/{id}"]["get"]["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "kind"))
            .map(|p| p["schema"].clone())
            .unwrap_or_default();
        let kind = match kind["$ref"].as_str() {
            Some(reference) => doc
                .pointer(reference.trim_start_matches('#'))
                .cloned()
                .unwrap_or_default(),
            None => kind,
        };
        let in_path = kind["enum"].clone();
        assert_eq!(
            in_path,
            json!(values("RecordView", "kind")),
            "the record route's kind parameter"
        );
        assert!(values("JournalEntryView", "channel")
            .iter()
            .all(|v| Channel::parse(v).is_some()));
        assert_eq!(values("AccountView", "status").len(), 6);
        assert!(values("AccountView", "status")
            .iter()
            .all(|v| AccountStatus::parse(v).is_some()));
        assert!(values("ProfileView", "status")
            .iter()
            .all(|v| ProfileStatus::parse(v).is_some()));
        assert_eq!(
            values("LookupAccount", "status"),
            ["active", "inactive", "incollections", "inbankruptcy"]
        );
        assert_eq!(values("PaymentPostingResult", "status").len(), 8);
        assert_eq!(
            values("UnmatchedItem", "reason"),
            ["no_account", "unknown_account", "currency_mismatch"]
        );
        assert_eq!(
            values("RejectionItem", "cause").len(),
            crate::admin::feeds::REJECTION_CAUSES.len()
        );
        let cause = &doc["components"]["schemas"]["RejectionItem"]["properties"]["cause"];
        assert_eq!(
            cause["type"],
            json!(["string", "null"]),
            "a stored rejection may lack its cause"
        );
        assert_eq!(values("Health", "failed_check"), crate::ops::FAILED_CHECKS);
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
