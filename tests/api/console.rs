//! The console over plain HTTP: what a browser cannot be trusted to check for us — headers,
//! cookie attributes, redirects, CSRF refusals, the sign-in delay and its record, 404 when the
//! admin API is off. The journey in a real browser is `console_browser.rs`.

use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{json, Value};

use crate::helpers::{
    captured_event, metric_value, payment, spawn_app_over, spawn_app_with, spawn_full_app, test_ca, Remote, TestApp,
    Transport, ADMIN_TOKEN,
};

/// A client that shows redirects instead of following them, and keeps no cookies of its own.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// The value of `name="field" value="..."` in a page.
fn form_value(page: &str, field: &str) -> String {
    let marker = format!("name=\"{field}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {field} field in {page}"))
        + marker.len();
    page[start..].split('"').next().unwrap_or_default().to_string()
}

fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect()
}

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or_default().to_string()
}

/// Signs in through the form with `http`; returns the whole `Set-Cookie` values of the form's
/// cookie and of the session cookie.
async fn sign_in_cookies(http: &reqwest::Client, app: &TestApp) -> (String, String) {
    let form = http
        .get(format!("{}/console/sign-in", app.address))
        .send()
        .await
        .expect("form");
    let form_cookie = set_cookies(&form)[0].clone();
    let page = form.text().await.expect("page");
    let r = http
        .post(format!("{}/console/sign-in", app.address))
        .header(COOKIE, cookie_pair(&form_cookie))
        .form(&[
            ("token", ADMIN_TOKEN),
            ("csrf", &form_value(&page, "csrf")),
            ("next", "/console"),
        ])
        .send()
        .await
        .expect("sign-in");
    assert_eq!(r.status(), 303, "signed in");
    let session = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("console_session="))
        .expect("session cookie");
    (form_cookie, session)
}

/// Signs in through the form; returns the session cookie pair and the page's CSRF token.
async fn sign_in(app: &TestApp) -> (String, String) {
    let http = client();
    let session = cookie_pair(&sign_in_cookies(&http, app).await.1);
    let overview = http
        .get(format!("{}/console", app.address))
        .header(COOKIE, &session)
        .send()
        .await
        .expect("overview");
    assert_eq!(overview.status(), 200);
    let csrf = form_value(&overview.text().await.expect("page"), "csrf");
    (session, csrf)
}

