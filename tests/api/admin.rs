//! The admin API, the ops routes, `/openapi.json` and `export`, through HTTP and the binary.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

const PAY: &str = "/paymentposting";
const REVERSE: &str = "/paymentreversalposting";
const REFUND: &str = "/paymentrefundposting";

/// Every admin route of this module with a request that reaches it.
fn admin_routes() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (
            Method::POST,
            "/admin/postings/search",
            Some(json!({"searchParameters": [window_around_now()]})),
        ),
        (Method::GET, "/admin/postings/payment/1", None),
        (Method::GET, "/admin/accounts/ACC-100200", None),
        (Method::PUT, "/admin/accounts", Some(json!([]))),
        (Method::GET, "/admin/journal", None),
        (Method::GET, "/admin/rejections", None),
        (Method::GET, "/admin/no-such-route", None),
    ]
}

async fn pay(app: &TestApp, id: &str, account: &str, amount: &str) {
    let (status, body) = app.post_json(PAY, &payment(id, account, amount, "processed")).await;
    assert_eq!(status, 200, "payment {id}: {body}");
}

fn search_body(params: Vec<Value>, paging: Value, order: Value) -> Value {
    json!({"paging": paging, "searchParameters": params, "orderParameters": order})
}

fn ids(body: &Value) -> Vec<String> {
    body["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test]
async fn every_admin_route_needs_the_bearer_token() {
    let app = spawn_app().await;
    for (method, path, body) in admin_routes() {
        let cases: [(&str, Option<&str>); 4] = [
            ("no header", None),
            ("wrong token", Some("Bearer not-the-token")),
            ("token prefix", Some("Bearer test-admin-toke")),
            ("other scheme", Some("Basic dGVzdC1hZG1pbi10b2tlbg==")),
        ];
        for (case, header) in cases {
            let mut r = app.client.request(method.clone(), format!("{}{path}", app.address));
            if let Some(h) = header {
                r = r.header("authorization", h);
            }
            if let Some(b) = &body {
                r = r.json(b);
            }
            let r = r.send().await.expect("sent");
            assert_eq!(r.status(), 401, "{method} {path}, {case}");
            assert!(r.headers().contains_key("www-authenticate"));
            let answer: Value = r.json().await.expect("json");
            assert_eq!(answer["code"], "unauthorized", "{method} {path}, {case}");
            let text = answer.to_string();
            assert!(!text.contains("test-admin-token"), "the token leaks: {text}");
        }
    }
}

#[tokio::test]
async fn an_empty_admin_token_disables_the_admin_api() {
    let app = spawn_app_with(|s| s.admin.token = "".into()).await;
    for (method, path, body) in admin_routes() {
        let mut r = app.admin(method.clone(), path);
        if let Some(b) = &body {
            r = r.json(b);
        }
        let r = r.send().await.expect("sent");
        assert_eq!(r.status(), 404, "{method} {path}");
        let answer: Value = r.json().await.expect("json");
        assert_eq!(answer["code"], "admin_disabled", "{method} {path}");
    }
    // The rest of the server runs.
    let r = app
        .client
        .get(format!("{}/health/live", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn search_finds_what_was_posted_in_the_window() {
    let app = spawn_app().await;
    pay(&app, "1001", "ACC-100200", "25.00").await;
    pay(&app, "1002", "ACC-100201", "10.50").await;
    pay(&app, "1003", "ACC-100800", "7.25").await;
    let (status, _) = app
        .post_json(REFUND, &refund("1901", "1001", Some("5.00"), "processed"))
        .await;
    assert_eq!(status, 200);

    let (status, body) = app.search(&json!({"searchParameters": [window_around_now()]})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["totalCount"], 4);
    assert_eq!(
        ids(&body),
        ["1001", "1002", "1003", "1901"],
        "received_at ascending by default"
    );
    let s1 = &body["records"][0];
    assert_eq!(s1["kind"], "payment");
    assert_eq!(s1["channel"], "orbipay");
    assert_eq!(s1["amount"], "25.00");
    assert_eq!(s1["currency"], "USD");
    assert_eq!(s1["account_number"], "ACC-100200");
    assert_eq!(s1["confirmation_number"], "CONF1001");
    assert_eq!(s1["refund_ids"], json!(["1901"]));
    let at = s1["received_at"].as_str().expect("received_at");
    assert!(
        at.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(at).is_ok(),
        "{at}"
    );
    assert_eq!(s1["history"][0]["status"], "processed");

    let filtered = [
        (
            json!({"name": "account_number", "method": "=", "searchParameter": ["ACC-100200"]}),
            vec!["1001", "1901"],
        ),
        (
            json!({"name": "kind", "method": "=", "searchParameter": ["refund"]}),
            vec!["1901"],
        ),
        (
            json!({"name": "channel", "method": "in", "searchParameter": ["orbipay"]}),
            vec!["1001", "1002", "1003", "1901"],
        ),
        (
            json!({"name": "id", "method": "in", "searchParameter": ["1002", "1003", "nope"]}),
            vec!["1002", "1003"],
        ),
        (
            json!({"name": "amount", "method": ">", "searchParameter": ["10.00"]}),
            vec!["1001", "1002"],
        ),
        (
            json!({"name": "amount", "method": "between", "searchParameter": ["5", "10.5"]}),
            vec!["1002", "1003", "1901"],
        ),
        (
            json!({"name": "amount", "method": "=", "searchParameter": [7.25]}),
            vec!["1003"],
        ),
        (
            json!({"name": "account_number", "method": "like", "searchParameter": ["ACC-1002%"]}),
            vec!["1001", "1002", "1901"],
        ),
        (
            json!({"name": "confirmation_number", "method": "like", "searchParameter": ["%CONF%"]}),
            vec!["1001", "1002", "1003", "1901"],
        ),
        (
            json!({"name": "confirmation_number", "method": "=", "searchParameter": ["CONF1002"]}),
            vec!["1002"],
        ),
        (
            json!({"name": "confirmation_number", "method": "like", "searchParameter": ["CONF100%"]}),
            vec!["1001", "1002", "1003"],
        ),
        (
            json!({"name": "status", "method": "in", "searchParameter": ["returned", "declined"]}),
            vec![],
        ),
        (
            json!({"name": "payment_method", "method": "=", "searchParameter": ["ach"]}),
            vec!["1001", "1002", "1003", "1901"],
        ),
        (
            json!({"name": "client_key", "method": "=", "searchParameter": [CLIENT_KEY]}),
            vec!["1001", "1002", "1003", "1901"],
        ),
        (
            json!({"name": "currency", "method": "=", "searchParameter": ["JPY"]}),
            vec![],
        ),
    ];
    for (param, want) in filtered {
        let (status, body) = app
            .search(&json!({"searchParameters": [window_around_now(), param]}))
            .await;
        assert_eq!(status, 200, "{param}: {body}");
        assert_eq!(ids(&body), want, "{param}");
        assert_eq!(body["totalCount"], want.len(), "{param}");
    }

    // A window that ends before the postings finds nothing.
    let old = json!({"name": "received_at", "method": "between",
                     "searchParameter": ["2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z"]});
    let (status, body) = app.search(&json!({"searchParameters": [old]})).await;
    assert_eq!((status, body["totalCount"].clone()), (200, json!(0)));
    // >= and <= make a window too.
    let now = chrono::Utc::now();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let pair = [
        json!({"name": "received_at", "method": ">=", "searchParameter": [fmt(now - chrono::Duration::minutes(5))]}),
        json!({"name": "received_at", "method": "<=", "searchParameter": [fmt(now)]}),
    ];
    let (status, body) = app.search(&json!({"searchParameters": pair})).await;
    assert_eq!((status, body["totalCount"].clone()), (200, json!(4)), "{body}");
}

#[tokio::test]
async fn bad_searches_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let w = window_around_now();
    let p =
        |name: &str, method: &str, values: Value| json!({"name": name, "method": method, "searchParameter": values});
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "unknown name",
            json!({"searchParameters": [w, p("payer_email", "=", json!(["a"]))]}),
            "unknown_name",
            "searchParameters[1].name",
        ),
        (
            "unknown method",
            json!({"searchParameters": [w, p("status", "~", json!(["a"]))]}),
            "unknown_method",
            "searchParameters[1].method",
        ),
        (
            "between with one value",
            json!({"searchParameters": [w, p("amount", "between", json!(["1"]))]}),
            "wrong_arity",
            "searchParameters[1].searchParameter",
        ),
        (
            "in with no value",
            json!({"searchParameters": [w, p("status", "in", json!([]))]}),
            "wrong_arity",
            "searchParameters[1].searchParameter",
        ),
        (
            "= with two values",
            json!({"searchParameters": [w, p("status", "=", json!(["a", "b"]))]}),
            "wrong_arity",
            "searchParameters[1].searchParameter",
        ),
        (
            "like with two values",
            json!({"searchParameters": [w, p("id", "like", json!(["a%", "b%"]))]}),
            "wrong_arity",
            "searchParameters[1].searchParameter",
        ),
        (
            "window between with three values",
            json!({"searchParameters": [p("received_at", "between", json!(["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"]))]}),
            "wrong_arity",
            "searchParameters[0].searchParameter",
        ),
        (
            "no window",
            json!({"searchParameters": [p("status", "=", json!(["processed"]))]}),
            "window_required",
            "received_at",
        ),
        ("no parameters", json!({}), "window_required", "received_at"),
        (
            "only a lower bound",
            json!({"searchParameters": [p("received_at", ">=", json!(["2026-01-01T00:00:00Z"]))]}),
            "window_required",
            "received_at",
        ),
        (
            "received_at with =",
            json!({"searchParameters": [p("received_at", "=", json!(["2026-01-01T00:00:00Z"]))]}),
            "unknown_method",
            "searchParameters[0].method",
        ),
        (
            "window not a time",
            json!({"searchParameters": [p("received_at", "between", json!(["yesterday", "2026-01-02T00:00:00Z"]))]}),
            "bad_value",
            "searchParameters[0].searchParameter[0]",
        ),
        (
            "amount not a decimal",
            json!({"searchParameters": [w, p("amount", ">", json!(["ten"]))]}),
            "bad_value",
            "searchParameters[1].searchParameter[0]",
        ),
        (
            "like on amount",
            json!({"searchParameters": [w, p("amount", "like", json!(["1%"]))]}),
            "unknown_method",
            "searchParameters[1].method",
        ),
        (
            "unknown kind",
            json!({"searchParameters": [w, p("kind", "in", json!(["payment", "chargeback"]))]}),
            "bad_value",
            "searchParameters[1].searchParameter[1]",
        ),
        (
            "value not a string",
            json!({"searchParameters": [w, p("status", "=", json!([{"a": 1}]))]}),
            "bad_value",
            "searchParameters[1].searchParameter[0]",
        ),
        (
            "size 0",
            json!({"paging": {"page": 1, "size": 0}, "searchParameters": [w]}),
            "bad_paging",
            "paging.size",
        ),
        (
            "size 501",
            json!({"paging": {"page": 1, "size": 501}, "searchParameters": [w]}),
            "bad_paging",
            "paging.size",
        ),
        (
            "page 0",
            json!({"paging": {"page": 0, "size": 10}, "searchParameters": [w]}),
            "bad_paging",
            "paging.page",
        ),
        (
            "page not a number",
            json!({"paging": {"page": "first", "size": 10}, "searchParameters": [w]}),
            "bad_paging",
            "paging.page",
        ),
        (
            "unknown sort field",
            json!({"searchParameters": [w], "orderParameters": [{"field": "payer_email", "typeOrder": "ASC"}]}),
            "unknown_sort_field",
            "orderParameters[0].field",
        ),
        (
            "bad typeOrder",
            json!({"searchParameters": [w], "orderParameters": [{"field": "amount", "typeOrder": "UP"}]}),
            "bad_order",
            "orderParameters[0].typeOrder",
        ),
        (
            "misspelt key",
            json!({"searchParameters": [{"name": "status", "method": "=", "searchParameters": ["a"]}]}),
            "malformed",
            "searchParameters[0].searchParameters",
        ),
        (
            "name not a string",
            json!({"searchParameters": [{"name": 5, "method": "=", "searchParameter": ["a"]}]}),
            "malformed",
            "searchParameters[0].name",
        ),
    ];
    for (case, body, code, field) in cases {
        let (status, answer) = app.search(&body).await;
        assert_eq!(status, 400, "{case}: {answer}");
        assert_eq!(answer["code"], code, "{case}: {answer}");
        assert_eq!(answer["field"], field, "{case}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()), "{case}");
    }
    // Not JSON at all.
    let r = app
        .admin(Method::POST, "/admin/postings/search")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 400);
    let answer: Value = r.json().await.expect("json");
    assert_eq!(answer["code"], "malformed");
}

#[tokio::test]
async fn search_pages_and_orders() {
    let app = spawn_app().await;
    // (id, account, amount), posted in this order.
    let postings = [
        ("2001", "ACC-100201", "3.00"),
        ("2002", "ACC-100200", "9.00"),
        ("2003", "ACC-100800", "1.00"),
        ("2004", "ACC-100200", "7.00"),
        ("2005", "ACC-100201", "5.00"),
        ("2006", "ACC-100800", "8.00"),
        ("2007", "ACC-100200", "2.00"),
    ];
    for (id, account, amount) in postings {
        pay(&app, id, account, amount).await;
    }
    let w = || vec![window_around_now()];
    let all_pages = |order: Value, size: usize| {
        let app = &app;
        let w = w();
        async move {
            let mut seen = Vec::new();
            for page in 1..=(7usize.div_ceil(size) + 1) {
                let (status, body) = app
                    .search(&search_body(
                        w.clone(),
                        json!({"page": page, "size": size}),
                        order.clone(),
                    ))
                    .await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["totalCount"], 7, "every page counts every match");
                let got = ids(&body);
                assert!(got.len() <= size);
                if page > 7usize.div_ceil(size) {
                    assert!(got.is_empty(), "past the last page: {got:?}");
                }
                seen.extend(got);
            }
            seen
        }
    };
    let cases: Vec<(Value, usize, Vec<&str>)> = vec![
        (
            json!([]),
            3,
            vec!["2001", "2002", "2003", "2004", "2005", "2006", "2007"],
        ),
        (
            json!([{"field": "received_at", "typeOrder": "DESC"}]),
            3,
            vec!["2007", "2006", "2005", "2004", "2003", "2002", "2001"],
        ),
        (
            json!([{"field": "amount", "typeOrder": "DESC"}]),
            2,
            vec!["2002", "2006", "2004", "2005", "2001", "2007", "2003"],
        ),
        (
            json!([{"field": "amount"}]),
            4,
            vec!["2003", "2007", "2001", "2005", "2004", "2006", "2002"],
        ),
        (
            json!([{"field": "account_number", "typeOrder": "ASC"}, {"field": "amount", "typeOrder": "DESC"}]),
            3,
            vec!["2002", "2004", "2007", "2005", "2001", "2006", "2003"],
        ),
        (
            json!([{"field": "status", "typeOrder": "ASC"}, {"field": "received_at", "typeOrder": "desc"}]),
            5,
            vec!["2007", "2006", "2005", "2004", "2003", "2002", "2001"],
        ),
    ];
    for (order, size, want) in cases {
        assert_eq!(all_pages(order.clone(), size).await, want, "order {order}, size {size}");
    }
    // Paging with a filter that needs the records: counts only the matches.
    let mut params = w();
    params.push(json!({"name": "account_number", "method": "=", "searchParameter": ["ACC-100200"]}));
    let (status, body) = app
        .search(&search_body(params, json!({"page": "2", "size": "2"}), json!([])))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["totalCount"], 3);
    assert_eq!(ids(&body), ["2007"]);
}

