//! The real binary: restart durability, secrets at rest and in logs, the CLI.

use serde_json::{json, Value};

use crate::helpers::*;

async fn post(client: &reqwest::Client, address: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = client
        .post(format!("{address}{path}"))
        .header("client-key", CLIENT_KEY)
        .header("api-key", API_KEY)
        .json(body)
        .send()
        .await
        .expect("sent");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn balance(client: &reqwest::Client, address: &str, account: &str) -> String {
    let r = client
        .post(format!("{address}/mpacustomers"))
        .header("client-key", CLIENT_KEY)
        .header("api-key", API_KEY)
        .form(&[("account_number", account)])
        .send()
        .await
        .expect("sent");
    let body: Value = r.json().await.expect("json");
    body["list"][0]["customer_accounts"]["list"][0]["current_balance"]
        .as_str()
        .expect("balance")
        .to_string()
}

#[tokio::test]
async fn a_killed_server_keeps_every_acknowledged_posting() {
    let dir = tempfile::tempdir().expect("dir");
    let store = dir.path().join("store");
    let config = write_config(dir.path(), &store, "");
    let log = dir.path().join("server.log");
    let client = reqwest::Client::new();

    let mut server = start_binary(&config, &log).await;
    let bodies: Vec<Value> = (0..20)
        .map(|i| payment(&format!("{}", 100 + i), "ACC-100800", "2.50", "processed"))
        .collect();
    let answers = futures_util::future::join_all(
        bodies
            .iter()
            .map(|b| post(&client, &server.address, "/paymentposting", b)),
    )
    .await;
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    // SIGKILL: no graceful shutdown, no final flush. Only what was acknowledged as durable counts.
    server.kill().await;

    let server = start_binary(&config, &log).await;
    for body in &bodies {
        let (status, answer) = post(&client, &server.address, "/paymentposting", body).await;
        assert_eq!(
            (status, first_error(&answer).0.as_str()),
            (422, "error_duplicate_posting")
        );
    }
    assert_eq!(balance(&client, &server.address, "ACC-100800").await, "850.00");

    // References the biller assigned stay unique across the crash.
    let mut references: Vec<String> = answers
        .iter()
        .map(|(_, a)| {
            a["posting_info"]["payment_reference"]
                .as_str()
                .expect("reference")
                .to_string()
        })
        .collect();
    for i in 0..20 {
        let (status, answer) = post(
            &client,
            &server.address,
            "/paymentposting",
            &payment(&format!("{}", 200 + i), "ACC-100800", "1.00", "processed"),
        )
        .await;
        assert_eq!(status, 200);
        references.push(
            answer["posting_info"]["payment_reference"]
                .as_str()
                .expect("reference")
                .to_string(),
        );
    }
    let distinct: std::collections::BTreeSet<&String> = references.iter().collect();
    assert_eq!(distinct.len(), references.len(), "{references:?}");
}

#[tokio::test]
async fn cvv_ssn_and_full_pan_are_never_stored_or_logged() {
    let dir = tempfile::tempdir().expect("dir");
    let store = dir.path().join("store");
    let config = write_config(dir.path(), &store, "");
    let log = dir.path().join("server.log");
    let client = reqwest::Client::new();
    let mut server = start_binary(&config, &log).await;

    let cvv = "8123";
    let ssn = "555667777";
    let pan = "4111111111111111";
    let mut body = payment("31337", "ACC-100200", "12.00", "processed");
    body["posting_info"]["card_cvv_number"] = json!(cvv);
    body["posting_info"]["payment_method"] = json!("visa_credit");
    body["posting_info"]["customer"]["ssn"] = json!(ssn);
    body["posting_info"]["funding_account"]["account_number"] = json!(pan);
    body["posting_info"]["funding_account"]["card_cvv_number"] = json!(cvv);
    let (status, answer) = post(&client, &server.address, "/paymentposting", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert!(!answer.to_string().contains(pan));
    // A refused posting with the same secrets must not leak them either.
    body["posting_info"]["amount"] = json!("bad");
    let (status, answer) = post(&client, &server.address, "/paymentposting", &body).await;
    assert_eq!(status, 400);
    let text = answer.to_string();
    assert!(
        !text.contains(cvv) && !text.contains(ssn) && !text.contains(pan),
        "{text}"
    );
    server.kill().await;

    let stored = stored_bytes(&config, &store);
    assert!(contains(&stored, b"xxxxxxxxxxxx1111"), "the masked PAN is stored");
    assert!(!contains(&stored, b"card_cvv_number"), "a CVV field is stored");
    assert!(!contains(&stored, format!("\"{cvv}\"").as_bytes()), "the CVV is stored");
    assert!(!contains(&stored, ssn.as_bytes()), "the SSN is stored");
    assert!(!contains(&stored, pan.as_bytes()), "the full PAN is stored");
    let logged = std::fs::read(&log).expect("log");
    assert!(
        contains(&logged, b"request done"),
        "the log was captured at debug level"
    );
    assert!(!contains_token(&logged, cvv.as_bytes()), "the CVV is in the log");
    for secret in [ssn, pan, API_KEY, "demo-admin-token"] {
        assert!(!contains(&logged, secret.as_bytes()), "{secret} is in the log");
    }
}

#[tokio::test]
async fn accounts_import_is_all_or_nothing_and_refuses_a_held_store() {
    let dir = tempfile::tempdir().expect("dir");
    let store = dir.path().join("store");
    let config = write_config(dir.path(), &store, "[seed]\naccounts_file = \"\"\n");
    let good = dir.path().join("good.jsonl");
    std::fs::write(
        &good,
        "{\"account_number\": \"IMP-1\", \"current_balance\": \"10.00\", \"customers\": [{\"customer_reference\": \"IC-1\"}]}\n{\"account_number\": \"IMP-2\"}\n",
    )
    .expect("write");
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"[{"account_number": "IMP-3"}, {"account_number": "IMP-4", "status": "frozen"}]"#,
    )
    .expect("write");

    let run = |file: &std::path::Path| {
        std::process::Command::new(binary())
            .args(["accounts", "import"])
            .arg(file)
            .arg("--config")
            .arg(&config)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("runs")
    };
    let out = run(&bad);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("entry 1") && err.contains("status"), "{err}");

    let out = run(&good);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 2 accounts"));

    let mut server = start_binary(&config, &dir.path().join("server.log")).await;
    let client = reqwest::Client::new();
    assert_eq!(balance(&client, &server.address, "IMP-1").await, "10.00");
    let r = client
        .post(format!("{}/mpacustomers", server.address))
        .header("client-key", CLIENT_KEY)
        .header("api-key", API_KEY)
        .form(&[("account_number", "IMP-3")])
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 404, "nothing of the bad file was imported");

    let out = run(&good);
    match test_backend() {
        // sled: one process holds the store; the import says where to go instead.
        biller_inbox::settings::Backend::Sled => {
            assert_eq!(out.status.code(), Some(1));
            assert!(String::from_utf8_lossy(&out.stderr).contains("PUT /admin/accounts"));
        }
        // PostgreSQL: any number of processes share the database; the import runs beside the
        // server.
        biller_inbox::settings::Backend::Postgres => {
            assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        }
    }
    server.kill().await;
}

