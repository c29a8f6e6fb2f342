//! A server in this process: built like `serve` builds it, on port 0 with a temp store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use biller_inbox::settings::{Backend, OrbipayClient, Settings, TlsSettings};
use biller_inbox::startup::Application;
use biller_inbox::tls::CertReloader;
use rust_decimal::Decimal;
use serde_json::Value;

use super::{repo_path, Remote, ADMIN_TOKEN, API_KEY, CLIENT_KEY};
use crate::test_ca::TestCa;

/// The backend the behaviour tests run on: sled, or PostgreSQL with
/// `BILLER_INBOX_TEST_BACKEND=postgres` (a fresh database per test; scripts/test.sh runs the
/// behaviour suite once on each).
pub fn test_backend() -> Backend {
    match std::env::var("BILLER_INBOX_TEST_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        Ok("sled") | Ok("") | Err(_) => Backend::Sled,
        Ok(other) => panic!("BILLER_INBOX_TEST_BACKEND={other:?}: must be sled or postgres"),
    }
}

/// The PostgreSQL database that stands in for the sled store at `store`: a fresh one the first
/// time a test names that path, the same one after (a test that restarts a server "on the same
/// store" gets the same database).
pub fn database_for(store: &Path) -> crate::pg::TestDatabase {
    static BY_STORE: std::sync::Mutex<BTreeMap<std::path::PathBuf, crate::pg::TestDatabase>> =
        std::sync::Mutex::new(BTreeMap::new());
    let mut known = BY_STORE.lock().unwrap_or_else(|p| p.into_inner());
    known
        .entry(store.to_path_buf())
        .or_insert_with(crate::pg::test_database)
        .clone()
}

/// Puts a test server on a PostgreSQL test database: a small pool, short timeouts.
pub fn use_postgres(s: &mut Settings, db: &crate::pg::TestDatabase) {
    s.store.backend = Backend::Postgres;
    s.store.postgres.url = db.url.clone();
    s.store.postgres.pool_size = 4;
    s.store.postgres.connect_timeout_ms = 2000;
}

/// An in-process server, both channels configured, on the given PostgreSQL database (several
/// may share one).
pub async fn spawn_app_on_postgres(db: &crate::pg::TestDatabase) -> TestApp {
    spawn_app_with(|s| {
        use_postgres(s, db);
        s.empayre.sources = vec![fixture_empayre_source("demo")];
    })
    .await
}

/// Settings for an in-process test server: built-in defaults, the demo client, the demo
/// accounts, a temp store (or a fresh PostgreSQL database, see `test_backend`), port 0.
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
            credentials: vec![BTreeMap::from([("api-key".to_string(), API_KEY.into())])],
            tls_subject: None,
        },
        OrbipayClient {
            client_key: "demo-disabled".into(),
            enabled: false,
            credentials: vec![BTreeMap::from([("api-key".to_string(), "demo-disabled-key".into())])],
            tls_subject: None,
        },
    ];
    s.admin.token = "test-admin-token".into();
    if test_backend() == Backend::Postgres {
        use_postgres(&mut s, &database_for(store));
    }
    s
}

pub struct TestApp {
    /// `http://127.0.0.1:PORT`, or `https://...` over TLS.
    pub address: String,
    /// A client for `address` (over TLS: trusting the test CA only).
    pub client: reqwest::Client,
    pub store_dir: tempfile::TempDir,
    /// The PostgreSQL database it runs on (None on sled).
    pub pg_url: Option<String>,
    handle: actix_web::dev::ServerHandle,
    /// The same server through `Remote` (admin token included).
    remote: Remote,
    /// Over TLS: the server's certificate reloader.
    pub tls: Option<Arc<CertReloader>>,
    /// The task serving it; done once the store is closed.
    served: tokio::sync::Mutex<Option<tokio::task::JoinHandle<std::io::Result<()>>>>,
}

/// How a test reaches the server: suites that must hold over both run once each
/// (`over_plain_and_tls!`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Plain,
    Tls,
}