#[tokio::test]
async fn one_record_shows_its_history() {
    let app = spawn_app().await;
    pay(&app, "3001", "ACC-100200", "20.00").await;
    let mut reversal = payment("3001", "ACC-100200", "20.00", "returned");
    reversal["posting_info"]["return_code"] = json!("R01");
    let (status, body) = app.post_json(REVERSE, &reversal).await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = app.admin_get("/admin/postings/payment/3001").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], "3001");
    assert_eq!(body["kind"], "payment");
    assert_eq!(body["status"], "returned");
    assert_eq!(body["live"], false);
    assert_eq!(body["amount"], "20.00");
    let history: Vec<&str> = body["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["status"].as_str().expect("status"))
        .collect();
    assert_eq!(history, ["processed", "returned"]);
    assert!(body["history"][1]["request_id"].as_str().is_some_and(|r| !r.is_empty()));

    let (status, body) = app.admin_get("/admin/postings/payment/nope").await;
    assert_eq!(
        (status, body["code"].clone(), body["field"].clone()),
        (404, json!("not_found"), json!("id"))
    );
    let (status, body) = app.admin_get("/admin/postings/chargeback/3001").await;
    assert_eq!((status, body["field"].clone()), (404, json!("kind")));
    let (status, _) = app.admin_get("/admin/postings/refund/3001").await;
    assert_eq!(status, 404, "a payment is not a refund");
}

