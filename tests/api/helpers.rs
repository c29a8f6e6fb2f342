//! Test harness: a server on port 0 with a temp store per test, in-process or as the real
//! binary, and a client that speaks each channel.

// Shared by every test module; not every module uses every helper.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use biller_inbox::settings::{OrbipayClient, Settings};
use biller_inbox::startup::Application;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

pub const CLIENT_KEY: &str = "demo-client";
pub const API_KEY: &str = "demo-api-key";

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A file of the repository the tests need (fixtures, keys, vectors), by path relative to the
/// root. A missing file panics naming it.
pub fn repo_file(rel: &str) -> Vec<u8> {
    let path = repo_path(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("test data file {} cannot be read: {e}", path.display()))
}

pub fn repo_text(rel: &str) -> String {
    String::from_utf8(repo_file(rel)).unwrap_or_else(|e| panic!("test data file {rel} is not UTF-8: {e}"))
}

/// The signature vector and example events (see `fixtures/vectors/empayre/README.md`).
pub const EMPAYRE_VECTORS: &str = "fixtures/vectors/empayre";

/// Settings for an in-process test server: built-in defaults, the demo client, the demo
/// accounts, a temp store, port 0.
pub fn test_settings(store: &Path) -> Settings {
    let mut s = Settings::defaults();
    s.server.port = 0;
    s.server.workers = 2;
    s.store.path = store.to_path_buf();
    s.store.cache_capacity_bytes = 16 * 1024 * 1024;
    s.seed.accounts_file = repo_path("fixtures/accounts.json").display().to_string();
    s.orbipay.clients = vec![
        OrbipayClient {
            client_key: CLIENT_KEY.into(),
            enabled: true,
            credentials: vec![BTreeMap::from([("api-key".to_string(), API_KEY.to_string())])],
        },
        OrbipayClient {
            client_key: "demo-disabled".into(),
            enabled: false,
            credentials: vec![BTreeMap::from([(
                "api-key".to_string(),
                "demo-disabled-key".to_string(),
            )])],
        },
    ];
    s.admin.token = "test-admin-token".into();
    s
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub store_dir: tempfile::TempDir,
    handle: actix_web::dev::ServerHandle,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let store_dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(&store_dir.path().join("store"));
    adjust(&mut settings);
    let app = Application::build(settings).await.expect("server builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .expect("client"),
        store_dir,
        handle,
    }
}

impl TestApp {
    /// Stops the server and waits until its workers have released the store.
    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }

    pub async fn lookup(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}/mpacustomers", self.address))
            .header("client-key", CLIENT_KEY)
            .header("api-key", API_KEY)
            .form(form)
            .send()
            .await
            .expect("lookup sent")
    }

    /// POSTs JSON to an Orbipay endpoint with the demo credentials.
    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .header("client-key", CLIENT_KEY)
            .header("api-key", API_KEY)
            .json(body)
            .send()
            .await
            .expect("posting sent")
    }

    /// Status and parsed body.
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self.post(path, body).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The account's current balance as the EBPP lookup shows it.
    pub async fn balance(&self, account: &str) -> Decimal {
        let r = self.lookup(&[("account_number", account)]).await;
        assert_eq!(r.status(), 200, "lookup of {account}");
        let body: Value = r.json().await.expect("json");
        body["list"][0]["customer_accounts"]["list"][0]["current_balance"]
            .as_str()
            .expect("balance")
            .parse()
            .expect("decimal")
    }
}

/// The opening balances of the demo accounts, read from the fixture the server was seeded with.
pub fn demo_opening_balances() -> BTreeMap<String, Decimal> {
    let text = repo_text("fixtures/accounts.json");
    let accounts: Vec<Value> = serde_json::from_str(&text).expect("json");
    accounts
        .iter()
        .map(|a| {
            (
                a["account_number"].as_str().expect("number").to_string(),
                a["current_balance"]
                    .as_str()
                    .expect("balance")
                    .parse()
                    .expect("decimal"),
            )
        })
        .collect()
}

/// The test's own model of the ledger: what each account's balance must be after the postings
/// the test made, per `balance = opening − Σ live payments + Σ live refunds of live payments`.
pub struct LedgerModel {
    pub expected: BTreeMap<String, Decimal>,
}

impl LedgerModel {
    pub fn demo() -> Self {
        Self {
            expected: demo_opening_balances(),
        }
    }

    pub fn credit(&mut self, account: &str, amount: &str) {
        *self.expected.get_mut(account).expect("known account") -= amount.parse::<Decimal>().expect("decimal");
    }

    pub fn debit(&mut self, account: &str, amount: &str) {
        *self.expected.get_mut(account).expect("known account") += amount.parse::<Decimal>().expect("decimal");
    }

