//! Issue 15 item 8, the proof under faults: three replicas (the real binary) on one database;
//! clients spread over them post payments, refunds and signed Empayre events, with duplicate
//! storms (the same request to every replica at once); mid-load one replica is SIGKILLed and
//! restarted, and the database is stopped with `pg_ctl stop -m immediate` and started again.
//!
//! Afterwards: every write answered as applied or as a duplicate is there once; every other
//! one is wholly there or wholly absent; balances equal opening − Σ live payments + Σ live
//! refunds; the journal is 1..N without gaps, one entry per applied write, and the same through
//! every replica; retries of the unacknowledged apply once.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rust_decimal::Decimal;

use crate::helpers::*;
use crate::{own_database, pg, ONE_AT_A_TIME};

const REPLICAS: usize = 3;
const CLIENTS: usize = 12;
const ADMIN: &str = "proof-admin-token";
const ACCOUNTS: [&str; 3] = ["ACC-100200", "ACC-100201", "ACC-100800"];
const WARM_UP_PAYMENTS: usize = 40;
const PAYMENTS: usize = 240;
const REFUNDS: usize = 40;
const EVENTS: usize = 120;
/// Every STORM-th write goes to every replica at once.
const STORM: usize = 5;
/// How often a client sends a refused write (503, no answer) before it gives up on it.
const RETRIES: usize = 6;

fn payment_op(id: String, account: &'static str, cents: i64, storm: bool) -> LoadWrite {
    let amount = Decimal::new(cents, 2);
    LoadWrite {
        kind: WriteKind::Payment,
        body: serde_json::to_vec(&payment(&id, account, &amount.to_string(), "processed")).expect("json"),
        key: id,
        account,
        amount,
        signature: None,
        storm,
    }
}

fn ops(signer: &biller_inbox::empayre::signature::BodySigner) -> Vec<LoadWrite> {
    let mut payments = Vec::new();
    for i in 0..PAYMENTS {
        let cents = 100 + (i as i64 * 37) % 900;
        payments.push(payment_op(
            format!("{}", 932_000 + i),
            ACCOUNTS[i % 3],
            cents,
            i % STORM == 0,
        ));
    }
    let mut refunds = Vec::new();
    for i in 0..REFUNDS {
        // A refund of 1.00 of warm-up payment i (each at least 1.00).
        let id = format!("{}", 933_000 + i);
        let body = refund(&id, &format!("{}", 931_000 + i), Some("1.00"), "processed");
        refunds.push(LoadWrite {
            kind: WriteKind::Refund,
            body: serde_json::to_vec(&body).expect("json"),
            key: id,
            account: ACCOUNTS[i % 3],
            amount: Decimal::new(100, 2),
            signature: None,
            storm: i % STORM == 1,
        });
    }
    let mut events = Vec::new();
    for i in 0..EVENTS {
        let cents = 100 + (i as i64 * 53) % 900;
        let invoice = format!("proof-{i}");
        let account = ACCOUNTS[(i + 1) % 3];
        let body =
            serde_json::to_vec(&captured_event(934_000 + i as i64, &invoice, Some(account), cents)).expect("json");
        events.push(LoadWrite {
            kind: WriteKind::Event,
            signature: Some(signer.sign_header(&body).expect("sign")),
            body,
            key: format!("demo:{invoice}:1"),
            account,
            amount: Decimal::new(cents, 2),
            storm: i % STORM == 2,
        });
    }
    // Interleave: payment, payment, event, refund (while refunds last), ...
    let mut mixed = Vec::new();
    let (mut events, mut refunds) = (events.into_iter(), refunds.into_iter());
    for (i, p) in payments.into_iter().enumerate() {
        mixed.push(p);
        if i % 2 == 1 {
            mixed.extend(events.next());
            mixed.extend(refunds.next());
        }
    }
    mixed.extend(events);
    mixed.extend(refunds);
    mixed
}

/// One replica: its process, how to start it again, and where it listens now.
struct Replica {
    process: ServerProcess,
    config: PathBuf,
    log: PathBuf,
}

/// Where each replica listens; a restarted replica gets a new port.
type Addresses = Arc<RwLock<Vec<Remote>>>;

/// What the load saw of one write, over all its attempts.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    acks: usize,
    duplicates: usize,
    unavailable: usize,
    unanswered: usize,
}

