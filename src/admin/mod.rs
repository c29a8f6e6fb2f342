//! The operator surface: the admin API under `/admin` (bearer token) and the ops routes.
//!
//! The admin API is made of areas. An area is a file with
//! - `pub fn configure(cfg: &mut web::ServiceConfig)` registering its routes relative to
//!   `/admin` (the scope adds the prefix and the token check — handlers do not authenticate),
//! - `#[derive(OpenApi)] #[openapi(paths(...))] pub struct Api;` listing its handlers, each with a
//!   `#[utoipa::path(..., path = "/admin/...", security(("admin_token" = [])))]` attribute,
//! - handlers returning `Result<HttpResponse, AdminError>`,
//!
//! and one line in `AREAS` below, which both routes and documents it.

pub mod accounts;
pub mod auth;
pub mod empayre;
pub mod error;
pub mod feeds;
pub mod postings;
pub mod reconcile;
pub mod search;
pub mod views;

use actix_web::middleware::from_fn;
use actix_web::web;
use utoipa::OpenApi;

pub use error::{AdminError, AdminErrorCode};

/// One admin area: its routes under `/admin` and its part of the OpenAPI document.
pub struct Area {
    pub configure: fn(&mut web::ServiceConfig),
    pub openapi: fn() -> utoipa::openapi::OpenApi,
}

/// Every admin area.
pub const AREAS: &[Area] = &[
    Area {
        configure: postings::configure,
        openapi: postings::Api::openapi,
    },
    Area {
        configure: accounts::configure,
        openapi: accounts::Api::openapi,
    },
    Area {
        configure: feeds::configure,
        openapi: feeds::Api::openapi,
    },
    Area {
        configure: empayre::configure,
        openapi: empayre::Api::openapi,
    },
    Area {
        configure: reconcile::configure,
        openapi: reconcile::Api::openapi,
    },
];

/// Registers `/admin/*`: every area behind the token check.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let mut scope = web::scope("/admin");
    for area in AREAS {
        scope = scope.configure(area.configure);
    }
    cfg.service(
        scope
            .app_data(web::QueryConfig::default().error_handler(|e, _| extractor_error("query", e)))
            .app_data(web::PathConfig::default().error_handler(|e, _| extractor_error("path", e)))
            .app_data(web::JsonConfig::default().error_handler(|e, _| extractor_error("body", e)))
            .default_service(web::to(unknown_route))
            .wrap(from_fn(auth::require_token)),
    );
}

/// Errors of actix's extractors (`web::Query`, `web::Path`, `web::Json`) in the admin shape.
fn extractor_error(what: &str, e: impl std::fmt::Display) -> actix_web::Error {
    AdminError::malformed(None, format!("bad {what}: {e}")).into()
}

async fn unknown_route() -> Result<actix_web::HttpResponse, AdminError> {
    Err(AdminError::not_found("(path)", "no such admin route"))
}

/// The answers every admin route shares, added to each admin operation of the served document
/// (`openapi::document_json`) so that no route can leave one out: the guard's 404
/// `admin_disabled` (the admin API is off), 413 `payload_too_large` on a route that reads a body,
/// and 503 `store_unavailable` on a route that reads or writes the store (all but the
/// reconciliation routes, whose store trouble is reported in the run). A route's own 404 keeps
/// its words, with the guard's added.
pub fn document_shared_answers(doc: &mut serde_json::Value) {
    use serde_json::{json, Map, Value};
    let error = |description: &str| -> Value {
        json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        })
    };
    const DISABLED: &str = "`admin_disabled`: the admin API is off (admin.token is empty)";
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        if !path.starts_with("/admin/") {
            continue;
        }
        let uses_store = path != "/admin/empayre/reconcile";
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for operation in item.values_mut() {
            let reads_body = operation.get("requestBody").is_some();
            let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            let responses: &mut Map<String, Value> = responses;
            match responses.get_mut("404").and_then(|r| r.get_mut("description")) {
                Some(Value::String(own)) => *own = format!("{own}; or {DISABLED}"),
                _ => {
                    responses.insert("404".into(), error(DISABLED));
                }
            }
            if reads_body {
                responses
                    .entry("413")
                    .or_insert_with(|| error("`payload_too_large`: the body is over server.max_body_bytes"));
            }
            if uses_store {
                responses
                    .entry("503")
                    .or_insert_with(|| error("`store_unavailable`: the store cannot answer right now; try again"));
            }
        }
    }
}
