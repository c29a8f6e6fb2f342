//! The closed value sets of the Orbipay EBPP posting wire (docs/orbipay.md).
//!
//! EBPP enums are strict: a value outside the list is an `error_field`, never passed through.
//! `status` drives the ledger (live or not), so it is a Rust enum; the other lists are only
//! checked and then kept as the posted string, because nothing in biller-inbox branches on them
//! except `refund_type = fee_only`, which the ledger compares as a string.

pub use crate::domain::status::PostingStatus;

/// `status` values, for validation messages.
pub const STATUSES: &[&str] = &[
    "scheduled",
    "cancelled",
    "processing",
    "processed",
    "returned",
    "declined",
    "disputed",
    "error",
];

/// `status` values a reversal may carry (§5.4): the non-live ones.
pub const REVERSAL_STATUSES: &[&str] = &["cancelled", "returned", "declined", "disputed", "error"];

/// `payment_method`. The spec adds `rtp_rfp` to the EBPP 1.1.7 list.
pub const PAYMENT_METHODS: &[&str] = &[
    "ach",
    "check",
    "visa_debit",
    "pinless_debit",
    "master_debit",
    "amex_credit",
    "discover_credit",
    "visa_credit",
    "master_credit",
    "discover_debit",
    "cash",
    "swiped_card",
    "scanned_check",
    "external_pos",
    "apple_pay",
    "google_pay",
    "voyager_fleet",
    "rtp_rfp",
];

/// `payment_schedule_type`.
pub const PAYMENT_SCHEDULE_TYPES: &[&str] = &[
    "one_time_payment",
    "autopay_generated_payment",
    "variable_recurring_generated_payment",
    "payment_plan_generated",
];

/// `payment_amount_type` (optional on the wire).
pub const PAYMENT_AMOUNT_TYPES: &[&str] = &[
    "current_balance",
    "minimum_payment_due",
    "past_payment_due",
    "statement_balance",
    "discounted_amount",
    "penalty_amount",
    "other",
    "payoff_amount",
    "paydown_amount",
];

/// What an absent `payment_amount_type` means (EBPP: "This defaults to other").
pub const DEFAULT_PAYMENT_AMOUNT_TYPE: &str = "other";

/// `refund_type` (optional).
pub const REFUND_TYPES: &[&str] = &["payment_and_fee", "payment_only", "fee_only", "other"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_and_liveness() {
        for status in PostingStatus::ALL {
            assert_eq!(PostingStatus::parse(status.as_str()), Some(status));
            let json = serde_json::to_string(&status).expect("serialize");
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            let back: PostingStatus = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, status);
            assert_eq!(status.to_string(), status.as_str());
        }
        let live: Vec<_> = PostingStatus::ALL.iter().filter(|s| s.is_live()).collect();
        assert_eq!(
            live,
            [
                &PostingStatus::Scheduled,
                &PostingStatus::Processing,
                &PostingStatus::Processed
            ]
        );
        assert_eq!(STATUSES, PostingStatus::ALL.map(PostingStatus::as_str).as_slice());
        let non_live: Vec<_> = PostingStatus::ALL
            .iter()
            .filter(|s| !s.is_live())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(REVERSAL_STATUSES, non_live.as_slice());
    }

    #[test]
    fn status_parse_is_strict() {
        for bad in [
            "Processed",
            "PROCESSED",
            " processed",
            "processed ",
            "",
            "canceled",
            "live",
        ] {
            assert_eq!(PostingStatus::parse(bad), None, "{bad:?}");
        }
        assert!(serde_json::from_str::<PostingStatus>("\"Processed\"").is_err());
    }

    #[test]
    fn default_amount_type_is_listed() {
        assert!(PAYMENT_AMOUNT_TYPES.contains(&DEFAULT_PAYMENT_AMOUNT_TYPE));
        assert!(REFUND_TYPES.contains(&"fee_only"));
        assert!(PAYMENT_METHODS.contains(&"rtp_rfp"));
    }
}
