//! `POST /mpacustomers`: criteria, AND semantics, the multi-profile model, errors, auth.

use biller_inbox::orbipay::Endpoint;
use serde_json::Value;

use crate::helpers::*;

async fn references(app: &TestApp, form: &[(&str, &str)]) -> (u16, Vec<String>, Value) {
    let r = app.lookup(form).await;
    let status = r.status().as_u16();
    let body: Value = r.json().await.expect("json body");
    let refs = body["list"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|p| p["customer_reference"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    (status, refs, body)
}

async fn every_criterion_finds_its_profiles(transport: Transport) {
    let app = spawn_app_over(transport, |_| {}).await;
    let cases: Vec<(&str, Vec<(&str, &str)>, Vec<&str>)> = vec![
        (
            "customer_reference",
            vec![("customer_reference", "C-1001")],
            vec!["C-1001"],
        ),
        (
            "account_number, joint account",
            vec![("account_number", "ACC-100200")],
            vec!["C-1001", "C-1002"],
        ),
        ("ssn", vec![("ssn", "223456789")], vec!["C-1002"]),
        ("email, any case", vec![("email", "ANA@Example.COM")], vec!["C-1001"]),
        ("lookup_reference", vec![("lookup_reference", "LR-78")], vec!["C-1002"]),
        (
            "AND of two that agree",
            vec![("customer_reference", "C-1001"), ("account_number", "ACC-100200")],
            vec!["C-1001"],
        ),
        (
            "AND of email and ssn",
            vec![("email", "ana@example.com"), ("ssn", "123456789")],
            vec!["C-1001"],
        ),
        (
            "empty fields are absent",
            vec![("email", ""), ("customer_reference", "C-1002")],
            vec!["C-1002"],
        ),
        (
            "unknown fields ignored",
            vec![("nickname", "x"), ("customer_reference", "C-1002")],
            vec!["C-1002"],
        ),
    ];
    for (name, form, want) in cases {
        let (status, refs, _) = references(&app, &form).await;
        assert_eq!(status, 200, "{name}");
        assert_eq!(refs, want, "{name}");
    }
}

async fn criteria_that_disagree_match_nothing(transport: Transport) {
    let app = spawn_app_over(transport, |_| {}).await;
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("customer_reference", "C-1001"), ("account_number", "ACC-100300")],
        vec![("email", "ana@example.com"), ("ssn", "223456789")],
        vec![("customer_reference", "NOBODY")],
        vec![("account_number", "ACC-404")],
        vec![("ssn", "000000000")],
    ];
    for form in cases {
        let (status, _, body) = references(&app, &form).await;
        assert_eq!(status, 404, "{form:?}");
        assert_eq!(first_error(&body).0, "error_customer_missing", "{form:?}");
    }
}

async fn account_number_shows_only_that_account_under_each_profile(transport: Transport) {
    let app = spawn_app_over(transport, |_| {}).await;
    let (_, _, body) = references(&app, &[("customer_reference", "C-1001")]).await;
    let accounts: Vec<&str> = body["list"][0]["customer_accounts"]["list"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| a["account_number"].as_str().expect("number"))
        .collect();
    assert_eq!(accounts, vec!["ACC-100200", "ACC-100201"]);

    let (_, _, body) = references(&app, &[("account_number", "ACC-100200")]).await;
    for profile in body["list"].as_array().expect("list") {
        let list = profile["customer_accounts"]["list"].as_array().expect("accounts");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["account_number"], "ACC-100200");
    }
    assert_eq!(body["total_results_count"], "2");
    assert_eq!(body["has_more_results"], "false");
}

async fn answer_is_all_strings_and_never_carries_the_ssn(transport: Transport) {
    let app = spawn_app_over(transport, |_| {}).await;
    let r = app.lookup(&[("ssn", "123456789")]).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("text");
    assert!(!text.contains("123456789"), "SSN echoed: {text}");
    assert!(!text.contains("ssn"), "an ssn field in: {text}");
    let body: Value = serde_json::from_str(&text).expect("json");
    let account = &body["list"][0]["customer_accounts"]["list"][0];
    assert_eq!(account["current_balance"], "110.05");
    assert_eq!(account["minimum_payment_due"], "25.00");
    assert!(account.get("payoff_amount").is_none(), "absent values are omitted");
    fn all_scalars_are_strings(v: &Value) -> bool {
        match v {
            Value::Object(m) => m.values().all(all_scalars_are_strings),
            Value::Array(a) => a.iter().all(all_scalars_are_strings),
            Value::String(s) => !s.is_empty(),
            _ => false,
        }
    }
    assert!(all_scalars_are_strings(&body), "{body}");
}

async fn closed_and_repair_accounts_show_as_inactive(transport: Transport) {
    let app = spawn_app_over(transport, |_| {}).await;
    for account in ["ACC-100500", "ACC-100600"] {
        let (_, _, body) = references(&app, &[("account_number", account)]).await;
        assert_eq!(
            body["list"][0]["customer_accounts"]["list"][0]["status"], "inactive",
            "{account}"
        );
    }
    let (_, _, body) = references(&app, &[("account_number", "ACC-100800")]).await;
    assert_eq!(
        body["list"][0]["customer_accounts"]["list"][0]["status"],
        "incollections"
    );
}

async fn results_are_capped_with_a_true_total(transport: Transport) {
    let app = spawn_app_over(transport, |s| s.orbipay.lookup_max_results = 1).await;
    let (status, refs, body) = references(&app, &[("account_number", "ACC-100200")]).await;
    assert_eq!(status, 200);
    assert_eq!(refs.len(), 1);
    assert_eq!(body["total_results_count"], "2");
    assert_eq!(body["has_more_results"], "true");
}