async fn load(
    addresses: Addresses,
    ops: Vec<LoadWrite>,
    progress: Arc<AtomicUsize>,
) -> (Vec<(LoadWrite, Seen)>, Vec<String>) {
    let queue = Arc::new(Mutex::new(
        ops.into_iter().enumerate().collect::<std::collections::VecDeque<_>>(),
    ));
    let results = Arc::new(Mutex::new(Vec::new()));
    let unexpected = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for _ in 0..CLIENTS {
        let (queue, results, unexpected, addresses, progress) = (
            queue.clone(),
            results.clone(),
            unexpected.clone(),
            addresses.clone(),
            progress.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let Some((n, op)) = queue.lock().expect("queue").pop_front() else {
                    return;
                };
                // Like a platform, a refused write is sent again after a pause (to the next
                // replica), for a while: the load runs on through the outage and the recovery.
                let mut seen = Seen::default();
                for attempt in 0..RETRIES {
                    let targets: Vec<Remote> = {
                        let all = addresses.read().expect("addresses");
                        if op.storm {
                            all.clone()
                        } else {
                            vec![all[(n + attempt) % REPLICAS].clone()]
                        }
                    };
                    let answers = futures_util::future::join_all(targets.iter().map(|t| op.send(t))).await;
                    for answer in answers {
                        match answer {
                            Ok((status, body)) if op.is_ack(status, &body) => seen.acks += 1,
                            Ok((status, body)) if op.is_duplicate(status, &body) => seen.duplicates += 1,
                            Ok((status, _)) if op.is_unavailable(status) => seen.unavailable += 1,
                            Ok((status, body)) => {
                                unexpected.lock().expect("unexpected").push(format!(
                                    "{} {}: {status} {body}",
                                    op.record_kind(),
                                    op.key
                                ));
                                seen.unanswered += 1;
                            }
                            Err(_) => seen.unanswered += 1,
                        }
                    }
                    if seen.acks + seen.duplicates > 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                progress.fetch_add(1, Ordering::SeqCst);
                results.lock().expect("results").push((op, seen));
            }
        }));
    }
    for w in workers {
        w.await.expect("client");
    }
    let results = std::mem::take(&mut *results.lock().expect("results"));
    let unexpected = std::mem::take(&mut *unexpected.lock().expect("unexpected"));
    (results, unexpected)
}