    /// Every account's live balance equals the model (the ledger invariant).
    pub async fn assert_holds(&self, app: &TestApp) {
        for (account, want) in &self.expected {
            assert_eq!(app.balance(account).await, *want, "balance of {account}");
        }
    }
}

/// A valid payment posting body with the given id, account, amount and status.
pub fn payment(id: &str, account: &str, amount: &str, status: &str) -> Value {
    json!({"posting_info": {
        "id": id,
        "amount": amount,
        "confirmation_number": format!("CONF{id}"),
        "currency_code3d": "USD",
        "custom_fields": {},
        "customer": {"id": "1", "customer_reference": "C-1001", "first_name": "Ana"},
        "customer_account": {"id": "2", "account_number": account},
        "funding_account": {"id": "3", "account_number": "xxxxxx6789", "account_type": "bank"},
        "payment_date": "2026-11-21",
        "payment_method": "ach",
        "payment_network_response": {"payment_auth_code": "A1"},
        "payment_schedule_type": "one_time_payment",
        "status": status,
    }})
}

pub fn refund(id: &str, payment_id: &str, amount: Option<&str>, status: &str) -> Value {
    let mut info = json!({
        "id": id,
        "status": status,
        "confirmation_number": format!("RCONF{id}"),
        "source_payment": {"id": payment_id},
    });
    if let Some(a) = amount {
        info["refund_amount"] = json!(a);
    }
    json!({ "posting_info": info })
}

/// The first error of an Orbipay error envelope: (code, field).
pub fn first_error(body: &Value) -> (String, Option<String>) {
    let e = &body["errors"][0];
    (
        e["code"].as_str().unwrap_or("").to_string(),
        e["field"].as_str().map(str::to_string),
    )
}

/// The real binary, serving on a temp config. Logs (stderr) are captured to a file.
pub struct ServerProcess {
    pub child: tokio::process::Child,
    pub address: String,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_biller-inbox")
}

