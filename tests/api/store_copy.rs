//! `biller-inbox store copy --from sled:PATH --to postgres:URL` through the real binary: a
//! sled store with postings, reversals, refunds, the Empayre corpus and imported accounts is
//! stopped, copied, and a server on PostgreSQL answers every question as the sled server did;
//! and each refusal says why and writes nothing.

use std::path::Path;

use biller_inbox::settings::Backend;
use biller_inbox::store::{SledStore, Store};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::pg::{empty_database, sql, test_database, TestDatabase};

const PAY: &str = "/paymentposting";
const REVERSE: &str = "/paymentreversalposting";
const REFUND: &str = "/paymentrefundposting";

/// Accounts a biller added after the demo set (`PUT /admin/accounts`).
const IMPORTED: [&str; 2] = ["ACC-900001", "ACC-900002"];

/// The tables the copy fills (every one must stay empty after a refusal).
const TABLES: [&str; 10] = [
    "accounts",
    "profiles",
    "records",
    "journal",
    "events",
    "accepted_postings",
    "invoice_snapshots",
    "unmatched",
    "rejections",
    "meta",
];

async fn copy(from: &str, to: &str) -> (i32, String, String) {
    run_binary(&["store", "copy", "--from", from, "--to", to]).await
}

fn sled_arg(store: &Path) -> String {
    format!("sled:{}", store.display())
}

fn rows_in(db: &TestDatabase) -> Vec<(String, String)> {
    let counts: Vec<String> = TABLES.iter().map(|t| format!("(SELECT count(*) FROM {t})")).collect();
    let row = sql(db, &[&format!("SELECT {}", counts.join(", "))]).expect("counts");
    TABLES.iter().map(|t| t.to_string()).zip(row[0].clone()).collect()
}

fn assert_empty(db: &TestDatabase, case: &str) {
    for (table, n) in rows_in(db) {
        assert_eq!(n, "0", "{case}: {table} was written");
    }
}

/// A sled server (whatever backend the suite runs on: this test is about sled).
async fn sled_app() -> TestApp {
    spawn_app_with(|s| {
        s.store.backend = Backend::Sled;
        s.empayre.sources = vec![fixture_empayre_source("demo")];
    })
    .await
}

/// Everything an operator or EBPP can ask, answer by answer.
async fn answers(app: &TestApp) -> Vec<(String, Value)> {
    let remote = app.remote();
    let mut out = Vec::new();
    for form in [
        [("customer_reference", "C-1001")],
        [("customer_reference", "C-9001")],
        [("ssn", "123456789")],
        [("account_number", "ACC-900002")],
    ] {
        let r = app.lookup(&form).await;
        let status = r.status().as_u16();
        let body: Value = r.json().await.expect("lookup answer");
        out.push((format!("lookup {form:?}"), json!({"status": status, "body": body})));
    }
    let mut accounts: Vec<String> = demo_opening_balances().keys().cloned().collect();
    accounts.extend(IMPORTED.iter().map(|a| a.to_string()));
    for account in &accounts {
        let (status, body) = app.admin_get(&format!("/admin/accounts/{account}")).await;
        assert_eq!(status, 200, "{account}: {body}");
        out.push((format!("account {account}"), body));
    }
    let (status, mut search) = app
        .search(&json!({"paging": {"page": 1, "size": 200}, "searchParameters": [window_around_now()]}))
        .await;
    assert_eq!(status, 200, "{search}");
    assert!(search["totalCount"].as_u64().expect("total") > 20, "{search}");
    let records = search["records"].as_array_mut().expect("records");
    // Records received in the same microsecond may come in another order; the set must match.
    records.sort_by_key(|r| (r["kind"].to_string(), r["id"].to_string()));
    for item in records.iter() {
        let (kind, id) = (item["kind"].as_str().expect("kind"), item["id"].as_str().expect("id"));
        out.push((format!("record {kind}/{id}"), json!(remote.record(kind, id).await)));
    }
    out.push(("search".into(), search));
    out.push(("journal".into(), json!(remote.journal().await)));
    for path in [
        "/admin/empayre/events?limit=1000",
        "/admin/empayre/unmatched",
        "/admin/quarantine?limit=1000",
        "/admin/rejections?limit=1000",
    ] {
        let (status, body) = app.admin_get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        out.push((path.to_string(), body));
    }
    out
}

