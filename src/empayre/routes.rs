//! The webhook routes: `POST {empayre.path}` and `POST {empayre.path}/{source}`, registered and
//! documented here.

use actix_web::http::Method;
use actix_web::web;
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
#[openapi(paths(handlers::webhook_any, handlers::webhook_source))]
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
    doc
}
