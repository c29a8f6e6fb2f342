//! One answer for one mistake on every route: bad list parameters on every admin list, integers
//! within the documented int64, and another method on any route (405 with `Allow`, in the
//! route's own error format).

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

/// The admin lists and the paging parameters each takes.
const LISTS: [(&str, bool); 4] = [
    ("/admin/journal", true),
    ("/admin/empayre/events", true),
    ("/admin/rejections", false),
    ("/admin/quarantine", false),
];

const LIMIT_RANGE: &str = "limit is a whole number from 1 to 1000";
const AFTER_RANGE: &str = "after is a whole number from 0 to 9223372036854775807";

#[tokio::test]
async fn a_bad_limit_or_after_gets_the_same_answer_on_every_admin_list() {
    let app = spawn_app().await;
    let bad_limits = [
        "limit=0",
        "limit=1001",
        "limit=abc",
        "limit=",
        "limit=-1",
        "limit=%2B5",
        "limit=%205",
        "limit=1.5",
        "limit=18446744073709551616",
        "limit=1&limit=2",
    ];
    let bad_afters = [
        "after=-1",
        "after=x",
        "after=",
        "after=9223372036854775808",
        "after=18446744073709551616",
        "after=1&after=2",
    ];
    for (path, takes_after) in LISTS {
        let mut cases: Vec<(&str, &str, &str)> = bad_limits.iter().map(|q| (*q, "limit", LIMIT_RANGE)).collect();
        if takes_after {
            cases.extend(bad_afters.iter().map(|q| (*q, "after", AFTER_RANGE)));
        }
        for (query, field, range) in cases {
            let (status, body) = app.admin_get(&format!("{path}?{query}")).await;
            assert_eq!(status, 400, "{path}?{query}: {body}");
            assert_eq!(body["code"], "bad_value", "{path}?{query}: {body}");
            assert_eq!(body["field"], field, "{path}?{query}: {body}");
            let message = body["message"].as_str().unwrap_or_default();
            if query.contains('&') {
                assert!(message.contains("more than once"), "{path}?{query}: {body}");
            } else {
                assert_eq!(message, range, "{path}?{query}");
            }
        }
        // The ends of the ranges are taken.
        let mut good = vec!["limit=1", "limit=1000"];
        if takes_after {
            good.extend(["after=0", "after=9223372036854775807"]);
        }
        for query in good {
            let (status, body) = app.admin_get(&format!("{path}?{query}")).await;
            assert_eq!(status, 200, "{path}?{query}: {body}");
        }
    }
    // The cursor echoed back stays within int64.
    let (_, body) = app.admin_get("/admin/journal?after=9223372036854775807").await;
    assert_eq!(body["next_after"], json!(9_223_372_036_854_775_807_u64));
}

#[tokio::test]
async fn search_paging_stays_within_int64() {
    let app = spawn_app().await;
    let search = |paging: Value| json!({"paging": paging, "searchParameters": [window_around_now()]});
    for (paging, field) in [
        (json!({"page": 9_223_372_036_854_775_808_u64}), "paging.page"),
        (json!({"page": "9223372036854775808"}), "paging.page"),
        (json!({"page": 0}), "paging.page"),
        (json!({"page": -1}), "paging.page"),
        (json!({"page": 1.5}), "paging.page"),
        (json!({"page": ""}), "paging.page"),
        (json!({"page": " 2"}), "paging.page"),
        (json!({"page": true}), "paging.page"),
        (json!({"size": 0}), "paging.size"),
        (json!({"size": 501}), "paging.size"),
        (json!({"size": "abc"}), "paging.size"),
    ] {
        let (status, body) = app.search(&search(paging.clone())).await;
        assert_eq!(status, 400, "{paging}: {body}");
        assert_eq!(
            (body["code"].clone(), body["field"].clone()),
            (json!("bad_paging"), json!(field)),
            "{paging}"
        );
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("whole number from")),
            "{paging}: {body}"
        );
    }
    for paging in [
        json!({"page": 9_223_372_036_854_775_807_u64, "size": 500}),
        json!({"page": "2", "size": "1"}),
        json!({"page": null, "size": null}),
    ] {
        let (status, body) = app.search(&search(paging.clone())).await;
        assert_eq!(status, 200, "{paging}: {body}");
    }
}

