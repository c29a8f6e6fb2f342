//! The scenarios: what each one sends and what a correct answer looks like.
//!
//! Requests are built as raw HTTP/1.1 bytes. Checks parse the answer (typed, ignoring fields we
//! do not look at) and compare it with what was sent; error messages carry no per-request data so
//! that identical failures aggregate into one line.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use crate::client::{Rng, Scenario};

pub const CLIENT_KEY: &str = "demo-client";
pub const API_KEY: &str = "demo-api-key";
pub const ADMIN_TOKEN: &str = "bench-admin-token";
pub const EMPAYRE_PATH: &str = "/empayre/webhook";

pub fn account_number(i: u64) -> String {
    format!("ACC-{i:08}")
}

pub fn customer_reference(i: u64) -> String {
    format!("C-{i:08}")
}

/// One generated account as a JSON line of the accounts file (docs/operations.md, Accounts file): USD, active,
/// one profile, no payment limits of its own, an opening balance that small postings never exhaust.
pub fn account_line(i: u64) -> String {
    let line = json!({
        "account_number": account_number(i),
        "account_holder_name": format!("Holder {i}"),
        "status": "active",
        "currency": "USD",
        "warning": null,
        "current_balance": "1000000.00",
        "minimum_payment_due": "25.00",
        "payment_due_date": "2026-12-10",
        "customers": [{
            "customer_reference": customer_reference(i),
            "first_name": "Bench",
            "last_name": format!("Customer{i}"),
            "email": format!("c{i}@example.com"),
            "status": "active",
            "warning": null,
        }],
    });
    line.to_string()
}

