//! The contract of the storage interface, as tests generic over `Backend`: what any backend
//! must do, whatever it stores in. Each backend runs the whole suite on a fresh, empty store of
//! its own (`sled_store` below; a database backend adds its own `suite!` line).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::json;

use super::{
    Backend, Decision, EventFilter, Keys, MinuteCount, RecordCursor, StoreError, StoredEvent, UnmatchedUpdate, View,
    Writes,
};
use crate::domain::account::AccountEntry;
use crate::domain::status::EmpayrePaymentStatus;
use crate::ledger::test_support::{account, payment, profile};
use crate::ledger::{Change, Channel, Record, RecordKind, RecordStatus};

fn at(second: u32) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("2026-11-21T09:00:{second:02}Z"))
        .expect("time")
        .with_timezone(&Utc)
}

/// Account "A" (USD, opening 500.00) with profile "C".
async fn with_account<B: Backend>(store: &B) {
    store
        .import_accounts(vec![AccountEntry {
            account: account("USD"),
            profiles: vec![profile()],
            reset_balance: false,
        }])
        .await
        .expect("imported");
}

/// A new live payment on "A" that lowers its balance by `amount`.
fn credit(id: &str, amount: &str, second: u32) -> Change {
    let mut p = payment(id, amount, true);
    p.received_at = at(second);
    p.updated_at = at(second);
    Change {
        delta: -p.amount,
        payment: p,
        refund: None,
        created: true,
        payment_created: true,
    }
}

/// Commits `change` unless a payment with its id exists (then: a confirmed duplicate).
async fn post<B: Backend>(store: &B, change: Change) -> Result<Option<super::Committed>, StoreError> {
    let keys = Keys {
        records: vec![(RecordKind::Payment, change.payment.id.clone())],
        accounts: vec!["A".into()],
        ..Keys::default()
    };
    let executed = store
        .execute(keys, move |view: &dyn View| {
            if view.record(RecordKind::Payment, &change.payment.id)?.is_some() {
                return Ok(Decision::Confirm("duplicate"));
            }
            let mut writes = Writes::new(Channel::Orbipay, change.payment.received_at);
            writes.change = Some(change.clone());
            Ok(Decision::commit(writes, "applied"))
        })
        .await?;
    Ok(executed.committed)
}

