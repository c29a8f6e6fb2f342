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
/// A second EBPP client (the bench's config adds it) that sends one posting in ten, so a
/// search by client key has something to find and something to leave out.
pub const SECOND_CLIENT_KEY: &str = "bench-second-client";
pub const SECOND_API_KEY: &str = "bench-second-api-key";
pub const ADMIN_TOKEN: &str = "bench-admin-token";
pub const EMPAYRE_PATH: &str = "/empayre/webhook";

pub fn account_number(i: u64) -> String {
    format!("ACC-{i:08}")
}

pub fn customer_reference(i: u64) -> String {
    format!("C-{i:08}")
}

/// One account in twenty is kept in EUR, the others in USD: a search by currency finds ~5 %.
pub fn currency_of(account: u64) -> &'static str {
    if account % 20 == 7 {
        "EUR"
    } else {
        "USD"
    }
}

/// A USD account near `i` (Empayre's bench events are in USD).
pub fn usd_account(i: u64) -> u64 {
    if currency_of(i) == "USD" {
        i
    } else {
        i - 1
    }
}

/// A well-mixed 64-bit value of `x` (splitmix64's finaliser): the fill's varied fields are
/// functions of the posting id, so a run, and a kept store reused later, are reproducible.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The amount of payment `id` in cents: one in ten a whole amount of 1 to 500 (so round
/// thresholds such as 100.00 meet records exactly on them), the others 0.01 to 500.00.
pub fn amount_cents(id: u64) -> u64 {
    let h = mix(id);
    if h.is_multiple_of(10) {
        (h / 10 % 500 + 1) * 100
    } else {
        h / 10 % 50_000 + 1
    }
}

fn decimal(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// The status payment `id` is posted with: mostly processed; some arrive already returned,
/// declined or scheduled (recorded without effect or pending). Every id that is a multiple of
/// 40 is processed: refunds take those as their source payment.
pub fn payment_status(id: u64) -> &'static str {
    if id.is_multiple_of(40) {
        return "processed";
    }
    match mix(id ^ 0x5555) % 100 {
        0..=3 => "returned",
        4..=5 => "declined",
        6 => "scheduled",
        _ => "processed",
    }
}

/// The payment method of payment `id`.
pub fn payment_method(id: u64) -> &'static str {
    match mix(id ^ 0xaaaa) % 20 {
        0..=9 => "ach",
        10..=13 => "visa_debit",
        14..=16 => "master_credit",
        17..=18 => "check",
        _ => "apple_pay",
    }
}

/// Whether posting `id` is a refund (one in forty) rather than a payment; its source is the
/// payment 1,020 ids before it (a multiple of 40, always processed, long answered), when that
/// one was posted by this scenario (ids above `first`: a kept store's ids have gaps).
pub fn refund_source(id: u64, first: u64) -> Option<u64> {
    (id % 40 == 20 && id > first + 1_020).then(|| id - 1_020)
}

/// The account payment `id` is posted to.
fn account_of(id: u64, accounts: u64) -> u64 {
    mix(id ^ 0x1234) % accounts
}