fn push_request(out: &mut Vec<u8>, method: &str, path: &str, host: &str, headers: &[(&str, &str)], body: &[u8]) {
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if method != "GET" {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// A complete GET request.
pub fn get_request(host: &str, path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    push_request(&mut out, "GET", path, host, &[], b"");
    out
}

fn json_of<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("answer is not the expected JSON ({})", e.classify_name()))
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "wrong shape",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

fn expect_status(status: u16, want: u16, body: &[u8]) -> Result<(), String> {
    if status == want {
        return Ok(());
    }
    // The first bytes of the answer say why (EBPP error envelope, 401 message, ...); cut them
    // short so the same failure aggregates.
    let text = String::from_utf8_lossy(&body[..body.len().min(160)]).into_owned();
    Err(format!("expected {want}, got {status}: {text}"))
}

// ---------------------------------------------------------------------------------------------

/// `GET /health/live`: the baseline of what actix, the client and the loopback cost.
pub struct Health {
    request: Vec<u8>,
}

impl Health {
    pub fn new(host: &str) -> Self {
        Self {
            request: get_request(host, "/health/live"),
        }
    }
}

#[derive(Deserialize)]
struct StatusAnswer {
    status: String,
}

impl Scenario for Health {
    type Expect = ();

    fn prepare(&self, _rng: &mut Rng, out: &mut Vec<u8>) -> Option<()> {
        out.extend_from_slice(&self.request);
        Some(())
    }

    fn check(&self, _: &(), status: u16, body: &[u8]) -> Result<(), String> {
        expect_status(status, 200, body)?;
        let a: StatusAnswer = json_of(body)?;
        if a.status != "live" {
            return Err("status is not \"live\"".into());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------

/// `POST /mpacustomers` with `account_number=<random account>` as a form.
pub struct Lookup {
    host: String,
    accounts: u64,
}

impl Lookup {
    pub fn new(host: &str, accounts: u64) -> Self {
        Self {
            host: host.to_string(),
            accounts,
        }
    }
}

#[derive(Deserialize)]
struct LookupAnswer {
    list: Vec<LookupProfile>,
}

#[derive(Deserialize)]
struct LookupProfile {
    customer_reference: String,
    customer_accounts: AccountList,
}

#[derive(Deserialize)]
struct AccountList {
    list: Vec<AccountView>,
}

#[derive(Deserialize)]
struct AccountView {
    account_number: String,
    current_balance: String,
}

impl Scenario for Lookup {
    type Expect = u64;

    fn prepare(&self, rng: &mut Rng, out: &mut Vec<u8>) -> Option<u64> {
        let i = rng.below(self.accounts);
        let body = format!("account_number={}", account_number(i));
        push_request(
            out,
            "POST",
            "/mpacustomers",
            &self.host,
            &[
                ("client-key", CLIENT_KEY),
                ("api-key", API_KEY),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            body.as_bytes(),
        );
        Some(i)
    }

    fn check(&self, i: &u64, status: u16, body: &[u8]) -> Result<(), String> {
        expect_status(status, 200, body)?;
        let a: LookupAnswer = json_of(body)?;
        let want_account = account_number(*i);
        let want_profile = customer_reference(*i);
        let profile = a
            .list
            .iter()
            .find(|p| p.customer_reference == want_profile)
            .ok_or("the account's profile is not in the answer")?;
        let account = profile
            .customer_accounts
            .list
            .iter()
            .find(|acc| acc.account_number == want_account)
            .ok_or("the account is not in its profile's customer_accounts")?;
        if account.current_balance.parse::<f64>().is_err() {
            return Err("current_balance is not a decimal string".into());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------

/// `POST /paymentposting`: a new payment (fresh numeric id, status processed, 1.00 USD) on a
/// random account, in the body shape of `tests/api/helpers.rs::payment()`.
pub struct Payment {
    host: String,
    accounts: u64,
    /// The last id used; shared by every payment scenario of a run so ids never repeat.
    next_id: Arc<AtomicU64>,
}

impl Payment {
    pub fn new(host: &str, accounts: u64, next_id: Arc<AtomicU64>) -> Self {
        Self {
            host: host.to_string(),
            accounts,
            next_id,
        }
    }
}

pub struct PaymentExpect {
    id: u64,
    account: u64,
}

#[derive(Deserialize)]
struct PaymentAnswer {
    posting_info: PaymentInfo,
}

#[derive(Deserialize)]
struct PaymentInfo {
    id: String,
    status: String,
    account_number: String,
    current_balance: String,
    payment_reference: String,
}

pub fn payment_body(id: u64, account: u64) -> String {
    let account = account_number(account);
    json!({"posting_info": {
        "id": id.to_string(),
        "amount": "1.00",
        "confirmation_number": format!("CONF{id}"),
        "currency_code3d": "USD",
        "custom_fields": {},
        "customer": {"id": "1", "customer_reference": customer_reference_of(&account), "first_name": "Bench"},
        "customer_account": {"id": "2", "account_number": account},
        "funding_account": {"id": "3", "account_number": "xxxxxx6789", "account_type": "bank"},
        "payment_date": "2026-11-21",
        "payment_method": "ach",
        "payment_network_response": {"payment_auth_code": "A1"},
        "payment_schedule_type": "one_time_payment",
        "status": "processed",
    }})
    .to_string()
}

fn customer_reference_of(account: &str) -> String {
    account.replacen("ACC-", "C-", 1)
}

impl Scenario for Payment {
    type Expect = PaymentExpect;

    fn prepare(&self, rng: &mut Rng, out: &mut Vec<u8>) -> Option<PaymentExpect> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let account = rng.below(self.accounts);
        let body = payment_body(id, account);
        push_request(
            out,
            "POST",
            "/paymentposting",
            &self.host,
            &[
                ("client-key", CLIENT_KEY),
                ("api-key", API_KEY),
                ("content-type", "application/json"),
            ],
            body.as_bytes(),
        );
        Some(PaymentExpect { id, account })
    }

    fn check(&self, e: &PaymentExpect, status: u16, body: &[u8]) -> Result<(), String> {
        expect_status(status, 200, body)?;
        let a: PaymentAnswer = json_of(body)?;
        let p = a.posting_info;
        if p.id != e.id.to_string() {
            return Err("answer names another posting id".into());
        }
        if p.status != "processed" {
            return Err("answer status is not processed".into());
        }
        if p.account_number != account_number(e.account) {
            return Err("answer names another account".into());
        }
        if p.current_balance.parse::<f64>().is_err() {
            return Err("current_balance is not a decimal string".into());
        }
        if p.payment_reference.is_empty() {
            return Err("payment_reference is empty".into());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------

/// `POST /empayre/webhook`: pre-signed `PaymentCaptured` events, each with a new eventID and
/// invoice, naming a random account in `invoice.metadata.account_number`.
pub struct Empayre {
    /// Complete request bytes, signed before the scenario starts.
    pool: Vec<Vec<u8>>,
    next: AtomicUsize,
}

/// The event body of `tests/api/empayre.rs::payment_event()` for a captured 1.00 USD payment.
pub fn empayre_event(event_id: u64, account: u64) -> Vec<u8> {
    let invoice_id = format!("bench-inv-{event_id}");
    let event = json!({
        "eventID": event_id, "occuredAt": "2026-11-21T09:01:00.5Z", "topic": "InvoicesTopic",
        "eventType": "PaymentCaptured",
        "invoice": {
            "id": invoice_id, "shopID": "shop-1", "createdAt": "2026-11-21T09:00:00Z", "status": "paid",
            "dueDate": "2026-11-22T09:00:00Z", "amount": 100, "currency": "USD", "product": "Bill",
            "metadata": {"account_number": account_number(account)},
        },
        "payment": {
            "id": "1", "createdAt": "2026-11-21T09:00:30Z", "status": "captured", "amount": 100, "currency": "USD",
            "paymentToolToken": "eyJzZWNyZXQtY2FyZC10b2tlbi12YWx1ZSJ9", "paymentSession": "c2Vzc2lvbi1zZWNyZXQ",
            "contactInfo": {"email": "payer.private@example.com", "phoneNumber": "+79990001122"},
            "payer": {"payerType": "PaymentResourcePayer", "paymentToolToken": "eyJzZWNyZXQtY2FyZC10b2tlbi12YWx1ZSJ9",
                      "paymentSession": "c2Vzc2lvbi1zZWNyZXQ", "contactInfo": {"email": "payer.private@example.com"}},
            "fee": 0
        }
    });
    event.to_string().into_bytes()
}

/// One complete signed webhook request.
pub fn empayre_request(host: &str, body: &[u8], signature: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 512);
    push_request(
        &mut out,
        "POST",
        EMPAYRE_PATH,
        host,
        &[("content-type", "application/json"), ("content-signature", signature)],
        body,
    );
    out
}

impl Empayre {
    pub fn new(pool: Vec<Vec<u8>>) -> Self {
        Self {
            pool,
            next: AtomicUsize::new(0),
        }
    }
}

impl Scenario for Empayre {
    type Expect = ();

    fn prepare(&self, _rng: &mut Rng, out: &mut Vec<u8>) -> Option<()> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        out.extend_from_slice(self.pool.get(i)?);
        Some(())
    }

    fn check(&self, _: &(), status: u16, body: &[u8]) -> Result<(), String> {
        expect_status(status, 200, body)?;
        let a: StatusAnswer = json_of(body)?;
        if a.status != "stored" {
            return Err(format!("answer status is {:?}, not \"stored\"", a.status));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------

/// `POST /admin/postings/search` for the last day (every posting of the run), page 1, size 50,
/// newest first.
pub struct Search {
    request: Vec<u8>,
    /// Postings known to be in the window: the answer's totalCount must be at least this.
    pub min_total: u64,
}

pub const SEARCH_PAGE_SIZE: u64 = 50;

pub fn search_body(now: chrono::DateTime<chrono::Utc>) -> String {
    let from = now - chrono::Duration::days(1);
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    json!({
        "paging": {"page": 1, "size": SEARCH_PAGE_SIZE},
        "searchParameters": [
            {"name": "received_at", "method": "between", "searchParameter": [fmt(from), fmt(now)]}
        ],
        "orderParameters": [{"field": "received_at", "typeOrder": "DESC"}]
    })
    .to_string()
}

pub fn search_request(host: &str, body: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let auth = format!("Bearer {ADMIN_TOKEN}");
    push_request(
        &mut out,
        "POST",
        "/admin/postings/search",
        host,
        &[("authorization", &auth), ("content-type", "application/json")],
        body.as_bytes(),
    );
    out
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchAnswer {
    pub total_count: u64,
    pub records: Vec<serde_json::Value>,
}

impl Search {
    pub fn new(request: Vec<u8>, min_total: u64) -> Self {
        Self { request, min_total }
    }

    pub fn check_answer(&self, status: u16, body: &[u8]) -> Result<SearchAnswer, String> {
        expect_status(status, 200, body)?;
        let a: SearchAnswer = json_of(body)?;
        if a.total_count < self.min_total {
            return Err(format!(
                "totalCount {} is below the {} postings made in the window",
                a.total_count, self.min_total
            ));
        }
        let want = a.total_count.min(SEARCH_PAGE_SIZE) as usize;
        if a.records.len() != want {
            return Err(format!("{} records on page 1, expected {want}", a.records.len()));
        }
        Ok(a)
    }
}

impl Scenario for Search {
    type Expect = ();

    fn prepare(&self, _rng: &mut Rng, out: &mut Vec<u8>) -> Option<()> {
        out.extend_from_slice(&self.request);
        Some(())
    }

    fn check(&self, _: &(), status: u16, body: &[u8]) -> Result<(), String> {
        self.check_answer(status, body).map(|_| ())
    }
}

// ---------------------------------------------------------------------------------------------

/// `GET` of one console page with a signed-in session cookie; the answer must be a whole page.
pub struct ConsolePage {
    request: Vec<u8>,
}

impl ConsolePage {
    pub fn new(host: &str, path: &str, session_cookie: &str) -> Self {
        let mut request = Vec::new();
        push_request(&mut request, "GET", path, host, &[("cookie", session_cookie)], b"");
        Self { request }
    }
}

impl Scenario for ConsolePage {
    type Expect = ();

    fn prepare(&self, _rng: &mut Rng, out: &mut Vec<u8>) -> Option<()> {
        out.extend_from_slice(&self.request);
        Some(())
    }

    fn check(&self, _: &(), status: u16, body: &[u8]) -> Result<(), String> {
        expect_status(status, 200, body)?;
        if !body.trim_ascii_end().ends_with(b"</html>") {
            return Err("not a whole HTML page".into());
        }
        Ok(())
    }
}
