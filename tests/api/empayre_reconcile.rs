//! Reconciliation with the Empayre API against the fake API: `biller-inbox empayre reconcile`
//! through the real binary (it asks the running server), and the background job through HTTP.

use std::path::{Path, PathBuf};
use std::time::Duration;

use biller_inbox::empayre::api::ApiToken;
use biller_inbox::settings::EmpayreSource;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::fake_empayre::*;
use crate::helpers::*;

const SINCE: &str = "2026-11-21T00:00:00Z";
const UNTIL: &str = "2026-11-22T00:00:00Z";

fn dec(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

/// A config whose `demo` source trusts the fixture key and reaches the fake API for shop-1, and
/// whose `down` source points at a port nobody listens on.
fn config(dir: &Path, fake: &FakeEmpayre) -> PathBuf {
    write_secret_file(&dir.join("token"), FAKE_TOKEN);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let key = repo_path("fixtures/keys/empayre_test_public.pem").display().to_string();
    write_config(
        dir,
        &dir.join("store"),
        &format!(
            "[[empayre.sources]]\nname = \"demo\"\npublic_key_files = [\"{key}\"]\napi_url = \"{}\"\n\
             api_token = {{ file = \"token\" }}\nshop_ids = [\"shop-1\"]\n\
             [[empayre.sources]]\nname = \"down\"\npublic_key_files = [\"{key}\"]\n\
             api_url = \"http://127.0.0.1:{closed}/v2\"\napi_token = {{ file = \"token\" }}\nshop_ids = [\"shop-1\"]\n",
            fake.url
        ),
    )
}

struct Running {
    fake: FakeEmpayre,
    dir: tempfile::TempDir,
    config: PathBuf,
    server: ServerProcess,
    remote: Remote,
    /// Everything the commands printed, to search for the token at the end.
    printed: String,
}

async fn running() -> Running {
    let fake = FakeEmpayre::start(&["shop-1"]).await;
    let dir = tempfile::tempdir().expect("dir");
    let config = config(dir.path(), &fake);
    let server = start_binary(&config, &dir.path().join("server.log")).await;
    let remote = Remote::new(&server.address, DEMO_ADMIN_TOKEN);
    Running {
        fake,
        dir,
        config,
        server,
        remote,
        printed: String::new(),
    }
}

impl Running {
    /// `biller-inbox empayre reconcile --source S --since SINCE --until UNTIL ARGS...` against the
    /// running server: (exit code, stdout, stderr).
    async fn reconcile(&mut self, source: &str, args: &[&str]) -> (i32, String, String) {
        let config = self.config.display().to_string();
        let mut all = vec![
            "empayre",
            "reconcile",
            "--config",
            &config,
            "--source",
            source,
            "--since",
            SINCE,
            "--until",
            UNTIL,
            "--target",
            &self.server.address,
        ];
        all.extend_from_slice(args);
        let (code, out, err) = run_binary(&all).await;
        self.printed.push_str(&out);
        self.printed.push_str(&err);
        (code, out, err)
    }

    /// A captured payment of `amount_minor` US cents on an invoice paying `account`.
    fn captured(&self, invoice: &str, account: Option<&str>, amount_minor: i64, at: &str) {
        self.fake
            .add_invoice(api_invoice(invoice, "shop-1", account, amount_minor, "USD"));
        self.fake
            .add_payment(api_payment(invoice, "1", "shop-1", at, amount_minor, "USD", "captured"));
    }

    fn set_payment(&self, invoice: &str, status: &str, changed_at: &str) {
        let mut state = self.fake.state();
        let p = state
            .payments
            .iter_mut()
            .find(|p| p["invoiceID"] == invoice)
            .expect("payment");
        p["status"] = json!(status);
        p["statusChangedAt"] = json!(changed_at);
    }

    async fn balance(&self, account: &str) -> Decimal {
        self.remote.admin_balance(account).await
    }

    /// Journal entries of one Empayre payment record.
    async fn entries_of(&self, record: &str) -> Vec<Value> {
        self.remote
            .journal()
            .await
            .into_iter()
            .filter(|e| e["record_id"].as_str().is_some_and(|r| r.starts_with(record)))
            .collect()
    }
}

fn counts_line(out: &str) -> &str {
    out.lines().find(|l| l.starts_with("seen ")).unwrap_or("")
}

#[tokio::test]
async fn a_missed_capture_is_credited_once_and_webhooks_on_either_side_change_nothing() {
    let mut r = running().await;
    let opening = r.balance("ACC-100200").await;
    r.captured("inv-missed", Some("ACC-100200"), 2500, "2026-11-21T09:00:00Z");
    r.captured("inv-webhook-first", Some("ACC-100300"), 1000, "2026-11-21T09:05:00Z");
    r.fake.add_payment(api_payment(
        "inv-pending",
        "1",
        "shop-1",
        "2026-11-21T09:06:00Z",
        700,
        "USD",
        "processed",
    ));
    // The webhook of the second payment arrived; the first one's never did.
    let (status, _) = r
        .remote
        .send_event(&captured_event(41, "inv-webhook-first", Some("ACC-100300"), 1000))
        .await;
    assert_eq!(status, 200);
    let after_webhook = r.balance("ACC-100300").await;

    // A dry run says what it would do and applies nothing.
    let (code, out, err) = r.reconcile("demo", &["--dry-run"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("(dry run: nothing applied)"), "{out}");
    assert_eq!(
        counts_line(&out),
        "seen 3, already applied 1, applied now 1, unmatched 0, failed 0, ignored 1"
    );
    assert_eq!(r.balance("ACC-100200").await, opening);
    assert!(r.remote.record("empayre-payment", "demo:inv-missed:1").await.is_none());

    let (code, out, err) = r.reconcile("demo", &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        counts_line(&out),
        "seen 3, already applied 1, applied now 1, unmatched 0, failed 0, ignored 1"
    );
    assert!(
        out.contains("applied   payment inv-missed/1 captured 25.00 USD (delta -25.00)"),
        "{out}"
    );
    assert_eq!(r.balance("ACC-100200").await, opening - dec("25.00"));
    assert_eq!(
        r.balance("ACC-100300").await,
        after_webhook,
        "the webhook's payment is not credited twice"
    );
    let record = r
        .remote
        .record("empayre-payment", "demo:inv-missed:1")
        .await
        .expect("record");
    assert_eq!(record["status"], "captured");
    assert_eq!(record["account_number"], "ACC-100200");

    // Again: nothing new.
    let (code, out, _) = r.reconcile("demo", &[]).await;
    assert_eq!(code, 0);
    assert_eq!(
        counts_line(&out),
        "seen 3, already applied 2, applied now 0, unmatched 0, failed 0, ignored 1"
    );

    // The missed webhook turns up late: stored, but the balance does not move.
    let (status, answer) = r
        .remote
        .send_event(&captured_event(42, "inv-missed", Some("ACC-100200"), 2500))
        .await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("stored")));
    assert_eq!(r.balance("ACC-100200").await, opening - dec("25.00"));
    let entries = r.entries_of("demo:inv-missed:1").await;
    assert_eq!(entries.len(), 1, "one journal entry for the payment: {entries:?}");
    assert_eq!(entries[0]["delta"], "-25.00");
    // Which path applied what.
    assert_eq!(entries[0]["origin"], "reconcile");
    let by_webhook = r.entries_of("demo:inv-webhook-first:1").await;
    assert_eq!(by_webhook[0]["origin"], "webhook");
    let record = r
        .remote
        .record("empayre-payment", "demo:inv-missed:1")
        .await
        .expect("record");
    assert_eq!(record["origin"], "reconcile", "{record}");
    assert_eq!(record["history"][0]["origin"], "reconcile", "{record}");
    let orbipay = r.remote.journal().await.into_iter().find(|e| e["channel"] == "orbipay");
    assert!(
        orbipay.is_none_or(|e| e.get("origin").is_none()),
        "Orbipay entries carry no origin"
    );

    // The run is listed by the server, and counted.
    let (status, runs) = r.remote.admin_get("/admin/empayre/reconcile?source=demo").await;
    assert_eq!(status, 200, "{runs}");
    // Exactly as /openapi.json documents it (the conformance gate's demo server has no source
    // with API access, so only this test sees a real report).
    let document: Value = r
        .remote
        .client
        .get(format!("{}/openapi.json", r.server.address))
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json");
    let run_list = json!({"$ref": "#/components/schemas/RunList"});
    if let Err(why) = check_schema(&runs, &run_list, &document, "$") {
        panic!("GET /admin/empayre/reconcile answers outside its documented schema: {why}\n{runs}");
    }
    let items = runs["items"].as_array().expect("items");
    assert_eq!(items.len(), 3);
    assert_eq!(items[1]["counts"]["applied"], 1);
    assert_eq!(items[1]["trigger"], "manual");
    assert_eq!(items[2]["dry_run"], true);
    let metrics = r
        .remote
        .client
        .get(format!("{}/metrics", r.server.address))
        .send()
        .await
        .expect("metrics");
    let text = metrics.text().await.expect("text");
    assert_eq!(
        metric_value(
            &text,
            "biller_inbox_empayre_reconcile_runs_total{source=\"demo\",trigger=\"manual\",status=\"ok\"}"
        ),
        3.0
    );
    assert_eq!(
        metric_value(
            &text,
            "biller_inbox_empayre_reconcile_items_total{source=\"demo\",outcome=\"applied\"}"
        ),
        1.0,
        "dry runs are not counted as applied"
    );
    r.server.kill().await;
    r.fake.stop().await;
}

