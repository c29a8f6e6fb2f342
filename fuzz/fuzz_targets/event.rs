//! Empayre event parser: arbitrary bytes (after a good signature, so attacker-shaped only if the
//! key leaked, but a sender bug can produce anything) give an Event or an error, never a panic.
#![no_main]

use biller_inbox::empayre::event::parse_event;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = parse_event(data) {
        // Everything the sink reads from an accepted event must be usable too.
        let _ = event.is_known();
        let _ = event.invoice_ref();
        let _ = event.payment_ref();
        if let Some(p) = &event.payment {
            let _ = p.effective_amount();
        }
    }
});
