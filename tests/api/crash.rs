//! Crash consistency with the real binary: SIGKILL under concurrent load of Orbipay payments and
//! signed Empayre captures, restart on the same store, and check that a 2xx meant "recorded".
//!
//! Per cycle: every acknowledged write is there (re-sent → duplicate); every unacknowledged one
//! is either wholly there (record, one journal entry, balance moved) or wholly absent; balances
//! equal opening − Σ applied credits; the journal has seq 1..N without gaps and its deltas per
//! account add up to balance − opening, and searches count every record once (unfiltered, by
//! channel and by amount: the minute and facet counts kept in memory are exact after the
//! kill). Then the unacknowledged requests are re-sent, as the platforms would, and must apply
//! exactly once.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::Value;

use crate::helpers::*;

const CYCLES: usize = 4;
const PAYMENTS_PER_CYCLE: usize = 320;
const EVENTS_PER_CYCLE: usize = 160;
const CLIENTS: usize = 12;
const ACCOUNTS: [&str; 3] = ["ACC-100200", "ACC-100201", "ACC-100800"];
const ADMIN: &str = "crash-admin-token";

fn ops_for_cycle(cycle: usize, signer: &biller_inbox::empayre::signature::BodySigner) -> Vec<LoadWrite> {
    let mut ops = Vec::new();
    for i in 0..PAYMENTS_PER_CYCLE {
        let id = format!("{}", 7_000_000 + cycle * 10_000 + i);
        let account = ACCOUNTS[i % ACCOUNTS.len()];
        let cents = 100 + (i * 37) % 900;
        let amount = Decimal::new(cents as i64, 2);
        let body = payment(&id, account, &amount.to_string(), "processed");
        ops.push(LoadWrite {
            kind: WriteKind::Payment,
            key: id,
            account,
            amount,
            body: serde_json::to_vec(&body).expect("json"),
            signature: None,
            storm: false,
        });
    }
    for i in 0..EVENTS_PER_CYCLE {
        let event_id = (900_000 + cycle * 10_000 + i) as i64;
        let invoice = format!("crash-{cycle}-{i}");
        let account = ACCOUNTS[(i + 1) % ACCOUNTS.len()];
        let cents = 100 + (i as i64 * 53) % 900;
        let body = serde_json::to_vec(&captured_event(event_id, &invoice, Some(account), cents)).expect("json");
        let signature = signer.sign_header(&body).expect("sign");
        ops.push(LoadWrite {
            kind: WriteKind::Event,
            key: format!("demo:{invoice}:1"),
            account,
            amount: Decimal::new(cents, 2),
            body,
            signature: Some(signature),
            storm: false,
        });
    }
    // Interleave the two channels so both are in flight at the kill.
    let (payments, events): (Vec<LoadWrite>, Vec<LoadWrite>) =
        ops.into_iter().partition(|o| o.kind == WriteKind::Payment);
    let mut mixed = Vec::new();
    let mut events = events.into_iter();
    for (i, p) in payments.into_iter().enumerate() {
        mixed.push(p);
        if i % 2 == 1 {
            mixed.extend(events.next());
        }
    }
    mixed.extend(events);
    mixed
}

/// What the load saw: acknowledged, sent without an acknowledgement, never sent, and answers
/// that should never happen (a live server refusing a valid new write).
#[derive(Default)]
struct LoadResult {
    acked: Vec<LoadWrite>,
    unacked: Vec<LoadWrite>,
    unsent: Vec<LoadWrite>,
    unexpected: Vec<String>,
}

