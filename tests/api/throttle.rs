//! Throttled guessing: failed authentication is limited per client address on every channel
//! (`server.auth_failures_per_minute`). Past the limit: 429 in the channel's error format with
//! `Retry-After`, no credential check, counted in `/metrics` and `/admin/rejections`; other
//! addresses are not affected. Clients on other addresses bind to other loopback addresses
//! (127.0.0.2, 127.0.0.3: all of 127/8 is local on Linux).

use std::net::IpAddr;
use std::time::Duration;

use reqwest::header::{COOKIE, RETRY_AFTER, SET_COOKIE};
use serde_json::Value;

use crate::helpers::*;

/// A client whose connections come from `source` (a loopback address).
fn client_from(source: &str) -> reqwest::Client {
    let source: IpAddr = source.parse().expect("ip");
    reqwest::Client::builder()
        .local_address(source)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

async fn post_payment(app: &TestApp, client: &reqwest::Client, id: &str, api_key: &str) -> reqwest::Response {
    client
        .post(format!("{}/paymentposting", app.address))
        .header("client-key", CLIENT_KEY)
        .header("api-key", api_key)
        .json(&payment(id, "ACC-100200", "1.00", "processed"))
        .send()
        .await
        .expect("sent")
}

/// The `Retry-After` seconds of a 429, checked to be within the minute.
fn retry_after(r: &reqwest::Response) -> u64 {
    let secs: u64 = r
        .headers()
        .get(RETRY_AFTER)
        .expect("Retry-After")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("whole seconds");
    assert!((1..=60).contains(&secs), "Retry-After {secs}");
    secs
}

async fn metrics(app: &TestApp) -> String {
    app.client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

/// The admin API seen from an address that guesses nothing.
fn admin_elsewhere(app: &TestApp) -> Remote {
    Remote {
        client: client_from("127.0.0.3"),
        address: app.address.clone(),
        admin_token: ADMIN_TOKEN.into(),
    }
}

#[tokio::test]
async fn thirty_one_bad_api_keys_get_429_while_a_good_client_elsewhere_posts() {
    let app = spawn_app().await;
    let guesser = client_from("127.0.0.1");
    let good = client_from("127.0.0.2");
    for n in 0..30 {
        let r = post_payment(&app, &guesser, "9100", &format!("guess-{n}")).await;
        assert_eq!(r.status(), 401, "guess {n} is checked");
    }
    let r = post_payment(&app, &guesser, "9100", "guess-30").await;
    assert_eq!(r.status(), 429, "the 31st failure within the minute");
    retry_after(&r);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["errors"][0]["code"], "error_too_many_requests", "{body}");
    assert!(body["errors"][0]["message"].is_string(), "{body}");
    // No credential is checked past the limit: the right key from that address is refused too.
    let r = post_payment(&app, &guesser, "9101", API_KEY).await;
    assert_eq!(r.status(), 429);

    let r = post_payment(&app, &good, "9102", API_KEY).await;
    assert_eq!(r.status(), 200, "another address posts normally");
    let admin = admin_elsewhere(&app);
    assert!(admin.record("payment", "9102").await.is_some());
    assert!(
        admin.record("payment", "9101").await.is_none(),
        "the throttled posting changed nothing"
    );

    let text = metrics(&app).await;
    assert_eq!(
        metric_value(&text, "biller_inbox_rejections_total{cause=\"throttled\"}"),
        2.0
    );
    assert_eq!(
        metric_value(&text, "biller_inbox_rejections_total{cause=\"unauthorized\"}"),
        30.0
    );
    let (status, list) = admin.admin_get("/admin/rejections?limit=5").await;
    assert_eq!(status, 200, "{list}");
    let newest = &list["items"][0];
    assert_eq!(newest["cause"], "throttled", "{list}");
    assert_eq!(newest["code"], "error_too_many_requests", "{list}");
    assert_eq!(newest["channel"], "orbipay", "{list}");
}

#[tokio::test]
async fn admin_token_guesses_are_throttled_in_the_admin_format() {
    let app = spawn_app_with(|s| s.server.auth_failures_per_minute = 3).await;
    let guesser = Remote {
        client: client_from("127.0.0.1"),
        address: app.address.clone(),
        admin_token: "wrong-token".into(),
    };
    for _ in 0..3 {
        let (status, body) = guesser.admin_get("/admin/journal").await;
        assert_eq!(status, 401, "{body}");
    }
    let r = guesser
        .admin(reqwest::Method::GET, "/admin/journal")
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 429);
    retry_after(&r);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["code"], "too_many_requests", "{body}");
    // Not even the right token is looked at from there; from elsewhere it works.
    let right_from_there = Remote {
        admin_token: ADMIN_TOKEN.into(),
        ..guesser.clone()
    };
    let (status, _) = right_from_there.admin_get("/admin/journal").await;
    assert_eq!(status, 429);
    let admin = admin_elsewhere(&app);
    let (status, list) = admin.admin_get("/admin/rejections?limit=10").await;
    assert_eq!(status, 200, "{list}");
    let causes: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["cause"].as_str())
        .collect();
    assert_eq!(
        causes,
        ["throttled", "throttled", "unauthorized", "unauthorized", "unauthorized"]
    );
    assert!(!list.to_string().contains("wrong-token"), "the guess is not logged");
    assert!(list["items"]
        .as_array()
        .expect("items")
        .iter()
        .all(|i| i["channel"] == "admin"));
}

