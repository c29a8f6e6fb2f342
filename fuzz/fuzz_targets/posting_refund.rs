//! Orbipay refund parser: arbitrary bodies give a refund or field errors, never a panic.
#![no_main]

use biller_inbox::orbipay::wire::parse_refund;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_refund(data) {
        Ok((_, stored)) => {
            let text = serde_json::to_string(&stored).expect("the stored copy serializes");
            assert!(!text.contains("\"card_cvv_number\""), "stored copy keeps a CVV: {text}");
            assert!(!text.contains("\"ssn\""), "stored copy keeps an SSN: {text}");
        }
        Err(errors) => assert!(!errors.is_empty(), "a refusal names at least one error"),
    }
});
