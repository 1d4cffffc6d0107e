//! Invariants every input must keep, shared by the libFuzzer target (rust/fuzz) and the bounded fuzz test in
//! rust/core/tests (both include this file by path, so it is no part of the shipped crate's API):
//! no panic, a batch accounts for every record it received, and the ingest path (`ingest::ingest_batch`, which
//! splits JSON arrays by their structure alone) agrees with the batch path on what is valid.

use eventpipe_core::batch::{process_batch, process_batch_pieces, BatchOptions};
use eventpipe_core::ingest::{ingest_batch, IngestOptions, KeyField};
use eventpipe_core::parse::{parse, Format};
use eventpipe_core::schema::Schema;

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

/// The fast envelope reader (`check_event`) and the serde_json reference (`check_event_reference`) give the same
/// event and the same violations for every line of `data` and for the whole of it.
pub fn check_envelope_paths(data: &[u8], schema: &Schema) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for line in text.split('\n').map(str::trim).chain([text]) {
        let (mut fast, mut reference) = (Vec::new(), Vec::new());
        let a = eventpipe_core::check_event(line, 0, schema, &mut fast);
        let b = eventpipe_core::check_event_reference(line, 0, schema, &mut reference);
        assert_eq!((a, fast), (b, reference), "the fast reader and serde_json disagree on {line:?}");
    }
}

/// Run every entry point over `data` in `format` and check the accounting. Panics when an invariant breaks.
pub fn check_all(data: &[u8], format: Format) {
    check_envelope_paths(data, &fuzz_schema());
    check_envelope_paths(data, &Schema::envelope());
    let _ = parse(data, format);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = eventpipe_core::transform::parse_rfc3339_micros(text);
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
    let batch = process_batch(data, BatchOptions { format, schema: &schema, job_id: None, include_raw: false });
    if let Ok(one) = &batch {
        // The same batch cut into pieces as small as one byte, on three threads: the same result.
        let opts = BatchOptions { format, schema: &schema, job_id: None, include_raw: false };
        let three = process_batch_pieces(data, opts, 3, 1).expect("the pieces read what the whole batch read");
        assert!(one.same_as(&three), "three threads give what one thread gives");
    }
    let opts = IngestOptions {
        format,
        schema: &schema,
        job_id: "fuzz",
        key_field: KeyField::UserId,
        shard_starts: &[0, 1 << 127],
        pack_max_bytes: 4096,
        max_record_bytes: usize::MAX,
        max_events: 0,
    };
    match (ingest_batch(data, &opts), batch) {
        (Ok(ingest), Ok(batch)) => {
            assert_eq!((ingest.received, ingest.duplicates), (batch.received, batch.duplicates));
            assert_eq!(ingest.accepted, batch.num_rows(), "the same events are valid on both paths");
            let lines = |rejects: &[eventpipe_core::batch::Reject]| rejects.iter().map(|r| r.line).collect::<Vec<_>>();
            assert_eq!(lines(&ingest.rejects), lines(&batch.rejects));
            assert_eq!(ingest.records.iter().map(|r| r.events()).sum::<usize>(), ingest.accepted);
            for record in &ingest.records {
                let data = ingest.data(record);
                assert_eq!(data.split(|&b| b == b'\n').count(), record.events(), "one line per event");
            }
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "the same error on both paths"),
        (a, b) => panic!("one path failed: ingest {:?}, batch {:?}", a.err(), b.err()),
    }
}