async fn invalid_lookups_are_400_with_the_field(transport: Transport) {
    let app = spawn_app_over(transport, |_| {}).await;
    let long = "x".repeat(101);
    let cases: Vec<(Vec<(&str, &str)>, Option<&str>)> = vec![
        (vec![], None),
        (vec![("email", ""), ("ssn", "")], None),
        (vec![("ssn", "12345678")], Some("ssn")),
        (vec![("ssn", "12345678a")], Some("ssn")),
        (vec![("email", "not-an-email")], Some("email")),
        (vec![("account_number", "ACC<1>")], Some("account_number")),
        (vec![("customer_reference", long.as_str())], Some("customer_reference")),
    ];
    for (form, field) in cases {
        let (status, _, body) = references(&app, &form).await;
        assert_eq!(status, 400, "{form:?}");
        let (code, got_field) = first_error(&body);
        assert_eq!(code, "error_field", "{form:?}");
        assert_eq!(got_field.as_deref(), field, "{form:?}");
        assert!(!body.to_string().contains("12345678"), "ssn echoed in {body}");
    }
    let r = app
        .client
        .post(format!("{}/mpacustomers", app.address))
        .header("client-key", CLIENT_KEY)
        .header("api-key", API_KEY)
        .json(&serde_json::json!({"customer_reference": "C-1001"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 400, "JSON is not the lookup's content type");
}

async fn authentication_failures(transport: Transport) {
    let app = spawn_app_over(transport, |_| {}).await;
    let url = format!("{}/mpacustomers", app.address);
    let cases: Vec<(Vec<(&str, &str)>, u16, &str)> = vec![
        (vec![], 401, "error_unauthorized"),
        (vec![("client-key", CLIENT_KEY)], 401, "error_unauthorized"),
        (
            vec![("client-key", CLIENT_KEY), ("api-key", "wrong")],
            401,
            "error_unauthorized",
        ),
        (
            vec![("client-key", "someone"), ("api-key", API_KEY)],
            401,
            "error_unauthorized",
        ),
        (
            vec![("client-key", "demo-disabled"), ("api-key", "demo-disabled-key")],
            403,
            "error_forbidden",
        ),
        (
            vec![("client-key", "demo-disabled"), ("api-key", "wrong")],
            401,
            "error_unauthorized",
        ),
    ];
    for (headers, status, code) in cases {
        let mut req = app.client.post(&url).form(&[("customer_reference", "C-1001")]);
        for (k, v) in &headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.expect("sent");
        assert_eq!(r.status().as_u16(), status, "{headers:?}");
        assert!(r.headers().contains_key("x-request-id"));
        let text = r.text().await.expect("text");
        assert!(
            !text.contains(API_KEY) && !text.contains("wrong"),
            "secret echoed: {text}"
        );
        let body: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(first_error(&body).0, code, "{headers:?}");
    }
}

async fn request_id_is_echoed_or_generated(transport: Transport) {
    let app = spawn_app_over(transport, |_| {}).await;
    let r = app
        .client
        .get(format!("{}/health/live", app.address))
        .header("x-request-id", "ebpp-trace-42")
        .send()
        .await
        .expect("sent");
    assert_eq!(r.headers()["x-request-id"], "ebpp-trace-42");
    let r = app
        .client
        .get(format!("{}/health/live", app.address))
        .send()
        .await
        .expect("sent");
    assert!(!r.headers()["x-request-id"].is_empty());
}

async fn no_configured_client_closes_the_channel(transport: Transport) {
    let app = spawn_app_over(transport, |s| s.orbipay.clients.clear()).await;
    let r = app.lookup(&[("customer_reference", "C-1001")]).await;
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.expect("json");
    assert_eq!(first_error(&body).0, "error_processing");
    let (status, _) = app
        .post_json("/paymentposting", &payment("1", "ACC-100200", "10.00", "processed"))
        .await;
    assert_eq!(status, 503);
}

async fn other_methods_on_ebpp_routes_get_the_error_envelope(transport: Transport) {
    let app = spawn_app_over(transport, |_| {}).await;
    for path in Endpoint::ALL.map(Endpoint::path) {
        for method in [reqwest::Method::GET, reqwest::Method::PUT, reqwest::Method::DELETE] {
            let r = app
                .client
                .request(method.clone(), format!("{}{path}", app.address))
                .header("client-key", CLIENT_KEY)
                .header("api-key", API_KEY)
                .send()
                .await
                .expect("sent");
            assert_eq!(r.status(), 405, "{method} {path}");
            let body: Value = r.json().await.expect("json envelope");
            assert_eq!(first_error(&body).0, "error_field", "{method} {path}");
        }
    }
}

// The conformance suite holds over plain HTTP and over TLS alike.
over_plain_and_tls!(
    every_criterion_finds_its_profiles,
    criteria_that_disagree_match_nothing,
    account_number_shows_only_that_account_under_each_profile,
    answer_is_all_strings_and_never_carries_the_ssn,
    closed_and_repair_accounts_show_as_inactive,
    results_are_capped_with_a_true_total,
    invalid_lookups_are_400_with_the_field,
    authentication_failures,
    request_id_is_echoed_or_generated,
    no_configured_client_closes_the_channel,
    other_methods_on_ebpp_routes_get_the_error_envelope,
);
