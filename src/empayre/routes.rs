//! The webhook routes: `POST {empayre.path}` and `POST {empayre.path}/{source}`, registered and
//! documented here.

use actix_web::web;
use utoipa::OpenApi;

use super::handlers::{self, DOCUMENTED_PATH, DOCUMENTED_SOURCE_PATH};

pub fn configure(cfg: &mut web::ServiceConfig, hook: &str) {
    cfg.route(hook, web::post().to(handlers::webhook_any))
        .route(&format!("{hook}/{{source}}"), web::post().to(handlers::webhook_source));
}

#[derive(OpenApi)]
#[openapi(paths(handlers::webhook_any, handlers::webhook_source))]
struct Api;

/// The webhook part of `/openapi.json`, at the paths served under `hook` (`empayre.path`).
pub fn openapi(hook: &str) -> utoipa::openapi::OpenApi {
    let mut doc = Api::openapi();
    let paths = &mut doc.paths.paths;
    let hook = hook.trim_end_matches('/');
    if let Some(item) = paths.remove(DOCUMENTED_PATH) {
        paths.insert(hook.to_string(), item);
    }
    if let Some(item) = paths.remove(DOCUMENTED_SOURCE_PATH) {
        paths.insert(format!("{hook}/{{source}}"), item);
    }
    doc
}
