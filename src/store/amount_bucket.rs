//! Amount buckets: the coarse amount both backends count records by, so that a search with an
//! amount threshold counts whole buckets instead of reading records.
//!
//! A positive amount with at most two significant digits (0.50, 1, 25, 100, 1200, 25000) has a
//! bucket of its own; the amounts between two such share one (1.01–1.09, 100.01–109.99,
//! 1200.01–1299.99). So a bucket is at most 10 % wide, a threshold at a round amount — the
//! ones people type — falls on a bucket's edge, and a day has at most a few thousand buckets.
//! What the searches rely on: buckets never decrease as amounts grow, and an even bucket from
//! 2 to `LAST - 2` holds one amount only.
//!
//! Numbering: zero and negative amounts are bucket 0, amounts below 10^-4 bucket 1; then per
//! decade (10^-4 up to 10^15) and per first two significant digits (10..=99) two buckets: the
//! round amount's own (even) and the amounts after it (odd); amounts from 10^16 share `LAST`.
//!
//! The sled store keeps these in its count keys and `idx_amount`; PostgreSQL in the `bucket`
//! column of `record_counts`, computed here by the batch writer. PostgreSQL's backfill (of a
//! migration or a store copy) uses the SQL function `biller_inbox_amount_bucket`, which must
//! give the same numbers (a test compares them over a table of amounts).

use rust_decimal::Decimal;

/// Decades the buckets tell apart: 10^-4 up to 10^15.
const LOWEST_DECADE: i64 = -4;
const DECADES: i64 = 20;

/// The bucket of amounts from 10^16 on.
pub const LAST: u16 = (2 + 2 * DECADES * 90) as u16;

/// The bucket of `amount`.
pub fn amount_bucket(amount: Decimal) -> u16 {
    match shape(amount) {
        None => 0,
        Some(s) if s.decade < LOWEST_DECADE => 1,
        Some(s) if s.decade >= LOWEST_DECADE + DECADES => LAST,
        Some(s) => {
            let own = 2 + 2 * ((s.decade - LOWEST_DECADE) * 90 + (i64::from(s.lead) - 10));
            (own + i64::from(!s.round)) as u16
        }
    }
}

/// Whether every amount in bucket `b` is the same (a round amount's own bucket).
pub fn is_single_amount_bucket(b: u16) -> bool {
    (2..LAST).contains(&b) && b.is_multiple_of(2)
}

/// Whether `amount` has a bucket of its own: a positive amount with at most two significant
/// digits, inside the decades the buckets tell apart.
pub fn is_bucket_floor(amount: Decimal) -> bool {
    is_single_amount_bucket(amount_bucket(amount))
}

/// What the bucket of a positive amount depends on.
struct Shape {
    /// Floor of log10 of the amount.
    decade: i64,
    /// Its first two significant digits, 10..=99.
    lead: u8,
    /// Whether it has at most two significant digits (trailing zeros of the integer part do
    /// not count: 1200 has two).
    round: bool,
}

/// None for zero and negative amounts. Arithmetic only: it runs for every record a commit
/// stores (twice when the record changes).
fn shape(amount: Decimal) -> Option<Shape> {
    if amount <= Decimal::ZERO {
        return None;
    }
    let mantissa = amount.mantissa().unsigned_abs();
    let digits = mantissa.ilog10();
    let lead = if digits == 0 {
        mantissa * 10
    } else {
        mantissa / 10u128.pow(digits - 1)
    };
    let mut significant = mantissa;
    while significant.is_multiple_of(10) {
        significant /= 10;
    }
    Some(Shape {
        decade: i64::from(digits) - i64::from(amount.scale()),
        lead: lead as u8,
        round: significant < 100,
    })
}

