//! The consumer's path: one shard's Kinesis records in, raw_events rows with lineage and raw_events_rejected
//! rows out, in one call (the ingest service's path is [`crate::ingest`]).
//!
//! The Kinesis record contract (ARCHITECTURE.md) is read here and nowhere else in the consumer: a record holds
//! one event, or several that ingest packed (single-line JSON objects joined by "\n", each starting with "{");
//! an event ingest published starts with `{"_job_id":"` (its job, read from the first bytes without parsing);
//! a line ingest refused travels as a reject record starting with `{"_reject":`, which becomes a rejected row
//! with source "ingest" and never reaches validation. Every line shares its record's sequence number and arrival
//! time (lineage, checkpoints). A record the core cannot read as one NDJSON line (empty, not UTF-8, not an
//! object, a line break that is not a pack) is rejected before the batch is parsed, so that no line shifts.
//!
//! Re-sends are dropped twice: within the batch (first wins, [`crate::batch`]) and against the shard's
//! [`DedupeWindow`] of recently kept event ids, which is updated only when the whole batch succeeded.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema as ArrowSchema, SchemaRef, TimeUnit};
use serde_json::Value;

use crate::batch::{process_batch, BatchOptions};
use crate::error::{Error, Result};
use crate::parse::{push_compact, Format};
use crate::schema::Schema;
use crate::validate::Violation;
pub use crate::window::DedupeWindow;

/// The first bytes of a reject record ingest published for a line it refused.
pub const INGEST_REJECT_PREFIX: &[u8] = b"{\"_reject\":";
/// The first bytes of an event ingest published: `"_job_id"` is its first member.
pub const JOB_ID_PREFIX: &[u8] = b"{\"_job_id\":\"";
/// A job id longer than this is not one ingest made.
pub const MAX_JOB_ID_BYTES: usize = 128;

/// One Kinesis record as read from a shard.
#[derive(Debug, Clone, Copy)]
pub struct StreamRecord<'a> {
    pub data: &'a [u8],
    pub sequence_number: &'a str,
    /// ApproximateArrivalTimestamp, UTC microseconds: the rows' `ingested_at`.
    pub arrival_us: i64,
}

/// Why a record or line became a rejected row.
#[derive(Debug, Clone, PartialEq)]
pub enum Reasons {
    /// The rules the event broke (the core's validation).
    Violations(Vec<Violation>),
    /// Refused before validation: `{"field": field, "rule": rule, "message": message}`.
    Refused { field: &'static str, rule: &'static str, message: &'static str },
    /// The reasons an ingest reject record carried: their JSON text as it carried them (member order kept).
    Ingest(String),
}

/// Which service refused the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectSource {
    Ingest,
    Consumer,
}

impl RejectSource {
    pub fn name(self) -> &'static str {
        match self {
            RejectSource::Ingest => "ingest",
            RejectSource::Consumer => "consumer",
        }
    }
}

/// One raw_events_rejected row, but for its shard, sequence number and time (the caller's).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumeReject {
    /// Index of the Kinesis record the line came from.
    pub record: usize,
    pub source: RejectSource,
    pub raw: String,
    pub reasons: Reasons,
    /// The line in the batch the core read (1-based), or the line an ingest reject names.
    pub line: Option<i64>,
    pub job_id: Option<String>,
}

/// What `consume_batch` produces.
#[derive(Debug, Clone)]
pub struct ConsumeOutput {
    /// raw_events columns (the core's records without `source_line`) + `ingested_at`, `shard_id`,
    /// `sequence_number`.
    pub schema: SchemaRef,
    pub records: Vec<RecordBatch>,
    /// Whether any line reached the core (else there is no table at all, not an empty one).
    pub parsed: bool,
    /// Ingest's rejects first, then the records refused before validation, then the core's, each in order.
    pub rejects: Vec<ConsumeReject>,
    /// Valid events dropped as re-sends: within the batch or by the window.
    pub duplicates: usize,
    /// Kinesis records read.
    pub received: usize,
    /// Lines in those records (one per record unless ingest packed them).
    pub events: usize,
    pub bytes_read: usize,
    /// (record index, job id, lines) runs over the event lines that carry a job id, whatever became of them
    /// (written, dropped as a re-send, rejected): a job is complete once all of them are committed.
    pub job_events: Vec<(usize, String, usize)>,
}