#[tokio::test]
async fn a_refund_and_then_a_charge_back_debit_what_the_capture_credited() {
    let mut r = running().await;
    let opening = r.balance("ACC-100400").await;
    r.captured("inv-r", Some("ACC-100400"), 10000, "2026-11-21T10:00:00Z");
    r.fake.add_refund(
        "shop-1",
        api_refund("inv-r", "1", "1", "2026-11-21T11:00:00Z", 3000, "USD", "succeeded"),
    );
    r.fake.add_refund(
        "shop-1",
        api_refund("inv-r", "1", "2", "2026-11-21T11:30:00Z", 500, "USD", "pending"),
    );
    let (code, out, err) = r.reconcile("demo", &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        counts_line(&out),
        "seen 3, already applied 0, applied now 2, unmatched 0, failed 0, ignored 1"
    );
    assert_eq!(r.balance("ACC-100400").await, opening - dec("100.00") + dec("30.00"));

    // Charged back later: the payment's credit goes, and with it what its refund gave back.
    r.set_payment("inv-r", "charged_back", "2026-11-21T20:00:00Z");
    let (code, out, err) = r.reconcile("demo", &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        counts_line(&out),
        "seen 3, already applied 1, applied now 1, unmatched 0, failed 0, ignored 1"
    );
    assert!(
        out.contains("applied   payment inv-r/1 charged_back 100.00 USD (delta 70.00)"),
        "{out}"
    );
    assert_eq!(r.balance("ACC-100400").await, opening);
    let entries = r.entries_of("demo:inv-r:1").await;
    let deltas: Vec<&str> = entries.iter().filter_map(|e| e["delta"].as_str()).collect();
    assert_eq!(deltas, ["-100.00", "30.00", "70.00"]);
    assert!(entries.iter().all(|e| e["origin"] == "reconcile"), "{entries:?}");

    // The capture's webhook, older than the charge-back the ledger now holds: stale.
    let mut late = captured_event(50, "inv-r", Some("ACC-100400"), 10000);
    late["occuredAt"] = json!("2026-11-21T10:00:05Z");
    let (status, _) = r.remote.send_event(&late).await;
    assert_eq!(status, 200);
    assert_eq!(
        r.balance("ACC-100400").await,
        opening,
        "a stale capture does not credit again"
    );

    // A refund of a payment the ledger does not have is reported, not guessed.
    r.fake.add_refund(
        "shop-1",
        api_refund("inv-unknown", "1", "1", "2026-11-21T12:00:00Z", 100, "USD", "succeeded"),
    );
    let (code, out, _) = r.reconcile("demo", &[]).await;
    assert_eq!(code, 1, "a failed item fails the command: {out}");
    assert!(
        out.contains("failed    refund inv-unknown/1/1 succeeded 1.00 USD: its payment is not in the ledger"),
        "{out}"
    );
    r.server.kill().await;
    r.fake.stop().await;
}