/// The test CA every TLS test server's certificate comes from.
pub fn test_ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(|| TestCa::new("biller-inbox test CA"))
}

/// The subject of the certificate `spawn_app_over(Transport::Tls, ..)` serves.
pub const TEST_SERVER_CN: &str = "biller-inbox test server";

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_over(Transport::Plain, adjust).await
}

/// A server on port 0 with a temp store, plain or over TLS with a certificate from `test_ca()`
/// (written under the store's temp dir, in `tls/`). `adjust` sees the settings last.
pub async fn spawn_app_over(transport: Transport, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let store_dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(&store_dir.path().join("store"));
    if transport == Transport::Tls {
        let (cert_file, key_file) = test_ca()
            .server_pair(TEST_SERVER_CN)
            .write(&store_dir.path().join("tls"));
        settings.server.tls = Some(TlsSettings {
            cert_file,
            key_file,
            client_ca_file: PathBuf::new(),
        });
    }
    adjust(&mut settings);
    let pg_url = (settings.store.backend == Backend::Postgres).then(|| settings.store.postgres.url.clone());
    let app = Application::build(settings).await.expect("server builds");
    let address = format!("{}://127.0.0.1:{}", app.scheme(), app.port());
    let handle = app.handle();
    let tls = app.certificate_reloader();
    let served = tokio::spawn(app.run_until_stopped());
    let (client, remote) = match transport {
        Transport::Plain => (reqwest::Client::builder(), Remote::new(&address, ADMIN_TOKEN)),
        Transport::Tls => {
            let remote_client = test_ca()
                .client(None)
                .pool_max_idle_per_host(64)
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .expect("client");
            let remote = Remote {
                client: remote_client,
                address: address.clone(),
                admin_token: ADMIN_TOKEN.into(),
            };
            (test_ca().client(None), remote)
        }
    };
    TestApp {
        remote,
        client: client.pool_max_idle_per_host(64).build().expect("client"),
        address,
        store_dir,
        pg_url,
        handle,
        tls,
        served: tokio::sync::Mutex::new(Some(served)),
    }
}

/// Runs each named test, an `async fn(Transport)` of the module, once over plain HTTP (in a
/// module `plain`) and once over TLS (`tls`).
macro_rules! over_plain_and_tls {
    ($($test:ident),* $(,)?) => {
        mod plain {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(crate::helpers::Transport::Plain).await
                }
            )*
        }
        mod tls {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(crate::helpers::Transport::Tls).await
                }
            )*
        }
    };
}
pub(crate) use over_plain_and_tls;

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

impl TestApp {
    /// Stops the server and waits until it has closed the store (sled's lock released).
    pub async fn stop(&self) {
        self.handle.stop(true).await;
        if let Some(served) = self.served.lock().await.take() {
            served
                .await
                .expect("the server task")
                .expect("the server stopped cleanly");
        }
    }

    /// An EBPP lookup with the demo credentials.
    pub async fn lookup(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.remote.lookup(form).await
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
        self.remote.lookup_balance(account).await
    }

    /// The client of `remote` for this server, with the test admin token.
    pub fn remote(&self) -> Remote {
        self.remote.clone()
    }

    /// An admin request with the test token.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.remote.admin(method, path)
    }

    /// GET an admin route with the token: status and parsed body.
    pub async fn admin_get(&self, path: &str) -> (u16, Value) {
        self.remote.admin_get(path).await
    }

    /// POST JSON to an admin route with the token: status and parsed body.
    pub async fn admin_post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.remote.admin_post(path, body).await
    }

    /// PUT a raw body to an admin route with the token: status and parsed body.
    pub async fn admin_put(&self, path: &str, body: &str) -> (u16, Value) {
        self.remote.admin_put(path, body).await
    }

    /// `POST /admin/postings/search`.
    pub async fn search(&self, body: &Value) -> (u16, Value) {
        self.admin_post("/admin/postings/search", body).await
    }

    /// The text of `GET /metrics`.
    pub async fn metrics_text(&self) -> String {
        super::fetch_metrics(&self.client, &self.address).await
    }
}
