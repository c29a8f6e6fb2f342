//! Criterion micro-benchmarks of the pure functions on every request's hot path (issue 6):
//!
//! - `orbipay/parse_payment`: posting parse + validation + scrub of a realistic body;
//! - `empayre/signature_parse_verify`: `Content-Signature` parse and RS256 verify of the signature
//!   vector (2048-bit key), and the two halves separately;
//! - `ledger/decide_payment`: the decision for a new payment on an active account.
//!
//! `cargo bench --bench hot_paths` (add `-- NAME` to run one). Setup panics with a message: a
//! benchmark whose inputs are broken must not report a number.

use std::hint::black_box;
use std::path::Path;

use biller_inbox::domain::account::parse_accounts_file;
use biller_inbox::empayre::keys::parse_public_key;
use biller_inbox::empayre::signature::{parse_content_signature, verify};
use biller_inbox::ledger::orbipay::{decide_payment, PaymentContext};
use biller_inbox::orbipay::posting::payment_command;
use biller_inbox::orbipay::wire::parse_payment;
use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rust_decimal::Decimal;
use serde_json::json;

/// The signature vector (see `fixtures/vectors/empayre/README.md`).
const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/vectors/empayre");

fn read(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(path)).unwrap_or_else(|e| panic!("bench input file {path} cannot be read: {e}"))
}

/// The body of `tests/api/helpers.rs::payment()`, as EBPP sends it.
fn payment_body() -> Vec<u8> {
    json!({"posting_info": {
        "id": "1000001",
        "amount": "25.00",
        "confirmation_number": "CONF1000001",
        "currency_code3d": "USD",
        "custom_fields": {},
        "customer": {"id": "1", "customer_reference": "C-1001", "first_name": "Ana"},
        "customer_account": {"id": "2", "account_number": "ACC-100200"},
        "funding_account": {"id": "3", "account_number": "xxxxxx6789", "account_type": "bank"},
        "payment_date": "2026-11-21",
        "payment_method": "ach",
        "payment_network_response": {"payment_auth_code": "A1"},
        "payment_schedule_type": "one_time_payment",
        "status": "processed",
    }})
    .to_string()
    .into_bytes()
}

fn orbipay(c: &mut Criterion) {
    let body = payment_body();
    if let Err(errors) = parse_payment(&body) {
        panic!("the benchmark body does not validate: {errors:?}");
    }
    let mut g = c.benchmark_group("orbipay");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_payment", |b| b.iter(|| parse_payment(black_box(&body))));
    g.finish();
}

fn empayre(c: &mut Criterion) {
    let body = read(&format!("{VECTORS}/tv_body.json"));
    let header = String::from_utf8(read(&format!("{VECTORS}/tv_header.txt"))).expect("tv_header.txt is UTF-8");
    let header = header.trim_end().to_string();
    let pem = String::from_utf8(read(&format!("{VECTORS}/tv_pub_spki.pem"))).expect("tv_pub_spki.pem is UTF-8");
    let keys = vec![parse_public_key(&pem).unwrap_or_else(|e| panic!("vector key: {e}"))];
    let signature = parse_content_signature(&header).unwrap_or_else(|e| panic!("vector header: {e}"));
    if let Err(e) = verify(&keys, &body, &signature) {
        panic!("the signature vector does not verify: {e}");
    }
    let mut g = c.benchmark_group("empayre");
    g.throughput(Throughput::Elements(1));
    g.bench_function("signature_parse_verify", |b| {
        b.iter(|| {
            let sig = parse_content_signature(black_box(&header)).ok()?;
            verify(&keys, black_box(&body), &sig).ok().map(|k| k.bits)
        })
    });
    g.bench_function("signature_parse", |b| {
        b.iter(|| parse_content_signature(black_box(&header)))
    });
    g.bench_function("signature_verify", |b| {
        b.iter(|| verify(&keys, black_box(&body), black_box(&signature)).is_ok())
    });
    g.finish();
}

fn ledger(c: &mut Criterion) {
    // The account and profile as an import makes them (robust to new fields on the structs).
    let accounts = r#"[{"account_number": "ACC-100200", "status": "active", "currency": "USD", "current_balance": "110.05",
        "min_payment_amount": "1.00", "max_payment_amount": "5000.00",
        "customers": [{"customer_reference": "C-1001", "email": "ana@example.com", "status": "active"}]}]"#;
    let entries = parse_accounts_file(accounts).unwrap_or_else(|e| panic!("benchmark account: {e:?}"));
    let entry = entries.first().expect("one account");
    let account = &entry.account;
    let profile = entry.profiles.first().expect("one profile");
    let body = payment_body();
    let (posting, _) = parse_payment(&body).unwrap_or_else(|e| panic!("benchmark body: {e:?}"));
    let cmd = payment_command(posting, "demo-client".into(), "bench-request".into(), Utc::now());
    let ctx = PaymentContext {
        existing: None,
        refunds: &[],
        account: Some(account),
        profile: Some(profile),
        default_min_payment: Decimal::new(1, 2),
        fresh_reference: "P000000000001".into(),
    };
    if let Err(e) = decide_payment(&cmd, &ctx) {
        panic!("the benchmark payment is refused: {e:?}");
    }
    let mut g = c.benchmark_group("ledger");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decide_payment", |b| {
        b.iter(|| decide_payment(black_box(&cmd), black_box(&ctx)).map(|change| change.delta))
    });
    g.finish();
}

criterion_group!(benches, orbipay, empayre, ledger);
criterion_main!(benches);
