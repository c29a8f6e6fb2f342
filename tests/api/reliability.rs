//! Reliability: duplicate storms, fail-closed channels, oversized bodies refused before they are
//! read, idle and stalled connections, and secrets that never reach the store or the log.

use std::time::Duration;

use biller_inbox::settings::EmpayreSource;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

fn fixture_source() -> EmpayreSource {
    EmpayreSource {
        name: "demo".into(),
        public_keys: vec![],
        public_key_files: vec![repo_path("fixtures/keys/empayre_test_public.pem")],
        account_pointer: "/invoice/metadata/account_number".into(),
        ..Default::default()
    }
}

async fn both_channels_app() -> TestApp {
    spawn_app_with(|s| s.empayre.sources = vec![fixture_source()]).await
}

/// The journal entries of one record.
fn entries_of<'a>(journal: &'a [Value], kind: &str, id: &str) -> Vec<&'a Value> {
    journal
        .iter()
        .filter(|e| e["kind"] == kind && e["record_id"] == id)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Duplicate storms

#[tokio::test]
async fn fifty_concurrent_copies_of_a_posting_a_refund_and_an_event_apply_once_each() {
    let app = both_channels_app().await;
    let remote = Remote::of(&app);
    let mut model = LedgerModel::demo();

    // 50 copies of one payment: one 200, 49 duplicates.
    let body = payment("424242", "ACC-100200", "17.35", "processed");
    let answers = futures_util::future::join_all((0..50).map(|_| remote.post("/paymentposting", &body))).await;
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    let duplicates = answers
        .iter()
        .filter(|(s, b)| *s == 422 && first_error(b).0 == "error_duplicate_posting")
        .count();
    assert_eq!((ok, duplicates), (1, 49), "{answers:?}");
    model.credit("ACC-100200", "17.35");
    model.assert_holds(&app).await;

    // 50 copies of one refund of it: one 200, 49 duplicates.
    let body = refund("434343", "424242", Some("5.00"), "processed");
    let answers = futures_util::future::join_all((0..50).map(|_| remote.post("/paymentrefundposting", &body))).await;
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    let duplicates = answers
        .iter()
        .filter(|(s, b)| *s == 422 && first_error(b).0 == "error_duplicate_posting")
        .count();
    assert_eq!((ok, duplicates), (1, 49), "{answers:?}");
    model.debit("ACC-100200", "5.00");
    model.assert_holds(&app).await;

    // 50 copies of one signed event (byte-identical, as several webhooks would send it).
    let event = serde_json::to_vec(&captured_event(777_001, "storm-1", Some("ACC-100201"), 1234)).expect("json");
    let signature = fixture_signer().sign_header(&event).expect("sign");
    let answers =
        futures_util::future::join_all((0..50).map(|_| remote.try_webhook(event.clone(), Some(&signature)))).await;
    let answers: Vec<(u16, Value)> = answers.into_iter().map(|a| a.expect("sent")).collect();
    let stored = answers
        .iter()
        .filter(|a| **a == (200, json!({"status": "stored"})))
        .count();
    let duplicates = answers
        .iter()
        .filter(|a| **a == (200, json!({"status": "duplicate"})))
        .count();
    assert_eq!((stored, duplicates), (1, 49), "{answers:?}");
    model.credit("ACC-100201", "12.34");
    model.assert_holds(&app).await;

    // One journal entry each, and nothing else moved.
    let journal = remote.journal().await;
    assert_eq!(entries_of(&journal, "payment", "424242").len(), 1, "{journal:?}");
    assert_eq!(entries_of(&journal, "refund", "434343").len(), 1, "{journal:?}");
    assert_eq!(
        entries_of(&journal, "empayre-payment", "demo:storm-1:1").len(),
        1,
        "{journal:?}"
    );
    assert_eq!(journal.len(), 3, "{journal:?}");
    let balances = remote.demo_balances().await;
    assert_journal_consistent(&journal, &demo_opening_balances(), &balances);
}

// ---------------------------------------------------------------------------------------------
// Fail closed

