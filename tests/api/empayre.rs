//! The Empayre webhook sink: verification, the answers of A3, projections and crediting (A4).

use biller_inbox::empayre::signature::BodySigner;
use biller_inbox::settings::EmpayreSource;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::helpers::*;

fn signer() -> BodySigner {
    let pem = repo_text("fixtures/keys/empayre_test_private.pem");
    BodySigner::from_pem(&pem).expect("signer")
}

fn fixture_source(name: &str) -> EmpayreSource {
    EmpayreSource {
        name: name.into(),
        public_keys: vec![],
        public_key_files: vec![repo_path("fixtures/keys/empayre_test_public.pem")],
        account_pointer: "/invoice/metadata/account_number".into(),
        ..Default::default()
    }
}

async fn empayre_app() -> TestApp {
    spawn_app_with(|s| s.empayre.sources = vec![fixture_source("demo")]).await
}

async fn send_raw(app: &TestApp, path: &str, body: &[u8], signature: Option<&str>) -> (u16, Value) {
    let mut req = app
        .client
        .post(format!("{}{path}", app.address))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(sig) = signature {
        req = req.header("Content-Signature", sig);
    }
    let r = req.send().await.expect("sent");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Sends an event compact and signed with the fixture key, as the platform would.
async fn send_event(app: &TestApp, event: &Value) -> (u16, Value) {
    let body = serde_json::to_vec(event).expect("json");
    let sig = signer().sign_header(&body).expect("sign");
    send_raw(app, "/empayre/webhook", &body, Some(&sig)).await
}

fn invoice(id: &str, account: Option<&str>, currency: &str, amount: i64) -> Value {
    let mut inv = json!({
        "id": id, "shopID": "shop-1", "createdAt": "2026-11-21T09:00:00Z", "status": "paid",
        "dueDate": "2026-11-22T09:00:00Z", "amount": amount, "currency": currency, "product": "Bill",
    });
    if let Some(a) = account {
        inv["metadata"] = json!({ "account_number": a });
    }
    inv
}

fn payment_event(
    event_id: i64,
    event_type: &str,
    invoice_id: &str,
    account: Option<&str>,
    status: &str,
    amount: i64,
    currency: &str,
) -> Value {
    json!({
        "eventID": event_id, "occuredAt": "2026-11-21T09:01:00.5Z", "topic": "InvoicesTopic", "eventType": event_type,
        "invoice": invoice(invoice_id, account, currency, amount),
        "payment": {
            "id": "1", "createdAt": "2026-11-21T09:00:30Z", "status": status, "amount": amount, "currency": currency,
            "paymentToolToken": "eyJzZWNyZXQtY2FyZC10b2tlbi12YWx1ZSJ9", "paymentSession": "c2Vzc2lvbi1zZWNyZXQ",
            "contactInfo": {"email": "payer.private@example.com", "phoneNumber": "+79990001122"},
            "payer": {"payerType": "PaymentResourcePayer", "paymentToolToken": "eyJzZWNyZXQtY2FyZC10b2tlbi12YWx1ZSJ9",
                      "paymentSession": "c2Vzc2lvbi1zZWNyZXQ", "contactInfo": {"email": "payer.private@example.com"}},
            "fee": 0
        }
    })
}

fn refund_event(
    event_id: i64,
    event_type: &str,
    invoice_id: &str,
    account: &str,
    refund_status: &str,
    amount: i64,
) -> Value {
    let mut e = payment_event(
        event_id,
        event_type,
        invoice_id,
        Some(account),
        "captured",
        10_000,
        "USD",
    );
    e["refund"] = json!({"id": "1", "createdAt": "2026-11-21T10:00:00Z", "status": refund_status, "amount": amount, "currency": "USD"});
    e
}

#[tokio::test]
async fn the_signature_vector_verifies_with_both_key_forms_and_nothing_else() {
    let spki = repo_text(&format!("{EMPAYRE_VECTORS}/tv_pub_spki.pem"));
    let pkcs1 = repo_text(&format!("{EMPAYRE_VECTORS}/tv_pub_pkcs1.b64"));
    let app = spawn_app_with(|s| {
        s.empayre.sources = vec![
            EmpayreSource {
                public_keys: vec![spki],
                ..fixture_source("spki")
            },
            EmpayreSource {
                public_keys: vec![pkcs1],
                ..fixture_source("pkcs1")
            },
            fixture_source("other"),
        ];
        for src in s.empayre.sources.iter_mut().take(2) {
            src.public_key_files.clear();
        }
    })
    .await;
    let body = repo_file(&format!("{EMPAYRE_VECTORS}/tv_body.json"));
    let header = repo_text(&format!("{EMPAYRE_VECTORS}/tv_header.txt"));
    let header = header.trim_end();
    let (status, answer) = send_raw(&app, "/empayre/webhook/spki", &body, Some(header)).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("stored")));
    let (status, answer) = send_raw(&app, "/empayre/webhook/pkcs1", &body, Some(header)).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("stored")),
        "same eventID, other source: not a duplicate"
    );
    let (status, answer) = send_raw(&app, "/empayre/webhook", &body, Some(header)).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("duplicate")));

    let mut changed = body.clone();
    changed[20] ^= 1;
    let mut newline = body.clone();
    newline.push(b'\n');
    let unpadded = header.trim_end_matches('=');
    let cases: Vec<(&str, Vec<u8>, Option<&str>, u16)> = vec![
        ("one byte changed", changed, Some(header), 401),
        ("trailing newline", newline, Some(header), 401),
        ("wrong key", body.clone(), Some(header), 401),
        (
            "unpadded digest still verifies (duplicate)",
            body.clone(),
            Some(unpadded),
            200,
        ),
    ];
    for (name, b, sig, want) in cases {
        let route = if name == "wrong key" {
            "/empayre/webhook/other"
        } else {
            "/empayre/webhook/spki"
        };
        let (status, _) = send_raw(&app, route, &b, sig).await;
        assert_eq!(status, want, "{name}");
    }
}

