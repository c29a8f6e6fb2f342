//! The fixture corpus and `biller-inbox replay`: the real binary replays `fixtures/orbipay` and
//! `fixtures/empayre` against a real server on the demo configuration and a fresh store, and the
//! balances afterwards are what the fixtures imply. Plus the command's exit statuses.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Output;

use rust_decimal::Decimal;
use serde_json::Value;

use crate::helpers::*;

/// Every error code of docs/orbipay.md a client can provoke (`error_processing` is a 5xx).
const ORBIPAY_CODES: [&str; 14] = [
    "error_field",
    "error_unauthorized",
    "error_forbidden",
    "error_customer_missing",
    "error_payload_too_large",
    "error_duplicate_posting",
    "error_posting_rejected",
    "error_account_closed",
    "error_account_status_invalid",
    "error_payment_amount_low",
    "error_payment_amount_high",
    "error_member_warning",
    "error_account_warning",
    "error_refund_initiate",
];

/// The corpus folder's `*.json` files in name order (the order `replay` sends them).
fn corpus(folder: &str) -> Vec<PathBuf> {
    let dir = repo_path(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("test data folder {} cannot be read: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("test data file {} cannot be read: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Runs `biller-inbox replay ARGS...` from the repository root.
async fn replay(args: &[&str]) -> Output {
    tokio::process::Command::new(binary())
        .arg("replay")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("BILLER_INBOX_CONFIG")
        .output()
        .await
        .expect("replay runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The real binary on `config/default.toml` (demo clients, demo Empayre source, demo accounts
/// seeded), with only the store (fresh, temporary) and the port overridden.
async fn demo_server(dir: &Path) -> ServerProcess {
    let config = write_config(dir, &dir.join("store"), "");
    start_binary(&config, &dir.join("server.log")).await
}

/// The ledger the corpus implies, computed from the fixture files alone by the rule of
/// docs/orbipay.md and docs/empayre.md:
/// `balance = opening − Σ live payments + Σ live refunds of live payments`, Empayre captures and
/// succeeded refunds joining the same sums. Only fixtures that expect 200 (and, for Empayre, the
/// answer `stored`) change anything; every refusal leaves the store as it was.
#[derive(Default)]
struct CorpusLedger {
    /// Orbipay payment id → (account, amount, live).
    payments: HashMap<String, (String, Decimal, bool)>,
    /// Orbipay refund id → (payment id, amount, live, fee_only).
    refunds: HashMap<String, (String, Decimal, bool, bool)>,
    /// Empayre (invoice, payment) → (eventID, account, currency, minor units, captured).
    captures: HashMap<(String, String), (i64, Option<String>, String, i64, bool)>,
    /// Empayre (invoice, payment, refund) → (eventID, minor units, succeeded).
    empayre_refunds: HashMap<(String, String, String), (i64, i64, bool)>,
}

fn live(status: &str) -> bool {
    matches!(status, "scheduled" | "processing" | "processed")
}

fn decimal(v: &Value) -> Decimal {
    v.as_str().expect("amount string").parse().expect("decimal")
}

impl CorpusLedger {
    fn apply(&mut self, fixture: &Value) {
        if fixture["expect"]["status"] != 200 {
            return;
        }
        let body = &fixture["body"];
        match (fixture["channel"].as_str(), fixture["endpoint"].as_str()) {
            (Some("orbipay"), Some("/paymentposting" | "/paymentreversalposting")) => {
                let info = body.get("posting_info").unwrap_or(body);
                let id = info["id"].as_str().expect("id").to_string();
                let is_live = live(info["status"].as_str().expect("status"));
                let entry = self.payments.entry(id).or_insert_with(|| {
                    (
                        info["customer_account"]["account_number"]
                            .as_str()
                            .expect("account")
                            .to_string(),
                        decimal(&info["amount"]),
                        is_live,
                    )
                });
                entry.2 = is_live;
            }
            (Some("orbipay"), Some("/paymentrefundposting")) => {
                let info = body.get("posting_info").unwrap_or(body);
                let id = info["id"].as_str().expect("id").to_string();
                let is_live = live(info["status"].as_str().expect("status"));
                if let Some(entry) = self.refunds.get_mut(&id) {
                    entry.2 = is_live;
                    return;
                }
                let payment = info["source_payment"]["id"].as_str().expect("source").to_string();
                let fee_only = info["refund_type"] == "fee_only";
                // No refund_amount: the payment's remaining refundable amount at the time.
                let amount = match info.get("refund_amount") {
                    Some(a) => decimal(a),
                    None => {
                        let refunded: Decimal = self
                            .refunds
                            .values()
                            .filter(|r| r.0 == payment && r.2 && !r.3)
                            .map(|r| r.1)
                            .sum();
                        self.payments[&payment].1 - refunded
                    }
                };
                self.refunds.insert(id, (payment, amount, is_live, fee_only));
            }
            (Some("empayre"), _) if fixture["expect"]["answer"] == "stored" => {
                let event_id = body["eventID"].as_i64().expect("eventID");
                let (Some(invoice), Some(payment)) = (body["invoice"]["id"].as_str(), body["payment"]["id"].as_str())
                else {
                    return;
                };
                let pay_key = (invoice.to_string(), payment.to_string());
                let p = &body["payment"];
                let minor = p
                    .get("changedAmount")
                    .unwrap_or(&p["amount"])
                    .as_i64()
                    .expect("minor units");
                // Highest eventID per entity wins; an older snapshot never rolls back.
                if self.captures.get(&pay_key).is_none_or(|c| c.0 < event_id) {
                    self.captures.insert(
                        pay_key.clone(),
                        (
                            event_id,
                            body.pointer("/invoice/metadata/account_number")
                                .and_then(Value::as_str)
                                .map(str::to_string),
                            p["currency"].as_str().expect("currency").to_string(),
                            minor,
                            p["status"] == "captured",
                        ),
                    );
                }
                if let Some(refund) = body["refund"]["id"].as_str() {
                    let key = (pay_key.0, pay_key.1, refund.to_string());
                    if self.empayre_refunds.get(&key).is_none_or(|r| r.0 < event_id) {
                        let r = &body["refund"];
                        self.empayre_refunds.insert(
                            key,
                            (
                                event_id,
                                r["amount"].as_i64().expect("minor units"),
                                r["status"] == "succeeded",
                            ),
                        );
                    }
                }
            }
            _ => {}
        }
    }

    /// Expected balance of every demo account.
    fn balances(&self) -> BTreeMap<String, Decimal> {
        let mut balances = demo_opening_balances();
        let currencies = demo_currencies();
        for (account, amount, is_live) in self.payments.values() {
            if *is_live {
                *balances.get_mut(account).expect("demo account") -= amount;
            }
        }
        for (payment, amount, is_live, fee_only) in self.refunds.values() {
            let (account, _, payment_live) = &self.payments[payment];
            if *is_live && *payment_live && !fee_only {
                *balances.get_mut(account).expect("demo account") += amount;
            }
        }
        for (key, (_, account, currency, minor, captured)) in &self.captures {
            // Unmatched (no account, unknown account, other currency): stored, credits nothing.
            let Some(account) = account.as_ref().filter(|a| currencies.get(*a) == Some(currency)) else {
                continue;
            };
            if !captured {
                continue;
            }
            let scale = exponent(currency);
            *balances.get_mut(account).expect("demo account") -= Decimal::new(*minor, scale);
            for ((invoice, payment, _), (_, refund_minor, succeeded)) in &self.empayre_refunds {
                if (invoice, payment) == (&key.0, &key.1) && *succeeded {
                    *balances.get_mut(account).expect("demo account") += Decimal::new(*refund_minor, scale);
                }
            }
        }
        balances
    }
}

/// ISO 4217 minor-unit exponent for the demo currencies (USD and JPY) and a few others.
fn exponent(currency: &str) -> u32 {
    match currency {
        "JPY" | "KRW" | "CLP" | "VND" => 0,
        "KWD" | "BHD" | "OMR" | "JOD" | "TND" => 3,
        _ => 2,
    }
}

fn demo_currencies() -> BTreeMap<String, String> {
    let accounts = read_json(&repo_path("fixtures/accounts.json"));
    accounts
        .as_array()
        .expect("array")
        .iter()
        .map(|a| {
            (
                a["account_number"].as_str().expect("number").to_string(),
                a["currency"].as_str().unwrap_or("USD").to_string(),
            )
        })
        .collect()
}

fn expected_balances(folders: &[&str]) -> BTreeMap<String, Decimal> {
    let mut ledger = CorpusLedger::default();
    for folder in folders {
        for file in corpus(folder) {
            ledger.apply(&read_json(&file));
        }
    }
    ledger.balances()
}

/// Replays `folders` against a fresh demo server and checks the exit status, one `ok` line per
/// file, the summary, and every demo account's balance against what the fixtures imply.
async fn replay_clean_and_check_balances(folders: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("dir");
    let mut server = demo_server(dir.path()).await;
    let mut args: Vec<&str> = folders.to_vec();
    args.extend(["--target", &server.address]);
    let out = replay(&args).await;
    let stdout = text(&out.stdout);
    println!("{stdout}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "replay failed:\n{stdout}\n{}",
        text(&out.stderr)
    );
    let files: usize = folders.iter().map(|f| corpus(f).len()).sum();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), files + 1, "one line per file and a summary");
    assert!(lines[..files].iter().all(|l| l.ends_with("  ok")), "{stdout}");
    assert_eq!(lines[files], format!("{files} passed, 0 failed"));

    let expected = expected_balances(folders);
    let remote = Remote::new(&server.address, ""); // EBPP lookups only: no admin token
    let opening = demo_opening_balances();
    assert_ne!(expected, opening, "the corpus moves money");
    for (account, want) in &expected {
        assert_eq!(
            remote.lookup_balance(account).await,
            *want,
            "balance of {account} (opening {})",
            opening[account]
        );
    }
    server.kill().await;
    stdout
}

#[test]
fn the_corpus_covers_every_orbipay_error_code_and_the_empayre_contract() {
    let orbipay: Vec<Value> = corpus("fixtures/orbipay").iter().map(|f| read_json(f)).collect();
    let empayre: Vec<Value> = corpus("fixtures/empayre").iter().map(|f| read_json(f)).collect();
    assert!(orbipay.len() >= 30, "{} Orbipay cases", orbipay.len());
    assert!(empayre.len() >= 10, "{} Empayre cases", empayre.len());

    let codes: BTreeSet<&str> = orbipay.iter().filter_map(|f| f["expect"]["code"].as_str()).collect();
    for code in ORBIPAY_CODES {
        assert!(codes.contains(code), "no fixture expects {code}");
    }
    let endpoints: BTreeSet<&str> = orbipay.iter().filter_map(|f| f["endpoint"].as_str()).collect();
    for endpoint in [
        "/mpacustomers",
        "/paymentposting",
        "/paymentreversalposting",
        "/paymentrefundposting",
    ] {
        assert!(endpoints.contains(endpoint), "no fixture for {endpoint}");
    }

    let stored_types: BTreeSet<&str> = empayre
        .iter()
        .filter(|f| f["expect"]["answer"] == "stored")
        .filter_map(|f| f["body"]["eventType"].as_str())
        .collect();
    assert!(stored_types.len() >= 6, "{stored_types:?}");
    let answers: BTreeSet<&str> = empayre.iter().filter_map(|f| f["expect"]["answer"].as_str()).collect();
    assert_eq!(
        answers,
        BTreeSet::from(["stored", "duplicate", "quarantined"]),
        "every 200 answer of spec A3"
    );
    let statuses: BTreeSet<u64> = empayre.iter().filter_map(|f| f["expect"]["status"].as_u64()).collect();
    assert!(statuses.is_superset(&BTreeSet::from([200, 401, 404])), "{statuses:?}");
    assert!(
        empayre
            .iter()
            .any(|f| f["signature"] == "alg=RS256; digest=AAAA" && f["expect"]["status"] == 401),
        "a bad signature case"
    );
    // Every Empayre eventID is used once, except by the deliberate re-delivery.
    let mut seen = BTreeSet::new();
    for f in &empayre {
        let id = f["body"]["eventID"].as_i64().expect("eventID");
        assert!(
            seen.insert(id) || f["expect"]["answer"] == "duplicate",
            "eventID {id} reused"
        );
    }
    // The payload-too-large case really is over the demo limit.
    let big = corpus("fixtures/orbipay")
        .into_iter()
        .find(|p| read_json(p)["expect"]["code"] == "error_payload_too_large")
        .expect("413 fixture");
    let body = serde_json::to_vec(&read_json(&big)["body"]).expect("json");
    assert!(body.len() > 262_144, "{} bytes", body.len());
}

#[tokio::test]
async fn the_orbipay_corpus_replays_clean_on_a_fresh_store() {
    replay_clean_and_check_balances(&["fixtures/orbipay"]).await;
}

#[tokio::test]
async fn the_whole_corpus_replays_clean_and_keeps_the_ledger_invariant() {
    // With the current corpus the balances work out to: ACC-100200 110.05 − 25.00 (payment 1001,
    // returned and posted again) − 25.00 (Empayre capture) + 10.00 (Empayre partial refund) =
    // 70.05; ACC-100201 40.00 − 10.00 (1002) − 10.00 (capture through /empayre/webhook/demo) =
    // 20.00; ACC-100800 900.00 − 100.00 (1004) − 50.00 (1006) + 30.00 (refund 5002; 5001 declined)
    // = 780.00, the Empayre invoice refunded in full nets to zero; ACC-JP-0001 12000 − 1500 − 3000
    // = 7500. The test derives them from the files, so a new fixture needs no edit here.
    let stdout = replay_clean_and_check_balances(&["fixtures/orbipay", "fixtures/empayre"]).await;
    assert!(stdout.contains("070_payment_captured_redelivered.json"), "{stdout}");
}

#[tokio::test]
async fn a_wrong_expectation_exits_1_and_names_the_file() {
    let dir = tempfile::tempdir().expect("dir");
    let fixtures = dir.path().join("fixtures");
    std::fs::create_dir(&fixtures).expect("dir");
    std::fs::copy(
        repo_path("fixtures/orbipay/020_lookup_no_match.json"),
        fixtures.join("010_lookup_no_match.json"),
    )
    .expect("copy");
    let mut wrong = read_json(&repo_path("fixtures/orbipay/010_lookup_by_account.json"));
    wrong["expect"] = serde_json::json!({"status": 404, "code": "error_customer_missing"});
    std::fs::write(fixtures.join("020_wrong_expectation.json"), wrong.to_string()).expect("write");

    let mut server = demo_server(dir.path()).await;
    let out = replay(&[fixtures.to_str().expect("utf-8 path"), "--target", &server.address]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", text(&out.stderr));
    let line = stdout
        .lines()
        .find(|l| l.contains("020_wrong_expectation.json"))
        .unwrap_or_else(|| panic!("the file is named:\n{stdout}"));
    assert!(line.contains("MISMATCH"), "{line}");
    assert!(line.contains("expected 404 error_customer_missing"), "{line}");
    assert!(line.contains("got 200 -"), "{line}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("010_lookup_no_match.json") && l.ends_with("  ok")),
        "{stdout}"
    );
    assert!(stdout.contains("1 passed, 1 failed"), "{stdout}");
    server.kill().await;
}

#[tokio::test]
async fn an_unreachable_target_exits_2() {
    // A port that was free a moment ago and has no listener now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let target = format!("http://127.0.0.1:{port}");
    let out = replay(&["fixtures/orbipay/010_lookup_by_account.json", "--target", &target]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}\n{stderr}", text(&out.stdout));
    assert!(stderr.contains("cannot reach"), "{stderr}");
    assert!(stderr.contains("010_lookup_by_account.json"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}

#[tokio::test]
async fn an_invalid_fixture_exits_2_naming_it_before_anything_is_sent() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::copy(
        repo_path("fixtures/orbipay/010_lookup_by_account.json"),
        dir.path().join("010_valid.json"),
    )
    .expect("copy");
    let mut broken = read_json(&repo_path("fixtures/orbipay/040_post_payment.json"));
    broken.as_object_mut().expect("object").remove("expect");
    std::fs::write(dir.path().join("020_no_expectation.json"), broken.to_string()).expect("write");
    std::fs::write(dir.path().join("030_not_json.json"), "{\"channel\": ").expect("write");

    // No server: validation happens before the first request, so the target is never contacted.
    let target = "http://127.0.0.1:9";
    let out = replay(&[dir.path().to_str().expect("utf-8 path"), "--target", target]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("invalid fixture"), "{stderr}");
    assert!(stderr.contains("020_no_expectation.json"), "{stderr}");
    assert!(stderr.contains("expect"), "{stderr}");
    assert!(text(&out.stdout).is_empty(), "nothing replayed");

    std::fs::remove_file(dir.path().join("020_no_expectation.json")).expect("remove");
    let out = replay(&[dir.path().to_str().expect("utf-8 path"), "--target", target]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("030_not_json.json") && stderr.contains("not JSON"),
        "{stderr}"
    );

    let out = replay(&["fixtures/no-such-folder", "--target", target]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("fixtures/no-such-folder"));
}

#[tokio::test]
async fn replay_explains_itself_and_refuses_bad_usage() {
    let out = replay(&["--help"]).await;
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for word in ["--target", "--sign-key", "--config", "PATH"] {
        assert!(help.contains(word), "{word} in {help}");
    }
    let out = replay(&["fixtures/orbipay"]).await;
    assert_eq!(out.status.code(), Some(2), "--target is required");
    let out = replay(&["fixtures/orbipay", "--target", "localhost:8080"]).await;
    assert_eq!(out.status.code(), Some(2), "a target without a scheme");
    let out = replay(&[
        "fixtures/empayre/010_invoice_created.json",
        "--target",
        "http://127.0.0.1:9",
        "--sign-key",
        "fixtures/keys/empayre_test_public.pem",
    ])
    .await;
    assert_eq!(out.status.code(), Some(2), "a public key cannot sign");
    assert!(text(&out.stderr).contains("signing key"), "{}", text(&out.stderr));
}
