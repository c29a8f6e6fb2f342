//! Several replicas on one PostgreSQL database (issue 15, item 3), in-process servers each with
//! its own pool and batch writer: the same posting or event sent to every replica at once
//! applies once; concurrent postings to one account lose no update; the journal's seq is
//! gap-free and visible in order from every replica — a poller never sees N+1 before N, nor
//! an entry that later changes or vanishes; balances keep the ledger invariant.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::pg::{test_database, TestDatabase};

const REPLICAS: usize = 3;

async fn replicas(db: &TestDatabase) -> Vec<TestApp> {
    let mut apps = Vec::new();
    for _ in 0..REPLICAS {
        apps.push(spawn_app_on_postgres(db).await);
    }
    apps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_posting_or_event_sent_to_every_replica_at_once_applies_once() {
    let db = test_database();
    let apps = replicas(&db).await;
    let remotes: Vec<Remote> = apps.iter().map(Remote::of).collect();
    let opening = demo_opening_balances();
    let mut model = LedgerModel::demo();
    let accounts = ["ACC-100200", "ACC-100201"];

    for i in 0..20 {
        let id = format!("{}", 810_000 + i);
        let account = accounts[i % 2];
        let amount = format!("{}.{:02}", 1 + i, i);
        let body = payment(&id, account, &amount, "processed");
        let answers = futures_util::future::join_all(remotes.iter().map(|r| r.post("/paymentposting", &body))).await;
        let applied = answers.iter().filter(|(s, _)| *s == 200).count();
        let duplicates = answers
            .iter()
            .filter(|(s, b)| *s == 422 && first_error(b).0 == "error_duplicate_posting")
            .count();
        assert_eq!((applied, duplicates), (1, REPLICAS - 1), "payment {id}: {answers:?}");
        model.credit(account, &amount);

        let event = captured_event(5_000 + i as i64, &format!("inv-{i}"), Some(account), 250 + i as i64);
        let answers = futures_util::future::join_all(remotes.iter().map(|r| r.send_event(&event))).await;
        let stored = answers
            .iter()
            .filter(|a| *a == &(200, json!({"status": "stored"})))
            .count();
        let duplicate = answers
            .iter()
            .filter(|a| *a == &(200, json!({"status": "duplicate"})))
            .count();
        assert_eq!((stored, duplicate), (1, REPLICAS - 1), "event {i}: {answers:?}");
        model.credit(account, &Decimal::new(250 + i as i64, 2).to_string());
    }
    let mut journals = Vec::new();
    for remote in &remotes {
        let balances = remote.demo_balances().await;
        assert_eq!(balances, model.expected, "balances through {}", remote.address);
        let journal = remote.journal().await;
        assert_journal_consistent(&journal, &opening, &balances);
        assert_eq!(journal.len(), 40, "one entry per posting and per event");
        journals.push(journal);
    }
    assert!(
        journals.windows(2).all(|w| w[0] == w[1]),
        "every replica shows the same journal"
    );
}

/// Follows `GET /admin/journal` on one replica while the load runs: every page must continue
/// exactly where the last one stopped. Returns every entry it saw, in order.
async fn poll_journal(remote: Remote, stop: Arc<AtomicBool>) -> Vec<Value> {
    let mut seen: Vec<Value> = Vec::new();
    let mut after = 0u64;
    loop {
        let finished = stop.load(Ordering::SeqCst);
        let (status, page) = remote
            .admin_get(&format!("/admin/journal?after={after}&limit=50"))
            .await;
        assert_eq!(status, 200, "{page}");
        for entry in page["entries"].as_array().expect("entries") {
            let seq = entry["seq"].as_u64().expect("seq");
            assert_eq!(
                seq,
                after + 1,
                "a poller of {} saw seq {seq} after {after}",
                remote.address
            );
            after = seq;
            seen.push(entry.clone());
        }
        if finished && page["entries"].as_array().is_some_and(|e| e.is_empty()) {
            return seen;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_postings_to_one_account_lose_nothing_and_every_poller_sees_the_journal_in_order() {
    let db = test_database();
    let apps = replicas(&db).await;
    let remotes: Vec<Remote> = apps.iter().map(Remote::of).collect();
    let opening = demo_opening_balances();
    let stop = Arc::new(AtomicBool::new(false));
    let pollers: Vec<_> = remotes
        .iter()
        .map(|r| tokio::spawn(poll_journal(r.clone(), stop.clone())))
        .collect();

    // 240 payments from 12 clients spread over the replicas, nearly all on one account (lost
    // updates would show there), a few on a second.
    let mut expected: BTreeMap<String, Decimal> = opening.clone();
    let mut work = Vec::new();
    for i in 0..240usize {
        let account = if i % 8 == 0 { "ACC-100201" } else { "ACC-100200" };
        let amount = Decimal::new(100 + (i as i64 * 7) % 500, 2);
        *expected.get_mut(account).expect("demo account") -= amount;
        work.push((format!("{}", 820_000 + i), account, amount));
    }
    let work = Arc::new(std::sync::Mutex::new(work));
    let clients: Vec<_> = (0..12)
        .map(|c| {
            let (work, remote) = (work.clone(), remotes[c % REPLICAS].clone());
            tokio::spawn(async move {
                loop {
                    let Some((id, account, amount)) = work.lock().expect("work").pop() else {
                        return;
                    };
                    let (status, body) = remote
                        .post(
                            "/paymentposting",
                            &payment(&id, account, &amount.to_string(), "processed"),
                        )
                        .await;
                    assert_eq!(status, 200, "payment {id}: {body}");
                }
            })
        })
        .collect();
    for c in clients {
        c.await.expect("client");
    }
    stop.store(true, Ordering::SeqCst);
    let mut seen_by_pollers = Vec::new();
    for p in pollers {
        seen_by_pollers.push(p.await.expect("poller"));
    }
    for remote in &remotes {
        let balances = remote.demo_balances().await;
        assert_eq!(balances, expected, "no lost update, through {}", remote.address);
        let journal = remote.journal().await;
        assert_journal_consistent(&journal, &opening, &balances);
        assert_eq!(journal.len(), 240);
        for seen in &seen_by_pollers {
            assert_eq!(
                seen, &journal,
                "what a poller saw is exactly the journal: nothing changed or vanished"
            );
        }
    }
}