#[tokio::test]
async fn every_answer_of_a3() {
    let app = spawn_app_with(|s| {
        s.empayre.sources = vec![fixture_source("demo")];
        s.server.max_body_bytes = 8192;
    })
    .await;
    let event = payment_event(
        1,
        "PaymentProcessed",
        "inv-a3",
        Some("ACC-100200"),
        "processed",
        1000,
        "USD",
    );
    let body = serde_json::to_vec(&event).expect("json");
    let sig = signer().sign_header(&body).expect("sign");
    assert_eq!(
        send_raw(&app, "/empayre/webhook", &body, Some(&sig)).await,
        (200, json!({"status": "stored"}))
    );
    assert_eq!(
        send_raw(&app, "/empayre/webhook/demo", &body, Some(&sig)).await,
        (200, json!({"status": "duplicate"}))
    );

    let mut unknown = event.clone();
    unknown["eventID"] = json!(2);
    unknown["eventType"] = json!("PaymentTeleported");
    assert_eq!(
        send_event(&app, &unknown).await,
        (200, json!({"status": "quarantined"}))
    );
    let not_an_event = b"{\"hello\": \"world\"}".to_vec();
    let s = signer().sign_header(&not_an_event).expect("sign");
    assert_eq!(
        send_raw(&app, "/empayre/webhook", &not_an_event, Some(&s)).await,
        (200, json!({"status": "quarantined"}))
    );
    let not_json = b"this is not json".to_vec();
    let s = signer().sign_header(&not_json).expect("sign");
    assert_eq!(
        send_raw(&app, "/empayre/webhook", &not_json, Some(&s)).await,
        (200, json!({"status": "quarantined"}))
    );

    let signed_other = signer().sign_header(b"other body").expect("sign");
    let digest = sig.split("digest=").nth(1).expect("digest").to_string();
    let refused: Vec<(&str, Option<String>)> = vec![
        ("missing header", None),
        ("empty header", Some(String::new())),
        ("wrong alg", Some(format!("alg=HS256; digest={digest}"))),
        ("no digest", Some("alg=RS256".into())),
        ("garbage digest", Some("alg=RS256; digest=!!!".into())),
        ("short digest", Some("alg=RS256; digest=AAAA".into())),
        ("signature of another body", Some(signed_other)),
    ];
    for (name, header) in refused {
        let (status, answer) = send_raw(&app, "/empayre/webhook", &body, header.as_deref()).await;
        assert_eq!(status, 401, "{name}");
        assert!(answer["message"].is_string(), "{name}: {answer}");
    }
    let (status, _) = send_raw(&app, "/empayre/webhook/nosuch", &body, Some(&sig)).await;
    assert_eq!(status, 404);
    let big = vec![b' '; 9000];
    let (status, _) = send_raw(&app, "/empayre/webhook", &big, Some(&sig)).await;
    assert_eq!(status, 413);

    let closed = spawn_app().await;
    let (status, answer) = send_raw(&closed, "/empayre/webhook", &body, Some(&sig)).await;
    assert_eq!(
        (status, answer["message"].as_str()),
        (503, Some("no Empayre source configured"))
    );
}