#[tokio::test]
async fn the_account_view_has_profiles_balance_and_journal_but_no_ssn() {
    let app = spawn_app().await;
    for i in 0..3 {
        pay(&app, &format!("400{i}"), "ACC-100200", "10.00").await;
    }
    let (status, body) = app.admin_get("/admin/accounts/ACC-100200").await;
    assert_eq!(status, 200, "{body}");
    let account = &body["account"];
    assert_eq!(account["account_number"], "ACC-100200");
    assert_eq!(account["current_balance"], "80.05");
    assert_eq!(
        account["current_balance"].as_str(),
        Some(app.balance("ACC-100200").await.to_string().as_str())
    );
    assert_eq!(account["minimum_payment_due"], "25.00");
    assert_eq!(account["status"], "active");
    let refs: Vec<&str> = body["customers"]
        .as_array()
        .expect("customers")
        .iter()
        .map(|c| c["customer_reference"].as_str().expect("ref"))
        .collect();
    assert_eq!(refs, ["C-1001", "C-1002"]);
    let text = body.to_string();
    assert!(!text.contains("ssn"), "no SSN field: {text}");
    assert!(!text.contains("123456789"), "no SSN value: {text}");
    let journal: Vec<(u64, &str)> = body["journal"]
        .as_array()
        .expect("journal")
        .iter()
        .map(|e| (e["seq"].as_u64().expect("seq"), e["record_id"].as_str().expect("id")))
        .collect();
    assert_eq!(journal, [(3, "4002"), (2, "4001"), (1, "4000")], "newest first");
    assert_eq!(body["journal"][0]["delta"], "-10.00");
    assert_eq!(body["journal"][0]["balance_after"], "80.05");

    let (status, body) = app.admin_get("/admin/accounts/ACC-NOPE").await;
    assert_eq!((status, body["code"].clone()), (404, json!("not_found")));
    // Amounts follow the account's currency: JPY has no decimals.
    let (status, body) = app.admin_get("/admin/accounts/ACC-JP-0001").await;
    assert_eq!(
        (status, body["account"]["current_balance"].clone()),
        (200, json!("12000"))
    );
}