pub(crate) async fn commits_settle_the_balance_and_number_the_journal<B: Backend>(store: B) {
    with_account(&store).await;
    let mut seqs = Vec::new();
    for (i, amount) in ["10.00", "2.50", "0.01"].iter().enumerate() {
        let committed = post(&store, credit(&format!("p{i}"), amount, i as u32))
            .await
            .expect("posted")
            .expect("committed");
        seqs.push(committed.journal_seq.expect("a journal entry"));
        assert_eq!(committed.currency_exponent, 2);
        let change = committed.change.expect("the change comes back");
        assert_eq!(change.payment.id, format!("p{i}"));
    }
    assert_eq!(seqs, vec![1, 2, 3], "journal seqs are gap-free from 1");
    let balance = store
        .account(&"A".into())
        .await
        .expect("read")
        .expect("account")
        .current_balance();
    assert_eq!(balance.to_string(), "487.49");
    let journal = store.journal_after(0, 10).await.expect("feed");
    let balances: Vec<String> = journal.iter().map(|e| e.balance_after.to_string()).collect();
    assert_eq!(balances, ["490.00", "487.50", "487.49"]);
    assert_eq!(journal.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(store.journal_after(1, 1).await.expect("feed")[0].seq, 2);
    let newest_first: Vec<u64> = store
        .account_journal(&"A".into(), 10)
        .await
        .expect("account journal")
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(newest_first, [3, 2, 1]);
}

pub(crate) async fn refusals_and_confirmations_write_nothing<B: Backend>(store: B) {
    with_account(&store).await;
    let refused = store
        .execute(Keys::default(), |_: &dyn View| Ok(Decision::Refuse(7)))
        .await
        .expect("executed");
    assert_eq!((refused.outcome, refused.committed), (7, None));
    post(&store, credit("p1", "1.00", 1)).await.expect("posted");
    let again = post(&store, credit("p1", "1.00", 2)).await.expect("executed");
    assert_eq!(again, None, "a duplicate commits nothing");
    assert_eq!(store.journal_after(0, 10).await.expect("feed").len(), 1);
    let balance = store
        .account(&"A".into())
        .await
        .expect("read")
        .expect("account")
        .current_balance();
    assert_eq!(balance.to_string(), "499.00");
    let failed = store
        .execute(Keys::default(), |_: &dyn View| -> Result<Decision<()>, StoreError> {
            Err(StoreError::Corrupt("the decision failed".into()))
        })
        .await;
    assert!(matches!(failed, Err(StoreError::Corrupt(_))));
}

pub(crate) async fn concurrent_copies_apply_exactly_once<B: Backend>(store: B) {
    with_account(&store).await;
    let copies = (0..20).map(|_| post(&store, credit("same", "5.00", 1)));
    let results = futures_util::future::join_all(copies).await;
    let applied = results
        .into_iter()
        .map(|r| r.expect("executed"))
        .filter(Option::is_some)
        .count();
    assert_eq!(applied, 1);
    assert_eq!(store.journal_after(0, 100).await.expect("feed").len(), 1);
    let balance = store
        .account(&"A".into())
        .await
        .expect("read")
        .expect("account")
        .current_balance();
    assert_eq!(balance.to_string(), "495.00");
}

pub(crate) async fn events_are_numbered_and_deduplicated<B: Backend>(store: B) {
    let event = |id: i64, status: &str| {
        let (body, body_encoding) = StoredEvent::body_from(format!("{{\"eventID\":{id}}}").as_bytes());
        StoredEvent {
            seq: 0,
            source: "s".into(),
            event_id: Some(id),
            event_type: Some("InvoiceCreated".into()),
            invoice_id: Some("inv".into()),
            status: status.into(),
            reason: None,
            key_id: "k".into(),
            received_at: at(1),
            request_id: "r".into(),
            body_sha256: "00".into(),
            body,
            body_encoding,
            changes: Vec::new(),
            stale: Vec::new(),
        }
    };
    let store_event = |e: StoredEvent| {
        let source = e.source.clone();
        let id = e.event_id.unwrap_or_default();
        store.execute(
            Keys {
                events: vec![(source.clone(), id)],
                invoices: vec![(source.clone(), "inv".into())],
                ..Keys::default()
            },
            move |view: &dyn View| {
                if view.event_seen(&source, id)? {
                    return Ok(Decision::Confirm(None));
                }
                let before = view.invoice(&source, "inv")?;
                let mut writes = Writes::new(Channel::Empayre, at(1));
                writes.invoice = Some((source.clone(), "inv".into(), json!({"last_event_id": id})));
                writes.event = Some(e.clone());
                Ok(Decision::commit(writes, Some(before)))
            },
        )
    };
    let first = store_event(event(7, "stored")).await.expect("stored");
    assert_eq!(first.outcome, Some(None), "no invoice snapshot before the first event");
    let seq = first.committed.and_then(|c| c.event_seq).expect("an event seq");
    let second = store_event(event(8, "quarantined")).await.expect("stored");
    assert_eq!(
        second.outcome,
        Some(Some(json!({"last_event_id": 7}))),
        "the snapshot is visible to later decisions"
    );
    let seq2 = second.committed.and_then(|c| c.event_seq).expect("an event seq");
    assert!(seq2 > seq, "arrival order");
    let again = store_event(event(7, "stored")).await.expect("executed");
    assert_eq!((again.outcome, again.committed), (None, None), "a duplicate");
    let found = store.event("s", 7).await.expect("read").expect("event");
    assert_eq!((found.seq, found.body.as_str()), (seq, "{\"eventID\":7}"));
    let listed = store
        .events(&EventFilter {
            limit: 10,
            ..EventFilter::default()
        })
        .await
        .expect("events");
    assert_eq!(
        listed.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [seq2, seq],
        "newest first"
    );
    let quarantined = store.quarantined(10).await.expect("quarantine");
    assert_eq!(quarantined.iter().map(|e| e.event_id).collect::<Vec<_>>(), [Some(8)]);
}

pub(crate) async fn references_are_unique<B: Backend>(store: B) {
    let mut seen = BTreeSet::new();
    for _ in 0..50 {
        let executed = store
            .execute(Keys::default(), |view: &dyn View| {
                Ok(Decision::Refuse(view.fresh_reference('P')?))
            })
            .await
            .expect("executed");
        let reference = executed.outcome;
        assert!(reference.starts_with('P') && reference.len() >= 13, "{reference}");
        assert!(reference[1..].bytes().all(|b| b.is_ascii_digit()), "{reference}");
        assert!(seen.insert(reference), "unique");
    }
}

pub(crate) async fn record_updates_and_the_unmatched_list_commit_with_the_change<B: Backend>(store: B) {
    with_account(&store).await;
    let mut unmatched = payment("u", "3.00", true);
    unmatched.kind = RecordKind::EmpayrePayment;
    unmatched.status = RecordStatus::EmpayrePayment(EmpayrePaymentStatus::Captured);
    unmatched.account_number = None;
    let record: Record = unmatched.clone();
    let executed = store
        .execute(Keys::default(), move |_: &dyn View| {
            let mut writes = Writes::new(Channel::Empayre, at(1));
            writes.change = Some(Change {
                payment: record.clone(),
                refund: None,
                created: true,
                payment_created: true,
                delta: Decimal::ZERO,
            });
            writes.unmatched = Some(UnmatchedUpdate::Put(
                "u".into(),
                json!({"key": "u", "received_at": "x"}),
            ));
            Ok(Decision::commit(writes, ()))
        })
        .await
        .expect("executed");
    let committed = executed.committed.expect("committed");
    assert_eq!((committed.journal_seq, committed.balance_after), (None, None));
    assert_eq!(store.unmatched().await.expect("list").len(), 1);
    let stored = store
        .record(RecordKind::EmpayrePayment, "u")
        .await
        .expect("read")
        .expect("record");
    assert_eq!(stored, unmatched);
    store
        .execute(Keys::default(), |_: &dyn View| {
            let mut writes = Writes::new(Channel::Admin, at(2));
            writes.unmatched = Some(UnmatchedUpdate::Clear("u".into()));
            Ok(Decision::commit(writes, ()))
        })
        .await
        .expect("executed");
    assert!(store.unmatched().await.expect("list").is_empty());
}

pub(crate) async fn records_come_back_in_receive_order_page_by_page<B: Backend>(store: B) {
    with_account(&store).await;
    for i in 0..7u32 {
        // Posted out of order: the walk orders by receive time.
        let second = (i * 5) % 7;
        post(&store, credit(&format!("p{second}"), "1.00", second))
            .await
            .expect("posted");
    }
    let (mut ids, mut cursor) = (Vec::new(), None);
    loop {
        let page = store.records_received(None, cursor.take(), 3).await.expect("page");
        let Some(last) = page.last() else { break };
        cursor = Some(RecordCursor::of(last));
        ids.extend(page.iter().map(|r| r.id.clone()));
    }
    assert_eq!(ids, ["p0", "p1", "p2", "p3", "p4", "p5", "p6"]);
    let since = store.records_received(Some(at(5)), None, 10).await.expect("page");
    assert_eq!(since.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["p5", "p6"]);
}

pub(crate) async fn the_request_log_reads_newest_first<B: Backend>(store: B) {
    for n in 0..3 {
        store.log_rejection(json!({ "n": n })).await.expect("logged");
    }
    let log = store.recent_rejections(2).await.expect("read");
    assert_eq!(log, [json!({"n": 2}), json!({"n": 1})]);
    assert!(store.readiness().await.is_ok());
}

pub(crate) async fn meta_values_are_kept_by_name<B: Backend>(store: B) {
    assert_eq!(store.meta("empayre.reconcile.cursor.demo").await.expect("read"), None);
    store
        .put_meta("empayre.reconcile.cursor.demo", b"one".to_vec())
        .await
        .expect("written");
    store.put_meta("other", b"x".to_vec()).await.expect("written");
    store
        .put_meta("empayre.reconcile.cursor.demo", b"two".to_vec())
        .await
        .expect("replaced");
    assert_eq!(
        store.meta("empayre.reconcile.cursor.demo").await.expect("read"),
        Some(b"two".to_vec())
    );
    assert_eq!(store.meta("other").await.expect("read"), Some(b"x".to_vec()));
    assert!(
        store.readiness().await.is_ok(),
        "application values disturb no internal mark"
    );
}

pub(crate) async fn records_are_counted_per_minute<B: Backend>(store: B) {
    with_account(&store).await;
    let mut late = credit("p-late", "1.00", 10);
    late.payment.received_at += chrono::Duration::minutes(2);
    // An Empayre payment counts in the other channel.
    let mut empayre = credit("demo:inv-1:1", "1.00", 30);
    empayre.payment.kind = RecordKind::EmpayrePayment;
    for change in [
        credit("p0", "1.00", 0),
        credit("p5", "1.00", 5),
        credit("p59", "1.00", 59),
        late,
        empayre,
    ] {
        post(&store, change).await.expect("posted");
    }
    let minute = at(0).timestamp().div_euclid(60);
    let counts = store.received_per_minute(minute - 1, 5).await.expect("counts");
    let count = |orbipay, empayre| MinuteCount { orbipay, empayre };
    assert_eq!(
        counts,
        [count(0, 0), count(3, 1), count(0, 0), count(1, 0), count(0, 0)]
    );
}

/// A clean stop: closing waits for what was written, then the store answers `Unavailable` to
/// reads and writes alike (a late request gets a 503, never a half-closed store), and closing
/// again does nothing. Whether the data is there afterwards is each backend's reopen test.
pub(crate) async fn a_closed_store_refuses_work<B: Backend>(store: B) {
    with_account(&store).await;
    post(&store, credit("p1", "1.00", 1)).await.expect("posted");
    let clone = store.clone();
    store.close().await.expect("closed");
    let refused = post(&clone, credit("p2", "1.00", 2)).await;
    assert!(matches!(refused, Err(StoreError::Unavailable(_))), "{refused:?}");
    let read = clone.record(RecordKind::Payment, "p1").await;
    assert!(matches!(read, Err(StoreError::Unavailable(_))), "{read:?}");
    store.close().await.expect("closing again does nothing");
}

/// A record's journal entries are found by the record, however many newer entries its account
/// has: a payment's posting and its reversal, after 120 other postings.
pub(crate) async fn a_record_finds_every_journal_entry_it_made<B: Backend>(store: B) {
    with_account(&store).await;
    for i in 0..120u32 {
        post(&store, credit(&format!("p{i}"), "1.00", i % 60))
            .await
            .expect("posted")
            .expect("committed");
    }
    let mut reversal = credit("p0", "1.00", 0);
    reversal.payment.status = RecordStatus::Ebpp(crate::domain::status::PostingStatus::Returned);
    reversal.delta = reversal.payment.amount;
    reversal.created = false;
    reversal.payment_created = false;
    let keys = Keys {
        records: vec![(RecordKind::Payment, "p0".into())],
        accounts: vec!["A".into()],
        ..Keys::default()
    };
    store
        .execute(keys, move |_: &dyn View| {
            let mut writes = Writes::new(Channel::Orbipay, at(59));
            writes.change = Some(reversal.clone());
            Ok(Decision::commit(writes, "reversed"))
        })
        .await
        .expect("reversed");
    let seqs = |entries: Vec<crate::ledger::JournalEntry>| entries.iter().map(|e| e.seq).collect::<Vec<_>>();
    let of = |kind: RecordKind, id: &'static str| {
        let store = store.clone();
        async move { store.record_journal(kind, id).await.expect("record journal") }
    };
    let p0 = of(RecordKind::Payment, "p0").await;
    assert_eq!(seqs(p0.clone()), [1, 121]);
    assert!(p0.iter().all(|e| e.record_id == "p0" && e.kind == RecordKind::Payment));
    assert_eq!(p0[1].status, "returned");
    assert_eq!(seqs(of(RecordKind::Payment, "p119").await), [120]);
    assert_eq!(seqs(of(RecordKind::Refund, "p0").await), Vec::<u64>::new());
    assert_eq!(seqs(of(RecordKind::Payment, "p1000").await), Vec::<u64>::new());
}

