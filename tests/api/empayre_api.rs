//! The Empayre API client against the fake API: headers, paging, retries, malformed answers,
//! an unreachable API, and the token kept out of every error.

use std::time::Duration;

use biller_inbox::empayre::api::{
    ApiClient, ApiError, ApiToken, ClientSettings, NewWebhook, RetryPolicy, SearchWindow,
};
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::fake_empayre::*;

fn client_for(url: &str, retry: RetryPolicy) -> ApiClient {
    ApiClient::new(ClientSettings {
        source: "demo".into(),
        base_url: url.into(),
        token: ApiToken::inline(FAKE_TOKEN).expect("token"),
        timeout: Duration::from_secs(10),
        retry,
    })
    .expect("client")
}

/// Retries as in production, but with short backoffs so the suite stays quick. `Retry-After` is
/// honoured as the server asks whatever the backoff.
fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        base_delay: Duration::from_millis(20),
        ..RetryPolicy::default()
    }
}

fn window(shop: &str) -> SearchWindow {
    let t = |s: &str| s.parse::<DateTime<Utc>>().expect("time");
    SearchWindow {
        shop_id: shop.into(),
        from: t("2026-11-21T00:00:00Z"),
        to: t("2026-11-22T00:00:00Z"),
    }
}

/// No error the client reports may carry the token, in `Display` or `Debug`.
fn assert_no_token(e: &ApiError) {
    assert!(!e.to_string().contains(FAKE_TOKEN), "{e}");
    assert!(!format!("{e:?}").contains(FAKE_TOKEN), "{e:?}");
}

#[tokio::test]
async fn searches_follow_continuation_tokens_across_three_pages_with_fresh_request_ids() {
    let fake = FakeEmpayre::start(&["shop-1", "shop-2"]).await;
    for i in 0..5 {
        fake.add_payment(api_payment(
            &format!("inv-{i}"),
            "1",
            "shop-1",
            &format!("2026-11-21T09:0{i}:00Z"),
            1000 + i,
            "USD",
            "captured",
        ));
        fake.add_refund(
            "shop-1",
            api_refund(
                &format!("inv-{i}"),
                "1",
                "1",
                &format!("2026-11-21T10:0{i}:00Z"),
                100,
                "USD",
                "succeeded",
            ),
        );
    }
    // Outside the window, and another shop's: never returned.
    fake.add_payment(api_payment(
        "inv-old",
        "1",
        "shop-1",
        "2026-11-20T09:00:00Z",
        5,
        "USD",
        "captured",
    ));
    fake.add_payment(api_payment(
        "inv-other",
        "1",
        "shop-2",
        "2026-11-21T09:00:00Z",
        5,
        "USD",
        "captured",
    ));
    fake.state().page_size = 2;
    let client = client_for(&fake.url, quick_retries());

    let payments = client.all_payments(&window("shop-1")).await.expect("payments");
    let ids: Vec<&str> = payments.iter().map(|p| p.invoice_id.as_str()).collect();
    assert_eq!(ids, ["inv-0", "inv-1", "inv-2", "inv-3", "inv-4"]);
    let refunds = client.all_refunds(&window("shop-1")).await.expect("refunds");
    assert_eq!(refunds.len(), 5);

    let seen = fake.seen();
    let pages = fake.seen_at("/payments");
    assert_eq!(pages.len(), 3, "three pages of payments");
    assert_eq!(fake.seen_at("/refunds").len(), 3, "three pages of refunds");
    assert!(!pages[0].query.contains_key("continuationToken"));
    for page in &pages {
        assert_eq!(page.path, "/v2/analytics/shops/shop-1/payments");
        assert_eq!(page.query["fromTime"], "2026-11-21T00:00:00.000Z");
        assert_eq!(page.query["toTime"], "2026-11-22T00:00:00.000Z");
        assert_eq!(page.query["limit"], "1000");
        assert_eq!(page.status, 200);
    }
    let mut ids = std::collections::BTreeSet::new();
    for s in &seen {
        assert_eq!(
            s.authorization.as_deref(),
            Some(format!("Bearer {FAKE_TOKEN}").as_str())
        );
        let id = s.request_id.clone().expect("X-Request-ID");
        assert!((1..=32).contains(&id.len()), "{id}");
        assert!(ids.insert(id), "a fresh X-Request-ID per call");
        let deadline = s.deadline.as_deref().expect("X-Request-Deadline");
        let at: DateTime<Utc> = deadline.parse().expect("deadline is RFC 3339");
        assert!(at > Utc::now(), "the deadline lies ahead");
    }
    fake.stop().await;
}