/// Sends `ops` from `CLIENTS` concurrent clients and SIGKILLs the server once `kill_after`
/// writes are acknowledged, while the rest are in flight.
async fn load_and_kill(server: &mut ServerProcess, ops: Vec<LoadWrite>, kill_after: usize) -> LoadResult {
    let remote = Remote::new(&server.address, ADMIN);
    let total = ops.len();
    let queue = Arc::new(Mutex::new(ops.into_iter().collect::<std::collections::VecDeque<_>>()));
    let result = Arc::new(Mutex::new(LoadResult::default()));
    let acked = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    // The worker whose acknowledgement reaches `kill_after` pulls the trigger, whatever the pace.
    let trigger = Arc::new(tokio::sync::Notify::new());
    let mut workers = Vec::new();
    for _ in 0..CLIENTS {
        let (queue, result, acked, killed, remote, trigger) = (
            queue.clone(),
            result.clone(),
            acked.clone(),
            killed.clone(),
            remote.clone(),
            trigger.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                if killed.load(Ordering::SeqCst) {
                    return;
                }
                let Some(op) = queue.lock().unwrap().pop_front() else {
                    return;
                };
                let answer = op.send(&remote).await;
                let mut r = result.lock().unwrap();
                match answer {
                    Ok((status, body)) if op.is_ack(status, &body) => {
                        if acked.fetch_add(1, Ordering::SeqCst) + 1 == kill_after {
                            trigger.notify_one();
                        }
                        r.acked.push(op);
                    }
                    Ok((status, body)) => {
                        r.unexpected
                            .push(format!("{} {}: {status} {body}", op.record_kind(), op.key));
                        r.unacked.push(op);
                    }
                    Err(_) => r.unacked.push(op),
                }
            }
        }));
    }
    // Kill once enough writes are acknowledged (or after 20 s, which the test then reports).
    let _ = tokio::time::timeout(Duration::from_secs(20), trigger.notified()).await;
    // Workers take no new write from here; the ones already sent are in flight at the kill.
    killed.store(true, Ordering::SeqCst);
    server.kill().await;
    for w in workers {
        w.await.expect("worker");
    }
    let mut result = std::mem::take(&mut *result.lock().unwrap());
    result.unsent = queue.lock().unwrap().drain(..).collect();
    assert!(
        !result.unsent.is_empty(),
        "the load ended before the kill ({total} writes): raise the op count"
    );
    result
}

