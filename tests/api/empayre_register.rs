//! `biller-inbox empayre register`, through the real binary against the fake Empayre API.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use serde_json::json;

use crate::fake_empayre::*;
use crate::helpers::*;

const HOOK_URL: &str = "https://biller.example/empayre/webhook";

/// A config whose `demo` source reaches the fake API, with its token in a file and its key file
/// at `keys/empayre.pem`, both relative to the config's folder.
fn api_config(dir: &Path, fake: &FakeEmpayre) -> PathBuf {
    write_secret_file(&dir.join("token"), &format!("{FAKE_TOKEN}\n"));
    write_config(
        dir,
        &dir.join("store"),
        &format!(
            "[[empayre.sources]]\nname = \"demo\"\npublic_key_files = [\"keys/empayre.pem\"]\napi_url = \"{}\"\n\
             api_token = {{ file = \"token\" }}\nshop_ids = [\"shop-1\"]\n",
            fake.url
        ),
    )
}

async fn register(config: &Path, extra: &[&str]) -> (i32, String, String) {
    let config = config.display().to_string();
    let mut args = vec!["empayre", "register", "--config", &config, "--source", "demo"];
    args.extend_from_slice(extra);
    run_binary(&args).await
}

/// The fixture public key the way the docs sample shows keys: bare base64 of PKCS#1 DER.
fn fixture_key_pkcs1_base64() -> String {
    let key = rsa::RsaPublicKey::from_public_key_pem(&platform_key_pem()).expect("fixture key");
    base64::engine::general_purpose::STANDARD.encode(key.to_pkcs1_der().expect("der").as_bytes())
}

fn assert_secret_free(texts: &[&str]) {
    for t in texts {
        assert!(!t.contains(FAKE_TOKEN), "the API token leaked: {t}");
    }
}

#[tokio::test]
async fn registering_writes_a_key_that_verifies_a_signed_event_and_a_duplicate_is_refused() {
    let fake = FakeEmpayre::start(&["shop-1"]).await;
    // The platform hands the key out in the docs' form here; the file gets SPKI PEM.
    fake.state().public_key = fixture_key_pkcs1_base64();
    let dir = tempfile::tempdir().expect("dir");
    let config = api_config(dir.path(), &fake);
    let key_file = dir.path().join("keys/empayre.pem");

    let (code, out, err) = register(&config, &["--shop-id", "shop-1", "--url", HOOK_URL, "--dry-run"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("dry run: would create a webhook for shop shop-1"),
        "{out}"
    );
    assert!(fake.state().webhooks.is_empty(), "a dry run creates nothing");
    assert!(!key_file.exists(), "a dry run writes nothing");

    let calls_before = fake.seen().len();
    let (code, out, err) = register(&config, &["--shop-id", "shop-1", "--url", HOOK_URL]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("webhook 1 created for shop shop-1 to https://biller.example/empayre/webhook (13 event types)"),
        "{out}"
    );
    assert!(out.contains("written to"), "{out}");
    let pem = std::fs::read_to_string(&key_file).expect("key file written");
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
    let created = fake.seen_at("/processing/webhooks");
    let body = created
        .iter()
        .find(|s| s.method == "POST")
        .and_then(|s| s.body.clone())
        .expect("create body");
    assert_eq!(body["url"], HOOK_URL);
    assert_eq!(body["scope"]["topic"], "InvoicesTopic");
    assert_eq!(body["scope"]["shopID"], "shop-1");
    assert_eq!(body["scope"]["eventTypes"].as_array().map(Vec::len), Some(13));
    assert!(body["scope"]["eventTypes"]
        .as_array()
        .expect("types")
        .contains(&json!("PaymentRefundSucceeded")));
    // Every call is logged with its X-Request-ID; the token never is.
    for seen in fake.seen().into_iter().skip(calls_before) {
        let id = seen.request_id.expect("request id");
        assert!(err.contains(&id), "request id {id} is logged: {err}");
    }
    assert_secret_free(&[&out, &err]);

    // The server started on that configuration trusts the written key.
    let log = dir.path().join("server.log");
    let mut server = start_binary(&config, &log).await;
    let remote = Remote::new(&server.address, DEMO_ADMIN_TOKEN);
    let (status, answer) = remote
        .send_event(&captured_event(1, "inv-1", Some("ACC-100200"), 2500))
        .await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("stored")), "{answer}");
    let body = serde_json::to_vec(&captured_event(2, "inv-2", Some("ACC-100200"), 100)).expect("json");
    let other = fixture_signer().sign_header(b"another body").expect("sign");
    let (status, _) = remote.try_webhook(body, Some(&other)).await.expect("sent");
    assert_eq!(status, 401, "a signature over other bytes is refused");
    server.kill().await;

    // The same shop and URL again: refused, naming the webhook, nothing created.
    let (code, out, err) = register(&config, &["--shop-id", "shop-1", "--url", HOOK_URL]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("webhook 1 already delivers shop shop-1 to https://biller.example/empayre/webhook"),
        "{err}"
    );
    assert_eq!(fake.state().webhooks.len(), 1);
    assert_secret_free(&[&out, &err, &std::fs::read_to_string(&log).unwrap_or_default()]);
    fake.stop().await;
}

