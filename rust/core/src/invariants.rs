//! Invariants every input must keep, shared by the libFuzzer target (rust/fuzz) and the bounded fuzz test:
//! no panic, and a batch accounts for every record it received.

use crate::batch::{process_batch, BatchOptions};
use crate::parse::{parse, Format};
use crate::schema::Schema;

/// The pipeline schema the fuzzers run with: event types, rules on envelope and properties, promotions.
pub fn fuzz_schema() -> Schema {
    Schema::from_json(
        r#"{"event_types":["click","purchase"],
            "fields":[{"path":"properties.amount","type":"number","min":0,"max":1e6},
                      {"path":"user_id","type":"string","pattern":"^u_","max_length":8},
                      {"path":"properties.currency","enum":["EUR","USD"]}],
            "promote":[{"path":"properties.amount","column":"amount","type":"double"},
                       {"path":"properties.n","column":"n","type":"long"}]}"#,
    )
    .expect("the fuzz schema compiles")
}

/// Run every entry point over `data` in `format` and check the accounting. Panics when an invariant breaks.
pub fn check_all(data: &[u8], format: Format) {
    let _ = parse(data, format);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::transform::parse_rfc3339_micros(text);
        let _ = Schema::from_json(text);
    }
    let schema = fuzz_schema();
    for include_raw in [false, true] {
        let opts = BatchOptions { format, schema: &schema, job_id: Some("fuzz"), include_raw };
        if let Ok(out) = process_batch(data, opts) {
            assert_eq!(
                out.num_rows() + out.rejects.len() + out.duplicates,
                out.received,
                "every record is a row, a reject or a duplicate"
            );
            assert!(out.rejects.iter().all(|r| !r.violations.is_empty() && !r.reason.is_empty()));
        }
    }
}
