//! `POST /admin/postings/search` and `GET /admin/postings/{kind}/{id}`.

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use utoipa::OpenApi;

use super::error::{AdminError, ErrorBody};
use super::search::{SearchRequest, SearchResponse};
use super::views::RecordView;
use crate::http::{read_body, resource};
use crate::ledger::RecordKind;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(paths(search, record))]
pub struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource::<AdminError>(
        "/postings/search",
        vec![(Method::POST, web::to(search))],
    ))
    .service(resource::<AdminError>(
        "/postings/{kind}/{id}",
        vec![(Method::GET, web::to(record))],
    ));
}

/// Search the records of both channels in a received_at window (interfaces.md §6).
#[utoipa::path(
    post,
    path = "/admin/postings/search",
    tag = "admin",
    request_body = SearchRequest,
    responses(
        (status = 200, description = "The matching records' count and the requested page", body = SearchResponse),
        (status = 400, description = "Bad name, method, arity, value, paging or order, or no received_at window; `field` names it", body = ErrorBody),
        (status = 401, description = "No or wrong bearer token", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn search(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let body = read_body(&req, payload, state.settings.server.max_body_bytes).await?;
    let request = SearchRequest::from_body(&body)?;
    let query = request.to_query()?;
    let page = state.store.search(&query).await?;
    Ok(HttpResponse::Ok().json(SearchResponse {
        total_count: page.total,
        records: page.records.iter().map(RecordView::from).collect(),
    }))
}

/// One record with its history of status changes.
#[utoipa::path(
    get,
    path = "/admin/postings/{kind}/{id}",
    tag = "admin",
    params(
        ("kind" = String, Path, description = "payment, refund, empayre-payment or empayre-refund"),
        ("id" = String, Path, description = "The record id (EBPP posting id, or the Empayre key)"),
    ),
    responses(
        (status = 200, description = "The record", body = RecordView),
        (status = 401, description = "No or wrong bearer token", body = ErrorBody),
        (status = 404, description = "Unknown kind or no such record", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn record(path: web::Path<(String, String)>, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    let (kind, id) = path.into_inner();
    let kind = RecordKind::parse(&kind)
        .ok_or_else(|| AdminError::not_found("kind", "kind is payment, refund, empayre-payment or empayre-refund"))?;
    match state.store.record(kind, &id).await? {
        Some(r) => Ok(HttpResponse::Ok().json(RecordView::from(&r))),
        None => Err(AdminError::not_found(
            "id",
            format!("no {} with id {id:?}", kind.as_str()),
        )),
    }
}
