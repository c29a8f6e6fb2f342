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
    let app = Application::build(settings).expect("server builds");
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
    let text = std::fs::read_to_string(repo_path("fixtures/accounts.json")).expect("accounts fixture");
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
pub async fn start_command(mut command: tokio::process::Command, log_path: &Path) -> ServerProcess {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .expect("log file");
    let mut child = command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
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