#[tokio::test]
async fn the_console_is_absent_when_the_admin_api_is_off() {
    let app = spawn_app_with(|s| s.admin.token = "".into()).await;
    for path in ["/console", "/console/sign-in", "/console/assets/console.css"] {
        let r = client()
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn pages_without_a_session_send_to_sign_in_with_strict_headers() {
    let app = spawn_full_app().await;
    for (path, next) in [
        ("/console", "%2Fconsole"),
        ("/console/search?id=P1", "%2Fconsole%2Fsearch%3Fid%3DP1"),
        ("/console/accounts/ACC-100200", "%2Fconsole%2Faccounts%2FACC-100200"),
        ("/console/unmatched", "%2Fconsole%2Funmatched"),
        ("/console/quarantine", "%2Fconsole%2Fquarantine"),
        ("/console/refusals", "%2Fconsole%2Frefusals"),
        ("/console/reconcile", "%2Fconsole%2Freconcile"),
        ("/console/search.csv", "%2Fconsole%2Fsearch.csv"),
        ("/console/records/payment/P1", "%2Fconsole%2Frecords%2Fpayment%2FP1"),
    ] {
        let r = client()
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(
            r.headers().get(LOCATION).and_then(|v| v.to_str().ok()),
            Some(format!("/console/sign-in?next={next}").as_str()),
            "{path}"
        );
        assert_eq!(r.headers()["x-frame-options"], "DENY", "{path}");
    }
    // A forged or stale session is no session.
    let r = client()
        .get(format!("{}/console", app.address))
        .header(COOKIE, "console_session=forged")
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 303);

    let r = client()
        .get(format!("{}/console/sign-in", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().expect("csp");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let cookie = &set_cookies(&r)[0];
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
}

#[tokio::test]
async fn over_tls_the_console_cookies_are_secure() {
    let app = spawn_app_over(Transport::Tls, |_| {}).await;
    assert!(app.address.starts_with("https://"));
    let https = test_ca().client(None).redirect(Policy::none()).build().expect("client");
    let (form_cookie, session) = sign_in_cookies(&https, &app).await;
    for cookie in [&form_cookie, &session] {
        for attribute in ["Secure", "HttpOnly", "SameSite=Strict"] {
            assert!(cookie.contains(attribute), "{attribute} in {cookie}");
        }
    }
    let overview = https
        .get(format!("{}/console", app.address))
        .header(COOKIE, cookie_pair(&session))
        .send()
        .await
        .expect("overview");
    assert_eq!(overview.status(), 200, "the session works over TLS");
}

#[tokio::test]
async fn sign_in_gives_an_expiring_strict_session_and_sign_out_ends_it() {
    let app = spawn_full_app().await;
    let http = client();
    let form = http
        .get(format!("{}/console/sign-in?next=/console/refusals", app.address))
        .send()
        .await
        .expect("form");
    let pre = cookie_pair(&set_cookies(&form)[0]);
    let page = form.text().await.expect("page");
    assert_eq!(form_value(&page, "next"), "/console/refusals");
    let r = http
        .post(format!("{}/console/sign-in", app.address))
        .header(COOKIE, &pre)
        .form(&[
            ("token", ADMIN_TOKEN),
            ("csrf", &form_value(&page, "csrf")),
            ("next", "/console/refusals"),
        ])
        .send()
        .await
        .expect("sign-in");
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()[LOCATION],
        "/console/refusals",
        "back where the operator was going"
    );
    let session = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("console_session="))
        .expect("session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age=43200"] {
        assert!(session.contains(attribute), "{attribute} in {session}");
    }
    assert!(!session.contains("Secure"), "plain HTTP here: {session}");
    let session = cookie_pair(&session);

    let (_, csrf) = sign_in(&app).await;
    assert!(csrf.len() >= 40, "a CSRF token of 32 random bytes");
    let r = http
        .post(format!("{}/console/sign-out", app.address))
        .header(COOKIE, &session)
        .form(&[("csrf", "not-the-token")])
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 403, "sign-out is a change: it needs the token too");

    let page = http
        .get(format!("{}/console/refusals", app.address))
        .header(COOKIE, &session)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("text");
    let r = http
        .post(format!("{}/console/sign-out", app.address))
        .header(COOKIE, &session)
        .form(&[("csrf", form_value(&page, "csrf"))])
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/console/sign-in?signed_out=1");
    assert!(set_cookies(&r)
        .iter()
        .any(|c| c.starts_with("console_session=;") && c.contains("Max-Age=0")));
    let r = http
        .get(format!("{}/console", app.address))
        .header(COOKIE, &session)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 303, "the old cookie no longer opens the console");
}

