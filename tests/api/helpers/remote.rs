//! A client for a running server, in-process or the real binary, that speaks every channel.

use std::collections::BTreeMap;
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::{demo_opening_balances, fixture_signer, TestApp, API_KEY, CLIENT_KEY};

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
        app.remote()
    }

    /// A request to an admin route with the admin token.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(&self.admin_token)
    }

    /// Sends an admin request: status and parsed body (null when not JSON).
    async fn admin_send(&self, request: reqwest::RequestBuilder, what: &str) -> (u16, Value) {
        let r = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("admin {what} not sent: {e}"));
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// POST JSON to an admin route: status and parsed body.
    pub async fn admin_post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.admin_send(self.admin(reqwest::Method::POST, path).json(body), "POST")
            .await
    }

    /// PUT a raw JSON body to an admin route: status and parsed body.
    pub async fn admin_put(&self, path: &str, body: &str) -> (u16, Value) {
        let request = self
            .admin(reqwest::Method::PUT, path)
            .header("content-type", "application/json")
            .body(body.to_string());
        self.admin_send(request, "PUT").await
    }

    /// An EBPP lookup (form-encoded criteria) with the demo credentials.
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

    /// The account's current balance as the EBPP lookup shows it.
    pub async fn lookup_balance(&self, account: &str) -> Decimal {
        let r = self.lookup(&[("account_number", account)]).await;
        assert_eq!(r.status(), 200, "lookup of {account}");
        let body: Value = r.json().await.expect("json");
        body["list"][0]["customer_accounts"]["list"][0]["current_balance"]
            .as_str()
            .expect("balance")
            .parse()
            .expect("decimal")
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
        self.admin_send(self.admin(reqwest::Method::GET, path), "GET").await
    }

    /// `totalCount` of an unfiltered postings search over the last day up to an hour ahead: a
    /// window of whole minutes, so it is counted from the per-minute counts (with the two
    /// partial minutes at its edges walked).
    pub async fn search_total_last_day(&self) -> u64 {
        self.search_total_last_day_where(Vec::new()).await
    }

    /// `totalCount` of a search over the last day (and the next hour) with these other
    /// search parameters.
    pub async fn search_total_last_day_where(&self, mut parameters: Vec<Value>) -> u64 {
        let now = chrono::Utc::now();
        let window = json!({"name": "received_at", "method": "between", "searchParameter": [
            (now - chrono::Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            (now + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ]});
        parameters.push(window);
        let r = self
            .client
            .post(format!("{}/admin/postings/search", self.address))
            .bearer_auth(&self.admin_token)
            .json(&json!({"paging": {"page": 1, "size": 1}, "searchParameters": parameters}))
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
