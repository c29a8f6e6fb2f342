//! The console in a real browser (headless Chromium through chromedriver): the operator's
//! journey from sign-in to sign-out, markup injection, keyboard use, labels and a phone-width
//! window. One browser for the whole journey keeps the suite to a few seconds.
//!
//! Screenshots of every page go to `target/console-screenshots/` (not committed).

use std::path::PathBuf;

use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::fake_empayre::{api_invoice, api_payment, FakeEmpayre, FAKE_TOKEN};
use crate::helpers::{captured_event, fixture_empayre_source, payment, spawn_app_with, Remote, ADMIN_TOKEN};
use crate::webdriver::{Browser, ENTER, TAB};

fn shot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/console-screenshots")
        .join(format!("{name}.png"))
}

/// Form fields without a label (a `<label for>`, `aria-label` or `aria-labelledby`).
const UNLABELLED: &str = r#"
    return Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea'))
      .filter(el => !(el.id && document.querySelector('label[for="' + el.id + '"]'))
                    && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
      .map(el => el.name || el.outerHTML);
"#;

/// The cells' text of the first body row of the table whose caption starts with `caption`.
async fn first_row(browser: &Browser, caption: &str) -> Value {
    browser
        .script(&format!(
            "const t = Array.from(document.querySelectorAll('main table')).find(t => t.caption && t.caption.textContent.startsWith({caption:?})); \
             return t ? Array.from(t.tBodies[0].rows[0].cells).map(c => c.textContent) : null;"
        ))
        .await
}

/// Whether the page is wider than the window (a horizontal scroll of the whole page).
const OVERFLOWS: &str = "return document.documentElement.scrollWidth > window.innerWidth + 1;";

/// Whether the first table scrolls sideways inside its box.
const OVERFLOWS_TABLE: &str =
    "const w = document.querySelector('main .table-wrap'); return w.scrollWidth > w.clientWidth + 1;";

#[tokio::test]
async fn an_operator_works_the_console_in_a_real_browser() {
    // The demo Empayre source, reaching a fake Empayre API for the reconciliation page.
    let fake = FakeEmpayre::start(&["shop-1"]).await;
    let app = spawn_app_with(|s| {
        let mut demo = fixture_empayre_source("demo");
        demo.api_url = Some(fake.url.clone());
        demo.api_token = Some(biller_inbox::empayre::api::ApiToken::inline(FAKE_TOKEN).expect("token"));
        demo.shop_ids = vec!["shop-1".into()];
        s.empayre.sources = vec![demo];
    })
    .await;
    let remote = Remote::of(&app);
    let base = app.address.clone();

    // What the operator will look at: an EBPP posting, a customer whose name is markup, an
    // Empayre payment for no account, and a quarantined body carrying markup in its metadata.
    let (status, _) = remote
        .post(
            "/paymentposting",
            &payment("880001", "ACC-100200", "42.10", "processed"),
        )
        .await;
    assert_eq!(status, 200);
    let accounts = json!([{"account_number": "ACC-XSS-1", "current_balance": "10.00", "customers": [
        {"customer_reference": "C-XSS", "first_name": "<script>window.__pwned = 1</script>Eve", "last_name": "<b>Mallory</b>"}]}]);
    assert_eq!(app.admin_put("/admin/accounts", &accounts.to_string()).await.0, 200);
    assert_eq!(
        remote
            .send_event(&captured_event(9_101, "inv-web-1", None, 2_000))
            .await
            .0,
        200
    );
    let mut odd = captured_event(9_102, "inv-web-2", None, 100);
    odd["eventType"] = json!("InvoiceTeleported");
    odd["invoice"]["metadata"] = json!({"note": "<script>window.__pwned = 2</script>"});
    assert_eq!(remote.send_event(&odd).await.1, json!({"status": "quarantined"}));

    let browser = Browser::start(1280, 800).await;

    // No session: any page sends to sign-in, which has the focus in the token field.
    browser.goto(&format!("{base}/console/unmatched")).await;
    assert!(browser
        .url()
        .await
        .contains("/console/sign-in?next=%2Fconsole%2Funmatched"));
    browser.screenshot(&shot("sign-in")).await;
    assert_eq!(
        browser.script(UNLABELLED).await,
        json!([]),
        "sign-in fields are labelled"
    );
    // A wrong token first: a clear message, still signed out.
    browser.keys(&format!("wrong-token{ENTER}")).await;
    browser.wait_for("p.notice.error").await;
    assert!(browser.text("p.notice.error").await.contains("not valid"));
    // Keyboard only: the token field has the focus again; type and press Enter.
    assert_eq!(browser.script("return document.activeElement.id").await, json!("token"));
    browser.keys(&format!("{ADMIN_TOKEN}{ENTER}")).await;
    // Back where the operator was going.
    browser.wait_for_url("/console/unmatched").await;

    // Overview: healthy; what arrived this hour, by channel (the chart says the same to a
    // screen reader); one payment waiting; the wrong token among the refusals by cause.
    browser.goto(&format!("{base}/console")).await;
    assert_eq!(browser.text("h1").await, "Overview");
    assert!(browser
        .text("section[aria-labelledby=health-h]")
        .await
        .contains("Ready"));
    let received = browser.text("section[aria-labelledby=recv-h]").await;
    assert!(
        received.contains("1 EBPP postings, 1 Empayre payments and refunds"),
        "{received}"
    );
    let chart = browser
        .script("return document.querySelector('figure.chart svg').getAttribute('aria-label');")
        .await;
    assert!(
        chart
            .as_str()
            .is_some_and(|l| l.starts_with("Last hour: 1 EBPP postings")),
        "{chart}"
    );
    assert_eq!(browser.text("section[aria-labelledby=wait-h] p.figure").await, "1");
    let outcomes = browser.text("section[aria-labelledby=acc-h]").await;
    assert!(outcomes.contains("Refused unauthorized 1"), "{outcomes}");
    browser.screenshot(&shot("overview")).await;
    assert_eq!(browser.script(UNLABELLED).await, json!([]));
    // The first Tab reaches the skip link, the next ones the navigation.
    browser.keys(TAB).await;
    assert_eq!(
        browser.script("return document.activeElement.textContent").await,
        json!("Skip to content")
    );
    browser.keys(TAB).await;
    browser.keys(TAB).await;
    assert_eq!(
        browser.script("return document.activeElement.textContent").await,
        json!("Overview")
    );
    // Times: UTC on the page, local time on hover (set by the script).
    let time = browser
        .script("const t = document.querySelector('time'); return [t.textContent, t.title];")
        .await;
    assert!(time[0].as_str().is_some_and(|t| t.ends_with(" UTC")), "{time}");
    assert!(time[1].as_str().is_some_and(|t| t.ends_with("(local time)")), "{time}");

    // The overview refreshes itself in place: a posting made after the page loaded shows in
    // its counts without a navigation (a value put on the window survives a refresh in place,
    // a reload would drop it). The address asks for a 2 s period instead of 15 s.
    browser.goto(&format!("{base}/console?refresh=2")).await;
    assert!(browser.text("main p.lead").await.contains("Refreshes every 2 seconds."));
    browser.script("window.__same_page = true; return null;").await;
    let (status, _) = remote
        .post("/paymentposting", &payment("880002", "ACC-100201", "5.00", "processed"))
        .await;
    assert_eq!(status, 200);
    let received = browser
        .wait_for_text("section[aria-labelledby=recv-h]", "2 EBPP postings")
        .await;
    assert!(
        received.contains("2 EBPP postings, 1 Empayre payments and refunds"),
        "{received}"
    );
    assert_eq!(
        browser.script("return window.__same_page === true;").await,
        json!(true),
        "refreshed in place, not reloaded"
    );
    assert!(browser.url().await.ends_with("/console?refresh=2"));

    // Search: the EBPP posting appears; open it.
    browser.goto(&format!("{base}/console/search")).await;
    browser.type_into("#id", &format!("880001{ENTER}")).await;
    browser.wait_for_url("id=880001").await;
    browser.wait_for_text("div.pager", "1 records").await;
    let cell = browser
        .script(
            "const c = document.querySelector('tbody td.num'); return [c.textContent, getComputedStyle(c).textAlign];",
        )
        .await;
    assert_eq!(
        cell,
        json!(["42.10 USD", "right"]),
        "amounts right-aligned with the currency's decimals"
    );
    browser.screenshot(&shot("search")).await;
    assert_eq!(
        browser.script(UNLABELLED).await,
        json!([]),
        "search fields are labelled"
    );
    browser.click("a[href='/console/records/payment/880001']").await;
    browser.wait_for_text("h1", "payment 880001").await;
    // Its history, and the journal entry it made, ending at the account's balance.
    assert!(browser
        .text("section[aria-labelledby=hist-h] tbody")
        .await
        .contains("processed"));
    let entry = first_row(&browser, "Journal entries this record made").await;
    let balance = remote.admin_balance("ACC-100200").await;
    assert_eq!(entry[4], json!("-42.10 USD"), "balance change: {entry}");
    assert_eq!(entry[5], json!(format!("{balance} USD")), "balance after: {entry}");
    browser.screenshot(&shot("record")).await;

    // Markup in a customer's name and in an event's metadata shows as text, and never runs.
    browser.goto(&format!("{base}/console/accounts/ACC-XSS-1")).await;
    assert!(browser
        .text("main")
        .await
        .contains("<script>window.__pwned = 1</script>Eve <b>Mallory</b>"));
    browser.goto(&format!("{base}/console/quarantine")).await;
    browser.click("details summary").await;
    assert!(browser
        .text("pre.body")
        .await
        .contains("<script>window.__pwned = 2</script>"));
    browser.screenshot(&shot("quarantine")).await;
    assert_eq!(browser.script("return typeof window.__pwned").await, json!("undefined"));

    // Unmatched: review the assignment, see amount and balances, confirm, see the balance move.
    let before = remote.admin_balance("ACC-100200").await;
    browser.goto(&format!("{base}/console/unmatched")).await;
    browser.screenshot(&shot("unmatched")).await;
    assert_eq!(
        browser.script(UNLABELLED).await,
        json!([]),
        "the account fields are labelled"
    );
    browser.type_into("#acct-0", &format!("ACC-100200{ENTER}")).await;
    browser.wait_for_url("/assign?account_number=").await;
    assert_eq!(browser.wait_for_text("#confirm-amount", "USD").await, "20.00 USD");
    assert_eq!(browser.text("#confirm-balance").await, format!("{before} USD"));
    let after = before - Decimal::new(2000, 2);
    assert_eq!(browser.text("#confirm-after").await, format!("{after} USD"));
    browser.screenshot(&shot("assign-confirm")).await;
    // A change without the CSRF token is refused (the form is tampered with in the page).
    browser
        .script("document.querySelector('main form input[name=csrf]').remove(); return null;")
        .await;
    browser.click("main form button[type=submit]").await;
    browser.wait_for_text("h1", "Refused").await;
    assert_eq!(remote.admin_balance("ACC-100200").await, before, "nothing changed");
    browser.goto(&format!("{base}/console/unmatched")).await;
    browser.type_into("#acct-0", &format!("ACC-100200{ENTER}")).await;
    browser.wait_for_url("/assign?account_number=").await;
    browser.click("main form button[type=submit]").await;
    browser.wait_for_url("/console/accounts/ACC-100200?assigned=").await;
    browser.wait_for_text("p.figure", &format!("{after} USD")).await;
    assert_eq!(
        remote.admin_balance("ACC-100200").await,
        after,
        "credited through the ledger"
    );
    // The assignment is the newest journal entry, by channel admin, and the balance chart has
    // a point for each entry shown.
    let newest = first_row(&browser, "Newest first").await;
    assert_eq!(newest[2], json!("admin"), "{newest}");
    assert_eq!(newest[6], json!(format!("{after} USD")), "{newest}");
    browser.find("figure.chart svg").await;
    browser.screenshot(&shot("account")).await;
    browser.goto(&format!("{base}/console/refusals")).await;
    assert!(
        browser.text("main").await.contains("/console/sign-in"),
        "the wrong token is listed"
    );
    browser.screenshot(&shot("refusals")).await;

    // Reconciliation: a capture the webhook never delivered, applied by a run, listed.
    fake.add_invoice(api_invoice("inv-api-1", "shop-1", Some("ACC-100200"), 500, "USD"));
    fake.add_payment(api_payment(
        "inv-api-1",
        "1",
        "shop-1",
        "2026-11-21T10:00:00Z",
        500,
        "USD",
        "captured",
    ));
    let run = json!({"source": "demo", "since": "2026-11-21T00:00:00Z", "until": "2026-11-22T00:00:00Z"});
    let (status, report) = remote.admin_post("/admin/empayre/reconcile", &run).await;
    assert_eq!(status, 200, "{report}");
    browser.goto(&format!("{base}/console/reconcile")).await;
    let row = browser
        .script("return Array.from(document.querySelectorAll('main tbody tr:first-child td')).map(c => c.textContent);")
        .await;
    assert!(row[0].as_str().is_some_and(|r| r.ends_with("demo, manual")), "{row}");
    assert_eq!(row[2], json!("ok"), "{row}");
    assert_eq!(
        (row[3].clone(), row[4].clone()),
        (json!("1"), json!("1")),
        "seen, applied: {row}"
    );
    browser.click("main details summary").await;
    assert!(browser.text("main details").await.contains("5.00 USD"));
    assert_eq!(
        browser.script(OVERFLOWS_TABLE).await,
        json!(false),
        "the runs fit 1280 px"
    );
    browser.screenshot(&shot("reconcile")).await;

    // A phone-width window: no page scrolls sideways (wide tables scroll in their own box).
    browser.resize(390, 844).await;
    for page in [
        "/console",
        "/console/search",
        "/console/unmatched",
        "/console/accounts/ACC-100200",
        "/console/reconcile",
        "/console/refusals",
        "/console/quarantine",
    ] {
        browser.goto(&format!("{base}{page}")).await;
        assert_eq!(browser.script(OVERFLOWS).await, Value::Bool(false), "{page} at 390 px");
    }
    browser.goto(&format!("{base}/console")).await;
    browser.screenshot(&shot("overview-phone")).await;
    browser.resize(1280, 800).await;

    // Sign out; the console is closed again.
    browser.click("form.signout button").await;
    browser.wait_for_url("/console/sign-in?signed_out=1").await;
    browser.goto(&format!("{base}/console/search")).await;
    assert!(browser.url().await.contains("/console/sign-in"));
    browser.quit().await;
}
