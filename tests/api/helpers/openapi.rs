//! The served `/openapi.json` and the operations it lists, for the tests that hold the document
//! against the server's routes (admin.rs) and against `docs/` (docs.rs).

use serde_json::Value;

use super::TestApp;

/// The HTTP methods an OpenAPI path item may hold an operation under.
const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

/// `GET /openapi.json` of `app`, which must answer 200 with JSON.
pub async fn openapi_document(app: &TestApp) -> Value {
    let r = app
        .client
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200, "GET /openapi.json");
    r.json().await.expect("the document is JSON")
}

/// Every operation of `document` as (method in lower case, path as documented), in document
/// order.
pub fn documented_operations(document: &Value) -> Vec<(String, String)> {
    document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("path item")
                .keys()
                .filter(|m| METHODS.contains(&m.as_str()))
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect()
}