#[tokio::test]
async fn a_429_waits_for_retry_after_and_a_5xx_is_retried_until_success() {
    let fake = FakeEmpayre::start(&["shop-1"]).await;
    fake.add_invoice(api_invoice("inv-1", "shop-1", Some("ACC-100200"), 2500, "USD"));
    fake.script(Route::GetInvoice, Scripted::too_many("1"));
    fake.script(
        Route::GetInvoice,
        Scripted::status(503, json!({"message": "unavailable"})),
    );
    fake.script(Route::GetInvoice, Scripted::raw(504, "gateway timeout"));
    let client = client_for(&fake.url, quick_retries());

    let invoice = client.get_invoice("inv-1").await.expect("invoice after retries");
    assert_eq!((invoice.id.as_str(), invoice.amount), ("inv-1", 2500));
    let seen = fake.seen_at("/invoices/inv-1");
    let statuses: Vec<u16> = seen.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [429, 503, 504, 200]);
    assert!(
        seen[1].at.duration_since(seen[0].at) >= Duration::from_secs(1),
        "the retry after a 429 waits at least Retry-After"
    );

    // Past the attempts: the last status is reported, with how many attempts were made.
    for _ in 0..5 {
        fake.script(Route::GetInvoice, Scripted::status(500, json!({"message": "boom"})));
    }
    let err = client.get_invoice("inv-1").await.expect_err("5 x 500");
    assert!(
        matches!(
            err,
            ApiError::Status {
                status: 500,
                attempts: 5,
                ..
            }
        ),
        "{err:?}"
    );
    assert_no_token(&err);
    fake.stop().await;
}

#[tokio::test]
async fn other_4xx_are_not_retried_and_a_create_is_not_repeated_after_an_undefined_outcome() {
    let fake = FakeEmpayre::start(&["shop-1"]).await;
    let client = client_for(&fake.url, quick_retries());

    let err = client.get_invoice("missing").await.expect_err("404");
    assert_eq!(
        err.to_string(),
        "getInvoiceByID: Empayre API answered 404: Invoice not found after 1 attempt(s)"
    );
    assert_eq!(fake.seen_at("/invoices/missing").len(), 1, "a 404 is not retried");

    let new = NewWebhook {
        shop_id: "shop-1".into(),
        url: "https://biller.example/empayre/webhook".into(),
        event_types: vec!["PaymentCaptured".into()],
    };
    fake.script(
        Route::CreateWebhook,
        Scripted::status(400, json!({"code": "invalidRequest", "message": "bad"})),
    );
    let err = client.create_webhook(&new).await.expect_err("400");
    assert!(matches!(err, ApiError::Status { status: 400, ref code, .. } if code.as_deref() == Some("invalidRequest")));
    assert!(!err.outcome_undefined());

    fake.script(
        Route::CreateWebhook,
        Scripted::status(503, json!({"message": "try later"})),
    );
    let err = client.create_webhook(&new).await.expect_err("503");
    assert!(err.outcome_undefined(), "{err}");
    assert_eq!(
        fake.seen_at("/processing/webhooks").len(),
        2,
        "the 503 create was sent once"
    );

    // A 429 means "not processed": the create is repeated, after Retry-After.
    fake.script(Route::CreateWebhook, Scripted::too_many("0"));
    let created = client.create_webhook(&new).await.expect("created after a 429");
    assert_eq!(created.shop_id.as_deref(), Some("shop-1"));
    assert_eq!(created.public_key.as_deref(), Some(platform_key_pem().as_str()));
    let statuses: Vec<u16> = fake.seen_at("/processing/webhooks").iter().map(|s| s.status).collect();
    assert_eq!(statuses, [400, 503, 429, 201]);
    assert_eq!(client.get_webhooks().await.expect("list"), vec![created]);

    // A 401 that echoes the token back: the error shows it scrubbed.
    fake.script(
        Route::GetWebhooks,
        Scripted::status(401, json!({"message": format!("token {FAKE_TOKEN} is not valid")})),
    );
    let err = client.get_webhooks().await.expect_err("401");
    assert!(err.to_string().contains("[api_token]"), "{err}");
    assert_no_token(&err);
    fake.stop().await;
}

