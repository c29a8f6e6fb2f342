//! The webhook routes: `POST {empayre.path}` and `POST {empayre.path}/{source}`, registered and
//! documented here.

use actix_web::http::Method;
use actix_web::web;
use utoipa::openapi::Required;
use utoipa::OpenApi;

use super::handlers::{self, EmpayreError, DOCUMENTED_PATH, DOCUMENTED_SOURCE_PATH};
use crate::http::resource;

/// Registers both webhook routes; another method gets 405 with `Allow: POST` and `{"message"}`.
pub fn configure(cfg: &mut web::ServiceConfig, hook: &str) {
    cfg.service(resource::<EmpayreError>(
        hook,
        vec![(Method::POST, web::to(handlers::webhook_any))],
    ))
    .service(resource::<EmpayreError>(
        &format!("{hook}/{{source}}"),
        vec![(Method::POST, web::to(handlers::webhook_source))],
    ));
}

#[derive(OpenApi)]
#[openapi(
    paths(handlers::webhook_any, handlers::webhook_source),
    components(schemas(super::schema::EmpayreEvent))
)]
struct Api;

/// The webhook part of `/openapi.json`, at the paths served under `hook` (`empayre.path`).
pub fn openapi(hook: &str) -> utoipa::openapi::OpenApi {
    let mut doc = Api::openapi();
    let paths = &mut doc.paths.paths;
    let hook = hook.trim_end_matches('/');
    if let Some(item) = paths.shift_remove(DOCUMENTED_PATH) {
        paths.insert(hook.to_string(), item);
    }
    if let Some(item) = paths.shift_remove(DOCUMENTED_SOURCE_PATH) {
        paths.insert(format!("{hook}/{{source}}"), item);
    }
    // A signed empty body is quarantined and answered 200 like any other verified body, so the
    // body is optional (utoipa marks a named body type as required, and `Option<_>` would add a
    // `null` branch that overlaps the schema's own).
    for item in paths.values_mut() {
        if let Some(body) = item.post.as_mut().and_then(|op| op.request_body.as_mut()) {
            body.required = Some(Required::False);
        }
    }
    doc
}