/// Amount conditions at round amounts (thresholds, ranges and lists): each falls on bucket
/// edges, so both backends answer it from their counts without reading a record. The sled and
/// PostgreSQL tests check that promise on the same list.
#[cfg(test)]
pub(crate) fn conditions_at_round_amounts() -> Vec<crate::store::query::Condition> {
    use crate::store::query::{Condition, Operand};
    let amount = |s: &str| Operand::Amount(s.parse().expect("amount"));
    let mut conditions = Vec::new();
    for t in ["0.50", "100.00", "100", "1000", "1200", "25000"] {
        conditions.extend([
            Condition::Gt(amount(t)),
            Condition::Ge(amount(t)),
            Condition::Lt(amount(t)),
            Condition::Le(amount(t)),
            Condition::Eq(amount(t)),
        ]);
    }
    conditions.push(Condition::Between(amount("100"), amount("1200")));
    conditions.push(Condition::In(vec![amount("100.00"), amount("25000"), amount("1000")]));
    conditions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }

    #[test]
    fn buckets_never_decrease_and_round_amounts_have_their_own() {
        let values = [
            "0",
            "0.00001",
            "0.0001",
            "0.5",
            "0.99",
            "1",
            "1.00",
            "1.01",
            "1.09",
            "1.1",
            "9.99",
            "10",
            "10.00",
            "10.37",
            "10.99",
            "11",
            "99.5",
            "99.99",
            "100",
            "100.00",
            "100.01",
            "109.99",
            "110",
            "999.99",
            "1000",
            "1000.01",
            "1199.99",
            "1200",
            "1200.5",
            "1234.56",
            "1299.99",
            "1300",
            "24999.99",
            "25000",
            "25000.01",
            "1000000000000000",
            "9900000000000000",
            "10000000000000000",
            "100000000000000000000",
        ];
        let mut last = 0u16;
        for v in values {
            let b = amount_bucket(d(v));
            assert!(b >= last, "{v} went down to bucket {b} from {last}");
            last = b;
        }
        for (below, round, above) in [
            ("0.99", "1.00", "1.01"),
            ("9.99", "10", "10.01"),
            ("0.49", "0.50", "0.51"),
            ("99.99", "100.00", "100.01"),
            ("999.99", "1000", "1000.01"),
            ("1199.99", "1200", "1200.01"),
            ("24999.99", "25000", "25000.01"),
            ("999999999999999.99", "1000000000000000", "1000000000000000.01"),
        ] {
            let b = amount_bucket(d(round));
            assert!(
                is_single_amount_bucket(b) && is_bucket_floor(d(round)),
                "{round} has its own bucket"
            );
            assert!(amount_bucket(d(below)) < b && b < amount_bucket(d(above)), "{round}");
        }
        assert_eq!(amount_bucket(d("1.00")), amount_bucket(d("1")));
        assert_eq!(amount_bucket(d("100.00")), amount_bucket(d("100")));
        assert_eq!(amount_bucket(d("1.01")), amount_bucket(d("1.09")));
        assert_eq!(amount_bucket(d("100.01")), amount_bucket(d("109.99")));
        assert_eq!(amount_bucket(d("1200.01")), amount_bucket(d("1299.99")));
        for (v, floor) in [
            ("10.00", true),
            ("1.5", true),
            ("0.25", true),
            ("25000.00", true),
            ("10.37", false),
            ("1250", false),
            ("100.5", false),
            ("0", false),
            ("-1", false),
            ("-100", false),
            ("1.01", false),
            ("0.00001", false),
            ("10000000000000000", false),
        ] {
            assert_eq!(is_bucket_floor(d(v)), floor, "{v}");
        }
        assert_eq!(amount_bucket(d("-5")), 0);
        assert_eq!(amount_bucket(d("0.00001")), 1);
        assert_eq!(amount_bucket(d("100000000000000000000")), LAST);
    }

    /// Every bucket is at most 10 % wide: the next round amount is at most 10 % above the
    /// round amount that opens a bucket.
    #[test]
    fn a_bucket_is_at_most_ten_percent_wide() {
        for decade in -4..16i32 {
            for lead in 10..=99u32 {
                let at = |lead: u32| Decimal::from_scientific(&format!("{lead}e{}", decade - 1)).expect("amount");
                let (floor, next) = (at(lead), at(lead + 1));
                assert!(next <= floor * d("1.1"), "{floor} .. {next}");
                assert!(is_bucket_floor(floor), "{floor}");
                assert_eq!(amount_bucket(next), amount_bucket(floor) + 2, "{floor} .. {next}");
            }
        }
    }
}