#[tokio::test]
async fn unmatched_paging_retries_malformed_and_unreachable_apis() {
    let mut r = running().await;
    // Five captured payments over three pages; one names no account.
    for i in 0..5 {
        let account = if i == 4 { None } else { Some("ACC-100700") };
        r.captured(&format!("inv-p{i}"), account, 100, &format!("2026-11-21T12:0{i}:00Z"));
    }
    r.fake.state().page_size = 2;
    let opening = r.balance("ACC-100700").await;
    // Throttled, then a failing gateway, then answers.
    r.fake.script(Route::SearchPayments, Scripted::too_many("1"));
    r.fake.script(
        Route::SearchPayments,
        Scripted::status(503, json!({"message": "Service unavailable"})),
    );
    let (code, out, err) = r.reconcile("demo", &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        counts_line(&out),
        "seen 5, already applied 0, applied now 4, unmatched 1, failed 0, ignored 0"
    );
    assert!(
        out.contains("unmatched payment inv-p4/1 captured 1.00 USD (delta 0): no_account"),
        "{out}"
    );
    assert_eq!(r.balance("ACC-100700").await, opening - dec("4.00"));
    let pages: Vec<u16> = r.fake.seen_at("/payments").iter().map(|s| s.status).collect();
    assert_eq!(pages, [429, 503, 200, 200, 200], "retried, then three pages");
    let (_, unmatched) = r.remote.admin_get("/admin/empayre/unmatched").await;
    assert_eq!(unmatched["items"][0]["key"], "demo:inv-p4:1", "{unmatched}");

    // A malformed answer: the run fails, says where, and applies nothing — not even the
    // payments whose answer was fine.
    r.captured("inv-m", Some("ACC-100700"), 900, "2026-11-21T13:00:00Z");
    r.fake.script(
        Route::SearchRefunds,
        Scripted::raw(
            200,
            &json!({"result": [{"id": "1", "invoiceID": "inv-m", "paymentID": "1", "amount": "9.00",
            "currency": "USD", "status": "succeeded", "createdAt": "2026-11-21T13:30:00Z"}]})
            .to_string(),
        ),
    );
    let journal_before = r.remote.journal().await.len();
    let (code, out, err) = r.reconcile("demo", &[]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(
            "searchRefunds: malformed answer: result[0].amount: expected an integer, got a string; nothing was applied"
        ),
        "{err}"
    );
    assert_eq!(r.balance("ACC-100700").await, opening - dec("4.00"));
    assert!(r.remote.record("empayre-payment", "demo:inv-m:1").await.is_none());

    // An API nobody answers: the run fails after its retries; the store is untouched.
    let (code, out, err) = r.reconcile("down", &[]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("searchPayments: Empayre API unreachable after 5 attempt(s)"),
        "{err}"
    );
    assert_eq!(r.remote.journal().await.len(), journal_before);
    let (_, runs) = r.remote.admin_get("/admin/empayre/reconcile?source=down").await;
    assert_eq!(runs["items"][0]["status"], "failed");

    // Usage errors exit 2 before asking the server.
    let (code, _, err) = r.reconcile("nope", &[]).await;
    assert_eq!(code, 2, "{err}");
    let config = r.config.display().to_string();
    let (code, _, err) = run_binary(&[
        "empayre",
        "reconcile",
        "--config",
        &config,
        "--source",
        "demo",
        "--since",
        "yesterday",
    ])
    .await;
    assert_eq!(code, 2);
    assert!(
        err.contains("--since \"yesterday\" is not an RFC 3339 date-time"),
        "{err}"
    );

    // The token is in no log, no output and no store file.
    r.server.kill().await;
    let log = std::fs::read_to_string(r.dir.path().join("server.log")).unwrap_or_default();
    assert!(log.contains("Empayre API call"), "the server logs its API calls");
    assert!(!log.contains(FAKE_TOKEN), "the token is in the server log");
    assert!(!r.printed.contains(FAKE_TOKEN), "the token was printed");
    assert!(!contains(
        &stored_bytes(&r.config, &r.dir.path().join("store")),
        FAKE_TOKEN.as_bytes()
    ));
    r.fake.stop().await;
}