#[tokio::test]
async fn a_captured_payment_credits_once_and_refunds_and_chargebacks_debit_back() {
    let app = empayre_app().await;
    let mut model = LedgerModel::demo();
    let processed = payment_event(
        10,
        "PaymentProcessed",
        "inv-1",
        Some("ACC-100200"),
        "processed",
        2_500,
        "USD",
    );
    assert_eq!(send_event(&app, &processed).await.0, 200);
    model.assert_holds(&app).await;

    let captured = payment_event(
        11,
        "PaymentCaptured",
        "inv-1",
        Some("ACC-100200"),
        "captured",
        2_500,
        "USD",
    );
    assert_eq!(send_event(&app, &captured).await, (200, json!({"status": "stored"})));
    model.credit("ACC-100200", "25.00");
    model.assert_holds(&app).await;
    assert_eq!(send_event(&app, &captured).await, (200, json!({"status": "duplicate"})));
    // The same state again under a new eventID (an adjustment re-emits it): no second credit.
    let mut again = captured.clone();
    again["eventID"] = json!(12);
    assert_eq!(send_event(&app, &again).await.0, 200);
    model.assert_holds(&app).await;
    // A stale snapshot (lower eventID for the same payment) does not roll it back.
    let stale = payment_event(
        9,
        "PaymentProcessed",
        "inv-1",
        Some("ACC-100200"),
        "processed",
        2_500,
        "USD",
    );
    assert_eq!(send_event(&app, &stale).await, (200, json!({"status": "stored"})));
    model.assert_holds(&app).await;

    // A refund of part of a captured payment debits it back; a failed one restores the credit.
    assert_eq!(
        send_event(
            &app,
            &payment_event(
                20,
                "PaymentCaptured",
                "inv-2",
                Some("ACC-100201"),
                "captured",
                10_000,
                "USD"
            )
        )
        .await
        .0,
        200
    );
    model.credit("ACC-100201", "100.00");
    assert_eq!(
        send_event(
            &app,
            &refund_event(21, "RefundSucceeded", "inv-2", "ACC-100201", "succeeded", 4_000)
        )
        .await
        .0,
        200
    );
    model.debit("ACC-100201", "40.00");
    model.assert_holds(&app).await;
    assert_eq!(
        send_event(
            &app,
            &refund_event(22, "RefundFailed", "inv-2", "ACC-100201", "failed", 4_000)
        )
        .await
        .0,
        200
    );
    model.credit("ACC-100201", "40.00");
    model.assert_holds(&app).await;
    // A charge-back removes the whole credit.
    let charged_back = payment_event(
        23,
        "PaymentChargedBack",
        "inv-2",
        Some("ACC-100201"),
        "charged_back",
        10_000,
        "USD",
    );
    assert_eq!(send_event(&app, &charged_back).await.0, 200);
    model.debit("ACC-100201", "100.00");
    model.assert_holds(&app).await;

    // Full refund: RefundSucceeded then PaymentRefunded debit the amount back once, not twice.
    assert_eq!(
        send_event(
            &app,
            &payment_event(
                30,
                "PaymentCaptured",
                "inv-3",
                Some("ACC-100800"),
                "captured",
                10_000,
                "USD"
            )
        )
        .await
        .0,
        200
    );
    assert_eq!(
        send_event(
            &app,
            &refund_event(31, "RefundSucceeded", "inv-3", "ACC-100800", "succeeded", 10_000)
        )
        .await
        .0,
        200
    );
    let refunded = payment_event(
        32,
        "PaymentRefunded",
        "inv-3",
        Some("ACC-100800"),
        "refunded",
        10_000,
        "USD",
    );
    assert_eq!(send_event(&app, &refunded).await.0, 200);
    model.assert_holds(&app).await;
    // And the Orbipay view of the same accounts agrees: both channels share one ledger.
    let (status, _) = app
        .post_json("/paymentposting", &payment("555", "ACC-100800", "5.00", "processed"))
        .await;
    assert_eq!(status, 200);
    model.credit("ACC-100800", "5.00");
    model.assert_holds(&app).await;
}

