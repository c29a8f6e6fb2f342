//! HTTP plumbing shared by every route: request ids, bounded body reading.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::header::{HeaderName, HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::http::Method;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, Resource, ResponseError, Route};
use futures_util::StreamExt;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served: the caller's `x-request-id` when it is a sane token,
/// else a fresh one. Set by the middleware in `startup`, echoed on every response, and carried
/// by every log line of the request.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    pub fn from_header(value: Option<&HeaderValue>) -> Self {
        let sent = value
            .and_then(|v| v.to_str().ok())
            .filter(|s| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()));
        match sent {
            Some(s) => Self(s.to_string()),
            None => Self(uuid::Uuid::new_v4().simple().to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromRequest for RequestId {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let id = req
            .extensions()
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId::from_header(req.headers().get(REQUEST_ID_HEADER)));
        ready(Ok(id))
    }
}

/// How a channel words "this route does not take that method", in its own error format. The
/// `Allow` header is added by [`resource`], which knows the methods.
pub trait RefuseMethod: ResponseError + 'static {
    /// `allowed` is what the route takes, as the `Allow` header lists it (`"GET"`, `"POST"`).
    fn method_not_allowed(allowed: &str) -> Self;
}

/// A resource at `path` that answers each `(method, route)` pair and every other method with
/// 405, an `Allow` header listing the methods it takes (RFC 9110 §15.5.6), and a body in the
/// error format `E` of the route's channel.
///
/// Register all methods of one path in one call: actix matches the first resource whose path
/// fits, so a second resource on the same path would never see a request.
pub fn resource<E: RefuseMethod>(path: &str, routes: Vec<(Method, Route)>) -> Resource {
    let allowed = routes.iter().map(|(m, _)| m.as_str()).collect::<Vec<_>>().join(", ");
    let mut resource = web::resource(path);
    for (method, route) in routes {
        resource = resource.route(route.method(method));
    }
    resource.default_service(web::to(move || {
        let allowed = allowed.clone();
        async move {
            let mut res = E::method_not_allowed(&allowed).error_response();
            if let Ok(value) = HeaderValue::from_str(&allowed) {
                res.headers_mut().insert(ALLOW, value);
            }
            res
        }
    }))
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("request body could not be read: {0}")]
    Read(String),
}

/// Reads the whole body, refusing early — from `Content-Length`, or as soon as the streamed
/// bytes pass the limit — so an oversized body is never buffered.
pub async fn read_body(req: &HttpRequest, mut payload: web::Payload, limit: usize) -> Result<web::Bytes, BodyError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = web::BytesMut::with_capacity(declared.map_or(1024, |n| n as usize));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match e {
            actix_web::error::PayloadError::Overflow => BodyError::TooLarge { limit },
            other => BodyError::Read(other.to_string()),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The media type of the request (`application/json` from `application/json; charset=utf-8`),
/// lower-cased; empty when absent.
pub fn media_type(req: &HttpRequest) -> String {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.split(';').next())
        .map(|s| s.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// RFC 3339 UTC with whole seconds, the form every answer uses.
pub fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