/// Sends ops from a few concurrent clients and returns the answers in order.
async fn send_all(server: &Remote, ops: &[LoadWrite]) -> Vec<(u16, Value)> {
    let mut out = Vec::with_capacity(ops.len());
    for chunk in ops.chunks(CLIENTS) {
        let answers = futures_util::future::join_all(chunk.iter().map(|op| op.send(server))).await;
        out.extend(answers.into_iter().map(|a| a.expect("the restarted server answers")));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_write_and_half_applies_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let store = dir.path().join("store");
    let config = write_config(dir.path(), &store, &format!("[admin]\ntoken = \"{ADMIN}\"\n"));
    let log = dir.path().join("server.log");
    let signer = fixture_signer();
    let opening = demo_opening_balances();

    // Every write the store holds, by kind and key, with its account and amount.
    let mut applied: BTreeMap<(&'static str, String), (&'static str, Decimal)> = BTreeMap::new();
    let mut server = start_binary(&config, &log).await;
    let mut report = Vec::new();
    for cycle in 0..CYCLES {
        let ops = ops_for_cycle(cycle, &signer);
        let kill_after = 40 + cycle * 25;
        let load = load_and_kill(&mut server, ops, kill_after).await;
        assert!(
            load.unexpected.is_empty(),
            "cycle {cycle}: answers other than an acknowledgement before the kill: {:?}",
            load.unexpected
        );
        assert!(
            load.acked.len() >= kill_after,
            "cycle {cycle}: only {} writes acknowledged before the kill",
            load.acked.len()
        );
        server = start_binary(&config, &log).await;
        let remote = Remote::new(&server.address, ADMIN);

        // 1. Every acknowledged write is there: re-sent, it is a duplicate.
        let answers = send_all(&remote, &load.acked).await;
        for (op, (status, body)) in load.acked.iter().zip(&answers) {
            assert!(
                op.is_duplicate(*status, body),
                "cycle {cycle}: acknowledged {} {} is gone after the crash: re-sent → {status} {body}",
                op.record_kind(),
                op.key
            );
            applied.insert((op.record_kind(), op.key.clone()), (op.account, op.amount));
        }

        // 2. An unacknowledged write is wholly there or wholly absent.
        let mut landed = 0;
        for op in &load.unacked {
            if let Some(record) = remote.record(op.record_kind(), &op.key).await {
                assert_eq!(record["account_number"], op.account, "{record}");
                assert_eq!(record["amount"], op.amount.to_string(), "{record}");
                assert_eq!(record["live"], true, "{record}");
                applied.insert((op.record_kind(), op.key.clone()), (op.account, op.amount));
                landed += 1;
            }
        }
        for op in &load.unsent {
            assert!(
                remote.record(op.record_kind(), &op.key).await.is_none(),
                "cycle {cycle}: {} {} was never sent but is stored",
                op.record_kind(),
                op.key
            );
        }

        // 3. Balances and the journal agree with exactly the writes the store holds.
        assert_store_holds_exactly(&remote, &opening, &applied, cycle).await;

        // 4. The platforms retry what was not acknowledged: applied once, whatever happened.
        let retry: Vec<LoadWrite> = load.unacked.iter().chain(&load.unsent).cloned().collect();
        let answers = send_all(&remote, &retry).await;
        for (op, (status, body)) in retry.iter().zip(&answers) {
            let (kind, key) = (op.record_kind(), op.key.clone());
            match applied.entry((kind, key)) {
                std::collections::btree_map::Entry::Occupied(_) => assert!(
                    op.is_duplicate(*status, body),
                    "cycle {cycle}: retry of applied {kind} {}: {status} {body}",
                    op.key
                ),
                std::collections::btree_map::Entry::Vacant(slot) => {
                    assert!(
                        op.is_ack(*status, body),
                        "cycle {cycle}: retry of {kind} {}: {status} {body}",
                        op.key
                    );
                    slot.insert((op.account, op.amount));
                }
            }
        }
        assert_store_holds_exactly(&remote, &opening, &applied, cycle).await;
        report.push(format!(
            "cycle {cycle}: {} acked, {} in flight at the kill ({landed} landed), {} unsent",
            load.acked.len(),
            load.unacked.len(),
            load.unsent.len()
        ));
    }
    server.kill().await;
    println!("{}", report.join("\n"));
}

/// The store holds exactly `applied`: each record once, one journal entry per record, seq
/// 1..N without gaps, and every demo account at opening − Σ its credits.
async fn assert_store_holds_exactly(
    remote: &Remote,
    opening: &BTreeMap<String, Decimal>,
    applied: &BTreeMap<(&'static str, String), (&'static str, Decimal)>,
    cycle: usize,
) {
    let balances = remote.demo_balances().await;
    let journal = remote.journal().await;
    assert_journal_consistent(&journal, opening, &balances);
    let mut expected = opening.clone();
    for (account, amount) in applied.values() {
        *expected.get_mut(*account).expect("demo account") -= *amount;
    }
    assert_eq!(
        balances, expected,
        "cycle {cycle}: balances = opening − Σ applied credits"
    );
    assert_eq!(
        journal.len(),
        applied.len(),
        "cycle {cycle}: one journal entry per applied write"
    );
    // The minute counts (kept in memory, stored by the flusher, counted again from the commit
    // log on start) agree: every applied write made one record in the window.
    assert_eq!(
        remote.search_total_last_day().await,
        applied.len() as u64,
        "cycle {cycle}: an unfiltered search counts every record once"
    );
    // So do the facet counts (kept in memory, stored once a second, and on start counted
    // again from the records for the minutes the commits after their stamp touched): a
    // filter on the channel or on an amount threshold is answered from them.
    let payments = applied.keys().filter(|(kind, _)| *kind == "payment").count();
    let five = Decimal::new(500, 2);
    let filtered = [
        ("channel", "=", "orbipay", payments),
        ("channel", "=", "empayre", applied.len() - payments),
        (
            "amount",
            ">=",
            "5.00",
            applied.values().filter(|(_, amount)| *amount >= five).count(),
        ),
    ];
    for (name, method, value, want) in filtered {
        let filter = serde_json::json!({"name": name, "method": method, "searchParameter": [value]});
        assert_eq!(
            remote.search_total_last_day_where(vec![filter]).await,
            want as u64,
            "cycle {cycle}: totalCount of {name} {method} {value}"
        );
    }
    let mut seen = HashSet::new();
    for e in &journal {
        let kind = match e["kind"].as_str() {
            Some("payment") => "payment",
            Some("empayre-payment") => "empayre-payment",
            _ => panic!("cycle {cycle}: a journal entry of a kind the test never wrote: {e}"),
        };
        let key = (kind, e["record_id"].as_str().expect("record_id").to_string());
        let Some((account, amount)) = applied.get(&key) else {
            panic!("cycle {cycle}: journal entry for a write the store should not hold: {e}");
        };
        assert_eq!(e["account_number"], *account, "{e}");
        assert_eq!(e["delta"], (-*amount).to_string(), "{e}");
        assert!(
            seen.insert(key),
            "cycle {cycle}: two journal entries for one write: {e}"
        );
    }
}
