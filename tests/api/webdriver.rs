//! A small W3C WebDriver client for the console's browser tests: Debian's `chromedriver`
//! driving Debian's headless `chromium`, started once per test binary.
//!
//! Written on `reqwest` (already a dependency) rather than pulling a WebDriver crate: the tests
//! use a dozen commands of a stable standard, and a client crate would add its own HTTP and TLS
//! stack to the build of a 2-core CI machine.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};

/// The key WebDriver wraps element references in.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
pub const ENTER: &str = "\u{E007}";
pub const TAB: &str = "\u{E004}";

const CHROMIUM: &str = "/usr/bin/chromium";
const INSTALL_HINT: &str = "the console's browser tests need Debian's chromium and chromium-driver: \
    `bash scripts/test.sh` installs them, or `apt-get install chromium chromium-driver`";

pub struct Browser {
    driver: tokio::process::Child,
    http: reqwest::Client,
    base: String,
    _profile: tempfile::TempDir,
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Browser {
    /// Starts chromedriver on a free port and one headless Chromium session with a fresh
    /// profile. Fails, naming what to install, when either program is missing.
    pub async fn start(width: u32, height: u32) -> Browser {
        let driver_path = which("chromedriver").unwrap_or_else(|| panic!("chromedriver not found: {INSTALL_HINT}"));
        assert!(Path::new(CHROMIUM).is_file(), "{CHROMIUM} not found: {INSTALL_HINT}");
        let port = free_port();
        let driver = tokio::process::Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("chromedriver does not start ({e}): {INSTALL_HINT}"));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        let root = format!("http://127.0.0.1:{port}");
        let mut ready = false;
        for _ in 0..100 {
            if let Ok(r) = http.get(format!("{root}/status")).send().await {
                if r.json::<Value>().await.is_ok_and(|v| v["value"]["ready"] == true) {
                    ready = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "chromedriver did not become ready on port {port}");
        let profile = tempfile::tempdir().expect("profile dir");
        // As root, Chromium needs --no-sandbox; the background-networking flags keep it from
        // calling out of this machine's closed network at every start.
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            &format!("--user-data-dir={}", profile.path().display()),
            &format!("--window-size={width},{height}"),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let r = http
            .post(format!("{root}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session sent");
        let body: Value = r.json().await.expect("session answer");
        let session = body["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("Chromium did not start a session: {body}; {INSTALL_HINT}"))
            .to_string();
        Browser {
            driver,
            http,
            base: format!("{root}/session/{session}"),
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"));
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "webdriver {method} {path}: {status} {v}");
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits (up to 10 s) until the page's URL contains `part`, as after a key press that
    /// submits a form (WebDriver does not wait for that navigation); fails naming both.
    pub async fn wait_for_url(&self, part: &str) -> String {
        let mut url = String::new();
        for _ in 0..100 {
            url = self.url().await;
            if url.contains(part) {
                let _ = self.script("return document.readyState").await;
                return url;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the browser did not reach a URL containing {part:?}; it is at {url}");
    }

    /// Waits (up to 10 s) for an element to appear, as after a form post that takes a while.
    pub async fn wait_for(&self, css: &str) {
        for _ in 0..100 {
            let r = self
                .http
                .post(format!("{}/element", self.base))
                .json(&json!({"using": "css selector", "value": css}))
                .send()
                .await
                .expect("find sent");
            if r.status().is_success() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no element {css:?} appeared on {}", self.url().await);
    }

    /// Waits (up to 10 s) until the element's text contains `needle`, as after a click that
    /// loads another page (WebDriver may answer before the new page is there, and an element
    /// of the old page goes stale). Returns the text; fails naming what it saw last.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let mut seen = String::new();
        for _ in 0..100 {
            let found = self
                .http
                .post(format!("{}/element", self.base))
                .json(&json!({"using": "css selector", "value": css}))
                .send()
                .await
                .expect("find sent");
            let v: Value = found.json().await.unwrap_or(Value::Null);
            if let Some(id) = v["value"][ELEMENT].as_str() {
                let r = self
                    .http
                    .get(format!("{}/element/{id}/text", self.base))
                    .send()
                    .await
                    .expect("text sent");
                let t: Value = r.json().await.unwrap_or(Value::Null);
                if let Some(text) = t["value"].as_str() {
                    seen = text.to_string();
                    if seen.contains(needle) {
                        return seen;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{css:?} never contained {needle:?} on {}; last seen: {seen:?}",
            self.url().await
        );
    }

    /// The element a CSS selector finds; fails naming the selector and the page.
    pub async fn find(&self, css: &str) -> String {
        let r = self
            .http
            .post(format!("{}/element", self.base))
            .json(&json!({"using": "css selector", "value": css}))
            .send()
            .await
            .expect("find sent");
        let v: Value = r.json().await.unwrap_or(Value::Null);
        match v["value"][ELEMENT].as_str() {
            Some(id) => id.to_string(),
            None => panic!("no element {css:?} on {}", self.url().await),
        }
    }

    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{id}/click"), Some(json!({})))
            .await;
    }

    /// Types into the element (keys such as [`ENTER`] included).
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Presses keys wherever the focus is, as a keyboard user would.
    pub async fn keys(&self, text: &str) {
        let actions: Vec<Value> = text
            .chars()
            .flat_map(|c| {
                [
                    json!({"type": "keyDown", "value": c.to_string()}),
                    json!({"type": "keyUp", "value": c.to_string()}),
                ]
            })
            .collect();
        self.call(
            reqwest::Method::POST,
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        )
        .await;
    }

    pub async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        self.call(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Runs a script in the page and returns its value.
    pub async fn script(&self, js: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": js, "args": []})),
        )
        .await
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    /// Saves a PNG of the viewport.
    pub async fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("screenshot data"))
            .expect("screenshot base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("screenshot written");
    }

    /// Ends the session and the driver.
    pub async fn quit(mut self) {
        let _ = self.http.delete(&self.base).send().await;
        let _ = self.driver.kill().await;
    }
}