/// Checks `value` against `schema` of the OpenAPI `document`, in the subset utoipa writes
/// (`$ref`, `oneOf`, `type` or a list of types, `enum`, `format: date-time`, `minimum`, object
/// `properties` and `required`, array `items`). A key the schema does not list is a mismatch too:
/// the document must say everything the server answers. Names the path of the first mismatch.
fn check_schema(value: &Value, schema: &Value, document: &Value, path: &str) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        let target = &document["components"]["schemas"][name];
        if target.is_null() {
            return Err(format!("{path}: {reference} is not in the document"));
        }
        return check_schema(value, target, document, path);
    }
    if let Some(options) = schema["oneOf"].as_array() {
        return match options.iter().any(|o| check_schema(value, o, document, path).is_ok()) {
            true => Ok(()),
            false => Err(format!("{path}: {value} matches none of {}", schema["oneOf"])),
        };
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let type_of = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let documented =
        types.is_empty() || types.contains(&type_of) || (type_of == "integer" && types.contains(&"number"));
    if !documented {
        return Err(format!("{path}: a {type_of}, documented as {types:?}"));
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            return Err(format!("{path}: {value} is not one of {allowed:?}"));
        }
    }
    if let (Some(text), Some("date-time")) = (value.as_str(), schema["format"].as_str()) {
        chrono::DateTime::parse_from_rfc3339(text).map_err(|_| format!("{path}: {text:?} is not a date-time"))?;
    }
    if let (Some(n), Some(min)) = (value.as_f64(), schema["minimum"].as_f64()) {
        if n < min {
            return Err(format!("{path}: {n} is below the minimum {min}"));
        }
    }
    match value {
        Value::Object(fields) => {
            let properties = schema["properties"].as_object().cloned().unwrap_or_default();
            for required in schema["required"].as_array().into_iter().flatten() {
                let name = required.as_str().unwrap_or_default();
                if !fields.contains_key(name) {
                    return Err(format!("{path}.{name}: required, but absent"));
                }
            }
            for (name, field) in fields {
                let Some(field_schema) = properties.get(name) else {
                    return Err(format!("{path}.{name}: not in the documented schema"));
                };
                check_schema(field, field_schema, document, &format!("{path}.{name}"))?;
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_schema(item, &schema["items"], document, &format!("{path}[{i}]"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// An in-process server on `store` whose `demo` source runs the background job every second.
/// Returns its address, its handle and the task serving it (done once the jobs have stopped and
/// the store is released).
async fn job_server(
    store: &Path,
    fake: &FakeEmpayre,
) -> (
    Remote,
    actix_web::dev::ServerHandle,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let mut settings = test_settings(store);
    settings.empayre.sources = vec![EmpayreSource {
        name: "demo".into(),
        public_key_files: vec![repo_path("fixtures/keys/empayre_test_public.pem")],
        api_url: Some(fake.url.clone()),
        api_token: Some(ApiToken::inline(FAKE_TOKEN).expect("token")),
        shop_ids: vec!["shop-1".into()],
        reconcile_interval_secs: 1,
        reconcile_overlap_secs: 300,
        ..Default::default()
    }];
    let app = biller_inbox::startup::Application::build(settings)
        .await
        .expect("server builds");
    let remote = Remote::new(&format!("http://127.0.0.1:{}", app.port()), ADMIN_TOKEN);
    let handle = app.handle();
    (remote, handle, tokio::spawn(app.run_until_stopped()))
}

/// The run list once it holds more than `than` runs (newest first).
async fn runs_beyond(remote: &Remote, than: usize) -> Vec<Value> {
    for _ in 0..300 {
        let (status, body) = remote.admin_get("/admin/empayre/reconcile?source=demo").await;
        assert_eq!(status, 200, "{body}");
        let items = body["items"].as_array().cloned().unwrap_or_default();
        if items.len() > than {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no reconciliation run beyond {than} within 30 s");
}

fn time_of(run: &Value, field: &str) -> chrono::DateTime<chrono::Utc> {
    run[field].as_str().expect(field).parse().expect("time")
}

#[tokio::test]
async fn the_background_job_applies_what_the_webhook_missed_and_goes_on_after_a_restart() {
    let fake = FakeEmpayre::start(&["shop-1"]).await;
    let at = (chrono::Utc::now() - chrono::Duration::seconds(60)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    fake.add_invoice(api_invoice("inv-bg", "shop-1", Some("ACC-100201"), 1500, "USD"));
    fake.add_payment(api_payment("inv-bg", "1", "shop-1", &at, 1500, "USD", "captured"));
    let dir = tempfile::tempdir().expect("dir");
    let store = dir.path().join("store");
    let (remote, handle, served) = job_server(&store, &fake).await;
    let opening = demo_opening_balances()["ACC-100201"];

    let runs = runs_beyond(&remote, 0).await;
    let first = runs.last().expect("first run");
    assert_eq!(first["trigger"], "schedule");
    assert_eq!(first["status"], "ok", "{first}");
    assert_eq!(first["counts"]["applied"], 1, "{first}");
    assert_eq!(remote.admin_balance("ACC-100201").await, opening - dec("15.00"));
    // The first window looks back one interval and the overlap.
    assert!(
        (time_of(first, "to") - time_of(first, "from")).num_seconds() >= 300,
        "{first}"
    );

    // The next window starts the overlap before the last one ended, and applies nothing again.
    let runs = runs_beyond(&remote, 1).await;
    let (second, before) = (&runs[runs.len() - 2], &runs[runs.len() - 1]);
    assert_eq!(
        time_of(second, "from"),
        time_of(before, "to") - chrono::Duration::seconds(300),
        "{second}"
    );
    assert_eq!(second["counts"]["applied"], 0, "{second}");
    assert_eq!(second["counts"]["already_applied"], 1, "{second}");
    let text = remote
        .client
        .get(format!("{}/metrics", remote.address))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metric_value(
            &text,
            "biller_inbox_empayre_reconcile_runs_total{source=\"demo\",trigger=\"schedule\",status=\"ok\"}"
        ) >= 2.0,
        "{text}"
    );

    // Stopped and started again on the same store: the runs are still listed, and the job goes
    // on from where it got to, not from a first window.
    handle.stop(true).await;
    served.await.expect("served").expect("stopped cleanly");
    let (remote, handle, served) = job_server(&store, &fake).await;
    let (_, kept) = remote.admin_get("/admin/empayre/reconcile?source=demo").await;
    let kept = kept["items"].as_array().cloned().unwrap_or_default();
    assert!(kept.len() >= 2, "the runs survive the restart: {kept:?}");
    let ends: Vec<chrono::DateTime<chrono::Utc>> = kept.iter().map(|r| time_of(r, "to")).collect();
    let runs = runs_beyond(&remote, kept.len()).await;
    let resumed = &runs[0];
    let resumed_from = time_of(resumed, "from");
    assert!(
        ends.contains(&(resumed_from + chrono::Duration::seconds(300))),
        "the first window after the restart starts the overlap before a window that ended before it: {resumed} vs {ends:?}"
    );
    assert_eq!(resumed["counts"]["already_applied"], 1, "{resumed}");
    assert_eq!(remote.admin_balance("ACC-100201").await, opening - dec("15.00"));
    handle.stop(true).await;
    served.await.expect("served").expect("stopped cleanly");
    fake.stop().await;
}

/// The scheduled runs of `demo` that ended `ok`, as one server's /metrics counts them (each
/// process counts only the runs it made).
async fn scheduled_runs(address: &str) -> f64 {
    let text = reqwest::get(format!("{address}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    metric_value(
        &text,
        "biller_inbox_empayre_reconcile_runs_total{source=\"demo\",trigger=\"schedule\",status=\"ok\"}",
    )
}

/// Two replicas (real binaries) on one PostgreSQL database, both configured with the `demo`
/// source's job every second: only one of them asks the Empayre API. SIGKILLed, it takes its job
/// lock with it (the database session ends), and the other replica takes the job over.
#[tokio::test]
async fn on_postgres_one_replica_runs_the_job_and_another_takes_over_when_it_dies() {
    let fake = FakeEmpayre::start(&["shop-1"]).await;
    let db = crate::pg::test_database();
    let dir = tempfile::tempdir().expect("dir");
    write_secret_file(&dir.path().join("token"), FAKE_TOKEN);
    let key = repo_path("fixtures/keys/empayre_test_public.pem").display().to_string();
    let config = write_pg_config(
        dir.path(),
        &db.url,
        &format!(
            "[[empayre.sources]]\nname = \"demo\"\npublic_key_files = [\"{key}\"]\napi_url = \"{}\"\n\
             api_token = {{ file = \"token\" }}\nshop_ids = [\"shop-1\"]\nreconcile_interval_secs = 1\n",
            fake.url
        ),
    );
    let mut replicas = vec![
        start_binary(&config, &dir.path().join("a.log")).await,
        start_binary(&config, &dir.path().join("b.log")).await,
    ];
    let runs = |replicas: &[ServerProcess]| {
        let addresses: Vec<String> = replicas.iter().map(|r| r.address.clone()).collect();
        async move { futures_util::future::join_all(addresses.iter().map(|a| scheduled_runs(a))).await }
    };
    let mut counted = Vec::new();
    for _ in 0..300 {
        counted = runs(&replicas).await;
        if counted.iter().sum::<f64>() >= 4.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(counted.iter().sum::<f64>() >= 4.0, "no runs within 30 s: {counted:?}");
    let holder = counted.iter().position(|n| *n > 0.0).expect("a replica ran the job");
    assert_eq!(
        counted.iter().filter(|n| **n > 0.0).count(),
        1,
        "only one replica asks the Empayre API: {counted:?}"
    );
    // The fake saw one window's requests per run of the holder, none from the other.
    let asked_before = fake.seen().len();
    assert!(asked_before > 0);

    replicas[holder].kill().await;
    let other = replicas.remove(1 - holder);
    let mut taken_over = 0.0;
    for _ in 0..300 {
        taken_over = scheduled_runs(&other.address).await;
        if taken_over >= 2.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        taken_over >= 2.0,
        "the other replica did not take the job over within 30 s"
    );
    assert!(
        fake.seen().len() > asked_before,
        "the API is asked again, by the survivor"
    );
    let mut other = other;
    other.kill().await;
    fake.stop().await;
}
