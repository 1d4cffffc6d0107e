//! libFuzzer target: the parsers and the batch path never panic, and a batch accounts for every record.
#![no_main]

use eventpipe_core::Format;
use libfuzzer_sys::fuzz_target;

#[path = "../src/invariants.rs"]
mod invariants;

fuzz_target!(|data: &[u8]| {
    for format in [Format::Ndjson, Format::Json, Format::Csv] {
        invariants::check_all(data, format);
    }
});