#[tokio::test]
async fn the_journal_feed_pages_without_gaps() {
    let app = spawn_app().await;
    for i in 0..9 {
        pay(&app, &format!("500{i}"), "ACC-100201", "1.00").await;
    }
    let (status, _) = app
        .post_json(REFUND, &refund("5901", "5000", Some("0.50"), "processed"))
        .await;
    assert_eq!(status, 200);

    let mut after = 0u64;
    let mut seqs = Vec::new();
    loop {
        let (status, body) = app.admin_get(&format!("/admin/journal?after={after}&limit=4")).await;
        assert_eq!(status, 200, "{body}");
        let entries = body["entries"].as_array().expect("entries");
        assert!(entries.len() <= 4);
        if entries.is_empty() {
            assert_eq!(body["next_after"], after, "an empty page keeps the cursor");
            break;
        }
        for e in entries {
            seqs.push(e["seq"].as_u64().expect("seq"));
        }
        after = body["next_after"].as_u64().expect("next_after");
        assert_eq!(after, *seqs.last().expect("seq"));
    }
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>(), "gap-free, in order, each once");

    let (_, body) = app.admin_get("/admin/journal?after=9").await;
    let last = &body["entries"][0];
    assert_eq!(last["seq"], 10);
    assert_eq!(last["kind"], "refund");
    assert_eq!(last["record_id"], "5901");
    assert_eq!(last["channel"], "orbipay");
    assert_eq!(last["account_number"], "ACC-100201");
    assert_eq!(last["delta"], "0.50");
    assert_eq!(last["balance_after"], "31.50");
    assert!(last["at"].as_str().is_some_and(|t| t.ends_with('Z')));
    let (_, body) = app.admin_get("/admin/journal").await;
    assert_eq!(
        body["entries"].as_array().map(Vec::len),
        Some(10),
        "after defaults to 0"
    );

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("after=-1", "after"),
        ("after=x", "after"),
    ] {
        let (status, body) = app.admin_get(&format!("/admin/journal?{query}")).await;
        assert_eq!((status, body["field"].clone()), (400, json!(field)), "{query}: {body}");
    }
    let (status, body) = app.admin_get("/admin/journal?limit=1000").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn put_accounts_imports_all_or_nothing() {
    let app = spawn_app().await;
    let good = json!({"account_number": "ACC-900001", "status": "active", "currency": "USD", "current_balance": "50.00",
                      "customers": [{"customer_reference": "C-9001", "first_name": "Eve", "ssn": "987654321"}]});
    let bad = json!({"account_number": "ACC-900002", "currency": "USD", "current_balance": "5.00",
                     "customers": [{"customer_reference": "C-9002", "ssn": "12-34"}]});
    let worse = json!({"account_number": "ACC-900003", "status": "frozen"});
    let body = json!([good, bad, worse]).to_string();
    let (status, answer) = app.admin_put("/admin/accounts", &body).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["code"], "validation");
    assert_eq!(answer["field"], "customers[0].ssn");
    let errors = answer["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 2, "every bad entry is reported: {answer}");
    assert_eq!(errors[0]["location"], "entry 1");
    assert_eq!(errors[1]["location"], "entry 2");
    assert_eq!(errors[1]["field"], "status");
    assert!(!answer.to_string().contains("12-34"), "the SSN is not echoed");
    let (status, _) = app.admin_get("/admin/accounts/ACC-900001").await;
    assert_eq!(status, 404, "nothing was imported");

    // JSON lines, both good.
    let lines = format!(
        "{}\n{}\n",
        good,
        json!({"account_number": "ACC-900002", "current_balance": "5.00", "customers": [{"customer_reference": "C-9001"}]})
    );
    let r = app
        .admin(reqwest::Method::PUT, "/admin/accounts")
        .header("content-type", "application/x-ndjson")
        .body(lines)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.expect("json");
    assert_eq!(
        answer,
        json!({"accounts_created": 2, "accounts_updated": 0, "profiles_created": 1, "profiles_updated": 0})
    );
    let (status, view) = app.admin_get("/admin/accounts/ACC-900001").await;
    assert_eq!(status, 200);
    assert_eq!(view["account"]["current_balance"], "50.00");
    assert_eq!(
        view["customers"][0]["account_numbers"],
        json!(["ACC-900001", "ACC-900002"])
    );

    // A re-import updates and keeps the live balance.
    pay(&app, "6001", "ACC-900001", "20.00").await;
    let (status, answer) = app.admin_put("/admin/accounts", &json!([good]).to_string()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accounts_updated"], 1);
    let (_, view) = app.admin_get("/admin/accounts/ACC-900001").await;
    assert_eq!(view["account"]["current_balance"], "30.00");
}

/// PUT /admin/accounts with each kind of bad body: the answer says what is wrong (status, code,
/// field) and nothing is imported.
#[tokio::test]
async fn put_accounts_refuses_every_bad_body_and_imports_nothing() {
    let app = spawn_app().await;
    let good = json!({"account_number": "ACC-T-1", "currency": "USD", "current_balance": "5.00",
                      "customers": [{"customer_reference": "C-T-1", "first_name": "Ada"}]});
    let with = |field: &str, value: Value| {
        let mut entry = good.clone();
        entry[field] = value;
        json!([entry]).to_string()
    };
    let with_profile = |field: &str, value: Value| {
        let mut entry = good.clone();
        entry["customers"][0][field] = value;
        json!([entry]).to_string()
    };
    const JSON: &str = "application/json";
    const LINES: &str = "application/x-ndjson";
    let long = "A".repeat(101);
    // (what, content type, body, status, code, field)
    let cases: Vec<(&str, Option<&str>, String, u16, &str, Option<&str>)> = vec![
        ("empty", Some(JSON), String::new(), 400, "validation", Some("(body)")),
        (
            "white space",
            Some(JSON),
            " \n ".into(),
            400,
            "validation",
            Some("(body)"),
        ),
        (
            "empty array",
            Some(JSON),
            "[]".into(),
            400,
            "validation",
            Some("(body)"),
        ),
        (
            "blank lines",
            Some(LINES),
            "\n\n".into(),
            400,
            "validation",
            Some("(body)"),
        ),
        ("broken array", Some(JSON), "[{".into(), 400, "validation", None),
        (
            "an object as application/json",
            Some(JSON),
            good.to_string(),
            400,
            "malformed",
            None,
        ),
        (
            "JSON lines as application/json",
            Some(JSON),
            format!("{good}\n{good}\n"),
            400,
            "malformed",
            None,
        ),
        (
            "an array as JSON lines",
            Some(LINES),
            json!([good]).to_string(),
            400,
            "validation",
            Some("(entry)"),
        ),
        (
            "a line that is not JSON",
            Some(LINES),
            format!("{good}\nnope\n"),
            400,
            "validation",
            Some("(line)"),
        ),
        (
            "text/plain",
            Some("text/plain"),
            json!([good]).to_string(),
            415,
            "unsupported_media_type",
            None,
        ),
        (
            "a form",
            Some("application/x-www-form-urlencoded"),
            json!([good]).to_string(),
            415,
            "unsupported_media_type",
            None,
        ),
        (
            "no content type",
            None,
            json!([good]).to_string(),
            415,
            "unsupported_media_type",
            None,
        ),
        (
            "not an object",
            Some(JSON),
            "[1]".into(),
            400,
            "validation",
            Some("(entry)"),
        ),
        (
            "no account_number",
            Some(JSON),
            json!([{"currency": "USD"}]).to_string(),
            400,
            "validation",
            Some("account_number"),
        ),
        (
            "empty account_number",
            Some(JSON),
            with("account_number", json!("")),
            400,
            "validation",
            Some("account_number"),
        ),
        (
            "account_number a number",
            Some(JSON),
            with("account_number", json!(7)),
            400,
            "validation",
            Some("account_number"),
        ),
        (
            "account_number too long",
            Some(JSON),
            with("account_number", json!(long)),
            400,
            "validation",
            Some("account_number"),
        ),
        (
            "account_number with a newline",
            Some(JSON),
            with("account_number", json!("ACC\n1")),
            400,
            "validation",
            Some("account_number"),
        ),
        (
            "unknown status",
            Some(JSON),
            with("status", json!("frozen")),
            400,
            "validation",
            Some("status"),
        ),
        (
            "lower-case currency",
            Some(JSON),
            with("currency", json!("usd")),
            400,
            "validation",
            Some("currency"),
        ),
        (
            "currency without a minor unit",
            Some(JSON),
            with("currency", json!("XXX")),
            400,
            "validation",
            Some("currency"),
        ),
        (
            "three decimals",
            Some(JSON),
            with("current_balance", json!("1.005")),
            400,
            "validation",
            Some("current_balance"),
        ),
        (
            "an exponent",
            Some(JSON),
            with("current_balance", json!("1e3")),
            400,
            "validation",
            Some("current_balance"),
        ),
        (
            "a plus sign",
            Some(JSON),
            with("current_balance", json!("+1")),
            400,
            "validation",
            Some("current_balance"),
        ),
        (
            "an amount as a number",
            Some(JSON),
            with("current_balance", json!(12.5)),
            400,
            "validation",
            Some("current_balance"),
        ),
        (
            "a one-digit month",
            Some(JSON),
            with("payment_due_date", json!("2026-1-05")),
            400,
            "validation",
            Some("payment_due_date"),
        ),
        (
            "no such day",
            Some(JSON),
            with("statement_date", json!("2026-02-30")),
            400,
            "validation",
            Some("statement_date"),
        ),
        (
            "a warning number",
            Some(JSON),
            with("warning", json!(5)),
            400,
            "validation",
            Some("warning"),
        ),
        (
            "an address string",
            Some(JSON),
            with("address", json!("1 Main St")),
            400,
            "validation",
            Some("address"),
        ),
        (
            "reset_balance text",
            Some(JSON),
            with("reset_balance", json!("yes")),
            400,
            "validation",
            Some("reset_balance"),
        ),
        (
            "customers an object",
            Some(JSON),
            with("customers", json!({})),
            400,
            "validation",
            Some("customers"),
        ),
        (
            "min above max",
            Some(JSON),
            {
                let mut e = good.clone();
                e["min_payment_amount"] = json!("10.00");
                e["max_payment_amount"] = json!("5.00");
                json!([e]).to_string()
            },
            400,
            "validation",
            Some("min_payment_amount"),
        ),
        (
            "a profile without reference",
            Some(JSON),
            with("customers", json!([{"first_name": "Ada"}])),
            400,
            "validation",
            Some("customers[0].customer_reference"),
        ),
        (
            "a reference too long",
            Some(JSON),
            with_profile("customer_reference", json!(long)),
            400,
            "validation",
            Some("customers[0].customer_reference"),
        ),
        (
            "a profile twice",
            Some(JSON),
            with(
                "customers",
                json!([{"customer_reference": "C-1"}, {"customer_reference": "C-1"}]),
            ),
            400,
            "validation",
            Some("customers[1].customer_reference"),
        ),
        (
            "a short SSN",
            Some(JSON),
            with_profile("ssn", json!("12345678")),
            400,
            "validation",
            Some("customers[0].ssn"),
        ),
        (
            "an email without @",
            Some(JSON),
            with_profile("email", json!("ada.example.com")),
            400,
            "validation",
            Some("customers[0].email"),
        ),
        (
            "unknown profile status",
            Some(JSON),
            with_profile("status", json!("gone")),
            400,
            "validation",
            Some("customers[0].status"),
        ),
        (
            "an account twice",
            Some(JSON),
            json!([good, good]).to_string(),
            400,
            "validation",
            Some("account_number"),
        ),
    ];
    for (what, content_type, body, status, code, field) in cases {
        let mut request = app.admin(reqwest::Method::PUT, "/admin/accounts").body(body.clone());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let r = request.send().await.expect("sent");
        let got = r.status().as_u16();
        let answer: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!((got, answer["code"].as_str()), (status, Some(code)), "{what}: {answer}");
        if let Some(field) = field {
            assert_eq!(answer["field"], json!(field), "{what}: {answer}");
        }
        assert!(
            answer["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {answer}"
        );
        if code == "validation" && field.is_some_and(|f| f != "(body)") {
            assert!(
                answer["errors"].as_array().is_some_and(|e| !e.is_empty()),
                "{what}: {answer}"
            );
        }
    }
    let (status, _) = app.admin_get("/admin/accounts/ACC-T-1").await;
    assert_eq!(status, 404, "a refused body imported something");

    // The same account is taken in both forms (a charset parameter is fine).
    for (content_type, body) in [
        ("application/json; charset=utf-8", json!([good]).to_string()),
        (LINES, format!("\n{good}\n\n")),
    ] {
        let r = app
            .admin(reqwest::Method::PUT, "/admin/accounts")
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 200, "{content_type}");
    }
    let (status, view) = app.admin_get("/admin/accounts/ACC-T-1").await;
    assert_eq!(status, 200, "{view}");
}

#[tokio::test]
async fn rejections_list_refused_requests_newest_first() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(format!("{}{PAY}", app.address))
        .header("client-key", CLIENT_KEY)
        .header("api-key", "wrong")
        .header("x-request-id", "req-unauth-1")
        .json(&payment("7001", "ACC-100200", "1.00", "processed"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 401);
    let mut bad = payment("7002", "ACC-100200", "1.00", "processed");
    bad["posting_info"]["amount"] = json!("one");
    let (status, _) = app.post_json(PAY, &bad).await;
    assert_eq!(status, 400);

    let (status, body) = app.admin_get("/admin/rejections").await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["cause"], "validation");
    assert_eq!(items[0]["code"], "error_field");
    assert_eq!(items[1]["cause"], "unauthorized");
    assert_eq!(items[1]["channel"], "orbipay");
    assert_eq!(items[1]["endpoint"], "/paymentposting");
    assert_eq!(items[1]["request_id"], "req-unauth-1");
    assert!(items[1]["at"].as_str().is_some_and(|t| t.ends_with('Z')));
    let (_, body) = app.admin_get("/admin/rejections?limit=1").await;
    assert_eq!(body["items"].as_array().map(Vec::len), Some(1));
    let (status, body) = app.admin_get("/admin/rejections?limit=0").await;
    assert_eq!((status, body["field"].clone()), (400, json!("limit")));
}

