//! Orbipay lookup form parser (`application/x-www-form-urlencoded`): never a panic.
#![no_main]

use biller_inbox::orbipay::wire::parse_lookup;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(errors) = parse_lookup(data) {
        assert!(!errors.is_empty(), "a refusal names at least one error");
    }
});