/// Stores each of `records` (new ones when `created`) as a change that moves no money, all at
/// once (a backend that batches may commit several in one transaction).
pub(crate) async fn store_records<B: Backend>(store: &B, records: Vec<Record>, created: bool) {
    let writes = records.into_iter().map(|record| {
        let keys = Keys {
            records: vec![(record.kind, record.id.clone())],
            ..Keys::default()
        };
        let change = Change {
            delta: Decimal::ZERO,
            payment: record,
            refund: None,
            created,
            payment_created: created,
        };
        store.execute(keys, move |_: &dyn View| {
            let mut writes = Writes::new(Channel::Orbipay, at(0));
            writes.change = Some(change.clone());
            Ok(Decision::commit(writes, "stored"))
        })
    });
    for written in futures_util::future::join_all(writes).await {
        written.expect("stored");
    }
}

/// The exact totalCount of a search equals the number of records that match, over random
/// windows (ends inside minutes, on minute and hour boundaries, a few hours long) and random
/// filters on channel, kind, status and amount (round thresholds that bound an amount bucket
/// and others that cut one), after some records changed status: backends that count from
/// per-minute or per-hour counts must move a record's count with its status.
pub(crate) async fn search_totals_are_exact_over_any_window<B: Backend>(store: B) {
    use super::{Condition as C, Filter, Operand as O, SearchField as F, SearchQuery};
    use crate::domain::status::{EmpayrePaymentStatus as E, PostingStatus as P};
    use rand::{rngs::StdRng, Rng, SeedableRng};

    let mut rng = StdRng::seed_from_u64(15);
    let base = at(0).timestamp_micros() - 3_600_000_000;
    let amounts = [
        "1.00", "0.50", "10", "12.34", "25", "99.99", "100.00", "1200", "0.01", "5.5", "250.75",
    ];
    let mut records = Vec::new();
    for i in 0..400u32 {
        let kind = [RecordKind::Payment, RecordKind::Refund, RecordKind::EmpayrePayment][i as usize % 3];
        let mut r = payment(&format!("r{i}"), amounts[rng.gen_range(0..amounts.len())], true);
        r.kind = kind;
        if kind == RecordKind::EmpayrePayment {
            r.status = RecordStatus::EmpayrePayment(if rng.gen_bool(0.5) { E::Captured } else { E::Pending });
        }
        // Four hours; every tenth record exactly on a minute.
        let offset = if i % 10 == 0 {
            i64::from(rng.gen_range(0..240u32)) * 60_000_000
        } else {
            rng.gen_range(0..4 * 3_600_000_000i64)
        };
        r.received_at = DateTime::from_timestamp_micros(base + offset).expect("time");
        records.push(r);
    }
    store_records(&store, records.clone(), true).await;
    // Every fourth Orbipay record is returned, every fourth Empayre one refunded.
    let mut moved = Vec::new();
    for r in records.iter_mut().step_by(4) {
        r.status = match r.kind {
            RecordKind::EmpayrePayment => RecordStatus::EmpayrePayment(E::Refunded),
            _ => RecordStatus::Ebpp(P::Returned),
        };
        moved.push(r.clone());
    }
    store_records(&store, moved, false).await;

    let amount = |t: &str| O::Amount(t.parse().expect("amount"));
    let text = |t: &str| O::Text(t.to_string());
    let filters = [
        Filter {
            field: F::Kind,
            condition: C::Eq(text("refund")),
        },
        Filter {
            field: F::Kind,
            condition: C::In(vec![text("payment"), text("empayre-payment")]),
        },
        Filter {
            field: F::Channel,
            condition: C::Eq(text("orbipay")),
        },
        Filter {
            field: F::Channel,
            condition: C::Like("emp%".into()),
        },
        Filter {
            field: F::Status,
            condition: C::Eq(text("returned")),
        },
        Filter {
            field: F::Status,
            condition: C::In(vec![text("processed"), text("captured")]),
        },
        Filter {
            field: F::Status,
            condition: C::Lt(text("q")),
        },
        Filter {
            field: F::Amount,
            condition: C::Ge(amount("10.00")),
        },
        Filter {
            field: F::Amount,
            condition: C::Gt(amount("25")),
        },
        Filter {
            field: F::Amount,
            condition: C::Lt(amount("12.34")),
        },
        Filter {
            field: F::Amount,
            condition: C::Le(amount("99.99")),
        },
        Filter {
            field: F::Amount,
            condition: C::Between(amount("0.50"), amount("1.00")),
        },
        Filter {
            field: F::Amount,
            condition: C::Eq(amount("1200")),
        },
        Filter {
            field: F::Amount,
            condition: C::In(vec![amount("25"), amount("5.50"), amount("7")]),
        },
        Filter {
            field: F::Amount,
            condition: C::Ge(text("10")),
        },
    ];
    let holds = |f: &Filter, r: &Record| {
        let value = match f.field {
            F::Kind => r.kind.as_str(),
            F::Channel => r.kind.channel().as_str(),
            F::Status => r.status.as_str(),
            _ => {
                let cmp = |o: &O| match o {
                    O::Amount(a) => Some(r.amount.cmp(a)),
                    O::Text(_) => None,
                };
                return match &f.condition {
                    C::Ge(o) => cmp(o).is_some_and(|c| c.is_ge()),
                    C::Gt(o) => cmp(o).is_some_and(|c| c.is_gt()),
                    C::Lt(o) => cmp(o).is_some_and(|c| c.is_lt()),
                    C::Le(o) => cmp(o).is_some_and(|c| c.is_le()),
                    C::Eq(o) => cmp(o).is_some_and(|c| c.is_eq()),
                    C::In(list) => list.iter().any(|o| cmp(o).is_some_and(|c| c.is_eq())),
                    C::Between(lo, hi) => cmp(lo).is_some_and(|c| c.is_ge()) && cmp(hi).is_some_and(|c| c.is_le()),
                    C::Like(_) => false,
                };
            }
        };
        match &f.condition {
            C::Eq(O::Text(t)) => value == t,
            C::In(list) => list.iter().any(|o| matches!(o, O::Text(t) if t == value)),
            C::Lt(O::Text(t)) => value < t.as_str(),
            C::Like(p) => value.starts_with(p.trim_end_matches('%')),
            other => panic!("the model does not know {other:?}"),
        }
    };
    for round in 0..60 {
        let mut from = base - 600_000_000 + rng.gen_range(0..4 * 3_600_000_000i64);
        let mut until = from + rng.gen_range(0..4 * 3_600_000_000i64);
        match round % 3 {
            0 => {
                (from, until) = (
                    from - from.rem_euclid(60_000_000),
                    until - until.rem_euclid(3_600_000_000),
                )
            }
            1 => from -= from.rem_euclid(3_600_000_000),
            _ => {}
        }
        let mut chosen: Vec<Filter> = Vec::new();
        for _ in 0..rng.gen_range(0..3) {
            chosen.push(filters[rng.gen_range(0..filters.len())].clone());
        }
        let expected = records
            .iter()
            .filter(|r| (from..until).contains(&r.received_at.timestamp_micros()))
            .filter(|r| chosen.iter().all(|f| holds(f, r)))
            .count();
        let q = SearchQuery {
            from_nanos: from * 1000,
            until_nanos: until * 1000,
            filters: chosen.clone(),
            order: Vec::new(),
            offset: 0,
            limit: 5,
        };
        let page = store.search(&q).await.expect("search");
        assert_eq!(page.total, expected, "window {from}..{until} µs, filters {chosen:?}");
        assert_eq!(page.records.len(), expected.min(5));
    }
}