#[tokio::test]
async fn malformed_answers_are_reported_naming_the_call_and_the_field() {
    let fake = FakeEmpayre::start(&["shop-1"]).await;
    let client = client_for(&fake.url, quick_retries());
    let good = api_payment("inv-1", "1", "shop-1", "2026-11-21T09:00:00Z", 2500, "USD", "captured");
    let with = |field: &str, value: serde_json::Value| {
        let mut p = good.clone();
        p[field] = value;
        json!({"result": [good.clone(), p]}).to_string()
    };
    let cases: Vec<(String, &str)> = vec![
        (
            "not json".into(),
            "searchPayments: malformed answer: (answer): not JSON",
        ),
        (
            "[]".into(),
            "searchPayments: malformed answer: (answer): expected an object, got an array",
        ),
        (
            json!({"result": "x"}).to_string(),
            "searchPayments: malformed answer: result: expected an array",
        ),
        (
            with("amount", json!("25.00")),
            "searchPayments: malformed answer: result[1].amount: expected an integer, got a string",
        ),
        (
            with("currency", json!(840)),
            "searchPayments: malformed answer: result[1].currency: expected a string, got a number",
        ),
        (
            with("invoiceID", serde_json::Value::Null),
            "searchPayments: malformed answer: result[1].invoiceID: missing",
        ),
        (
            with("createdAt", json!("21.11.2026")),
            "searchPayments: malformed answer: result[1].createdAt: expected an RFC 3339 date-time",
        ),
    ];
    for (body, message) in cases {
        fake.script(Route::SearchPayments, Scripted::raw(200, &body));
        let err = client.all_payments(&window("shop-1")).await.expect_err(&body);
        assert!(err.to_string().starts_with(message), "{body}: {err}");
        assert_no_token(&err);
    }
    // A page that hands out the token it was asked with would loop for ever.
    fake.script(
        Route::SearchPayments,
        Scripted::raw(200, &json!({"continuationToken": "t1", "result": []}).to_string()),
    );
    fake.script(
        Route::SearchPayments,
        Scripted::raw(200, &json!({"continuationToken": "t1", "result": []}).to_string()),
    );
    let err = client.all_payments(&window("shop-1")).await.expect_err("loop");
    assert!(err.to_string().contains("continuationToken: the same token"), "{err}");
    // The invoice must be the one asked for.
    fake.script(
        Route::GetInvoice,
        Scripted::raw(200, &api_invoice("inv-2", "shop-1", None, 1, "USD").to_string()),
    );
    let err = client.get_invoice("inv-1").await.expect_err("wrong invoice");
    assert_eq!(
        err.to_string(),
        "getInvoiceByID: malformed answer: id: is not the invoice asked for"
    );
    fake.stop().await;
}

#[tokio::test]
async fn an_unreachable_api_fails_after_every_attempt() {
    // A port that was free a moment ago: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let client = client_for(&format!("http://127.0.0.1:{port}/v2"), quick_retries());
    let err = client.get_webhooks().await.expect_err("unreachable");
    match &err {
        ApiError::Unreachable { attempts, detail, .. } => {
            assert_eq!(*attempts, 5);
            assert!(detail.starts_with("connect"), "{detail}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("getWebhooks: Empayre API unreachable after 5 attempt(s)"),
        "{err}"
    );
    assert_no_token(&err);
}