#[tokio::test]
async fn a_wrong_token_is_delayed_refused_and_counted_in_the_rejections() {
    let app = spawn_full_app().await;
    let remote = Remote::of(&app);
    let http = client();
    let form = http
        .get(format!("{}/console/sign-in", app.address))
        .send()
        .await
        .expect("form");
    let pre = cookie_pair(&set_cookies(&form)[0]);
    let page = form.text().await.expect("page");
    let started = Instant::now();
    let r = http
        .post(format!("{}/console/sign-in", app.address))
        .header(COOKIE, &pre)
        .form(&[("token", "guess"), ("csrf", &form_value(&page, "csrf"))])
        .send()
        .await
        .expect("sent");
    // The delay is behaviour (guessing is slow), so its lower bound is checked; nothing here
    // measures speed.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.status(), 401);
    assert!(set_cookies(&r).iter().all(|c| !c.starts_with("console_session=")));
    assert!(r.text().await.expect("page").contains("That token is not valid"));

    let (status, list) = remote.admin_get("/admin/rejections").await;
    assert_eq!(status, 200);
    let item = &list["items"][0];
    assert_eq!(
        (
            item["channel"].as_str(),
            item["endpoint"].as_str(),
            item["cause"].as_str()
        ),
        (Some("admin"), Some("/console/sign-in"), Some("unauthorized")),
        "{list}"
    );
    assert!(list.to_string().find("guess").is_none(), "the guess is not logged");
    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("metrics");
    let text = metrics.text().await.expect("text");
    assert_eq!(
        metric_value(&text, "biller_inbox_rejections_total{cause=\"unauthorized\"}"),
        1.0
    );

    // Without the form's own cookie (a cross-site form post), not even the token is checked.
    let r = http
        .post(format!("{}/console/sign-in", app.address))
        .form(&[("token", ADMIN_TOKEN), ("csrf", &form_value(&page, "csrf"))])
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn changes_without_the_session_token_or_from_another_site_are_refused() {
    let app = spawn_full_app().await;
    let remote = Remote::of(&app);
    assert_eq!(
        remote
            .send_event(&captured_event(7_001, "inv-csrf", None, 1_500))
            .await
            .0,
        200
    );
    let (_, list) = remote.admin_get("/admin/empayre/unmatched").await;
    let key = list["items"][0]["key"].as_str().expect("key").to_string();
    let (session, csrf) = sign_in(&app).await;
    let url = format!("{}/console/unmatched/{}/assign", app.address, urlencode(&key));
    for (what, form, origin) in [
        ("no token", vec![("account_number", "ACC-100200")], None),
        (
            "a wrong token",
            vec![("account_number", "ACC-100200"), ("csrf", "x")],
            None,
        ),
        (
            "another site",
            vec![("account_number", "ACC-100200"), ("csrf", csrf.as_str())],
            Some("http://evil.example"),
        ),
    ] {
        let mut req = client().post(&url).header(COOKIE, &session).form(&form);
        if let Some(o) = origin {
            req = req.header(ORIGIN, o);
        }
        let r = req.send().await.expect("sent");
        assert_eq!(r.status(), 403, "{what}");
        assert!(r.text().await.expect("page").contains("refused"), "{what}");
    }
    let (_, still) = remote.admin_get("/admin/empayre/unmatched").await;
    assert_eq!(still["items"].as_array().map(Vec::len), Some(1), "nothing was assigned");

    let before = remote.admin_balance("ACC-100200").await;
    let r = client()
        .post(&url)
        .header(COOKIE, &session)
        .header(ORIGIN, app.address.as_str())
        .form(&[("account_number", "ACC-100200"), ("csrf", csrf.as_str())])
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 303, "with the token, from the console itself");
    assert_eq!(
        remote.admin_balance("ACC-100200").await,
        before - rust_decimal::Decimal::new(1500, 2)
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn every_page_renders_without_inline_script_or_style_and_search_downloads_csv() {
    let app = spawn_full_app().await;
    let remote = Remote::of(&app);
    let (status, _) = remote
        .post(
            "/paymentposting",
            &payment("880002", "ACC-100200", "12.50", "processed"),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        remote
            .send_event(&captured_event(7_002, "inv-pages", None, 900))
            .await
            .0,
        200
    );
    let (session, _) = sign_in(&app).await;
    for path in [
        "/console",
        "/console/search",
        "/console/search?id=88000%25&sort=amount&dir=asc",
        "/console/search?from=nonsense",
        "/console/records/payment/880002",
        "/console/accounts/ACC-100200",
        "/console/unmatched",
        "/console/quarantine",
        "/console/refusals",
        "/console/reconcile",
    ] {
        let r = client()
            .get(format!("{}{path}", app.address))
            .header(COOKIE, &session)
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 200, "{path}");
        let page = r.text().await.expect("page");
        assert!(!page.contains("style="), "{path}: an inline style the CSP would block");
        for script in page.split("<script").skip(1) {
            assert!(
                script.starts_with(" src=\"/console/assets/"),
                "{path}: an inline script: <script{script}"
            );
        }
        assert!(!page.contains(" onclick="), "{path}");
    }
    let page = client()
        .get(format!("{}/console/search?from=nonsense", app.address))
        .header(COOKIE, &session)
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("page");
    assert!(
        page.contains("is not an RFC 3339 time"),
        "the API's own message on the form"
    );

    let r = client()
        .get(format!("{}/console/search.csv?id=880002", app.address))
        .header(COOKIE, &session)
        .send()
        .await
        .expect("csv");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()[CONTENT_TYPE], "text/csv; charset=utf-8");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .expect("cd")
        .starts_with("attachment;"));
    let csv = r.text().await.expect("csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[0].starts_with("received_at,channel,kind,id,account_number,status,amount,currency"));
    assert!(
        lines[1].contains(",orbipay,payment,880002,ACC-100200,processed,12.50,USD,"),
        "{csv}"
    );

    // The admin API renders the same search as CSV when asked for it.
    let now = chrono::Utc::now();
    let search = json!({"searchParameters": [
        {"name": "received_at", "method": "between", "searchParameter": [
            (now - chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            (now + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)]},
        {"name": "id", "method": "=", "searchParameter": ["880002"]}]});
    let r = app
        .client
        .post(format!("{}/admin/postings/search", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .header("accept", "text/csv")
        .json(&search)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-total-count"], "1");
    assert_eq!(r.text().await.expect("csv"), csv, "one rendering of one result");
    let json: Value = app.search(&search).await.1;
    assert_eq!(json["totalCount"], 1);
}