#[tokio::test]
async fn metrics_move_after_traffic() {
    let app = spawn_app().await;
    let applied = "biller_inbox_postings_applied_total{channel=\"orbipay\",kind=\"payment\"}";
    let ok_posts = "biller_inbox_requests_total{route=\"/paymentposting\",status=\"200\"}";
    let refused = "biller_inbox_rejections_total{cause=\"validation\"}";
    let before = app.metrics_text().await;
    pay(&app, "8001", "ACC-100200", "1.00").await;
    pay(&app, "8002", "ACC-100200", "1.00").await;
    let mut bad = payment("8003", "ACC-100200", "1.00", "processed");
    bad["posting_info"]["currency_code3d"] = json!("");
    let (status, _) = app.post_json(PAY, &bad).await;
    assert_eq!(status, 400);
    let after = app.metrics_text().await;
    assert_eq!(
        metric_value(&after, applied) - metric_value(&before, applied),
        2.0,
        "{after}"
    );
    assert_eq!(
        metric_value(&after, ok_posts) - metric_value(&before, ok_posts),
        2.0,
        "{after}"
    );
    assert_eq!(
        metric_value(&after, refused) - metric_value(&before, refused),
        1.0,
        "{after}"
    );
    let metrics_seen = "biller_inbox_requests_total{route=\"/metrics\",status=\"200\"}";
    assert!(
        metric_value(&after, metrics_seen) >= 1.0,
        "the first /metrics call was counted"
    );
    assert!(
        metric_value(&after, "biller_inbox_request_duration_seconds_count")
            > metric_value(&before, "biller_inbox_request_duration_seconds_count")
    );
    assert!(
        metric_value(&after, "biller_inbox_fsync_batch_size_count") >= 2.0,
        "{after}"
    );
}