impl ConsumeOutput {
    pub fn num_rows(&self) -> usize {
        self.records.iter().map(RecordBatch::num_rows).sum()
    }
}

/// The lines of a packed record (compact JSON objects joined by "\n": every line starts with "{"), or None when
/// `data` is not one (no line break, or a pretty-printed / broken record).
pub fn pack_lines(data: &[u8]) -> Option<Vec<&[u8]>> {
    if data.first() != Some(&b'{') || memchr::memchr(b'\n', data).is_none() {
        return None;
    }
    let mut lines = Vec::new();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', data).chain(std::iter::once(data.len())) {
        let line = &data[start..end];
        if line.first() != Some(&b'{') {
            return None;
        }
        lines.push(line);
        start = end + 1;
    }
    Some(lines)
}

/// The job id of an event record as ingest publishes it, from its first bytes; None without one.
pub fn job_id_from_prefix(data: &[u8]) -> Option<&str> {
    let rest = data.strip_prefix(JOB_ID_PREFIX)?;
    let near = &rest[..rest.len().min(MAX_JOB_ID_BYTES + 1)];
    let end = memchr::memchr(b'"', near)?;
    if end == 0 || near[..end].contains(&b'\\') {
        return None; // empty, or an escape: not an id ingest made
    }
    std::str::from_utf8(&near[..end]).ok()
}

/// Best effort: the reserved top-level `_job_id` of a rejected line, when it is a JSON object carrying one.
fn job_id_of(raw: &str) -> Option<String> {
    match serde_json::from_str::<Value>(raw).ok()?.get("_job_id")? {
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Python's `bytes.strip()` whitespace.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

struct Line<'a> {
    record: usize,
    data: &'a [u8],
}

const MALFORMED_INGEST_REJECT: &str = "the record starts like an ingest reject record but does not hold one";

/// The raw_events_rejected row of a reject record ingest published; a malformed one is a consumer reject.
fn ingest_reject(line: &Line<'_>) -> ConsumeReject {
    let value = serde_json::from_slice::<Value>(line.data).ok();
    let reject = value.as_ref().and_then(|v| v.get("_reject")).filter(|r| r.is_object());
    let raw = reject.and_then(|r| r.get("raw")).and_then(Value::as_str);
    let reasons = reject.and_then(|r| r.get("reasons")).filter(|r| r.is_array());
    let line_no = match reject.and_then(|r| r.get("line")) {
        None | Some(Value::Null) => Some(None),
        Some(Value::Number(n)) if n.to_string().bytes().all(|b| b.is_ascii_digit() || b == b'-') => n.as_i64().map(Some),
        Some(_) => None,
    };
    match (raw, reasons, line_no) {
        (Some(raw), Some(reasons), Some(line_no)) => ConsumeReject {
            record: line.record,
            source: RejectSource::Ingest,
            raw: raw.to_string(),
            reasons: Reasons::Ingest(reasons_text(line.data).unwrap_or_else(|| reasons.to_string())),
            line: line_no,
            job_id: value.as_ref().and_then(|v| v.get("_job_id")).and_then(Value::as_str).map(str::to_string),
        },
        _ => refused(line, "_reject", "reject_record", MALFORMED_INGEST_REJECT),
    }
}

/// The text of `_reject.reasons` as the record holds it (a `Value` would sort the members of each reason).
fn reasons_text(data: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Record<'a> {
        #[serde(rename = "_reject", borrow)]
        reject: &'a serde_json::value::RawValue,
    }
    #[derive(serde::Deserialize)]
    struct Reject<'a> {
        #[serde(borrow)]
        reasons: &'a serde_json::value::RawValue,
    }
    let record: Record<'_> = serde_json::from_slice(data).ok()?;
    let reject: Reject<'_> = serde_json::from_str(record.reject.get()).ok()?;
    Some(reject.reasons.get().to_string())
}

fn refused(line: &Line<'_>, field: &'static str, rule: &'static str, message: &'static str) -> ConsumeReject {
    let raw = String::from_utf8_lossy(line.data).into_owned();
    ConsumeReject {
        record: line.record,
        source: RejectSource::Consumer,
        job_id: job_id_of(&raw),
        raw,
        reasons: Reasons::Refused { field, rule, message },
        line: None,
    }
}

