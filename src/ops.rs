//! The ops endpoints (docs/operations.md, Health, metrics and OpenAPI, no auth): liveness, readiness and metrics. (The
//! OpenAPI document, also an ops route, is served by `openapi`.)

use actix_web::http::Method;
use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::admin::AdminError;
use crate::http::resource;
use crate::state::AppState;
use crate::store::NotReady;

#[derive(OpenApi)]
#[openapi(paths(live, ready, metrics))]
pub struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // The ops routes have no error format of their own; a wrong method gets the operator API's.
    cfg.service(resource::<AdminError>(
        "/health/live",
        vec![(Method::GET, web::to(live))],
    ))
    .service(resource::<AdminError>(
        "/health/ready",
        vec![(Method::GET, web::to(ready))],
    ))
    .service(resource::<AdminError>(
        "/metrics",
        vec![(Method::GET, web::to(metrics))],
    ));
}

/// What a path that no route serves gets, whatever the method: 404 with a JSON body in the
/// operator API's format, `{"code": "not_found", "message": "no such route", "field":
/// "(path)"}`, so a client that mistyped a path (or a base path) reads why rather than an empty
/// answer. `/admin/...` and `/console/...` answer their own 404s (their scopes' defaults), and a
/// known path with another method answers 405 (`http::resource`); this is the server's default
/// for everything else.
pub async fn unknown_path() -> Result<HttpResponse, AdminError> {
    Err(AdminError::not_found("(path)", "no such route"))
}

/// Every check `/health/ready` can name as failing: the backends' (`store::NotReady`) and the
/// drain's.
pub const FAILED_CHECKS: [&str; 4] = ["store_write", "disk_free", "database", "draining"];

fn health_status_schema() -> utoipa::openapi::Object {
    crate::openapi::string_enum(
        "live (GET /health/live), ready, or not_ready",
        ["live", "ready", "not_ready"],
        false,
    )
}

fn failed_check_schema() -> utoipa::openapi::Object {
    crate::openapi::string_enum(
        "When not ready: store_write or disk_free (sled), database (PostgreSQL), or draining (the \
         server is stopping)",
        FAILED_CHECKS,
        false,
    )
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(schema_with = health_status_schema)]
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = failed_check_schema)]
    pub failed_check: Option<String>,
    /// What an operator must know while the service runs: `unsafe_commit: ...` when the
    /// database does not make commits crash-safe and `store.postgres.allow_unsafe_commit`
    /// lets it serve anyway.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// 200 while the process serves.
#[utoipa::path(get, path = "/health/live", tag = "ops", responses((status = 200, description = "Serving", body = Health)))]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "live".into(),
        failed_check: None,
        warnings: Vec::new(),
    })
}

/// 200 when the store takes a write+flush+read and free disk is above `store.min_free_bytes`;
/// else 503 naming the failing check. From a stop signal on, 503 `draining` at once, so a load
/// balancer sends nothing new while the server finishes what it has.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "ops",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Not ready: `failed_check` is store_write or disk_free (sled), database (PostgreSQL), or draining (stopping after a signal)", body = Health),
    )
)]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    if state.lifecycle.is_draining() {
        return HttpResponse::ServiceUnavailable().json(Health {
            status: "not_ready".into(),
            failed_check: Some("draining".into()),
            warnings: state.store.warnings(),
        });
    }
    let failed = match state.store.readiness().await {
        Ok(()) => {
            return HttpResponse::Ok().json(Health {
                status: "ready".into(),
                failed_check: None,
                warnings: state.store.warnings(),
            })
        }
        Err(NotReady { check, detail }) => {
            debug_assert!(FAILED_CHECKS.contains(&check), "{check} is not in ops::FAILED_CHECKS");
            tracing::warn!(check, %detail, "readiness check failed");
            check
        }
    };
    HttpResponse::ServiceUnavailable().json(Health {
        status: "not_ready".into(),
        failed_check: Some(failed.into()),
        warnings: state.store.warnings(),
    })
}

/// Prometheus text format: requests by route and status, postings applied, duplicates,
/// rejections by cause, quarantined and unmatched counts, fsync batch and latency histograms,
/// request latency histogram.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", body = String, content_type = "text/plain"))
)]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render(state.store.stats(), state.store.unsafe_commit()))
}