#[tokio::test]
async fn a_sled_store_copied_to_postgres_answers_as_it_did() {
    // ---- a sled store that has seen a bit of everything
    let app = sled_app().await;
    let store = app.store_dir.path().join("store");
    let import = [
        json!({"account_number": IMPORTED[0], "status": "active", "currency": "USD", "current_balance": "500.00",
               "customers": [{"customer_reference": "C-9001", "first_name": "Eve", "email": "eve@example.com"}]}),
        json!({"account_number": IMPORTED[1], "status": "active", "currency": "USD", "current_balance": "75.25",
               "customers": [{"customer_reference": "C-9001"}]}),
    ];
    let (status, body) = app
        .admin_put("/admin/accounts", &Value::from(import.to_vec()).to_string())
        .await;
    assert_eq!(status, 200, "{body}");

    let out = tokio::process::Command::new(binary())
        .args([
            "replay",
            "fixtures/orbipay",
            "fixtures/empayre",
            "--target",
            &app.address,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .await
        .expect("replay runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "the corpus replays clean on the sled server:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    for (path, body) in [
        (PAY, payment("880001", IMPORTED[0], "20.00", "processed")),
        (PAY, payment("880002", IMPORTED[1], "7.00", "processed")),
        (REFUND, refund("880101", "880001", Some("5.00"), "processed")),
        (REVERSE, payment("880002", IMPORTED[1], "7.00", "returned")),
    ] {
        let (status, answer) = app.post_json(path, &body).await;
        assert_eq!(status, 200, "{path}: {answer}");
    }
    // A refused request, for the request log.
    let r = app
        .client
        .post(format!("{}{PAY}", app.address))
        .header("client-key", CLIENT_KEY)
        .header("api-key", "wrong")
        .json(&payment("880003", IMPORTED[0], "1.00", "processed"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status().as_u16(), 401);

    // A retried posting (EBPP did not get the first answer): a duplicate, logged as refused.
    let retried_before = app
        .post_json(PAY, &payment("880001", IMPORTED[0], "20.00", "processed"))
        .await;
    let before = answers(&app).await;
    let journal_end = app.remote().journal().await.len() as u64;
    app.stop().await;

    // A value the reconciliation keeps (its cursor), written as the server writes it.
    {
        let sled = Store::Sled(SledStore::open(&store, 8 << 20).expect("the stopped store opens"));
        sled.put_meta("copy-test/cursor", b"2026-11-21T09:00:00Z".to_vec())
            .await
            .expect("meta");
        sled.close().await.expect("closed");
    }

    // ---- the copy, into a database without the schema yet (the command migrates it)
    let db = empty_database();
    let (code, stdout, stderr) = copy(&sled_arg(&store), &format!("postgres:{}", db.url)).await;
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    println!("{stdout}{stderr}");
    let figures: Vec<&str> = stdout.lines().skip(1).filter(|l| !l.starts_with("copied")).collect();
    assert!(figures.len() >= 15, "{stdout}");
    assert!(figures.iter().all(|l| l.ends_with("  ok")), "{stdout}");
    for name in [
        "accounts",
        "journal last seq",
        "balances checksum",
        "Empayre events quarantined",
    ] {
        assert!(figures.iter().any(|l| l.starts_with(name)), "{name} compared: {stdout}");
    }
    assert!(stdout.contains("committed to"), "{stdout}");
    let head = sql(&db, &["SELECT last_seq FROM journal_head"]).expect("head");
    assert_eq!(head[0][0], journal_end.to_string());

    // ---- a server on PostgreSQL answers as the sled one did
    let pg = spawn_app_with(|s| {
        use_postgres(s, &db);
        s.empayre.sources = vec![fixture_empayre_source("demo")];
        // Every account it has must have come through the copy.
        s.seed.accounts_file = String::new();
    })
    .await;
    let after = answers(&pg).await;
    assert_eq!(before.len(), after.len());
    for ((what, was), (_, is)) in before.iter().zip(&after) {
        assert_eq!(was, is, "{what} answers differently after the move");
    }
    // A retried posting answers as before and moves nothing.
    let retried_after = pg
        .post_json(PAY, &payment("880001", IMPORTED[0], "20.00", "processed"))
        .await;
    assert_eq!(retried_before, retried_after);
    assert_eq!(pg.remote().journal().await.len() as u64, journal_end);

    // New work continues the copied sequences: the next journal seq, a fresh reference that was
    // never given out, an Empayre event after the copied ones.
    let (status, answer) = pg
        .post_json(PAY, &payment("880004", IMPORTED[0], "3.00", "processed"))
        .await;
    assert_eq!(status, 200, "{answer}");
    let journal = pg.remote().journal().await;
    assert_eq!(journal.last().and_then(|e| e["seq"].as_u64()), Some(journal_end + 1));
    let new = pg.remote().record("payment", "880004").await.expect("new payment");
    let references = sql(
        &db,
        &["SELECT count(*) FROM records WHERE reference = (SELECT reference FROM records WHERE id = '880004')"],
    )
    .expect("references");
    assert_eq!(references[0][0], "1", "reference {} given out twice", new["reference"]);
    let (_, events) = pg.admin_get("/admin/empayre/events?limit=1").await;
    let last_copied = events["items"][0]["seq"].as_u64().expect("an event seq");
    let (status, _) = pg
        .remote()
        .send_event(&captured_event(990_001, "inv-after-copy", Some(IMPORTED[0]), 100))
        .await;
    assert_eq!(status, 200);
    let (_, events) = pg.admin_get("/admin/empayre/events?limit=1").await;
    let newest = events["items"][0]["seq"].as_u64().expect("an event seq");
    assert!(newest > last_copied, "{newest} after {last_copied}");
    pg.stop().await;

    let mut settings = biller_inbox::settings::Settings::defaults();
    use_postgres(&mut settings, &db);
    let store = Store::open(&settings.store).expect("opens");
    assert_eq!(
        store.meta("copy-test/cursor").await.expect("meta"),
        Some(b"2026-11-21T09:00:00Z".to_vec())
    );
    store.close().await.expect("closed");
}

/// A small stopped sled store: the demo accounts and one posting.
async fn small_store() -> (TestApp, std::path::PathBuf) {
    let app = sled_app().await;
    let (status, answer) = app
        .post_json(PAY, &payment("880009", "ACC-100200", "10.00", "processed"))
        .await;
    assert_eq!(status, 200, "{answer}");
    app.stop().await;
    let store = app.store_dir.path().join("store");
    (app, store)
}

#[tokio::test]
async fn refusals_say_why_and_write_nothing() {
    let (_app, store) = small_store().await;
    let secret = "s3cretPw";

    // A database that holds ledger data already (here: one account).
    let full = test_database();
    sql(
        &full,
        &["INSERT INTO accounts (account_number, status, currency, opening_balance) VALUES ('X-1', 'active', 'USD', 1)"],
    )
    .expect("a row");

    struct Case {
        name: &'static str,
        from: String,
        to: String,
        code: i32,
        says: &'static [&'static str],
    }
    let empty = test_database();
    let empty_url = format!("postgres:{}", empty.url);
    let cases = [
        Case {
            name: "target not empty",
            from: sled_arg(&store),
            to: format!("postgres:{}", full.url),
            code: 1,
            says: &["already holds", "1 rows in accounts", "nothing was committed"],
        },
        Case {
            name: "no store at the path",
            from: sled_arg(&store.with_file_name("nothing-here")),
            to: empty_url.clone(),
            code: 1,
            says: &["there is no sled store at"],
        },
        Case {
            name: "--from without sled:",
            from: store.display().to_string(),
            to: empty_url.clone(),
            code: 2,
            says: &["is not sled:PATH"],
        },
        Case {
            name: "--to of another kind",
            from: sled_arg(&store),
            to: format!("mysql://biller:{secret}@127.0.0.1/x"),
            code: 2,
            says: &["--to is not postgres:URL"],
        },
        Case {
            name: "--to that does not parse",
            from: sled_arg(&store),
            to: format!("postgres:postgres://biller:{secret}@127.0.0.1:notaport/x"),
            code: 2,
            says: &["--to is not postgres:URL"],
        },
        Case {
            name: "unreachable database",
            from: sled_arg(&store),
            to: format!("postgres:postgres://biller:{secret}@127.0.0.1:1/biller"),
            code: 1,
            says: &["cannot connect to PostgreSQL at biller@127.0.0.1:1/biller"],
        },
    ];
    for case in &cases {
        let (code, stdout, stderr) = copy(&case.from, &case.to).await;
        assert_eq!(code, case.code, "{}: {stderr}", case.name);
        for said in case.says {
            assert!(stderr.contains(said), "{}: {said:?} not in {stderr}", case.name);
        }
        assert!(
            !stderr.contains(secret) && !stdout.contains(secret),
            "{}: the password was printed",
            case.name
        );
        let last = stderr.lines().last().unwrap_or("");
        assert!(
            last.starts_with("biller-inbox: "),
            "{}: the error is the last line: {stderr}",
            case.name
        );
        assert_empty(&empty, case.name);
    }
    let accounts = sql(&full, &["SELECT count(*) FROM accounts"]).expect("count");
    assert_eq!(accounts[0][0], "1", "the database that was not empty is as it was");

    // A store held by a running server (here: this process has it open).
    let held = SledStore::open(&store, 8 << 20).expect("opens");
    let (code, _, stderr) = copy(&sled_arg(&store), &empty_url).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("held by a running server"), "{stderr}");
    assert_empty(&empty, "store held");
    drop(held);
}

/// A target that does not keep what it is given (here: a trigger in the database that drops or
/// changes a row on its way in) is caught by the comparison: the figure that differs is named,
/// the exit status is 1, and nothing is committed.
#[tokio::test]
async fn a_copy_that_differs_from_its_source_is_rolled_back() {
    let (_app, store) = small_store().await;
    let cases = [
        (
            "a record dropped",
            "CREATE FUNCTION lose() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               IF NEW.id = '880009' THEN RETURN NULL; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER lose BEFORE INSERT ON records FOR EACH ROW EXECUTE FUNCTION lose()",
            &["records payment"][..],
        ),
        (
            "a balance changed",
            "CREATE FUNCTION shift() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               IF NEW.account_number = 'ACC-100200' THEN NEW.posted_delta = NEW.posted_delta + 0.01; END IF; \
               RETURN NEW; END $$; \
             CREATE TRIGGER shift BEFORE INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION shift()",
            &["balances checksum", "balances total USD"][..],
        ),
    ];
    for (case, trigger, differing) in cases {
        let db = test_database();
        sql(&db, &[trigger]).expect("trigger");
        let (code, stdout, stderr) = copy(&sled_arg(&store), &format!("postgres:{}", db.url)).await;
        assert_eq!(code, 1, "{case}: {stdout}{stderr}");
        let differs: Vec<&str> = stdout.lines().filter(|l| l.ends_with("DIFFERS")).collect();
        assert_eq!(differs.len(), differing.len(), "{case}: {stdout}");
        for name in differing {
            assert!(differs.iter().any(|l| l.starts_with(name)), "{case}: {name}: {stdout}");
            assert!(stderr.contains(name), "{case}: the error names {name}: {stderr}");
        }
        assert!(stderr.contains("nothing was committed"), "{case}: {stderr}");
        assert_empty(&db, case);
    }
}