#[test]
fn bad_configuration_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().expect("dir");
    let cases = [
        ("[server]\nportt = 1\n", "server.portt: unknown key"),
        ("bogus = 1\n", "bogus: unknown key"),
        (
            "[[orbipay.clients]]\nclient_key = \"k\"\ncredentials = [{ \"api-key\" = \"k\" }]\nenabld = true\n",
            "orbipay.clients[0].enabld: unknown key",
        ),
        (
            "[[orbipay.clients]]\nclient_key = \"k\"\n",
            "orbipay.clients[0].credentials: missing",
        ),
        ("[server\n", "TOML parse error at line 1"),
        (
            "[orbipay]\nmin_payment_amount = \"cheap\"\n",
            "orbipay.min_payment_amount",
        ),
        ("[log]\nformat = \"xml\"\n", "log.format"),
        (
            "[[orbipay.clients]]\nclient_key = \"bad key!\"\ncredentials = [{ \"api-key\" = \"k\" }]\n",
            "client_key",
        ),
        ("[store]\nbackend = \"postgres\"\n", "store.postgres.url"),
        ("[store]\nbackend = \"oracle\"\n", "backend"),
        ("[store.postgres]\nbatch_max = 0\n", "store.postgres.batch_max"),
        ("[store.postgres]\npool_sise = 4\n", "pool_sise"),
    ];
    for (text, key) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).expect("write");
        let out = std::process::Command::new(binary())
            .args(["serve", "--config"])
            .arg(&path)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{text}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }
    let out = std::process::Command::new(binary())
        .env("BILLER_INBOX__SERVER__PORT", "not-a-port")
        .args(["serve"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.port"));
    let out = std::process::Command::new(binary())
        .env("BILLER_INBOX__SERVER__PROT", "1")
        .args(["serve"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("server.prot: unknown key") && err.contains("(in environment)"),
        "{err}"
    );
    // The URL is a secret: a bad one is named by its key, never shown.
    let out = std::process::Command::new(binary())
        .env("BILLER_INBOX__STORE__BACKEND", "postgres")
        .env(
            "BILLER_INBOX__STORE__POSTGRES__URL",
            "postgres://biller:Pw-0f-the-DB@db:99999/x",
        )
        .args(["serve"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("store.postgres.url"), "{err}");
    assert!(!err.contains("Pw-0f-the-DB"), "{err}");
}

#[test]
fn help_is_available_on_every_command() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["accounts", "import", "--help"],
    ] {
        let out = std::process::Command::new(binary()).args(&args).output().expect("runs");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"), "{args:?}");
    }
}