#[tokio::test]
async fn with_no_orbipay_client_every_ebpp_route_answers_503_and_stores_nothing() {
    let app = spawn_app_with(|s| s.orbipay.clients = vec![]).await;
    let remote = Remote::of(&app);
    let posts = [
        ("/paymentposting", payment("8101", "ACC-100200", "10.00", "processed")),
        (
            "/paymentreversalposting",
            payment("8101", "ACC-100200", "10.00", "returned"),
        ),
        (
            "/paymentrefundposting",
            refund("8102", "8101", Some("1.00"), "processed"),
        ),
    ];
    for (path, body) in &posts {
        // With the credentials that used to work, and with none at all.
        let (status, answer) = remote.post(path, body).await;
        assert_eq!(
            (status, first_error(&answer).0.as_str()),
            (503, "error_processing"),
            "{path}: {answer}"
        );
        let r = app
            .client
            .post(format!("{}{path}", app.address))
            .json(body)
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 503, "{path} without credentials");
    }
    let r = app.lookup(&[("account_number", "ACC-100200")]).await;
    assert_eq!(r.status(), 503);
    let answer: Value = r.json().await.expect("json");
    assert_eq!(first_error(&answer).0, "error_processing", "{answer}");

    assert!(remote.journal().await.is_empty(), "no journal entry");
    assert!(remote.record("payment", "8101").await.is_none(), "no payment record");
    assert!(remote.record("refund", "8102").await.is_none(), "no refund record");
    let (status, found) = app
        .search(&json!({"paging": {"page": 1, "size": 50}, "searchParameters": [window_around_now()]}))
        .await;
    assert_eq!((status, found["totalCount"].as_u64()), (200, Some(0)), "{found}");
    assert_eq!(remote.demo_balances().await, demo_opening_balances());
}

#[tokio::test]
async fn with_no_empayre_source_the_webhook_answers_503_and_stores_nothing() {
    // test_settings configures no Empayre source.
    let app = spawn_app().await;
    let remote = Remote::of(&app);
    let event = serde_json::to_vec(&captured_event(880_001, "closed-1", Some("ACC-100200"), 5000)).expect("json");
    let signature = fixture_signer().sign_header(&event).expect("sign");
    for path in ["/empayre/webhook", "/empayre/webhook/demo"] {
        for sig in [Some(signature.as_str()), None] {
            let mut req = app
                .client
                .post(format!("{}{path}", app.address))
                .header("content-type", "application/json")
                .body(event.clone());
            if let Some(sig) = sig {
                req = req.header("Content-Signature", sig);
            }
            let r = req.send().await.expect("sent");
            assert_eq!(r.status(), 503, "{path}");
            let body: Value = r.json().await.expect("json");
            assert_eq!(body, json!({"message": "no Empayre source configured"}), "{path}");
        }
    }
    let (status, events) = remote.admin_get("/admin/empayre/events").await;
    assert_eq!(status, 200, "{events}");
    assert_eq!(events["items"], json!([]), "no event stored");
    let (_, quarantine) = remote.admin_get("/admin/quarantine").await;
    assert_eq!(quarantine["items"], json!([]), "nothing quarantined");
    let (_, unmatched) = remote.admin_get("/admin/empayre/unmatched").await;
    assert_eq!(unmatched["items"], json!([]), "nothing unmatched");
    assert!(remote.record("empayre-payment", "demo:closed-1:1").await.is_none());
    assert!(remote.journal().await.is_empty(), "no journal entry");
    assert_eq!(remote.demo_balances().await, demo_opening_balances());
}

// ---------------------------------------------------------------------------------------------
// Oversized bodies and connections, over raw TCP

fn host_port(address: &str) -> String {
    address.trim_start_matches("http://").to_string()
}

/// Reads one HTTP/1.1 response (status, body) from a stream; None if the connection closed first.
async fn read_response<R: AsyncReadExt + Unpin>(stream: &mut R) -> Option<(u16, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((status, buf[head_end..].to_vec()))
}