#[tokio::test]
async fn minor_units_follow_the_currency_exponent() {
    let app = empayre_app().await;
    let captured = payment_event(
        40,
        "PaymentCaptured",
        "inv-jpy",
        Some("ACC-JP-0001"),
        "captured",
        1_500,
        "JPY",
    );
    assert_eq!(send_event(&app, &captured).await.0, 200);
    assert_eq!(app.balance("ACC-JP-0001").await, Decimal::from(10_500));
}

#[tokio::test]
async fn unmatched_payments_are_stored_and_credit_nothing() {
    let app = empayre_app().await;
    let cases = [
        payment_event(
            50,
            "PaymentCaptured",
            "inv-ccy",
            Some("ACC-100200"),
            "captured",
            1_000,
            "EUR",
        ),
        payment_event(51, "PaymentCaptured", "inv-none", None, "captured", 1_000, "USD"),
        payment_event(
            52,
            "PaymentCaptured",
            "inv-unknown",
            Some("ACC-NOPE"),
            "captured",
            1_000,
            "USD",
        ),
    ];
    for event in &cases {
        assert_eq!(send_event(&app, event).await, (200, json!({"status": "stored"})));
    }
    LedgerModel::demo().assert_holds(&app).await;
}

#[tokio::test]
async fn forty_concurrent_distinct_events_are_all_stored_and_credited() {
    let app = empayre_app().await;
    let events: Vec<Value> = (0..40)
        .map(|i| {
            payment_event(
                1000 + i,
                "PaymentCaptured",
                &format!("inv-c{i}"),
                Some("ACC-100800"),
                "captured",
                125,
                "USD",
            )
        })
        .collect();
    let answers = futures_util::future::join_all(events.iter().map(|e| send_event(&app, e))).await;
    assert!(
        answers.iter().all(|a| *a == (200, json!({"status": "stored"}))),
        "{answers:?}"
    );
    let mut model = LedgerModel::demo();
    model.credit("ACC-100800", "50.00");
    model.assert_holds(&app).await;
}