/// How a route's channel words its errors.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    /// `{"errors": [{"code", "message", "field"?}]}`
    Ebpp,
    /// `{"message"}`
    Empayre,
    /// `{"code", "message", "field"}`
    Operator,
}

fn format_of(path: &str) -> Format {
    if path.starts_with("/empayre/") {
        Format::Empayre
    } else if path.starts_with("/admin/")
        || path.starts_with("/health/")
        || ["/metrics", "/openapi.json"].contains(&path)
    {
        Format::Operator
    } else {
        Format::Ebpp
    }
}

/// Every path of `/openapi.json`, so routes added later are covered too: each method the path
/// does not take answers 405, `Allow` lists exactly what it takes, and the body is in the route's
/// error format.
#[tokio::test]
async fn another_method_gets_405_with_allow_in_the_routes_format() {
    let app = spawn_app().await;
    let doc = openapi_document(&app).await;
    let methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"];
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 20, "{:?}", paths.keys());
    let mut formats_seen = Vec::new();
    for (path, item) in paths {
        let declared: Vec<String> = methods
            .iter()
            .filter(|m| item.get(m.to_lowercase()).is_some())
            .map(|m| m.to_string())
            .collect();
        assert!(!declared.is_empty(), "{path}");
        // A concrete path: every path parameter filled in.
        let concrete: String = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let format = format_of(path);
        formats_seen.push(format);
        for method in methods.iter().filter(|m| !declared.iter().any(|d| d == *m)) {
            let r = app
                .admin(Method::from_bytes(method.as_bytes()).expect("method"), &concrete)
                .header("client-key", CLIENT_KEY)
                .header("api-key", API_KEY)
                .send()
                .await
                .expect("sent");
            assert_eq!(r.status(), 405, "{method} {concrete}");
            let allow = r
                .headers()
                .get("allow")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            assert_eq!(allow, Some(declared.join(", ")), "{method} {concrete}");
            let body: Value = r.json().await.unwrap_or(Value::Null);
            match format {
                Format::Ebpp => assert_eq!(first_error(&body).0, "error_field", "{method} {concrete}: {body}"),
                Format::Empayre => {
                    assert!(body["message"].is_string(), "{method} {concrete}: {body}");
                    assert_eq!(
                        body.as_object().map(|o| o.len()),
                        Some(1),
                        "{method} {concrete}: {body}"
                    );
                }
                Format::Operator => {
                    assert_eq!(body["code"], "method_not_allowed", "{method} {concrete}: {body}");
                    assert!(body["message"].is_string() && body["field"].is_null(), "{body}");
                }
            }
        }
    }
    for format in [Format::Ebpp, Format::Empayre, Format::Operator] {
        assert!(formats_seen.contains(&format), "no route of {format:?}");
    }

    // Admin routes authenticate before anything else: a stranger learns nothing about methods.
    let r = app
        .client
        .delete(format!("{}/admin/journal", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 401);
}

/// Every query parameter of every admin route, sent with values a client gets wrong: each
/// answer's status is one the route documents, and a 400 names its code in that status's
/// description (`bad_value`, `malformed`). Routes added later are covered from the document.
#[tokio::test]
async fn refusals_of_bad_query_values_are_documented() {
    let app = spawn_app().await;
    let doc = openapi_document(&app).await;
    let bad_values = [
        "",
        "x",
        "-1",
        "0",
        "1.5",
        "99999999999999999999",
        "%ff",
        "1&limit=2&after=2&status=2&source=2",
    ];
    let mut tried = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let Some(op) = item.get("get").filter(|_| path.starts_with("/admin/")) else {
            continue;
        };
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        // Path parameters at their examples, so the route itself is reached.
        let mut concrete = path.clone();
        for p in params.iter().filter(|p| p["in"] == "path") {
            let name = p["name"].as_str().expect("name");
            let example = match &p["example"] {
                Value::String(s) => s.clone(),
                Value::Null => "x".to_string(),
                other => other.to_string(),
            };
            concrete = concrete.replace(&format!("{{{name}}}"), &example);
        }
        for p in params.iter().filter(|p| p["in"] == "query") {
            let name = p["name"].as_str().expect("name");
            for bad in bad_values {
                let url = format!("{concrete}?{name}={bad}");
                let (status, body) = app.admin_get(&url).await;
                let documented = &op["responses"][status.to_string()];
                assert!(
                    documented.is_object(),
                    "GET {url} answered {status}, not documented: {body}"
                );
                if status == 400 {
                    let code = body["code"].as_str().unwrap_or_default();
                    let description = documented["description"].as_str().unwrap_or_default();
                    assert!(
                        description.contains(&format!("`{code}`")),
                        "GET {url}: code {code} is not named in the 400's description {description:?}"
                    );
                }
                tried += 1;
            }
        }
    }
    assert!(tried >= 80, "{tried} requests");
}