/// Routes with the headers that get a request past authentication to the body, and how a 413
/// must read on each.
fn body_routes() -> Vec<(&'static str, &'static str, String, fn(&Value) -> bool)> {
    let orbipay = format!("client-key: {CLIENT_KEY}\r\napi-key: {API_KEY}\r\n");
    let orbipay_413: fn(&Value) -> bool = |b| first_error(b).0 == "error_payload_too_large";
    let empayre_413: fn(&Value) -> bool = |b| b["message"].is_string() && b.as_object().is_some_and(|o| o.len() == 1);
    let admin_413: fn(&Value) -> bool = |b| b["code"].is_string() && b["message"].is_string();
    vec![
        (
            "POST",
            "/paymentposting",
            format!("{orbipay}content-type: application/json\r\n"),
            orbipay_413,
        ),
        (
            "POST",
            "/paymentreversalposting",
            format!("{orbipay}content-type: application/json\r\n"),
            orbipay_413,
        ),
        (
            "POST",
            "/paymentrefundposting",
            format!("{orbipay}content-type: application/json\r\n"),
            orbipay_413,
        ),
        (
            "POST",
            "/mpacustomers",
            format!("{orbipay}content-type: application/x-www-form-urlencoded\r\n"),
            orbipay_413,
        ),
        (
            "POST",
            "/empayre/webhook",
            "content-type: application/json\r\ncontent-signature: alg=RS256; digest=AAAA\r\n".into(),
            empayre_413,
        ),
        (
            "POST",
            "/admin/postings/search",
            format!("authorization: Bearer {ADMIN_TOKEN}\r\ncontent-type: application/json\r\n"),
            admin_413,
        ),
        (
            "PUT",
            "/admin/accounts",
            format!("authorization: Bearer {ADMIN_TOKEN}\r\ncontent-type: application/json\r\n"),
            admin_413,
        ),
    ]
}

#[tokio::test]
async fn a_declared_gigabyte_is_refused_413_from_the_head_alone() {
    let app = both_channels_app().await;
    for (method, path, headers, is_413_body) in body_routes() {
        let mut stream = TcpStream::connect(host_port(&app.address)).await.expect("connect");
        let head =
            format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\n{headers}content-length: 1000000000\r\n\r\n{{}}");
        stream.write_all(head.as_bytes()).await.expect("write head");
        // Two bytes of the declared gigabyte are sent: the answer can only come from the head.
        let answer = tokio::time::timeout(Duration::from_secs(10), read_response(&mut stream))
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer within 10 s to a declared gigabyte"));
        let (status, body) = answer.unwrap_or_else(|| panic!("{path}: closed without an answer"));
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert_eq!(status, 413, "{path}: {body}");
        assert!(is_413_body(&body), "{path}: {body}");
    }
    // The server is fine afterwards.
    let (status, _) = Remote::of(&app)
        .post("/paymentposting", &payment("8201", "ACC-100200", "1.00", "processed"))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_chunked_body_past_the_limit_is_refused_413_before_it_ends() {
    // 1 MiB sent in 64 KiB chunks against a limit of 256 KiB, and the body's closing chunk is
    // never sent: the only way to answer is to refuse the body before it ends. (Offering 64 MiB
    // and asking whether the answer came before the last byte raced the reader task against
    // loopback writes under load.)
    const CHUNK: usize = 64 * 1024;
    const SENT: usize = 1024 * 1024;
    let app = both_channels_app().await;
    // PUT /admin/accounts takes up to admin.max_body_bytes (64 MiB) by design: not this test's.
    for (method, path, headers, is_413_body) in body_routes().into_iter().filter(|r| r.1 != "/admin/accounts") {
        let stream = TcpStream::connect(host_port(&app.address)).await.expect("connect");
        let (mut reader, mut writer) = stream.into_split();
        let answer = tokio::spawn(async move { read_response(&mut reader).await });
        let head =
            format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\n{headers}transfer-encoding: chunked\r\n\r\n");
        writer.write_all(head.as_bytes()).await.expect("write head");
        let mut chunk = format!("{CHUNK:x}\r\n").into_bytes();
        chunk.extend(std::iter::repeat_n(b' ', CHUNK));
        chunk.extend_from_slice(b"\r\n");
        let mut sent = 0;
        while sent < SENT && !answer.is_finished() {
            // Once the server has answered and closed, writing fails: that is the point.
            if writer.write_all(&chunk).await.is_err() {
                break;
            }
            sent += CHUNK;
        }
        // The connection stays open with the body unfinished: a server that waits for its end
        // never answers, and the timeout below says so.
        let answer = tokio::time::timeout(Duration::from_secs(10), answer)
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer within 10 s to a body past the limit that never ends"))
            .expect("reader");
        let (status, body) = answer.unwrap_or_else(|| panic!("{path}: closed without an answer after {sent} bytes"));
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert_eq!(status, 413, "{path}: {body}");
        assert!(is_413_body(&body), "{path}: {body}");
        drop(writer);
    }
}

#[tokio::test]
async fn idle_and_stalled_connections_do_not_starve_real_requests() {
    let app = spawn_app_with(|s| {
        s.empayre.sources = vec![fixture_source()];
        s.server.request_timeout_ms = 1000;
    })
    .await;
    let remote = Remote::of(&app);
    let address = host_port(&app.address);
    // 200 connections that never send a byte, and 20 that stop in the middle of a request head.
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(&address).await.expect("connect"));
    }
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(&address).await.expect("connect");
        s.write_all(b"POST /paymentposting HTTP/1.1\r\nhost: localhost\r\nclient-key: demo-cl")
            .await
            .expect("write");
        stalled.push(s);
    }

    // Real requests of every kind still get through, concurrently.
    let payments = futures_util::future::join_all((0..20).map(|i| {
        let remote = remote.clone();
        async move {
            let body = payment(&format!("{}", 8300 + i), "ACC-100200", "1.00", "processed");
            tokio::time::timeout(Duration::from_secs(10), remote.post("/paymentposting", &body)).await
        }
    }))
    .await;
    for (i, answer) in payments.into_iter().enumerate() {
        let (status, body) =
            answer.unwrap_or_else(|_| panic!("payment {i}: no answer within 10 s beside idle connections"));
        assert_eq!(status, 200, "{body}");
    }
    let event = captured_event(990_001, "idle-1", Some("ACC-100201"), 100);
    let answer = tokio::time::timeout(Duration::from_secs(10), remote.send_event(&event))
        .await
        .expect("the event is answered within 10 s beside idle connections");
    assert_eq!(answer, (200, json!({"status": "stored"})));
    let lookup = tokio::time::timeout(Duration::from_secs(10), app.lookup(&[("account_number", "ACC-100200")]))
        .await
        .expect("the lookup is answered within 10 s beside idle connections");
    assert_eq!(lookup.status(), 200);

    // A stalled head is cut off once `server.request_timeout_ms` passes (408 or a close).
    for mut s in stalled {
        let answer = tokio::time::timeout(Duration::from_secs(10), read_response(&mut s))
            .await
            .expect("a stalled request head is dropped within 10 s");
        if let Some((status, _)) = answer {
            assert_eq!(status, 408);
        }
    }
    drop(idle);
}