async fn wait_for(progress: &AtomicUsize, n: usize) {
    for _ in 0..600 {
        if progress.load(Ordering::SeqCst) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the load stalled before {n} writes");
}

async fn wait_ready(remote: &Remote) {
    for _ in 0..300 {
        if let Ok(r) = remote
            .client
            .get(format!("{}/health/ready", remote.address))
            .send()
            .await
        {
            if r.status().as_u16() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} did not become ready", remote.address);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_survive_a_killed_replica_and_a_crashed_database_mid_load() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let db = own_database();
    let dir = tempfile::tempdir().expect("dir");
    let signer = fixture_signer();
    let opening = demo_opening_balances();
    let mut replicas = Vec::new();
    for i in 0..REPLICAS {
        let folder = dir.path().join(format!("r{i}"));
        std::fs::create_dir_all(&folder).expect("dir");
        let config = write_pg_config(&folder, &db.url, &format!("[admin]\ntoken = \"{ADMIN}\"\n"));
        let log = folder.join("server.log");
        let process = start_binary(&config, &log).await;
        replicas.push(Replica { process, config, log });
    }
    let addresses: Addresses = Arc::new(RwLock::new(
        replicas
            .iter()
            .map(|r| Remote::new(&r.process.address, ADMIN))
            .collect(),
    ));
    let any = || addresses.read().expect("addresses")[0].clone();

    // Warm-up: payments the refunds will refund, all acknowledged.
    let mut applied: BTreeMap<(&'static str, String), Decimal> = BTreeMap::new();
    let mut accounts_of: BTreeMap<(&'static str, String), &'static str> = BTreeMap::new();
    for i in 0..WARM_UP_PAYMENTS {
        let op = payment_op(format!("{}", 931_000 + i), ACCOUNTS[i % 3], 500 + i as i64, false);
        let target = addresses.read().expect("addresses")[i % REPLICAS].clone();
        let (status, body) = op.send(&target).await.expect("warm-up answered");
        assert!(op.is_ack(status, &body), "warm-up payment: {status} {body}");
        applied.insert((op.record_kind(), op.key.clone()), op.delta());
        accounts_of.insert((op.record_kind(), op.key.clone()), op.account);
    }

    let all_ops = ops(&signer);
    let total = all_ops.len();
    let progress = Arc::new(AtomicUsize::new(0));
    let running = tokio::spawn(load(addresses.clone(), all_ops, progress.clone()));

    // A replica dies mid-batch and comes back on a new port.
    wait_for(&progress, total / 4).await;
    replicas[1].process.kill().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    replicas[1].process = start_binary(&replicas[1].config, &replicas[1].log).await;
    addresses.write().expect("addresses")[1] = Remote::new(&replicas[1].process.address, ADMIN);

    // The database machine crashes and restarts.
    wait_for(&progress, total / 2).await;
    pg::stop_immediately();
    tokio::time::sleep(Duration::from_millis(800)).await;
    pg::start_again();

    let (results, unexpected) = running.await.expect("load");
    assert!(
        unexpected.is_empty(),
        "answers that are neither applied, duplicate nor 503: {unexpected:?}"
    );
    let remotes: Vec<Remote> = addresses.read().expect("addresses").clone();
    for r in &remotes {
        wait_ready(r).await;
    }

    // 1. Whatever was answered as applied or duplicate is there once; the rest is wholly
    //    there or wholly absent.
    let mut unknown = Vec::new();
    let mut storms_with_two_acks = Vec::new();
    for (op, seen) in &results {
        if seen.acks > 1 {
            storms_with_two_acks.push(op.key.clone());
        }
        let record = any().record(op.record_kind(), &op.key).await;
        if seen.acks + seen.duplicates > 0 {
            assert!(
                record.is_some(),
                "{} {} was answered {seen:?} but is not stored",
                op.record_kind(),
                op.key
            );
        }
        match record {
            Some(record) => {
                assert_eq!(record["account_number"], op.account, "{record}");
                assert_eq!(record["amount"], op.amount.to_string(), "{record}");
                assert_eq!(record["live"], true, "{record}");
                applied.insert((op.record_kind(), op.key.clone()), op.delta());
                accounts_of.insert((op.record_kind(), op.key.clone()), op.account);
            }
            None => unknown.push(op.clone()),
        }
    }
    assert!(
        storms_with_two_acks.is_empty(),
        "applied twice: {storms_with_two_acks:?}"
    );
    assert_holds_exactly(&remotes, &opening, &applied, &accounts_of).await;

    // 2. The platforms retry what did not land: it applies once.
    for (i, op) in unknown.iter().enumerate() {
        let (status, body) = op.send(&remotes[i % REPLICAS]).await.expect("retry answered");
        assert!(
            op.is_ack(status, &body),
            "retry of {} {}: {status} {body}",
            op.record_kind(),
            op.key
        );
        applied.insert((op.record_kind(), op.key.clone()), op.delta());
        accounts_of.insert((op.record_kind(), op.key.clone()), op.account);
    }
    // And everything that did land is a duplicate now.
    for (i, (op, _)) in results.iter().enumerate().step_by(7) {
        let (status, body) = op.send(&remotes[i % REPLICAS]).await.expect("re-send answered");
        assert!(
            op.is_duplicate(status, &body),
            "re-send of {} {}: {status} {body}",
            op.record_kind(),
            op.key
        );
    }
    assert_holds_exactly(&remotes, &opening, &applied, &accounts_of).await;
    let outcome: BTreeMap<&str, usize> = results.iter().fold(BTreeMap::new(), |mut m, (_, s)| {
        let k = if s.acks > 0 {
            "acknowledged"
        } else if s.duplicates > 0 {
            "duplicate only"
        } else {
            "not acknowledged"
        };
        *m.entry(k).or_default() += 1;
        m
    });
    let attempts_refused: usize = results.iter().map(|(_, s)| s.unavailable + s.unanswered).sum();
    println!(
        "{} writes: {outcome:?}; {attempts_refused} refused or unanswered sends during the faults; \
         {} retried after the faults",
        results.len(),
        unknown.len()
    );
    for mut r in replicas {
        r.process.kill().await;
    }
}

/// Every replica shows balances = opening + Σ deltas of `applied`, and a journal of 1..N with
/// one entry per applied write, identical through every replica.
async fn assert_holds_exactly(
    remotes: &[Remote],
    opening: &BTreeMap<String, Decimal>,
    applied: &BTreeMap<(&'static str, String), Decimal>,
    accounts_of: &BTreeMap<(&'static str, String), &'static str>,
) {
    let mut expected = opening.clone();
    for (key, delta) in applied {
        *expected.get_mut(accounts_of[key]).expect("demo account") += *delta;
    }
    let mut journals = Vec::new();
    for remote in remotes {
        let balances = remote.demo_balances().await;
        assert_eq!(balances, expected, "balances through {}", remote.address);
        let journal = remote.journal().await;
        assert_journal_consistent(&journal, opening, &balances);
        assert_eq!(journal.len(), applied.len(), "one journal entry per applied write");
        let mut seen = HashSet::new();
        for e in &journal {
            let kind: &'static str = match e["kind"].as_str() {
                Some("payment") => "payment",
                Some("refund") => "refund",
                Some("empayre-payment") => "empayre-payment",
                _ => panic!("a journal entry of a kind the test never wrote: {e}"),
            };
            let key = (kind, e["record_id"].as_str().expect("record_id").to_string());
            let Some(delta) = applied.get(&key) else {
                panic!("journal entry for a write that did not apply: {e}");
            };
            assert_eq!(e["delta"], delta.to_string(), "{e}");
            assert!(seen.insert(key), "two journal entries for one write: {e}");
        }
        journals.push(journal);
    }
    assert!(
        journals.windows(2).all(|w| w[0] == w[1]),
        "the same journal through every replica"
    );
}