/// A path no route serves answers 404 with a JSON body in the operator format, whatever the
/// method; the admin API and the console keep their own 404s, and a known path with another
/// method still answers 405.
#[tokio::test]
async fn an_unknown_path_gets_a_json_404() {
    let app = spawn_app().await;
    for (method, path) in [
        (Method::GET, "/"),
        (Method::GET, "/nope"),
        (Method::POST, "/paymentpostings"),
        (Method::DELETE, "/health"),
        (Method::PUT, "/health/live/x"),
        (Method::GET, "/empayre"),
        (Method::GET, "/openapi.yaml"),
    ] {
        let r = app
            .client
            .request(method.clone(), format!("{}{path}", app.address))
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 404, "{method} {path}");
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        assert_eq!(content_type.as_deref(), Some("application/json"), "{method} {path}");
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(
            body,
            json!({"code": "not_found", "message": "no such route", "field": "(path)"}),
            "{method} {path}"
        );
    }
    // The admin API's own unknown route (behind its token) and the console's 404 page.
    let (status, body) = app.admin_get("/admin/nope").await;
    assert_eq!((status, body["code"].clone()), (404, json!("not_found")), "{body}");
    let r = app
        .client
        .get(format!("{}/admin/nope", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 401, "the admin scope authenticates before it says 404");
    let r = app
        .client
        .get(format!("{}/console/nope", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 404);
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    // A known path with another method: still 405 with Allow.
    let r = app
        .client
        .delete(format!("{}/health/live", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers().get("allow").and_then(|v| v.to_str().ok()), Some("GET"));
}

/// serde's derive takes a struct from an array of its fields in order; the admin API takes JSON
/// objects only, where its model has objects (found by schemathesis: `"paging": [null, null]`
/// answered 200).
#[tokio::test]
async fn admin_bodies_take_objects_only_where_the_model_has_objects() {
    let app = spawn_app().await;
    let w = window_around_now();
    for (body, field) in [
        (
            json!({"paging": [null, null], "searchParameters": [w]}),
            json!("paging"),
        ),
        (json!({"paging": [1, 50], "searchParameters": [w]}), json!("paging")),
        (json!({"paging": 1, "searchParameters": [w]}), json!("paging")),
        (
            json!({"searchParameters": [w, ["status", "=", ["processed"]]]}),
            json!("searchParameters[1]"),
        ),
        (
            json!({"searchParameters": [w], "orderParameters": [["amount", "DESC"]]}),
            json!("orderParameters[0]"),
        ),
        (json!([null, [w], []]), Value::Null),
        (json!("search"), Value::Null),
    ] {
        let (status, answer) = app.search(&body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(
            (answer["code"].clone(), answer["field"].clone()),
            (json!("malformed"), field),
            "{body}"
        );
    }
    let (status, answer) = app
        .admin_post("/admin/empayre/unmatched/demo:inv:1/assign", &json!(["ACC-100200"]))
        .await;
    assert_eq!((status, answer["code"].clone()), (400, json!("malformed")), "{answer}");
    // Objects still work, and null paging means the default page.
    let (status, answer) = app.search(&json!({"paging": null, "searchParameters": [w]})).await;
    assert_eq!(status, 200, "{answer}");
}
