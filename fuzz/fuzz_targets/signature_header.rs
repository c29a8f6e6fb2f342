//! `Content-Signature` header parser: any header text must give bytes or an error, never a panic.
#![no_main]

use biller_inbox::empayre::signature::parse_content_signature;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Header values reach the parser through `HeaderValue::to_str`, so only visible ASCII and
    // spaces/tabs; feed arbitrary UTF-8 anyway (a superset).
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(bytes) = parse_content_signature(header) {
        assert!(!bytes.is_empty(), "an accepted digest decodes to at least one byte");
    }
});