/// The postings search answers alike on every backend: ordered by status and by account number
/// (a record without an account first, as a missing value; accounts of different lengths in
/// text order), `like` with a literal start and with a leading `%` on ids and account numbers,
/// and confirmation numbers; ties by receive time in the first order's direction.
pub(crate) async fn the_search_orders_and_filters_alike<B: Backend>(store: B) {
    use crate::domain::status::PostingStatus;
    use crate::store::{Condition, Direction, Filter, Operand, SearchField, SearchQuery, SortField};
    let made = [
        ("p1", Some("B2"), PostingStatus::Processed, Some("CF-1"), 1),
        ("p2", Some("A10"), PostingStatus::Returned, Some("CF-2"), 2),
        ("p3", Some("A1"), PostingStatus::Processed, Some("XCF-3"), 3),
        ("e1", None, PostingStatus::Processed, None, 4),
        ("q4", Some("A1"), PostingStatus::Declined, Some("CF-4"), 5),
        ("p12", Some("B2"), PostingStatus::Processed, Some("CF-12"), 6),
    ];
    let mut records = Vec::new();
    for (id, account, status, confirmation, second) in made {
        let mut record = payment(id, "5.00", true);
        record.status = RecordStatus::Ebpp(status);
        if id == "e1" {
            record.kind = RecordKind::EmpayrePayment;
            record.status = RecordStatus::EmpayrePayment(EmpayrePaymentStatus::Captured);
        }
        record.account_number = account.map(|a| crate::domain::names::AccountNumber::parse(a).expect("account"));
        record.confirmation_number = confirmation.map(str::to_string);
        record.received_at = at(second);
        record.updated_at = at(second);
        records.push(record);
    }
    store_records(&store, records, true).await;
    let like = |field: SearchField, pattern: &str| Filter {
        field,
        condition: Condition::Like(pattern.into()),
    };
    let text = |s: &str| Operand::Text(s.into());
    type Case = (Vec<Filter>, Vec<(SortField, Direction)>, usize, &'static [&'static str]);
    let cases: Vec<Case> = vec![
        (
            vec![],
            vec![(SortField::Status, Direction::Asc)],
            0,
            &["e1", "q4", "p1", "p3", "p12", "p2"],
        ),
        (
            vec![],
            vec![(SortField::Status, Direction::Desc)],
            0,
            &["p2", "p12", "p3", "p1", "q4", "e1"],
        ),
        (
            vec![],
            vec![(SortField::AccountNumber, Direction::Asc)],
            0,
            &["e1", "p3", "q4", "p2", "p1", "p12"],
        ),
        (
            vec![],
            vec![(SortField::AccountNumber, Direction::Desc)],
            0,
            &["p12", "p1", "p2", "q4", "p3", "e1"],
        ),
        (
            vec![],
            vec![(SortField::AccountNumber, Direction::Asc)],
            2,
            &["q4", "p2"],
        ),
        (
            vec![Filter {
                field: SearchField::Status,
                condition: Condition::In(vec![text("processed")]),
            }],
            vec![(SortField::AccountNumber, Direction::Desc)],
            0,
            &["p12", "p1", "p3"],
        ),
        (
            vec![like(SearchField::AccountNumber, "A1%")],
            vec![],
            0,
            &["p2", "p3", "q4"],
        ),
        (vec![like(SearchField::AccountNumber, "%1")], vec![], 0, &["p3", "q4"]),
        (vec![like(SearchField::Id, "p1%")], vec![], 0, &["p1", "p12"]),
        (vec![like(SearchField::Id, "%2")], vec![], 0, &["p2", "p12"]),
        (
            vec![Filter {
                field: SearchField::ConfirmationNumber,
                condition: Condition::Eq(text("CF-2")),
            }],
            vec![],
            0,
            &["p2"],
        ),
        (
            vec![like(SearchField::ConfirmationNumber, "CF-1%")],
            vec![(SortField::ReceivedAt, Direction::Desc)],
            0,
            &["p12", "p1"],
        ),
    ];
    for (filters, order, offset, want) in cases {
        let q = SearchQuery {
            from_nanos: at(0).timestamp_nanos_opt().expect("nanos"),
            until_nanos: at(30).timestamp_nanos_opt().expect("nanos"),
            filters: filters.clone(),
            order: order.clone(),
            offset,
            limit: if offset > 0 { 2 } else { 50 },
        };
        let page = store.search(&q).await.expect("search");
        let ids: Vec<&str> = page.records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, want, "{filters:?} {order:?} offset {offset}");
        let matching = if offset > 0 { 6 } else { want.len() };
        assert_eq!(page.total, matching, "{filters:?} {order:?}");
    }
    // Filters on kind, channel and status (PostgreSQL merges one index range per kind and
    // status), with pages, amounts and ids: (filters, order, offset, limit, page, total).
    let eq = |field: SearchField, value: &str| Filter {
        field,
        condition: Condition::Eq(text(value)),
    };
    let statuses = |list: &[&str]| Filter {
        field: SearchField::Status,
        condition: Condition::In(list.iter().map(|s| text(s)).collect()),
    };
    let amount = |condition: Condition| Filter {
        field: SearchField::Amount,
        condition,
    };
    let five = || Operand::Amount(rust_decimal::Decimal::new(500, 2));
    let (asc, desc) = (Direction::Asc, Direction::Desc);
    type Paged = (
        Vec<Filter>,
        Vec<(SortField, Direction)>,
        usize,
        usize,
        &'static [&'static str],
        usize,
    );
    let paged: Vec<Paged> = vec![
        (
            vec![eq(SearchField::Channel, "orbipay")],
            vec![(SortField::ReceivedAt, desc)],
            0,
            50,
            &["p12", "q4", "p3", "p2", "p1"],
            5,
        ),
        (
            vec![eq(SearchField::Channel, "orbipay")],
            vec![(SortField::ReceivedAt, desc)],
            1,
            2,
            &["q4", "p3"],
            5,
        ),
        (
            vec![statuses(&["processed", "declined"])],
            vec![],
            0,
            50,
            &["p1", "p3", "q4", "p12"],
            4,
        ),
        (
            vec![statuses(&["processed"])],
            vec![(SortField::Status, desc)],
            0,
            50,
            &["p12", "p3", "p1"],
            3,
        ),
        (
            vec![statuses(&["processed"])],
            vec![(SortField::Status, desc), (SortField::ReceivedAt, desc)],
            1,
            1,
            &["p3"],
            3,
        ),
        (
            vec![eq(SearchField::Kind, "empayre-payment")],
            vec![],
            0,
            50,
            &["e1"],
            1,
        ),
        (
            vec![eq(SearchField::Channel, "empayre"), statuses(&["processed"])],
            vec![],
            0,
            50,
            &[],
            0,
        ),
        (
            vec![eq(SearchField::Channel, "orbipay")],
            vec![(SortField::Status, asc)],
            2,
            2,
            &["p3", "p12"],
            5,
        ),
        (
            vec![amount(Condition::Ge(five())), statuses(&["returned"])],
            vec![],
            0,
            50,
            &["p2"],
            1,
        ),
        (
            vec![amount(Condition::Gt(five())), eq(SearchField::Channel, "orbipay")],
            vec![(SortField::ReceivedAt, desc)],
            0,
            50,
            &[],
            0,
        ),
        (
            vec![eq(SearchField::Channel, "orbipay")],
            vec![(SortField::ReceivedAt, desc)],
            5,
            2,
            &[],
            5,
        ),
        (vec![eq(SearchField::Id, "p3")], vec![], 0, 50, &["p3"], 1),
        // `like` without a literal start, with runs of three characters or more (PostgreSQL's
        // trigram indexes) and shorter; and a later page in account order.
        (
            vec![like(SearchField::ConfirmationNumber, "%F-1%")],
            vec![(SortField::ReceivedAt, desc)],
            0,
            50,
            &["p12", "p1"],
            2,
        ),
        (
            vec![like(SearchField::ConfirmationNumber, "%CF-%")],
            vec![],
            1,
            3,
            &["p2", "p3", "q4"],
            5,
        ),
        (
            vec![like(SearchField::AccountNumber, "%A10")],
            vec![],
            0,
            50,
            &["p2"],
            1,
        ),
        (vec![like(SearchField::Id, "%12")], vec![], 0, 50, &["p12"], 1),
        (
            vec![like(SearchField::Id, "%p%")],
            vec![(SortField::AccountNumber, desc)],
            1,
            2,
            &["p1", "p2"],
            4,
        ),
        (
            vec![statuses(&["processed"])],
            vec![(SortField::Amount, desc)],
            0,
            50,
            &["p12", "p3", "p1"],
            3,
        ),
    ];
    for (filters, order, offset, limit, want, total) in paged {
        let q = SearchQuery {
            from_nanos: at(0).timestamp_nanos_opt().expect("nanos"),
            until_nanos: at(30).timestamp_nanos_opt().expect("nanos"),
            filters: filters.clone(),
            order: order.clone(),
            offset,
            limit,
        };
        let page = store.search(&q).await.expect("search");
        let ids: Vec<&str> = page.records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, want, "{filters:?} {order:?} offset {offset} limit {limit}");
        assert_eq!(page.total, total, "{filters:?} {order:?}");
    }
}

