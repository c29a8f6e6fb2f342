//! The PostgreSQL backend's start-up, through the real binary: migrations (several replicas
//! at once, a database newer than the binary), the commit-safety check, an unreachable server.

use std::process::Output;

use crate::helpers::{binary, fetch_metrics, metric_value, start_binary, write_pg_config};
use crate::pg::{empty_database, sql, test_database, TestDatabase};

/// Runs the binary with the PostgreSQL backend on `db` (extra settings as environment).
fn run_on(db_url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = std::process::Command::new(binary());
    command
        .args(args)
        .env("BILLER_INBOX__STORE__BACKEND", "postgres")
        .env("BILLER_INBOX__STORE__POSTGRES__URL", db_url)
        .env("BILLER_INBOX__SERVER__PORT", "0")
        .env("BILLER_INBOX__STORE__POSTGRES__CONNECT_TIMEOUT_MS", "2000")
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("the binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn schema_versions(db: &TestDatabase) -> Vec<String> {
    sql(db, &["SELECT version FROM biller_inbox_schema ORDER BY version"])
        .expect("schema table")
        .into_iter()
        .map(|row| row[0].clone())
        .collect()
}

const LATEST: i32 = 7;

/// "1", "2", ... up to LATEST: every version recorded once.
fn every_version() -> Vec<String> {
    (1..=LATEST).map(|v| v.to_string()).collect()
}

#[test]
fn replicas_migrating_at_once_leave_one_schema_applied_once() {
    assert_eq!(biller_inbox::store::postgres::migrations::latest_version(), LATEST);
    let db = empty_database();
    let runs: Vec<std::thread::JoinHandle<Output>> = (0..3)
        .map(|_| {
            let url = db.url.clone();
            std::thread::spawn(move || run_on(&url, &["migrate"], &[]))
        })
        .collect();
    let outputs: Vec<Output> = runs.into_iter().map(|h| h.join().expect("thread")).collect();
    for out in &outputs {
        assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    }
    let said: Vec<String> = outputs
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .collect();
    assert_eq!(
        said.iter()
            .filter(|s| s.contains(&format!("migrated from version 0 to {LATEST}")))
            .count(),
        1,
        "exactly one applied it: {said:?}"
    );
    assert_eq!(
        said.iter().filter(|s| s.contains("nothing to apply")).count(),
        2,
        "{said:?}"
    );
    assert_eq!(schema_versions(&db), every_version());
    let tables = sql(
        &db,
        &["SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"],
    )
    .expect("tables");
    assert!(tables[0][0].parse::<u32>().expect("count") >= 10, "{tables:?}");
    // Again: nothing to do.
    let out = run_on(&db.url, &["migrate"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to apply"));
}

/// Migration 4 counts the records a database already holds (per minute and hour, by kind,
/// status and amount bucket) for the search's totals, migration 5 counts them again with round
/// amounts from 100 on in buckets of their own (the records include 100.00, 110.00, 120.00,
/// which version 4 counted in the bucket above theirs), and the amount buckets keep the two
/// promises the search relies on.
#[test]
fn migrations_4_and_5_count_the_records_already_there() {
    let db = empty_database();
    let out = run_on(&db.url, &["migrate"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Records written before version 4, then versions 4 and later taken back as if they had
    // never run.
    sql(
        &db,
        &[
            "INSERT INTO records (kind, id, channel, status, live, amount, currency, counts_against_payment, \
               received_at, updated_at, history, details) \
             SELECT CASE WHEN i % 2 = 0 THEN 'payment' ELSE 'empayre-payment' END, 'r' || i, \
                    CASE WHEN i % 2 = 0 THEN 'orbipay' ELSE 'empayre' END, \
                    CASE WHEN i % 3 = 0 THEN 'returned' ELSE 'processed' END, true, (i % 97) * 1.25, 'USD', true, \
                    timestamptz '2026-11-21 09:00:00Z' + i * interval '17.5 seconds', now(), '[]', '{}' \
             FROM generate_series(1, 1000) AS i",
            "DROP FUNCTION biller_inbox_count_records()",
            "DROP TABLE record_counts",
            "DROP FUNCTION biller_inbox_amount_bucket(numeric)",
            "DROP INDEX records_kind_status, records_amount, records_account_order, records_confirmation, \
               records_id_trigrams, records_account_trigrams, records_confirmation_trigrams",
            "CREATE INDEX records_account ON records (account_number, received_at) WHERE account_number IS NOT NULL",
            "DELETE FROM biller_inbox_schema WHERE version >= 4",
        ],
    )
    .expect("a database at version 3 with records");
    let out = run_on(&db.url, &["migrate"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("migrated from version 3 to {LATEST}")),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let differing = sql(
        &db,
        &["SELECT count(*) FROM \
             (SELECT l.level, floor(extract(epoch FROM received_at) / l.seconds)::bigint AS slot, kind, status, \
                     biller_inbox_amount_bucket(amount) AS bucket, count(*) AS n \
              FROM records CROSS JOIN (VALUES (1, 60), (2, 3600)) AS l(level, seconds) GROUP BY 1, 2, 3, 4, 5) AS r \
             FULL JOIN record_counts c USING (level, slot, kind, status, bucket) \
           WHERE r.n IS DISTINCT FROM c.n"],
    )
    .expect("compared");
    assert_eq!(differing, [["0"]], "every minute and hour counted as the records are");
    let totals = sql(
        &db,
        &["SELECT level, sum(n) FROM record_counts GROUP BY level ORDER BY level"],
    )
    .expect("totals");
    assert_eq!(totals, [["1", "1000"], ["2", "1000"]]);
    // Buckets never decrease as amounts grow; an even bucket from 2 to 3600 holds one amount.
    let broken = sql(
        &db,
        &[
            "WITH a AS (SELECT DISTINCT x FROM (SELECT i / 100.0 FROM generate_series(-100, 200000) i \
               UNION ALL SELECT i * 1000.0 FROM generate_series(1, 20000) i \
               UNION ALL SELECT i / 10000000.0 FROM generate_series(1, 20000) i \
               UNION ALL SELECT 10.0 ^ i FROM generate_series(-8, 20) i) AS s(x)), \
           b AS (SELECT x, biller_inbox_amount_bucket(x) AS b FROM a) \
           SELECT (SELECT count(*) FROM (SELECT b, lag(b) OVER (ORDER BY x) AS p FROM b) AS m WHERE b < p), \
                  (SELECT count(*) FROM (SELECT b FROM b WHERE b BETWEEN 2 AND 3600 AND b % 2 = 0 \
                     GROUP BY b HAVING count(*) > 1) AS s), \
                  (SELECT count(DISTINCT b) FROM b)",
        ],
    )
    .expect("buckets");
    assert_eq!(broken[0][..2], ["0", "0"], "{broken:?}");
    assert!(broken[0][2].parse::<u32>().expect("n") > 1000, "{broken:?}");
}

/// The batch writer and the search compute amount buckets in Rust
/// (`store::amount_bucket`); the backfills of the migrations and `store copy` with the SQL
/// function. Both must give every amount the same bucket: round amounts of every decade, the
/// amounts around them, cents, long fractions, zero, negatives and the ends of the range.
#[test]
fn the_sql_amount_bucket_is_the_rust_one() {
    use biller_inbox::store::amount_bucket::amount_bucket;
    use rust_decimal::Decimal;
    let db = test_database();
    let mut amounts: Vec<Decimal> = Vec::new();
    for decade in -6..18 {
        for lead in [
            1, 10, 11, 12, 25, 50, 99, 100, 101, 125, 999, 1000, 1001, 1200, 1250, 9999,
        ] {
            let round = Decimal::from_scientific(&format!("{lead}e{decade}")).expect("amount");
            amounts.push(round);
            amounts.push(round.normalize());
        }
    }
    for cents in (-150..30_000).step_by(7) {
        amounts.push(Decimal::new(cents, 2));
    }
    for text in [
        "0",
        "0.00",
        "100",
        "100.00",
        "100.000",
        "1200",
        "1200.00",
        "25000",
        "25000.01",
        "0.5",
        "0.50",
        "0.0001",
        "0.00009999",
        "9999999999999999.99",
        "10000000000000000",
        "123456789.123456789",
        "1e-10",
    ] {
        amounts.push(
            Decimal::from_scientific(text)
                .or_else(|_| text.parse())
                .expect("amount"),
        );
    }
    let list = amounts.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(",");
    let rows = sql(
        &db,
        &[&format!(
            "SELECT x::text, biller_inbox_amount_bucket(x) FROM unnest(ARRAY[{list}]::numeric[]) AS x"
        )],
    )
    .expect("buckets");
    assert_eq!(rows.len(), amounts.len());
    for (amount, row) in amounts.iter().zip(&rows) {
        assert_eq!(row[0], amount.to_string(), "the same amount");
        assert_eq!(
            row[1],
            amount_bucket(*amount).to_string(),
            "the bucket of {amount} in SQL and in Rust"
        );
    }
}

/// Migrations 6 and 7 (the search's indexes, trigrams) apply to a database that already holds records, with
/// and without account and confirmation numbers, and leaves the indexes the search plans name.
#[test]
fn migrations_6_and_7_index_the_records_already_there() {
    let db = empty_database();
    let out = run_on(&db.url, &["migrate"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Records written before version 6, then versions 6 and 7 taken back as if it had never run.
    sql(
        &db,
        &[
            "INSERT INTO records (kind, id, channel, status, live, amount, currency, account_number, \
               confirmation_number, counts_against_payment, received_at, updated_at, history, details) \
             SELECT CASE WHEN i % 2 = 0 THEN 'payment' ELSE 'empayre-payment' END, 'r' || i, \
                    CASE WHEN i % 2 = 0 THEN 'orbipay' ELSE 'empayre' END, \
                    CASE WHEN i % 3 = 0 THEN 'returned' ELSE 'processed' END, true, (i % 97) * 1.25, 'USD', \
                    CASE WHEN i % 5 = 0 THEN NULL ELSE 'ACC-' || (i % 40) END, \
                    CASE WHEN i % 2 = 0 THEN 'CONF' || i END, true, \
                    timestamptz '2026-11-21 09:00:00Z' + i * interval '17.5 seconds', now(), '[]', '{}' \
             FROM generate_series(1, 1000) AS i",
            "DROP INDEX records_kind_status, records_amount, records_account_order, records_confirmation, \
               records_id_trigrams, records_account_trigrams, records_confirmation_trigrams",
            "DROP EXTENSION pg_trgm",
            "CREATE INDEX records_account ON records (account_number, received_at) WHERE account_number IS NOT NULL",
            "DELETE FROM biller_inbox_schema WHERE version >= 6",
        ],
    )
    .expect("a database at version 5 with records");
    let out = run_on(&db.url, &["migrate"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("migrated from version 5 to 7"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let indexes = sql(
        &db,
        &[
            "SELECT c.relname, i.indisvalid, (SELECT count(*) FROM records) FROM pg_index i \
           JOIN pg_class c ON c.oid = i.indexrelid \
           WHERE i.indrelid = 'records'::regclass AND c.relname LIKE 'records\\_%' ORDER BY 1",
        ],
    )
    .expect("indexes");
    let names: Vec<(&str, &str)> = indexes.iter().map(|r| (r[0].as_str(), r[1].as_str())).collect();
    assert_eq!(
        names,
        [
            ("records_account_order", "t"),
            ("records_account_trigrams", "t"),
            ("records_amount", "t"),
            ("records_confirmation", "t"),
            ("records_confirmation_trigrams", "t"),
            ("records_id_trigrams", "t"),
            ("records_kind_status", "t"),
            ("records_parent", "t"),
            ("records_pkey", "t"),
            ("records_received", "t"),
        ],
        "records_account gave way to records_account_order"
    );
    assert!(indexes.iter().all(|r| r[2] == "1000"), "{indexes:?}");
}

#[test]
fn a_database_newer_than_the_binary_is_refused_naming_both_versions() {
    let db = test_database();
    sql(
        &db,
        &["INSERT INTO biller_inbox_schema (version, name, sha256) VALUES (99, 'from the future', 'x')"],
    )
    .expect("pretend a newer binary migrated");
    for args in [&["migrate"][..], &["serve"][..]] {
        let out = run_on(&db.url, args, &[]);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("version 99") && err.contains(&format!("version {LATEST}")),
            "{args:?}: {err}"
        );
    }
    // Nothing was changed by the refusals.
    let mut with_future = every_version();
    with_future.push("99".to_string());
    assert_eq!(schema_versions(&db), with_future);
}

#[test]
fn without_migrate_a_database_behind_the_binary_is_refused() {
    let db = empty_database();
    let out = run_on(
        &db.url,
        &["serve"],
        &[("BILLER_INBOX__STORE__POSTGRES__MIGRATE", "false")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("biller-inbox migrate"), "{}", stderr(&out));
    let tables = sql(
        &db,
        &["SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"],
    )
    .expect("tables");
    assert_eq!(tables[0][0], "0", "nothing was created");
}

#[tokio::test]
async fn an_unsafe_commit_setting_stops_start_up_unless_allowed_and_then_is_said_everywhere() {
    let db = test_database();
    // fsync and full_page_writes are server-wide (and the cluster is shared by every test of
    // this binary); synchronous_commit can be set for one database, and the check reads what
    // our own sessions see, so it is the end-to-end case. The verdict for each setting is
    // table-tested in store::postgres::safety.
    sql(
        &db,
        &[&format!("ALTER DATABASE {} SET synchronous_commit = off", db.name)],
    )
    .expect("alter");
    let out = run_on(&db.url, &["serve"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("synchronous_commit=off"), "{err}");
    assert!(err.contains("store.postgres.allow_unsafe_commit"), "{err}");
    assert!(!err.contains("listening"), "{err}");

    // Allowed: it serves, and says so at start-up, in /health/ready and in /metrics.
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("unsafe.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nport = 0\n[store]\nbackend = \"postgres\"\n[store.postgres]\nurl = \"{}\"\n\
             pool_size = 2\nallow_unsafe_commit = true\n",
            db.url
        ),
    )
    .expect("config");
    let log = dir.path().join("server.log");
    let mut server = start_binary(&config, &log).await;
    let client = reqwest::Client::new();
    let ready = client
        .get(format!("{}/health/ready", server.address))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.expect("json");
    let warnings = body["warnings"].as_array().expect("warnings").clone();
    assert_eq!(warnings.len(), 1, "{body}");
    assert!(
        warnings[0]
            .as_str()
            .is_some_and(|w| w.starts_with("unsafe_commit:") && w.contains("synchronous_commit=off")),
        "{body}"
    );
    let metrics = fetch_metrics(&client, &server.address).await;
    assert_eq!(metric_value(&metrics, "biller_inbox_store_unsafe_commit"), 1.0);
    server.kill().await;
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(
        logged.contains("NOT crash-safe") && logged.contains("synchronous_commit=off"),
        "start-up says so: {logged}"
    );

    // A safe database says nothing of the kind.
    let safe = test_database();
    let mut server = start_binary(&write_pg_config(dir.path(), &safe.url, ""), &log).await;
    let body: serde_json::Value = client
        .get(format!("{}/health/ready", server.address))
        .send()
        .await
        .expect("ready")
        .json()
        .await
        .expect("json");
    assert_eq!(body, serde_json::json!({"status": "ready"}));
    let metrics = fetch_metrics(&client, &server.address).await;
    assert!(
        metrics.lines().any(|l| l == "biller_inbox_store_unsafe_commit 0"),
        "the gauge is there, at 0"
    );
    server.kill().await;
}

#[test]
fn an_unreachable_database_is_named_without_its_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    // Nothing listens on `port` (the listener is gone again).
    let url = format!("postgres://biller:Sup3r-Secret@127.0.0.1:{port}/ledger");
    for args in [&["migrate"][..], &["serve"][..]] {
        let out = run_on(&url, args, &[]);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("biller@127.0.0.1:{port}/ledger")),
            "{args:?}: {err}"
        );
        assert!(!err.contains("Sup3r-Secret"), "{err}");
        let error_lines: Vec<&str> = err.lines().filter(|l| l.starts_with("biller-inbox:")).collect();
        assert_eq!(error_lines.len(), 1, "one error line: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn migrate_on_the_sled_backend_is_a_usage_error() {
    let out = std::process::Command::new(binary())
        .args(["migrate"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("store.backend"), "{}", stderr(&out));
}

/// An import writes the accounts it found absent straight into the table with `COPY`. One that
/// another writer stores in the meantime (here an uncommitted insert that commits while the
/// import waits on it, as an import through another replica would) makes that `COPY` fail on
/// the primary key: the chunk is written again through the upsert, and the import succeeds,
/// counting the account as updated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_another_writer_stores_during_an_import_is_updated_not_refused() {
    let db = test_database();
    let app = crate::helpers::spawn_app_on_postgres(&db).await;
    let (other, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    other
        .batch_execute(
            "BEGIN; INSERT INTO accounts (account_number, status, currency, opening_balance) \
             VALUES ('ACC-777001', 'active', 'USD', 10)",
        )
        .await
        .expect("the other writer's insert");
    let remote = app.remote();
    let body = serde_json::json!([
        {"account_number": "ACC-777000", "status": "active", "currency": "USD", "current_balance": "5.00",
         "account_holder_name": "Before"},
        {"account_number": "ACC-777001", "status": "active", "currency": "USD", "current_balance": "20.00",
         "account_holder_name": "Raced"},
    ])
    .to_string();
    let import = tokio::spawn(async move { remote.admin_put("/admin/accounts", &body).await });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!import.is_finished(), "the import waits for the other writer's row");
    other.batch_execute("COMMIT").await.expect("commit");
    let (status, summary) = import.await.expect("import");
    assert_eq!(status, 200, "{summary}");
    assert_eq!(
        (
            summary["accounts_created"].as_u64(),
            summary["accounts_updated"].as_u64()
        ),
        (Some(1), Some(1)),
        "{summary}"
    );
    let (status, account) = app.admin_get("/admin/accounts/ACC-777001").await;
    assert_eq!(status, 200, "{account}");
    assert_eq!(account["account"]["account_holder_name"], "Raced", "{account}");
}