/// One NDJSON payload for the core from the event lines, the line each payload line came from, and the rejects
/// of the lines that cannot be one line of UTF-8 JSON text. A pretty-printed object is made one line by dropping
/// the whitespace between its tokens (order, numbers and escapes as sent).
fn prepare<'a>(lines: &[Line<'a>], rejects: &mut Vec<ConsumeReject>) -> (Vec<u8>, Vec<usize>) {
    let size = lines.iter().map(|l| l.data.len() + 1).sum::<usize>();
    let mut payload = Vec::with_capacity(size);
    let simple = lines.iter().all(|l| {
        l.data.first() == Some(&b'{') && memchr::memchr2(b'\n', b'\r', l.data).is_none() && std::str::from_utf8(l.data).is_ok()
    });
    if simple {
        for (i, l) in lines.iter().enumerate() {
            if i > 0 {
                payload.push(b'\n');
            }
            payload.extend_from_slice(l.data);
        }
        return (payload, (0..lines.len()).collect());
    }
    let mut kept = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        let data = l.data;
        let Some(first) = data.iter().position(|&b| !is_space(b)) else {
            rejects.push(refused(l, "", "empty", "the record is empty"));
            continue;
        };
        let Ok(text) = std::str::from_utf8(data) else {
            rejects.push(refused(l, "", "encoding", "the record is not UTF-8 text"));
            continue;
        };
        if data[first] != b'{' {
            rejects.push(refused(l, "", "json", "the record is not a JSON object"));
            continue;
        }
        let one_line;
        let text = if memchr::memchr2(b'\n', b'\r', data).is_some() {
            if serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() {
                rejects.push(refused(l, "", "line_break", "the record holds a line break and is not JSON"));
                continue;
            }
            let mut out = String::with_capacity(text.len());
            push_compact(&mut out, text);
            one_line = out;
            one_line.as_str()
        } else {
            text
        };
        if !kept.is_empty() {
            payload.push(b'\n');
        }
        payload.extend_from_slice(text.as_bytes());
        kept.push(i);
    }
    (payload, kept)
}

