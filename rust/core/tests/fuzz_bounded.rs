//! A bounded structured fuzz loop on stable Rust (runs in `cargo test`): seeds mutated by a seeded xorshift
//! generator (byte flips, insertions of JSON/CSV tokens, truncations, splices), checked against the same
//! invariants as the libFuzzer target in rust/fuzz. Deterministic, so a failure reproduces.

#[path = "../../fuzz/src/invariants.rs"]
mod invariants;

use invariants::check_all;
use eventpipe_core::Format;

const SEEDS: &[&[u8]] = &[
    include_bytes!("../../fuzz/seeds/ndjson.txt"),
    include_bytes!("../../fuzz/seeds/array.json"),
    include_bytes!("../../fuzz/seeds/rows.csv"),
];
const TOKENS: &[&[u8]] = &[
    b"{", b"}", b"[", b"]", b"\"", b",", b":", b"\\u", b"\\ud800", b"\\", b"\n", b"\r\n", b"null", b"-0", b"1e999",
    b"99999999999999999999999", b"\"timestamp\":", b"\"event_id\":", b"T", b"Z", b"+25:00", b".1234567890",
    b"\xff", b"\xe6\x97\xa5", b"\"properties\":{", b"\"_job_id\":", b"\"\"", b"2026-02-30T00:00:00Z",
];

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut XorShift, input: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        match rng.below(5) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                let at = rng.below(input.len() + 1);
                input.splice(at..at, t.iter().copied());
            }
            2 if !input.is_empty() => {
                let at = rng.below(input.len());
                input.truncate(at);
            }
            3 if !input.is_empty() => {
                let a = rng.below(input.len());
                let b = (a + rng.below(16)).min(input.len());
                input.drain(a..b);
            }
            _ => {
                let other = SEEDS[rng.below(SEEDS.len())];
                let at = rng.below(input.len() + 1);
                input.splice(at..at, other[..rng.below(other.len())].iter().copied());
            }
        }
    }
}

#[test]
fn mutated_inputs_keep_the_invariants() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for round in 0..3_000 {
        let mut input = SEEDS[round % SEEDS.len()].to_vec();
        mutate(&mut rng, &mut input);
        for format in [Format::Ndjson, Format::Json, Format::Csv] {
            check_all(&input, format);
        }
    }
}