#[tokio::test]
async fn empayre_signature_failures_are_counted_but_a_signed_event_always_goes_through() {
    let app = spawn_app_with(|s| {
        s.server.auth_failures_per_minute = 3;
        s.empayre.sources = vec![fixture_empayre_source("demo")];
    })
    .await;
    let sender = Remote {
        client: client_from("127.0.0.1"),
        address: app.address.clone(),
        admin_token: ADMIN_TOKEN.into(),
    };
    let event = captured_event(7001, "inv-throttle", Some("ACC-100201"), 500);
    let body = serde_json::to_vec(&event).expect("json");
    let forged = "alg=RS256; digest=AAAA";
    for _ in 0..3 {
        let (status, answer) = sender.try_webhook(body.clone(), Some(forged)).await.expect("sent");
        assert_eq!(status, 401, "{answer}");
    }
    let r = sender
        .client
        .post(format!("{}/empayre/webhook", app.address))
        .header("content-type", "application/json")
        .header("Content-Signature", forged)
        .body(body.clone())
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 429, "a failing signature past the limit");
    retry_after(&r);
    let answer: Value = r.json().await.expect("json");
    assert!(answer["message"].is_string(), "the webhook's format: {answer}");

    let (status, answer) = sender.send_event(&event).await;
    assert_eq!(status, 200, "a correctly signed event from the same address: {answer}");
    assert_eq!(answer["status"], "stored", "{answer}");
    let text = metrics(&app).await;
    assert_eq!(
        metric_value(&text, "biller_inbox_rejections_total{cause=\"throttled\"}"),
        1.0
    );
    assert_eq!(
        metric_value(&text, "biller_inbox_rejections_total{cause=\"signature_invalid\"}"),
        3.0
    );
}

/// A fresh sign-in form: its cookie pair and CSRF token.
async fn sign_in_form(app: &TestApp, client: &reqwest::Client) -> (String, String) {
    let form = client
        .get(format!("{}/console/sign-in", app.address))
        .send()
        .await
        .expect("form");
    let cookie = form.headers()[SET_COOKIE]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_string();
    let page = form.text().await.expect("page");
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("csrf field") + marker.len();
    let csrf = page[start..].split('"').next().expect("value").to_string();
    (cookie, csrf)
}

async fn sign_in(app: &TestApp, client: &reqwest::Client, token: &str) -> reqwest::Response {
    let (cookie, csrf) = sign_in_form(app, client).await;
    client
        .post(format!("{}/console/sign-in", app.address))
        .header(COOKIE, cookie)
        .form(&[("token", token), ("csrf", csrf.as_str())])
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn console_sign_in_shares_the_throttle() {
    let app = spawn_app_with(|s| s.server.auth_failures_per_minute = 2).await;
    let guesser = client_from("127.0.0.1");
    for _ in 0..2 {
        assert_eq!(sign_in(&app, &guesser, "guess").await.status(), 401);
    }
    let r = sign_in(&app, &guesser, ADMIN_TOKEN).await;
    assert_eq!(r.status(), 429, "past the limit not even the right token is checked");
    retry_after(&r);
    assert!(r.text().await.expect("page").contains("Too many wrong tokens"));
    // The admin API from that address is throttled too: one budget per address.
    let r = guesser
        .get(format!("{}/admin/journal", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 429);
    let r = sign_in(&app, &client_from("127.0.0.2"), ADMIN_TOKEN).await;
    assert_eq!(r.status(), 303, "another address signs in");
}

#[tokio::test]
async fn every_route_that_answers_401_documents_429_with_retry_after() {
    let app = spawn_full_app().await;
    let doc = openapi_document(&app).await;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("item") {
            let responses = &operation["responses"];
            if responses.get("401").is_none() {
                continue;
            }
            let throttled = &responses["429"];
            assert!(
                throttled.is_object(),
                "{method} {path} answers 401 but documents no 429"
            );
            assert!(
                throttled["headers"]["Retry-After"].is_object(),
                "{method} {path}: 429 without Retry-After"
            );
            // The same media types and schemas (the examples differ: each shows its own code).
            let schemas = |status: &str| -> Vec<(String, Value)> {
                responses[status]["content"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(media_type, content)| (media_type.clone(), content["schema"].clone()))
                    .collect()
            };
            assert_eq!(
                schemas("429"),
                schemas("401"),
                "{method} {path}: 429 in the channel's error format"
            );
            checked += 1;
        }
    }
    assert!(checked >= 4 + 2 + 10, "EBPP, webhook and admin operations: {checked}");
}