/// Writes a config file that puts the store and port where a test wants them.
pub fn write_config(dir: &Path, store: &Path, extra: &str) -> PathBuf {
    let path = dir.join("test.toml");
    let text = format!(
        "[server]\nport = 0\nworkers = 2\n[store]\npath = \"{}\"\ncache_capacity_bytes = 16777216\n[log]\nlevel = \"debug\"\n{extra}",
        store.display()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

pub async fn start_binary(config: &Path, log_path: &Path) -> ServerProcess {
    let mut command = tokio::process::Command::new(binary());
    command.args(["serve", "--config"]).arg(config);
    start_command(command, log_path).await
}

impl ServerProcess {
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// Every file under `dir`, concatenated, for searching stored bytes.
pub fn all_bytes_under(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.extend_from_slice(&bytes);
            }
        }
    }
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The admin token `test_settings` configures.
pub const ADMIN_TOKEN: &str = "test-admin-token";

impl TestApp {
    /// An admin request with the test token.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(ADMIN_TOKEN)
    }

    /// GET an admin route with the token: status and parsed body.
    pub async fn admin_get(&self, path: &str) -> (u16, Value) {
        let r = self
            .admin(reqwest::Method::GET, path)
            .send()
            .await
            .expect("admin GET sent");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// POST JSON to an admin route with the token: status and parsed body.
    pub async fn admin_post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .admin(reqwest::Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("admin POST sent");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// PUT a raw body to an admin route with the token: status and parsed body.
    pub async fn admin_put(&self, path: &str, body: &str) -> (u16, Value) {
        let r = self
            .admin(reqwest::Method::PUT, path)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("admin PUT sent");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// `POST /admin/postings/search`.
    pub async fn search(&self, body: &Value) -> (u16, Value) {
        self.admin_post("/admin/postings/search", body).await
    }

    /// The text of `GET /metrics`.
    pub async fn metrics_text(&self) -> String {
        let r = self
            .client
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .expect("metrics sent");
        assert_eq!(r.status(), 200);
        r.text().await.expect("metrics text")
    }
}

/// The value of one series (exact name with labels) in a Prometheus text page; 0 when absent.
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().expect("metric value"))
}

/// A `received_at` window of one hour either side of now, for searches of what a test posted.
pub fn window_around_now() -> Value {
    let now = chrono::Utc::now();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    json!({"name": "received_at", "method": "between",
           "searchParameter": [fmt(now - chrono::Duration::hours(1)), fmt(now + chrono::Duration::hours(1))]})
}

/// Runs the real binary with `args` to completion: (exit code, stdout, stderr).
pub async fn run_binary(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(binary())
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .output()
        .await
        .expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Like `start_binary`, for a server started by another command (a wrapper that ends by
/// exec-ing the binary, so the child's pid is the server's).
pub async fn start_command(command: tokio::process::Command, log_path: &Path) -> ServerProcess {
    start_command_in(command, Path::new(env!("CARGO_MANIFEST_DIR")), log_path).await
}

/// Like `start_command`, from the working directory `cwd`.
pub async fn start_command_in(mut command: tokio::process::Command, cwd: &Path, log_path: &Path) -> ServerProcess {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .expect("log file");
    let mut child = command
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .expect("command starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let address = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(addr) = line.strip_prefix("biller-inbox listening on ") {
                return addr.trim().to_string();
            }
        }
        panic!("the server exited before listening; see {}", log_path.display());
    })
    .await
    .expect("server listens within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    ServerProcess { child, address }
}

// ---------------------------------------------------------------------------------------------
// Reliability helpers (issue 7): a server reached by address (the real binary), signed Empayre
// events, the whole journal.

/// The admin token of `config/default.toml`, which every binary started with `write_config`
/// layers under the test's own file.
pub const DEMO_ADMIN_TOKEN: &str = "demo-admin-token";

/// A server reached by its address: the real binary, or an in-process one.
#[derive(Clone)]
pub struct Remote {
    pub client: reqwest::Client,
    pub address: String,
    pub admin_token: String,
}

impl Remote {
    pub fn new(address: &str, admin_token: &str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            address: address.to_string(),
            admin_token: admin_token.to_string(),
        }
    }

    pub fn of(app: &TestApp) -> Self {
        Self::new(&app.address, ADMIN_TOKEN)
    }

    /// POSTs raw JSON bytes to an Orbipay endpoint with the demo credentials.
    pub async fn try_post_bytes(&self, path: &str, body: Vec<u8>) -> reqwest::Result<(u16, Value)> {
        let r = self
            .client
            .post(format!("{}{path}", self.address))
            .header("client-key", CLIENT_KEY)
            .header("api-key", API_KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let status = r.status().as_u16();
        let bytes = r.bytes().await?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.try_post_bytes(path, serde_json::to_vec(body).expect("json"))
            .await
            .expect("posting sent")
    }

    /// Sends a body to the Empayre webhook with the given `Content-Signature` (none if `None`).
    pub async fn try_webhook(&self, body: Vec<u8>, signature: Option<&str>) -> reqwest::Result<(u16, Value)> {
        let mut req = self
            .client
            .post(format!("{}/empayre/webhook", self.address))
            .header("content-type", "application/json")
            .body(body);
        if let Some(sig) = signature {
            req = req.header("Content-Signature", sig);
        }
        let r = req.send().await?;
        let status = r.status().as_u16();
        let bytes = r.bytes().await?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    /// Signs `event` with the fixture key and sends it.
    pub async fn send_event(&self, event: &Value) -> (u16, Value) {
        let body = serde_json::to_vec(event).expect("json");
        let sig = fixture_signer().sign_header(&body).expect("sign");
        self.try_webhook(body, Some(&sig)).await.expect("event sent")
    }

    /// GET with the admin token: status and parsed body.
    pub async fn admin_get(&self, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.address))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .expect("admin GET sent");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// `totalCount` of an unfiltered postings search over the last day up to an hour ahead: a
    /// window of whole minutes, so it is counted from the per-minute counts (with the two
    /// partial minutes at its edges walked).
    pub async fn search_total_last_day(&self) -> u64 {
        let now = chrono::Utc::now();
        let window = json!({"name": "received_at", "method": "between", "searchParameter": [
            (now - chrono::Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            (now + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ]});
        let r = self
            .client
            .post(format!("{}/admin/postings/search", self.address))
            .bearer_auth(&self.admin_token)
            .json(&json!({"paging": {"page": 1, "size": 1}, "searchParameters": [window]}))
            .send()
            .await
            .expect("search sent");
        assert_eq!(r.status().as_u16(), 200, "search");
        let body: Value = r.json().await.expect("search answer");
        body["totalCount"].as_u64().expect("totalCount")
    }

    /// An account's live balance from `GET /admin/accounts/{n}`.
    pub async fn admin_balance(&self, account: &str) -> Decimal {
        let (status, body) = self.admin_get(&format!("/admin/accounts/{account}")).await;
        assert_eq!(status, 200, "account view of {account}: {body}");
        body["account"]["current_balance"]
            .as_str()
            .expect("current_balance")
            .parse()
            .expect("decimal")
    }

    /// Every demo account's balance.
    pub async fn demo_balances(&self) -> BTreeMap<String, Decimal> {
        let mut out = BTreeMap::new();
        for account in demo_opening_balances().keys() {
            out.insert(account.clone(), self.admin_balance(account).await);
        }
        out
    }

    /// The whole journal through `GET /admin/journal`, paged; asserts the paging contract
    /// (`next_after` is the last seq of the page).
    pub async fn journal(&self) -> Vec<Value> {
        self.journal_after(0).await
    }

    pub async fn journal_after(&self, mut after: u64) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let (status, page) = self
                .admin_get(&format!("/admin/journal?after={after}&limit=1000"))
                .await;
            assert_eq!(status, 200, "journal page after {after}: {page}");
            let entries = page["entries"].as_array().expect("entries").clone();
            let next = page["next_after"].as_u64().expect("next_after");
            if entries.is_empty() {
                assert_eq!(next, after, "an empty page keeps the cursor");
                return out;
            }
            assert_eq!(
                entries.last().and_then(|e| e["seq"].as_u64()),
                Some(next),
                "next_after is the last seq of the page"
            );
            after = next;
            out.extend(entries);
        }
    }

    /// `GET /admin/postings/{kind}/{id}`: the record, or None on 404.
    pub async fn record(&self, kind: &str, id: &str) -> Option<Value> {
        let (status, body) = self.admin_get(&format!("/admin/postings/{kind}/{id}")).await;
        match status {
            200 => Some(body),
            404 => None,
            other => panic!("record {kind}/{id}: unexpected {other} {body}"),
        }
    }
}

/// The journal's contract on a whole journal: seq 1..N without gaps, and per account the deltas
/// add up to balance − opening. Returns Σ delta per account.
pub fn assert_journal_consistent(
    journal: &[Value],
    opening: &BTreeMap<String, Decimal>,
    balances: &BTreeMap<String, Decimal>,
) -> BTreeMap<String, Decimal> {
    let mut sums: BTreeMap<String, Decimal> = BTreeMap::new();
    for (i, e) in journal.iter().enumerate() {
        assert_eq!(
            e["seq"].as_u64(),
            Some(i as u64 + 1),
            "journal seq gap or disorder at {e}"
        );
        let account = e["account_number"].as_str().expect("account_number");
        let delta: Decimal = e["delta"].as_str().expect("delta").parse().expect("decimal");
        *sums.entry(account.to_string()).or_default() += delta;
    }
    for (account, open) in opening {
        let sum = sums.get(account).copied().unwrap_or_default();
        assert_eq!(
            balances[account] - open,
            sum,
            "{account}: balance − opening must equal the journal's deltas"
        );
    }
    sums
}

/// The demo Empayre source trusting the fixture key.
pub fn fixture_empayre_source(name: &str) -> biller_inbox::settings::EmpayreSource {
    biller_inbox::settings::EmpayreSource {
        name: name.into(),
        public_keys: vec![],
        public_key_files: vec![repo_path("fixtures/keys/empayre_test_public.pem")],
        account_pointer: "/invoice/metadata/account_number".into(),
        ..Default::default()
    }
}

/// A server with the demo EBPP client, the demo Empayre source and the admin API: everything an
/// operator can look at.
pub async fn spawn_full_app() -> TestApp {
    spawn_app_with(|s| s.empayre.sources = vec![fixture_empayre_source("demo")]).await
}

/// The fixture Empayre signing key (the demo source trusts its public half).
pub fn fixture_signer() -> biller_inbox::empayre::signature::BodySigner {
    let pem = repo_text("fixtures/keys/empayre_test_private.pem");
    biller_inbox::empayre::signature::BodySigner::from_pem(&pem).expect("signer")
}

/// A `PaymentCaptured` event for payment "1" of `invoice_id`, paying `account` (when given)
/// `amount_minor` US cents.
pub fn captured_event(event_id: i64, invoice_id: &str, account: Option<&str>, amount_minor: i64) -> Value {
    let mut event = json!({
        "eventID": event_id, "occuredAt": "2026-11-21T09:01:00.5Z", "topic": "InvoicesTopic",
        "eventType": "PaymentCaptured",
        "invoice": {"id": invoice_id, "shopID": "shop-1", "createdAt": "2026-11-21T09:00:00Z", "status": "paid",
                    "dueDate": "2026-11-22T09:00:00Z", "amount": amount_minor, "currency": "USD", "product": "Bill"},
        "payment": {"id": "1", "createdAt": "2026-11-21T09:00:30Z", "status": "captured", "amount": amount_minor,
                    "currency": "USD", "paymentToolToken": "dG9rZW4", "paymentSession": "c2Vzc2lvbg",
                    "payer": {"payerType": "PaymentResourcePayer", "paymentToolToken": "dG9rZW4"}, "fee": 0}
    });
    if let Some(a) = account {
        event["invoice"]["metadata"] = json!({ "account_number": a });
    }
    event
}

/// Whether this process may mount a tmpfs in a private mount namespace (root, or CAP_SYS_ADMIN).
/// Tests that need it fail with this message where it is missing, rather than pass unchecked.
pub fn assert_private_mounts_work() {
    let probe = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"])
        .output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "cannot mount a tmpfs in a private mount namespace (`unshare -m` as root is needed): {probe:?}"
    );
}