/// Runs every test of the suite against a backend made by `$open` (an expression giving a
/// fresh, empty store; it may use `dir`, a temp dir that outlives the test).
macro_rules! suite {
    ($backend:ident, $open:expr) => {
        mod $backend {
            use super::*;

            async fn fresh(dir: &tempfile::TempDir) -> impl Backend {
                let open = $open;
                open(dir)
            }

            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test]
                    async fn $name() {
                        let dir = tempfile::tempdir().expect("dir");
                        super::$name(fresh(&dir).await).await;
                    }
                };
            }

            case!(commits_settle_the_balance_and_number_the_journal);
            case!(refusals_and_confirmations_write_nothing);
            case!(concurrent_copies_apply_exactly_once);
            case!(events_are_numbered_and_deduplicated);
            case!(references_are_unique);
            case!(record_updates_and_the_unmatched_list_commit_with_the_change);
            case!(records_come_back_in_receive_order_page_by_page);
            case!(the_request_log_reads_newest_first);
            case!(meta_values_are_kept_by_name);
            case!(records_are_counted_per_minute);
            case!(a_closed_store_refuses_work);
            case!(a_record_finds_every_journal_entry_it_made);
            case!(search_totals_are_exact_over_any_window);
            case!(the_search_orders_and_filters_alike);
        }
    };
}

suite!(sled, |dir: &tempfile::TempDir| {
    super::super::SledStore::open(&dir.path().join("store"), 8 << 20).expect("store")
});

/// The throwaway PostgreSQL of the integration tests (one cluster for this test binary, a
/// fresh database per test; see the file for what it needs installed).
#[path = "../../tests/api/pg.rs"]
pub(crate) mod pg;

suite!(postgres, |_dir: &tempfile::TempDir| {
    let mut settings = crate::settings::Settings::defaults().store.postgres;
    settings.url = pg::test_database().url;
    settings.pool_size = 4;
    super::super::postgres::PgStore::open(&settings).expect("store")
});