// ---------------------------------------------------------------------------------------------
// Secrets at rest and in the log

#[tokio::test]
async fn card_data_ssns_and_keys_never_reach_the_store_or_the_debug_log() {
    let dir = tempfile::tempdir().expect("dir");
    let store = dir.path().join("store");
    // write_config sets log.level = "debug".
    let config = write_config(dir.path(), &store, "");
    let log = dir.path().join("server.log");
    let mut server = start_binary(&config, &log).await;
    let remote = Remote::new(&server.address, DEMO_ADMIN_TOKEN);

    let cvv = "7391";
    let ssn = "918273645";
    let pan = "5500005555555559";
    let wrong_api_key = "wrong-api-key-Q7x9";
    let wrong_admin_token = "wrong-admin-token-K3v8";
    let with_secrets = |mut body: Value| {
        let info = &mut body["posting_info"];
        info["card_cvv_number"] = json!(cvv);
        info["payment_method"] = json!("master_credit");
        info["customer"]["ssn"] = json!(ssn);
        info["funding_account"]["account_number"] = json!(pan);
        info["funding_account"]["card_cvv_number"] = json!(cvv);
        body
    };
    let refund_with_secrets = |mut body: Value| {
        let info = &mut body["posting_info"];
        info["card_cvv_number"] = json!(cvv);
        info["source_payment"]["customer"] = json!({"ssn": ssn, "customer_reference": "C-1001"});
        info["source_payment"]["funding_account"] = json!({"account_number": pan, "card_cvv_number": cvv});
        body
    };
    // Accepted: a payment, a refund of it, its reversal.
    let accepted = [
        (
            "/paymentposting",
            with_secrets(payment("9101", "ACC-100200", "20.00", "processed")),
        ),
        (
            "/paymentrefundposting",
            refund_with_secrets(refund("9102", "9101", Some("5.00"), "processed")),
        ),
        (
            "/paymentreversalposting",
            with_secrets(payment("9101", "ACC-100200", "20.00", "returned")),
        ),
    ];
    for (path, body) in &accepted {
        let (status, answer) = remote.post(path, body).await;
        assert_eq!(status, 200, "{path}: {answer}");
    }
    // Refused: duplicates (422), business rules (422), bad fields (400), malformed JSON (400).
    let mut bad_amount = with_secrets(payment("9103", "ACC-100200", "x", "processed"));
    bad_amount["posting_info"]["payment_date"] = json!("2026-02-30");
    let refused = [
        (
            "/paymentposting",
            with_secrets(payment("9101", "ACC-100200", "20.00", "returned")),
        ),
        (
            "/paymentposting",
            with_secrets(payment("9104", "ACC-100500", "20.00", "processed")),
        ),
        ("/paymentposting", bad_amount),
        (
            "/paymentreversalposting",
            with_secrets(payment("9105", "ACC-100200", "20.00", "returned")),
        ),
        (
            "/paymentrefundposting",
            refund_with_secrets(refund("9106", "9999", Some("5.00"), "processed")),
        ),
        (
            "/paymentrefundposting",
            refund_with_secrets(refund("9102", "9101", Some("5.00"), "processed")),
        ),
    ];
    for (path, body) in &refused {
        let (status, answer) = remote.post(path, body).await;
        assert!(matches!(status, 400 | 422), "{path}: {status} {answer}");
        let text = answer.to_string();
        assert!(
            !text.contains(cvv) && !text.contains(ssn) && !text.contains(pan),
            "{text}"
        );
    }
    let mut truncated =
        serde_json::to_vec(&with_secrets(payment("9107", "ACC-100200", "1.00", "processed"))).expect("json");
    truncated.truncate(truncated.len() - 3);
    let (status, _) = remote.try_post_bytes("/paymentposting", truncated).await.expect("sent");
    assert_eq!(status, 400);
    // Lookups by SSN: a match, no match, a malformed one.
    for (form_ssn, want) in [("123456789", 200), (ssn, 404), ("91827364x", 400)] {
        let r = remote
            .client
            .post(format!("{}/mpacustomers", remote.address))
            .header("client-key", CLIENT_KEY)
            .header("api-key", API_KEY)
            .form(&[("ssn", form_ssn)])
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), want, "lookup by ssn {form_ssn}");
    }
    // Failed authentication: wrong API key, wrong client key, a wrong admin token.
    for (client_key, api_key) in [(CLIENT_KEY, wrong_api_key), ("no-such-client", wrong_api_key)] {
        let r = remote
            .client
            .post(format!("{}/paymentposting", remote.address))
            .header("client-key", client_key)
            .header("api-key", api_key)
            .json(&payment("9108", "ACC-100200", "1.00", "processed"))
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 401);
    }
    let r = remote
        .client
        .get(format!("{}/admin/journal", remote.address))
        .bearer_auth(wrong_admin_token)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 401);
    // Admin reads with the real token, including the records that carried the secrets.
    for path in [
        "/admin/journal",
        "/admin/postings/payment/9101",
        "/admin/postings/refund/9102",
        "/admin/accounts/ACC-100200",
        "/admin/rejections",
    ] {
        let (status, body) = remote.admin_get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let text = body.to_string();
        assert!(
            !text.contains(cvv) && !text.contains(ssn) && !text.contains(pan),
            "{path} shows a secret: {text}"
        );
    }
    server.kill().await;

    let stored = stored_bytes(&config, &store);
    assert!(contains(&stored, b"xxxxxxxxxxxx5559"), "the masked PAN is stored");
    assert!(!contains(&stored, b"card_cvv_number"), "a CVV field is stored");
    assert!(!contains(&stored, format!("\"{cvv}\"").as_bytes()), "the CVV is stored");
    assert!(!contains(&stored, ssn.as_bytes()), "the SSN is stored");
    assert!(!contains(&stored, pan.as_bytes()), "the full PAN is stored");
    let logged = std::fs::read(&log).expect("log");
    assert!(contains(&logged, b"request refused"), "refusals were logged");
    assert!(contains(&logged, b"DEBUG"), "the log was captured at debug level");
    // A 4-digit CVV can occur by chance in timings; as a value it would be quoted or named.
    for needle in [
        format!("\"{cvv}\""),
        format!("={cvv}"),
        "card_cvv_number".to_string(),
        ssn.to_string(),
        pan.to_string(),
        API_KEY.to_string(),
        wrong_api_key.to_string(),
        DEMO_ADMIN_TOKEN.to_string(),
        wrong_admin_token.to_string(),
    ] {
        assert!(!contains(&logged, needle.as_bytes()), "{needle} is in the log");
    }
}
