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

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// live, ready or not_ready.
    pub status: String,
    /// When not ready: store_write or disk_free (sled), database (PostgreSQL), or draining (the
    /// server is stopping).
    #[serde(skip_serializing_if = "Option::is_none")]
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