/// Every route the server registers, as docs/operations.md names them (method, OpenAPI path). A new
/// route goes here too: the test below checks both ways between this list and `/openapi.json`.
const ROUTES: [(&str, &str); 23] = [
    ("get", "/health/live"),
    ("get", "/health/ready"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("post", "/mpacustomers"),
    ("post", "/paymentposting"),
    ("post", "/paymentreversalposting"),
    ("post", "/paymentrefundposting"),
    ("post", "/empayre/webhook"),
    ("post", "/empayre/webhook/{source}"),
    ("post", "/admin/postings/search"),
    ("get", "/admin/postings/{kind}/{id}"),
    ("get", "/admin/accounts/{account_number}"),
    ("put", "/admin/accounts"),
    ("get", "/admin/journal"),
    ("get", "/admin/rejections"),
    ("get", "/admin/empayre/events"),
    ("get", "/admin/empayre/events/{source}/{event_id}"),
    ("get", "/admin/empayre/unmatched"),
    ("post", "/admin/empayre/unmatched/{key}/assign"),
    ("get", "/admin/quarantine"),
    ("get", "/admin/empayre/reconcile"),
    ("post", "/admin/empayre/reconcile"),
];

#[tokio::test]
async fn openapi_lists_every_route_with_its_schemas() {
    let app = spawn_app().await;
    let doc = openapi_document(&app).await;
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    for (method, path) in ROUTES {
        let op = &paths.get(path).unwrap_or_else(|| panic!("{path} is not listed"))[method];
        assert!(op.is_object(), "{method} {path} is not listed");
        let ok = op["responses"]["200"]["content"]
            .as_object()
            .and_then(|c| c.values().next())
            .map(|c| c["schema"].clone());
        assert!(ok.is_some_and(|s| s.is_object()), "{method} {path} has no 200 schema");
        if method != "get" {
            let body = op["requestBody"]["content"].as_object().and_then(|c| c.values().next());
            assert!(
                body.is_some_and(|c| c["schema"].is_object()),
                "{method} {path} has no request schema"
            );
        }
        if path.starts_with("/admin/") {
            assert!(
                op["security"].is_array(),
                "{method} {path} does not say it needs the token"
            );
            assert!(op["responses"]["401"].is_object(), "{method} {path} does not list 401");
        }
    }
    // Every schema a path refers to is defined.
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    let text = doc.to_string();
    for piece in text.split("\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().expect("name");
        assert!(
            schemas.contains_key(name),
            "schema {name} is referenced but not defined"
        );
    }
    assert!(doc["components"]["securitySchemes"]["admin_token"].is_object());

    // The other way round: every documented operation is a route the server really has. The
    // request metrics label each request with its matched route pattern, which is the path as
    // documented.
    let documented = documented_operations(&doc);
    assert_eq!(documented.len(), ROUTES.len(), "documented: {documented:?}");
    for (method, path) in &documented {
        let concrete = path
            .replace("{kind}", "payment")
            .replace("{id}", "1")
            .replace("{account_number}", "ACC-100200")
            .replace("{source}", "demo")
            .replace("{event_id}", "1")
            .replace("{key}", "1");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let mut r = app.admin(method, &concrete);
        if concrete == "/admin/accounts" {
            r = r.body("[]");
        }
        r.send().await.expect("sent");
    }
    let metrics = app.metrics_text().await;
    for (_, path) in &documented {
        assert!(
            metrics.contains(&format!("route=\"{path}\"")),
            "{path} is documented but no route matched it"
        );
    }
}

#[tokio::test]
async fn openapi_follows_the_configured_paths() {
    let app = spawn_app_with(|s| {
        s.orbipay.base_path = "/ebpp".into();
        s.empayre.path = "/hooks/empayre".into();
    })
    .await;
    let doc = openapi_document(&app).await;
    let paths = doc["paths"].as_object().expect("paths");
    for p in [
        "/ebpp/mpacustomers",
        "/ebpp/paymentposting",
        "/hooks/empayre",
        "/hooks/empayre/{source}",
    ] {
        assert!(paths.contains_key(p), "{p} missing: {:?}", paths.keys());
    }
    assert!(!paths.contains_key("/paymentposting"));
    let (status, _) = app
        .post_json(
            "/ebpp/paymentposting",
            &payment("8501", "ACC-100200", "1.00", "processed"),
        )
        .await;
    assert_eq!(status, 200, "the documented path is the served one");
}

#[tokio::test]
async fn ready_fails_below_min_free_disk() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(format!("{}/health/ready", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    // Free disk is the sled store's own check (a database's disk is the database's business),
    // so this part runs on sled whichever backend the suite runs on.
    let app = spawn_app_with(|s| {
        s.store.backend = biller_inbox::settings::Backend::Sled;
        s.store.min_free_bytes = u64::MAX;
    })
    .await;
    let r = app
        .client
        .get(format!("{}/health/ready", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body, json!({"status": "not_ready", "failed_check": "disk_free"}));
}

/// The store on a 4 MiB tmpfs of its own, mounted in a private mount namespace that only the
/// server process sees (`unshare -m`), then filled up through `/proc/PID/root`: the readiness
/// probe's write+flush must fail. Needs root (or CAP_SYS_ADMIN); elsewhere it fails saying so,
/// rather than passing without checking.
#[tokio::test]
async fn ready_fails_when_the_store_cannot_write() {
    // This machine kind (and CI, which runs on it as root) can mount in a private namespace.
    assert_private_mounts_work();
    let dir = tempfile::tempdir().expect("dir");
    let mount = dir.path().join("fs");
    std::fs::create_dir(&mount).expect("mount point");
    let store = mount.join("store");
    // Only the write probe may fail: no free-disk threshold.
    let config = dir.path().join("test.toml");
    let text = format!(
        "[server]\nport = 0\nworkers = 1\n[store]\npath = \"{}\"\ncache_capacity_bytes = 16777216\nmin_free_bytes = 0\n",
        store.display()
    );
    std::fs::write(&config, text).expect("config");
    let log = dir.path().join("server.log");
    let script = format!(
        "mount -t tmpfs -o size=4m tmpfs '{}' && exec '{}' serve --config '{}'",
        mount.display(),
        binary(),
        config.display()
    );
    let mut command = tokio::process::Command::new("unshare");
    command.args(["-m", "sh", "-c", &script]);
    let mut server = start_command(command, &log).await;
    let client = reqwest::Client::new();
    let ready = |client: &reqwest::Client, address: &str| {
        let url = format!("{address}/health/ready");
        let client = client.clone();
        async move {
            let r = client.get(url).send().await.expect("sent");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    assert_eq!(
        ready(&client, &server.address).await.0,
        200,
        "ready before the disk fills"
    );

    // Fill the server's tmpfs, seen through its root in its own mount namespace.
    let pid = server.child.id().expect("pid");
    let filler = format!("/proc/{pid}/root{}/filler", mount.display());
    let mut file = std::fs::File::create(&filler).expect("filler file");
    let chunk = vec![0u8; 64 * 1024];
    loop {
        use std::io::Write;
        if file.write_all(&chunk).is_err() {
            break;
        }
    }
    let _ = file.sync_all();
    let mut last = (0, Value::Null);
    for _ in 0..200 {
        last = ready(&client, &server.address).await;
        if last.0 == 503 {
            break;
        }
    }
    assert_eq!(last.0, 503, "ready while the store's disk is full: {}", last.1);
    assert_eq!(last.1["failed_check"], "store_write", "{}", last.1);
    server.kill().await;
}

#[tokio::test]
async fn export_writes_journal_and_records_as_json_lines() {
    let app = spawn_app().await;
    let store = app.store_dir.path().join("store");
    let config = write_config(app.store_dir.path(), &store, "");
    let config_arg = config.to_str().expect("utf-8 path").to_string();

    pay(&app, "9001", "ACC-100200", "10.00").await;
    let (status, _) = app
        .post_json(REFUND, &refund("9901", "9001", Some("4.00"), "processed"))
        .await;
    assert_eq!(status, 200);
    let (code, stdout, stderr) = run_binary(&["export", "--config", &config_arg]).await;
    if app.pg_url.is_none() {
        // While the server holds the sled store, export refuses with one line.
        assert_eq!(code, 1, "{stderr}");
        assert!(stdout.is_empty());
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("running server"), "{stderr}");
    } else {
        // A database is shared: export reads it beside the running server.
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains("\"record_id\":\"9901\""), "{stdout}");
    }

    // Everything after this second is "since".
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    pay(&app, "9002", "ACC-100201", "3.00").await;
    app.stop().await;

    let export = |args: Vec<String>| async move {
        // The stopped server's store lock goes with its last thread; allow it a moment.
        for _ in 0..50 {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (code, stdout, stderr) = run_binary(&args).await;
            if code == 1 && stderr.contains("running server") {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            return (code, stdout, stderr);
        }
        panic!("the store was never released");
    };
    let (code, stdout, stderr) = export(vec!["export".into(), "--config".into(), config_arg.clone()]).await;
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let of = |t: &str| lines.iter().filter(|l| l["type"] == t).cloned().collect::<Vec<_>>();
    let journal = of("journal");
    let records = of("record");
    assert_eq!(
        journal.len() + records.len(),
        lines.len(),
        "only journal and record lines"
    );
    let seqs: Vec<u64> = journal.iter().map(|e| e["seq"].as_u64().expect("seq")).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(journal[1]["record_id"], "9901");
    assert_eq!(journal[1]["delta"], "4.00");
    let ids: Vec<&str> = records.iter().map(|r| r["id"].as_str().expect("id")).collect();
    assert_eq!(ids, ["9001", "9901", "9002"], "records in receive order");
    assert_eq!(records[0]["amount"], "10.00");
    assert_eq!(records[0]["kind"], "payment");
    assert_eq!(records[1]["kind"], "refund");
    assert!(lines.iter().position(|l| l["type"] == "record") > lines.iter().rposition(|l| l["type"] == "journal"));

    let (code, stdout, stderr) = export(vec![
        "export".into(),
        "--since".into(),
        since.clone(),
        "--config".into(),
        config_arg.clone(),
    ])
    .await;
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    let got: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            let id = l
                .get("record_id")
                .or_else(|| l.get("id"))
                .and_then(Value::as_str)
                .expect("id");
            (l["type"].as_str().expect("type").to_string(), id.to_string())
        })
        .collect();
    assert_eq!(
        got,
        [
            ("journal".to_string(), "9002".to_string()),
            ("record".to_string(), "9002".to_string())
        ],
        "--since {since}"
    );

    let (code, _, stderr) = run_binary(&["export", "--since", "yesterday", "--config", &config_arg]).await;
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