#[tokio::test]
async fn a_restart_keeps_events_and_tokens_never_reach_the_log() {
    let dir = tempfile::tempdir().expect("dir");
    let store = dir.path().join("store");
    // The demo configuration trusts the fixture key for source "demo".
    let config = write_config(dir.path(), &store, "");
    let log = dir.path().join("server.log");
    let client = reqwest::Client::new();
    let mut server = start_binary(&config, &log).await;
    let events: Vec<Vec<u8>> = (0..10)
        .map(|i| {
            serde_json::to_vec(&payment_event(
                2000 + i,
                "PaymentCaptured",
                &format!("inv-r{i}"),
                Some("ACC-100200"),
                "captured",
                100,
                "USD",
            ))
            .expect("json")
        })
        .collect();
    let send = |body: Vec<u8>, address: String| {
        let sig = signer().sign_header(&body).expect("sign");
        let client = client.clone();
        async move {
            let r = client
                .post(format!("{address}/empayre/webhook"))
                .header("Content-Signature", sig)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("sent");
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let answers = futures_util::future::join_all(events.iter().map(|b| send(b.clone(), server.address.clone()))).await;
    assert!(answers.iter().all(|a| a.0 == 200), "{answers:?}");
    server.kill().await;
    let server = start_binary(&config, &log).await;
    for body in &events {
        assert_eq!(
            send(body.clone(), server.address.clone()).await,
            (200, json!({"status": "duplicate"}))
        );
    }
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(logged.contains("empayre event"), "events were logged");
    for secret in [
        "eyJzZWNyZXQtY2FyZC10b2tlbi12YWx1ZSJ9",
        "c2Vzc2lvbi1zZWNyZXQ",
        "payer.private@example.com",
        "+79990001122",
    ] {
        assert!(!logged.contains(secret), "{secret} is in the log");
    }
}

#[test]
fn keygen_writes_a_pair_that_signs_and_verifies_and_never_overwrites() {
    let dir = tempfile::tempdir().expect("dir");
    let run = || {
        std::process::Command::new(binary())
            .args(["keygen", "--out"])
            .arg(dir.path())
            .output()
            .expect("runs")
    };
    let out = run();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let private = std::fs::read_to_string(dir.path().join("empayre_test_private.pem")).expect("private");
    let public = std::fs::read_to_string(dir.path().join("empayre_test_public.pem")).expect("public");
    assert!(private.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
    let key = biller_inbox::empayre::keys::parse_public_key(&public).expect("public key parses");
    let signer = BodySigner::from_pem(&private).expect("private key parses");
    let body = b"{\"eventID\":1}";
    let sig = signer.sign(body).expect("sign");
    assert!(biller_inbox::empayre::signature::verify(&[key], body, &sig).is_ok());
    assert_eq!(run().status.code(), Some(1), "an existing key is not overwritten");
}

async fn admin_get(app: &TestApp, path: &str) -> (u16, Value) {
    let r = app
        .client
        .get(format!("{}{path}", app.address))
        .bearer_auth("test-admin-token")
        .send()
        .await
        .expect("sent");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn operators_see_events_quarantine_and_unmatched_and_assign_an_account() {
    let app = empayre_app().await;
    let captured = payment_event(
        60,
        "PaymentCaptured",
        "inv-u",
        Some("ACC-NOPE"),
        "captured",
        2_000,
        "USD",
    );
    assert_eq!(send_event(&app, &captured).await.0, 200);
    let mut unknown = captured.clone();
    unknown["eventID"] = json!(61);
    unknown["eventType"] = json!("InvoiceTeleported");
    assert_eq!(
        send_event(&app, &unknown).await,
        (200, json!({"status": "quarantined"}))
    );

    let (status, list) = admin_get(&app, "/admin/empayre/unmatched").await;
    assert_eq!(status, 200);
    let item = &list["items"][0];
    assert_eq!(item["reason"], "unknown_account");
    assert_eq!(item["amount"], "20.00");
    assert_eq!(item["invoice_id"], "inv-u");
    let key = item["key"].as_str().expect("key").to_string();

    let (status, q) = admin_get(&app, "/admin/quarantine").await;
    assert_eq!(status, 200);
    assert_eq!(q["items"].as_array().map(Vec::len), Some(1));
    assert!(q["items"][0]["body"]
        .as_str()
        .is_some_and(|b| b.contains("InvoiceTeleported")));

    let (status, events) = admin_get(&app, "/admin/empayre/events?invoice_id=inv-u").await;
    assert_eq!(status, 200);
    let statuses: Vec<&str> = events["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["status"].as_str())
        .collect();
    assert_eq!(statuses, vec!["quarantined", "stored"], "newest first");
    let (status, one) = admin_get(&app, "/admin/empayre/events/demo/60").await;
    assert_eq!(status, 200);
    assert_eq!(
        one["body"].as_str().map(str::as_bytes),
        Some(serde_json::to_vec(&captured).expect("json").as_slice()),
        "the raw body byte for byte"
    );
    assert!(one["key_id"].is_string());
    assert_eq!(admin_get(&app, "/admin/empayre/events/demo/999").await.0, 404);

    let assign = |key: String, account: &'static str| {
        app.client
            .post(format!("{}/admin/empayre/unmatched/{key}/assign", app.address))
            .bearer_auth("test-admin-token")
            .json(&json!({ "account_number": account }))
            .send()
    };
    let r = assign(key.clone(), "ACC-JP-0001").await.expect("sent");
    assert_eq!(r.status(), 400, "another currency cannot be assigned");
    let r = assign(key.clone(), "ACC-100200").await.expect("sent");
    assert_eq!(r.status(), 200);
    let mut model = LedgerModel::demo();
    model.credit("ACC-100200", "20.00");
    model.assert_holds(&app).await;
    assert_eq!(
        assign(key, "ACC-100200").await.expect("sent").status(),
        404,
        "assigned once"
    );
    let (_, list) = admin_get(&app, "/admin/empayre/unmatched").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0));
    let r = app
        .client
        .get(format!("{}/admin/empayre/unmatched", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 401);
}