/// The raw_events schema of the consumer's rows: the core's records without `source_line`, then lineage.
pub fn consumed_schema(schema: &Schema) -> ArrowSchema {
    let records = crate::batch::records_schema(schema, false);
    let mut fields: Vec<Field> = records.fields().iter().filter(|f| f.name() != "source_line").map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("ingested_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true));
    fields.push(Field::new("shard_id", DataType::Utf8, true));
    fields.push(Field::new("sequence_number", DataType::Utf8, true));
    ArrowSchema::new(fields)
}

fn event_ids(chunk: &RecordBatch) -> Result<&StringArray> {
    chunk.column(0).as_any().downcast_ref::<StringArray>().ok_or_else(|| Error::Parquet("event_id is not a string column".into()))
}

/// One shard's records (in stream order) to rows with lineage and rejects, re-sends dropped against the batch
/// and `window`; `window` learns the kept ids when the call succeeds. `shard_id` fills the shard column.
pub fn consume_batch(
    records: &[StreamRecord<'_>],
    shard_id: &str,
    schema: &Schema,
    window: &mut DedupeWindow,
) -> Result<ConsumeOutput> {
    let mut lines: Vec<Line<'_>> = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        match pack_lines(record.data) {
            Some(packed) => lines.extend(packed.into_iter().map(|data| Line { record: index, data })),
            None => lines.push(Line { record: index, data: record.data }),
        }
    }
    let events = lines.len();
    let mut rejects = Vec::new();
    if lines.iter().any(|l| l.data.starts_with(INGEST_REJECT_PREFIX)) {
        rejects.extend(lines.iter().filter(|l| l.data.starts_with(INGEST_REJECT_PREFIX)).map(ingest_reject));
        lines.retain(|l| !l.data.starts_with(INGEST_REJECT_PREFIX));
    }
    let mut job_events: Vec<(usize, String, usize)> = Vec::new();
    for l in &lines {
        if let Some(job_id) = job_id_from_prefix(l.data) {
            match job_events.last_mut() {
                Some((record, last, n)) if *record == l.record && last == job_id => *n += 1,
                _ => job_events.push((l.record, job_id.to_string(), 1)),
            }
        }
    }
    let (payload, kept) = prepare(&lines, &mut rejects);
    let out_schema: SchemaRef = Arc::new(consumed_schema(schema));
    let mut output = ConsumeOutput {
        schema: out_schema.clone(),
        records: Vec::new(),
        parsed: !kept.is_empty(),
        rejects,
        duplicates: 0,
        received: records.len(),
        events,
        bytes_read: records.iter().map(|r| r.data.len()).sum(),
        job_events,
    };
    if kept.is_empty() {
        return Ok(output);
    }
    let batch = process_batch(&payload, BatchOptions { format: Format::Ndjson, schema, job_id: None, include_raw: false })?;
    output.duplicates = batch.duplicates;
    let record_of_line = |line: usize| lines[kept[line - 1]].record;
    for r in batch.rejects {
        let raw = r.raw;
        output.rejects.push(ConsumeReject {
            record: record_of_line(r.line),
            source: RejectSource::Consumer,
            job_id: job_id_of(&raw),
            raw,
            reasons: Reasons::Violations(r.violations),
            line: Some(r.line as i64),
        });
    }
    let filter = window.capacity() > 0 && !window.is_empty();
    for chunk in &batch.records {
        let source_at = chunk.schema().index_of("source_line")?;
        let source = chunk.column(source_at).as_any().downcast_ref::<Int64Array>().ok_or_else(|| Error::Parquet("source_line is not int64".into()))?;
        let rows: Vec<&StreamRecord<'_>> = source.values().iter().map(|&line| &records[record_of_line(line as usize)]).collect();
        let mut columns: Vec<ArrayRef> = chunk.columns().to_vec();
        columns.remove(source_at);
        columns.push(Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.arrival_us)).with_timezone("UTC")));
        columns.push(Arc::new(StringArray::from_iter_values(std::iter::repeat_n(shard_id, rows.len()))));
        columns.push(Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.sequence_number))));
        let mut chunk = RecordBatch::try_new(out_schema.clone(), columns)?;
        if filter {
            let unseen: BooleanArray = event_ids(&chunk)?.iter().map(|id| Some(!id.is_some_and(|id| window.contains(id)))).collect();
            if unseen.true_count() < unseen.len() {
                output.duplicates += unseen.len() - unseen.true_count();
                chunk = arrow_select::filter::filter_record_batch(&chunk, &unseen)?;
            }
        }
        output.records.push(chunk);
    }
    // Only now, when nothing can fail any more: a batch that fails teaches the window nothing.
    let kept_ids = output.records.iter().map(event_ids).collect::<Result<Vec<_>>>()?;
    window.add_all(kept_ids.iter().flat_map(|ids| ids.iter().flatten()));
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"_job_id":"j1","event_id":"ID","event_type":"x","timestamp":"2026-11-27T13:45:12Z"}"#;

    fn event(id: &str) -> String {
        EVENT.replace("ID", id)
    }

    fn consume(datas: &[&[u8]], window: &mut DedupeWindow) -> ConsumeOutput {
        let seqs: Vec<String> = (0..datas.len()).map(|i| format!("{}", 100 + i)).collect();
        let records: Vec<StreamRecord<'_>> = datas
            .iter()
            .zip(&seqs)
            .enumerate()
            .map(|(i, (data, seq))| StreamRecord { data, sequence_number: seq, arrival_us: 1_000 + i as i64 })
            .collect();
        consume_batch(&records, "shard-1", &Schema::envelope(), window).unwrap()
    }

    fn strings(out: &ConsumeOutput, column: &str) -> Vec<String> {
        out.records
            .iter()
            .flat_map(|b| {
                let c = b.column(b.schema().index_of(column).unwrap()).as_any().downcast_ref::<StringArray>().unwrap().clone();
                c.iter().map(|v| v.unwrap().to_string()).collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn packed_lines_keep_their_records_lineage_and_count_for_their_job() {
        let packed = format!("{}\n{}", event("a"), event("b"));
        let out = consume(&[packed.as_bytes(), event("c").as_bytes()], &mut DedupeWindow::new(10));
        assert_eq!(strings(&out, "event_id"), ["a", "b", "c"]);
        assert_eq!(strings(&out, "sequence_number"), ["100", "100", "101"]);
        assert_eq!(strings(&out, "shard_id"), ["shard-1"; 3]);
        assert_eq!((out.received, out.events, out.duplicates), (2, 3, 0));
        assert_eq!(out.job_events, vec![(0, "j1".to_string(), 2), (1, "j1".to_string(), 1)]);
        assert!(out.schema.index_of("source_line").is_err());
    }

    #[test]
    fn the_window_drops_resends_and_learns_only_what_was_kept() {
        let mut window = DedupeWindow::new(2);
        window.add_all(["a"]);
        let out = consume(&[event("a").as_bytes(), event("b").as_bytes(), event("b").as_bytes()], &mut window);
        assert_eq!(strings(&out, "event_id"), ["b"]);
        assert_eq!(out.duplicates, 2, "one re-send in the batch, one against the window");
        assert!(window.contains("a") && window.contains("b"));
        window.add_all(["c"]);
        assert!(!window.contains("a") && window.len() == 2, "the oldest leaves first");
        let mut off = DedupeWindow::new(0);
        off.add_all(["a"]);
        assert!(off.is_empty());
    }

    #[test]
    fn records_that_cannot_be_one_line_and_ingest_rejects_never_reach_validation() {
        let reject = br#"{"_reject":{"line":3,"raw":"{bad","reasons":[{"rule":"json"}]},"_job_id":"j9"}"#;
        let pretty = "{\n  \"event_id\": \"p\",\n  \"event_type\": \"x\",\n  \"timestamp\": \"2026-11-27T13:45:12Z\"\n}";
        let datas: [&[u8]; 7] =
            [reject, b"", b"\xff{", b"[1]", b"{\"a\":\n tru", pretty.as_bytes(), br#"{"_reject":"no"}"#];
        let out = consume(&datas, &mut DedupeWindow::new(10));
        assert_eq!(strings(&out, "event_id"), ["p"]);
        assert_eq!(strings(&out, "sequence_number"), ["105"]);
        let rules: Vec<(usize, &str)> = out
            .rejects
            .iter()
            .map(|r| match &r.reasons {
                Reasons::Refused { rule, .. } => (r.record, *rule),
                Reasons::Ingest(_) => (r.record, "ingest"),
                Reasons::Violations(_) => (r.record, "core"),
            })
            .collect();
        assert_eq!(rules, [(0, "ingest"), (6, "reject_record"), (1, "empty"), (2, "encoding"), (3, "json"), (4, "line_break")]);
        assert_eq!((out.rejects[0].line, out.rejects[0].job_id.as_deref()), (Some(3), Some("j9")));
        assert_eq!(out.rejects[0].source, RejectSource::Ingest);
    }

    #[test]
    fn the_job_id_is_read_from_the_first_bytes_only() {
        assert_eq!(job_id_from_prefix(br#"{"_job_id":"5f0c-1","event_id":"e"}"#), Some("5f0c-1"));
        assert_eq!(job_id_from_prefix(br#"{"event_id":"e","_job_id":"j"}"#), None);
        assert_eq!(job_id_from_prefix(br#"{"_job_id":"a\"b"}"#), None);
        assert_eq!(job_id_from_prefix(br#"{"_job_id":""}"#), None);
        assert_eq!(job_id_from_prefix(format!("{{\"_job_id\":\"{}\"}}", "x".repeat(500)).as_bytes()), None);
        assert_eq!(pack_lines(b"{}\n{}"), Some(vec![&b"{}"[..], b"{}"]));
        assert_eq!(pack_lines(b"{}\n x"), None);
        assert_eq!(pack_lines(b"{}"), None);
    }

    #[test]
    fn a_batch_of_only_rejects_has_no_table() {
        let out = consume(&[b"", br#"{"_reject":{"line":null,"raw":"x","reasons":[]}}"#], &mut DedupeWindow::new(1));
        assert!(!out.parsed && out.records.is_empty() && out.rejects.len() == 2);
    }
}