#[tokio::test]
async fn a_different_key_is_never_replaced_without_force() {
    let fake = FakeEmpayre::start(&["shop-1", "shop-2", "shop-3"]).await;
    let dir = tempfile::tempdir().expect("dir");
    let config = api_config(dir.path(), &fake);
    let key_file = dir.path().join("keys/empayre.pem");
    std::fs::create_dir_all(key_file.parent().expect("folder")).expect("folder");
    // Another party's key (the signature vector's) already in the file.
    let other = repo_text(&format!("{EMPAYRE_VECTORS}/tv_pub_spki.pem"));
    std::fs::write(&key_file, &other).expect("write");

    let (code, out, err) = register(&config, &["--shop-id", "shop-1", "--url", HOOK_URL]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("already holds key") && err.contains("nothing created"),
        "{err}"
    );
    assert!(fake.state().webhooks.is_empty());
    assert_eq!(
        std::fs::read_to_string(&key_file).expect("read"),
        other,
        "the file is unchanged"
    );

    let (code, out, err) = register(&config, &["--shop-id", "shop-1", "--url", HOOK_URL, "--force"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let written = std::fs::read_to_string(&key_file).expect("read");
    assert_eq!(
        written.trim_end(),
        platform_key_pem().trim_end(),
        "the platform's key replaced it"
    );

    // A second shop of the same party: the key is the party's, already in the file.
    let (code, out, err) = register(&config, &["--shop-id", "shop-2", "--url", HOOK_URL]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("webhook 2 created") && out.contains("is already in"),
        "{out}"
    );

    // The file holds junk: refused without --force, and nothing created.
    std::fs::write(&key_file, "not a key").expect("write");
    let (code, _, err) = register(&config, &["--shop-id", "shop-3", "--url", HOOK_URL]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("holds no usable key"), "{err}");
    assert_eq!(fake.state().webhooks.len(), 2);
    fake.stop().await;
}

#[tokio::test]
async fn a_lost_create_answer_is_resolved_by_listing_and_usage_errors_exit_2() {
    let fake = FakeEmpayre::start(&["shop-1"]).await;
    let dir = tempfile::tempdir().expect("dir");
    let config = api_config(dir.path(), &fake);

    // 503 and nothing created: said so, exit 1.
    fake.script(
        Route::CreateWebhook,
        Scripted::status(503, json!({"message": "Service unavailable"})),
    );
    let (code, _, err) = register(&config, &["--shop-id", "shop-1", "--url", HOOK_URL]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("answered 503") && err.contains("so none was created"),
        "{err}"
    );
    assert_eq!(
        fake.seen_at("/processing/webhooks")
            .iter()
            .filter(|s| s.method == "POST")
            .count(),
        1,
        "a create with an undefined outcome is not repeated"
    );

    // Created, but the answer was a 504: found by listing, the key written.
    fake.script(Route::CreateWebhook, Scripted::performed_then(504));
    let (code, out, err) = register(
        &config,
        &[
            "--shop-id",
            "shop-1",
            "--url",
            HOOK_URL,
            "--event-types",
            "PaymentCaptured,RefundSucceeded",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("webhook 1 created") && err.contains("found in the account's list"),
        "{out}{err}"
    );
    assert!(dir.path().join("keys/empayre.pem").exists());
    let hooks = fake.state().webhooks.clone();
    assert_eq!(
        hooks[0]["scope"]["eventTypes"],
        json!(["PaymentCaptured", "PaymentRefundSucceeded"])
    );

    // Usage errors: exit 2, before any call.
    let calls = fake.seen().len();
    for (args, message) in [
        (vec!["--shop-id", "shop-1", "--url", "not a url"], "--url"),
        (
            vec!["--shop-id", "shop-1", "--url", HOOK_URL, "--event-types", "Nope"],
            "--event-types: Nope",
        ),
        (vec!["--shop-id", "", "--url", HOOK_URL], "--shop-id"),
    ] {
        let (code, _, err) = register(&config, &args).await;
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
    let config_text = config.display().to_string();
    let (code, _, err) = run_binary(&[
        "empayre",
        "register",
        "--config",
        &config_text,
        "--source",
        "nope",
        "--shop-id",
        "s",
        "--url",
        HOOK_URL,
    ])
    .await;
    assert_eq!(code, 2);
    assert!(
        err.contains("--source nope: no such Empayre source (configured: demo)"),
        "{err}"
    );
    assert_eq!(fake.seen().len(), calls, "usage errors call nothing");
    fake.stop().await;
}