/// One generated account as a JSON line of the accounts file (docs/operations.md, Accounts file): USD, active,
/// one profile, no payment limits of its own, an opening balance that small postings never exhaust.
pub fn account_line(i: u64) -> String {
    let line = json!({
        "account_number": account_number(i),
        "account_holder_name": format!("Holder {i}"),
        "status": "active",
        "currency": currency_of(i),
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

/// `POST /paymentposting` with a new id, or one time in forty `POST /paymentrefundposting`
/// refunding an earlier payment: a varied day of EBPP postings (amounts, statuses, payment
/// methods, two currencies, two client keys, refunds), each field a function of the id.
pub struct Payment {
    host: String,
    accounts: u64,
    /// The last id used; shared by every payment scenario of a run so ids never repeat.
    next_id: Arc<AtomicU64>,
    /// The last id used before this scenario started (refunds only name payments after it).
    first: u64,
}

impl Payment {
    pub fn new(host: &str, accounts: u64, next_id: Arc<AtomicU64>) -> Self {
        Self {
            host: host.to_string(),
            accounts,
            first: next_id.load(Ordering::Relaxed),
            next_id,
        }
    }
}

pub struct PaymentExpect {
    id: u64,
    account: u64,
    status: &'static str,
    refund: bool,
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
    #[serde(default)]
    payment_reference: String,
    #[serde(default)]
    refund_reference: String,
}

/// The payment posting body of payment `id` to `account`.
pub fn payment_body(id: u64, account: u64) -> String {
    let account_text = account_number(account);
    json!({"posting_info": {
        "id": id.to_string(),
        "amount": decimal(amount_cents(id)),
        "confirmation_number": format!("CONF{id}"),
        "currency_code3d": currency_of(account),
        "custom_fields": {},
        "customer": {"id": "1", "customer_reference": customer_reference(account), "first_name": "Bench"},
        "customer_account": {"id": "2", "account_number": account_text},
        "funding_account": {"id": "3", "account_number": "xxxxxx6789", "account_type": "bank"},
        "payment_date": "2026-11-21",
        "payment_method": payment_method(id),
        "payment_network_response": {"payment_auth_code": "A1"},
        "payment_schedule_type": "one_time_payment",
        "status": payment_status(id),
    }})
    .to_string()
}

/// The refund posting body of refund `id` giving back all of payment `source`.
pub fn refund_body(id: u64, source: u64) -> String {
    json!({"posting_info": {
        "id": id.to_string(),
        "status": "processed",
        "confirmation_number": format!("RCONF{id}"),
        "refund_amount": decimal(amount_cents(source)),
        "source_payment": {"id": source.to_string()},
    }})
    .to_string()
}

impl Scenario for Payment {
    type Expect = PaymentExpect;

    fn prepare(&self, _rng: &mut Rng, out: &mut Vec<u8>) -> Option<PaymentExpect> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (path, body, account, status, refund) = match refund_source(id, self.first) {
            Some(source) => {
                let account = account_of(source, self.accounts);
                (
                    "/paymentrefundposting",
                    refund_body(id, source),
                    account,
                    "processed",
                    true,
                )
            }
            None => {
                let account = account_of(id, self.accounts);
                (
                    "/paymentposting",
                    payment_body(id, account),
                    account,
                    payment_status(id),
                    false,
                )
            }
        };
        let (client_key, api_key) = if mix(id ^ 0xc11e).is_multiple_of(10) {
            (SECOND_CLIENT_KEY, SECOND_API_KEY)
        } else {
            (CLIENT_KEY, API_KEY)
        };
        push_request(
            out,
            "POST",
            path,
            &self.host,
            &[
                ("client-key", client_key),
                ("api-key", api_key),
                ("content-type", "application/json"),
            ],
            body.as_bytes(),
        );
        Some(PaymentExpect {
            id,
            account,
            status,
            refund,
        })
    }

    fn check(&self, e: &PaymentExpect, status: u16, body: &[u8]) -> Result<(), String> {
        expect_status(status, 200, body)?;
        let a: PaymentAnswer = json_of(body)?;
        let p = a.posting_info;
        if p.id != e.id.to_string() {
            return Err("answer names another posting id".into());
        }
        if p.status != e.status {
            return Err("answer status is not the posted one".into());
        }
        if p.account_number != account_number(e.account) {
            return Err("answer names another account".into());
        }
        if p.current_balance.parse::<f64>().is_err() {
            return Err("current_balance is not a decimal string".into());
        }
        let reference = if e.refund {
            &p.refund_reference
        } else {
            &p.payment_reference
        };
        if reference.is_empty() {
            return Err("the payment or refund reference is empty".into());
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
            "metadata": {"account_number": account_number(usd_account(account))},
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

/// The search of the last day with more parameters (`[{"name", "method", "searchParameter"}]`),
/// page 1 of 50, newest first: what the admin API can filter on and the console form cannot.
pub fn filtered_search_body(now: chrono::DateTime<chrono::Utc>, extra: &[serde_json::Value]) -> String {
    let mut body: serde_json::Value =
        serde_json::from_str(&search_body(now)).unwrap_or_else(|_| json!({"searchParameters": []}));
    if let Some(params) = body["searchParameters"].as_array_mut() {
        params.extend(extra.iter().cloned());
    }
    body.to_string()
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
