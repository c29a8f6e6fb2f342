//! The console's stylesheet and script, compiled into the binary (`include_str!`): nothing to
//! install next to it, and the version served is always the one the pages were built with.
//! They are cached briefly and carry an ETag of their content.

use std::sync::OnceLock;

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::HttpResponse;

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

pub const CSS_PATH: &str = "/console/assets/console.css";
pub const JS_PATH: &str = "/console/assets/console.js";

/// The answer for the asset `name`, or None when there is no such asset.
pub fn response(name: &str) -> Option<HttpResponse> {
    let (body, content_type) = match name {
        "console.css" => (CSS, "text/css; charset=utf-8"),
        "console.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return None,
    };
    Some(
        HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, content_type))
            .insert_header((CACHE_CONTROL, "private, max-age=300"))
            .insert_header(("etag", etag()))
            .body(body),
    )
}

/// One tag for both files: they change together, with the binary.
fn etag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new().chain_update(CSS).chain_update(JS).finalize();
        format!("\"{}\"", hex::encode(&digest[..8]))
    })
}
