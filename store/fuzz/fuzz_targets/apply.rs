//! libFuzzer entry point: every input is a sequence of log entries applied to a state machine;
//! any panic (in `apply` or in the invariant checks after each entry) is a finding.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ticketd_store_fuzz::run(data);
});
