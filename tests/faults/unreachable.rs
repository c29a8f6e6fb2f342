//! Issue 15 item 5: with the database unreachable, postings and events answer 503 in their
//! channel's format and `/health/ready` says `database`, nothing is half-applied; once it is
//! back, the replicas serve again by themselves.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;
use crate::{own_database, pg, ONE_AT_A_TIME};

const ADMIN: &str = "faults-admin-token";

async fn ready(remote: &Remote) -> (u16, serde_json::Value) {
    let r = remote
        .client
        .get(format!("{}/health/ready", remote.address))
        .send()
        .await
        .expect("readiness answered");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_503_in_each_channel_and_the_replicas_come_back_by_themselves() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let db = own_database();
    let dir = tempfile::tempdir().expect("dir");
    let mut servers = Vec::new();
    for i in 0..2 {
        let replica = dir.path().join(format!("r{i}"));
        std::fs::create_dir_all(&replica).expect("dir");
        let config = write_pg_config(&replica, &db.url, &format!("[admin]\ntoken = \"{ADMIN}\"\n"));
        servers.push(start_binary(&config, &replica.join("server.log")).await);
    }
    let remotes: Vec<Remote> = servers.iter().map(|s| Remote::new(&s.address, ADMIN)).collect();
    let mut model = LedgerModel::demo();

    let (status, body) = remotes[0]
        .post("/paymentposting", &payment("910001", "ACC-100200", "5.00", "processed"))
        .await;
    assert_eq!(status, 200, "{body}");
    model.credit("ACC-100200", "5.00");

    pg::stop_immediately();
    let during = payment("910002", "ACC-100200", "7.00", "processed");
    let event = captured_event(91_002, "outage-invoice", Some("ACC-100201"), 300);
    for remote in &remotes {
        let (status, body) = remote.post("/paymentposting", &during).await;
        assert_eq!(status, 503, "EBPP while the database is down: {body}");
        assert_eq!(first_error(&body).0, "error_processing", "{body}");
        let (status, body) = remote.send_event(&event).await;
        assert_eq!(status, 503, "Empayre while the database is down: {body}");
        assert_eq!(body, json!({"message": "the store is unavailable, retry later"}));
        let (status, body) = ready(remote).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["failed_check"], "database", "{body}");
    }

    pg::start_again();
    // Nobody restarts the replicas: their pools reconnect on the next request.
    let deadline = Instant::now() + Duration::from_secs(30);
    for remote in &remotes {
        loop {
            if ready(remote).await.0 == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not come back within 30 s",
                remote.address
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // What was refused during the outage was not applied: sent again, it applies once.
    assert!(
        remotes[1].record("payment", "910002").await.is_none(),
        "nothing half-applied"
    );
    let (status, body) = remotes[1].post("/paymentposting", &during).await;
    assert_eq!(status, 200, "{body}");
    model.credit("ACC-100200", "7.00");
    let (status, body) = remotes[0].send_event(&event).await;
    assert_eq!((status, body), (200, json!({"status": "stored"})));
    model.credit("ACC-100201", "3.00");
    for remote in &remotes {
        let balances = remote.demo_balances().await;
        assert_eq!(balances, model.expected, "through {}", remote.address);
        let journal = remote.journal().await;
        assert_journal_consistent(&journal, &demo_opening_balances(), &balances);
        assert_eq!(journal.len(), 3);
    }
    for mut s in servers {
        s.kill().await;
    }
}
