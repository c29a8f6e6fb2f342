//! Orbipay payment and reversal parsers: arbitrary bodies give a posting or field errors, never a
//! panic; an accepted body's stored copy never keeps a CVV or an SSN.
#![no_main]

use biller_inbox::orbipay::wire::{parse_payment, parse_reversal, posting_id};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for parsed in [parse_payment(data), parse_reversal(data)] {
        match parsed {
            Ok((_, stored)) => {
                let text = serde_json::to_string(&stored).expect("the stored copy serializes");
                assert!(!text.contains("\"card_cvv_number\""), "stored copy keeps a CVV: {text}");
                assert!(!text.contains("\"ssn\""), "stored copy keeps an SSN: {text}");
            }
            Err(errors) => assert!(!errors.is_empty(), "a refusal names at least one error"),
        }
    }
    let _ = posting_id(data);
});
