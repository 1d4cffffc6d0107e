//! The ingest service's path: a request body in, Kinesis records ready to send out, in one pass and without a
//! Python object per event (the consumer's path, with Arrow columns, is [`crate::batch`]).
//!
//! Each event that passes validation and is the first of its `event_id` becomes one NDJSON line: its compact JSON
//! with `"_job_id"` first (the record contract in ARCHITECTURE.md). Its partition key is the configured envelope
//! field or promoted column, else its event_id, hashed when over Kinesis' 256 characters. An event too large for
//! one Kinesis record becomes a reject. With a shard map, the lines of each shard are packed into records
//! ([`crate::pack`]); without one, every event is a record of its own.

use std::borrow::Cow;

use crate::batch::{checked, unreadable, Reject};
use crate::dedupe::{Deduper, Ids};
use crate::error::{Error, Result};
use crate::pack;
use crate::put_records::sha256_hex;
use crate::parse::{
    job_id_member, push_compact_object, records, split_array_structure_upto, split_csv_upto, split_records, Format,
    SourceRecord,
};
use crate::schema::Schema;
use crate::validate::{Event, Promoted, Violation};

/// Kinesis partition keys are 1..256 Unicode characters.
pub const MAX_PARTITION_KEY_CHARS: usize = 256;

/// Which value of an event is its partition key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyField {
    EventId,
    EventType,
    UserId,
    SessionId,
    /// The promoted column at this index of the schema's promotions.
    Promoted(usize),
}

impl KeyField {
    /// The key field named `name`: an envelope string field or a promoted column of `schema`.
    pub fn resolve(name: &str, schema: &Schema) -> Result<KeyField> {
        match name {
            "" | "event_id" => Ok(KeyField::EventId),
            "event_type" => Ok(KeyField::EventType),
            "user_id" => Ok(KeyField::UserId),
            "session_id" => Ok(KeyField::SessionId),
            _ => match schema.promote.iter().position(|p| p.column == name) {
                Some(index) => Ok(KeyField::Promoted(index)),
                None => {
                    let promoted: Vec<&str> = schema.promote.iter().map(|p| p.column.as_str()).collect();
                    Err(Error::schema(
                        "partition_key_field",
                        format!(
                            "{name:?} is not event_id, event_type, user_id, session_id or a promoted column of the \
                             schema (promoted: {})",
                            if promoted.is_empty() { "none".to_string() } else { promoted.join(", ") }
                        ),
                    ))
                }
            },
        }
    }

    /// This event's value of the field, when present and not empty.
    fn value<'e>(self, ev: &'e Event<'_>) -> Option<Cow<'e, str>> {
        let text: Cow<'e, str> = match self {
            KeyField::EventId => Cow::Borrowed(&ev.event_id),
            KeyField::EventType => Cow::Borrowed(&ev.event_type),
            KeyField::UserId => Cow::Borrowed(ev.user_id.as_deref()?),
            KeyField::SessionId => Cow::Borrowed(ev.session_id.as_deref()?),
            KeyField::Promoted(index) => match ev.promoted.get(index)? {
                Promoted::Null => return None,
                Promoted::Str(s) => Cow::Borrowed(s),
                Promoted::Double(x) => Cow::Owned(x.to_string()),
                Promoted::Long(x) => Cow::Owned(x.to_string()),
                Promoted::Int(x) => Cow::Owned(x.to_string()),
                Promoted::Bool(x) => Cow::Owned(x.to_string()),
            },
        };
        (!text.is_empty()).then_some(text)
    }
}

/// A partition key within Kinesis' limit: longer values become their SHA-256 in hex (still stable per value).
pub fn fit_partition_key(key: &str) -> Cow<'_, str> {
    if key.len() <= MAX_PARTITION_KEY_CHARS || key.chars().count() <= MAX_PARTITION_KEY_CHARS {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(sha256_hex(key.as_bytes()))
    }
}

/// Options of one request.
#[derive(Debug, Clone, Copy)]
pub struct IngestOptions<'o> {
    pub format: Format,
    pub schema: &'o Schema,
    /// Written first into every line as `"_job_id"`.
    pub job_id: &'o str,
    pub key_field: KeyField,
    /// The open shards' starting hash keys, ascending; empty: no packing.
    pub shard_starts: &'o [u128],
    /// Packed records hold at most this many bytes (data + partition key); 0: one event per record.
    pub pack_max_bytes: usize,
    /// A record (data + partition key) over this is refused (Kinesis: 1 MiB) and its event becomes a reject.
    pub max_record_bytes: usize,
    /// Records (lines, elements, rows) per request; past it nothing is built (no record, no reject), the rest is
    /// only counted: `received` tells the caller to refuse the request. 0: no limit.
    pub max_events: usize,
}

/// One Kinesis record to send. Its data, the lines of its events joined by "\n", is written by
/// [`IngestOutput::write_data`] straight into the caller's buffer (the Python binding: the bytes object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KinesisRecord {
    pub key: String,
    /// Index into the shard starts of the shard the record must land on (None when not packed).
    pub shard: Option<usize>,
    /// The record's events: indexes of their lines in the output, in order.
    pub members: Vec<usize>,
    /// Bytes of data.
    pub data_len: usize,
}

impl KinesisRecord {
    /// Events (lines) in the record.
    pub fn events(&self) -> usize {
        self.members.len()
    }
}

/// What `ingest_batch` produces.
#[derive(Debug, Clone)]
pub struct IngestOutput {
    pub records: Vec<KinesisRecord>,
    /// Events in the records.
    pub accepted: usize,
    /// Records that failed parsing or validation, and events too large for a Kinesis record, by line.
    pub rejects: Vec<Reject>,
    /// Valid events dropped because an earlier one had the same event_id.
    pub duplicates: usize,
    /// Records (lines, elements, rows) seen.
    pub received: usize,
    /// The accepted events' lines, which the records' data is made of.
    lines: Lines,
}

/// The accepted events so far: their lines in one buffer and their partition keys in another (one allocation
/// each per request, not one per event).
#[derive(Debug, Clone, Default)]
struct Lines {
    text: String,
    ends: Vec<usize>,
    keys: String,
    key_ends: Vec<usize>,
}

impl Lines {
    fn line(&self, index: usize) -> &[u8] {
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        &self.text.as_bytes()[start..self.ends[index]]
    }

    fn key(&self, index: usize) -> &str {
        let start = if index == 0 { 0 } else { self.key_ends[index - 1] };
        &self.keys[start..self.key_ends[index]]
    }
}

/// The event ids of the events first seen so far, in one buffer (the dedupe table keeps no ids of its own).
#[derive(Default)]
struct SeenIds {
    text: String,
    ends: Vec<usize>,
}

impl SeenIds {
    fn push(&mut self, id: &str) {
        self.text.push_str(id);
        self.ends.push(self.text.len());
    }
}

impl Ids for SeenIds {
    fn id(&self, index: usize) -> &str {
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        &self.text[start..self.ends[index]]
    }
}

/// Parse, validate and deduplicate a request body into Kinesis records. Only an unreadable container (a broken
/// JSON array, a bad CSV header) fails the request; every bad record becomes a [`Reject`].
pub fn ingest_batch(data: &[u8], opts: &IngestOptions<'_>) -> Result<IngestOutput> {
    let job_member = job_id_member(opts.job_id);
    // Memory is bounded by the event limit, not by the body's shape: past `limit` records nothing is built.
    let limit = if opts.max_events == 0 { usize::MAX } else { opts.max_events };
    let keep = limit.saturating_add(1);
    // A JSON array is split by its structure alone; each element is parsed below anyway. CSV rows past the limit
    // are counted, not converted.
    let (by_structure, total) = match opts.format {
        Format::Json => match split_array_structure_upto(data, keep) {
            Some((elements, total)) => (Some(elements), Some(total)),
            None => (None, None),
        },
        Format::Csv => {
            let (rows, total) = split_csv_upto(data, keep)?;
            (Some(rows), Some(total))
        }
        Format::Ndjson => (None, None),
    };
    if let Some(total) = total.filter(|&n| n > limit) {
        return Ok(IngestOutput::over_limit(total));
    }
    let structure_split = opts.format == Format::Json && by_structure.is_some();
    // Sized once for the events to come: growing these buffers by doubling copies them again and again.
    let expected = by_structure
        .as_ref()
        .map_or_else(|| memchr::memchr_iter(b'\n', data).count() + 1, Vec::len)
        .min(keep);
    let mut lines = Lines {
        text: String::with_capacity(data.len() + expected * (job_member.len() + 1)),
        ends: Vec::with_capacity(expected),
        keys: String::with_capacity(expected * 16),
        key_ends: Vec::with_capacity(expected),
    };
    let mut seen = SeenIds { text: String::with_capacity(expected * 40), ends: Vec::with_capacity(expected) };
    let mut dedupe = Deduper::with_capacity(expected);
    let mut rejects = Vec::new();
    let mut violations = Vec::new();
    let (mut received, mut duplicates) = (0usize, 0usize);
    let mut source: Box<dyn Iterator<Item = SourceRecord<'_>>> = match by_structure {
        Some(elements) => Box::new(elements.into_iter()),
        None => records(data, opts.format)?,
    };
    while let Some(rec) = source.next() {
        received += 1;
        if received > limit {
            return Ok(IngestOutput::over_limit(received + source.count()));
        }
        let text: &str = match &rec.json {
            Ok(text) => text,
            Err(why) => {
                rejects.push(unreadable(&rec, why));
                continue;
            }
        };
        let Some(ev) = checked(&rec, text, opts.schema, &mut violations, &mut rejects) else { continue };
        if !dedupe.first_seen(&ev.event_id, &seen) {
            duplicates += 1;
            continue;
        }
        seen.push(&ev.event_id);
        let key_start = lines.keys.len();
        match opts.key_field.value(&ev) {
            Some(value) => lines.keys.push_str(&fit_partition_key(&value)),
            None => lines.keys.push_str(&fit_partition_key(&ev.event_id)),
        };
        let start = lines.text.len();
        push_event_line(&mut lines.text, text, &job_member, ev.job_id.is_some());
        let size = lines.text.len() - start + lines.keys.len() - key_start;
        if size > opts.max_record_bytes {
            lines.text.truncate(start);
            lines.keys.truncate(key_start);
            rejects.push(oversize(&rec, size, opts.max_record_bytes));
            continue;
        }
        lines.ends.push(lines.text.len());
        lines.key_ends.push(lines.keys.len());
    }
    if structure_split && rejects.iter().any(|r| r.violations.iter().any(|v| v.rule == "json")) {
        // An element that is not JSON (or not an object): when the array is not JSON, serde's split of it
        // fails and says where; when it is, the rejects stand as they are.
        split_records(data, opts.format)?;
    }
    rejects.sort_by_key(|r| r.line); // stable: the oversize ones were pushed after earlier lines' rejects
    let accepted = lines.ends.len();
    Ok(IngestOutput { records: to_records(&lines, opts), accepted, rejects, duplicates, received, lines })
}

impl IngestOutput {
    /// The output for a body of `received` records, over the event limit: nothing built, the count only.
    fn over_limit(received: usize) -> IngestOutput {
        IngestOutput { records: Vec::new(), accepted: 0, rejects: Vec::new(), duplicates: 0, received, lines: Lines::default() }
    }

    /// Write `record`'s data into `out`, which holds exactly `record.data_len` bytes.
    pub fn write_data(&self, record: &KinesisRecord, out: &mut [u8]) {
        assert_eq!(out.len(), record.data_len, "the buffer must hold exactly the record's data");
        let mut at = 0;
        for (n, &index) in record.members.iter().enumerate() {
            if n > 0 {
                out[at] = b'\n';
                at += 1;
            }
            let line = self.lines.line(index);
            out[at..at + line.len()].copy_from_slice(line);
            at += line.len();
        }
    }

    /// `record`'s data as a new buffer.
    pub fn data(&self, record: &KinesisRecord) -> Vec<u8> {
        let mut out = vec![0; record.data_len];
        self.write_data(record, &mut out);
        out
    }
}

/// Append the event's line: its text as the client sent it with `job_member` first, when that text is one line
/// and has no `"_job_id"` of its own (`own_job_id`: the event has a top-level "_job_id", however its key is
/// escaped; check_event reads it); its compact form otherwise (see [`push_compact_object`]), which drops it.
///
/// A raw newline can only be whitespace in JSON text (inside strings it must be escaped), so text without CR or
/// LF bytes is a valid NDJSON line as it is; compacting every event cost a third of this function's time on
/// bodies written with spaces after ':' and ','.
pub fn push_event_line(out: &mut String, text: &str, job_member: &str, own_job_id: bool) {
    let single_line = memchr::memchr2(b'\n', b'\r', text.as_bytes()).is_none();
    let body = text.trim_start().strip_prefix('{');
    match body {
        Some(members) if single_line && !own_job_id => {
            out.push('{');
            out.push_str(job_member);
            if members.trim_start().starts_with('}') {
                out.push('}');
            } else {
                out.push(',');
                out.push_str(members.trim_end());
            }
        }
        _ => push_compact_object(out, text, Some(job_member)),
    }
}

fn to_records(lines: &Lines, opts: &IngestOptions<'_>) -> Vec<KinesisRecord> {
    let count = lines.ends.len();
    if opts.shard_starts.is_empty() || opts.pack_max_bytes == 0 {
        return (0..count)
            .map(|i| KinesisRecord {
                key: lines.key(i).to_string(),
                shard: None,
                members: vec![i],
                data_len: lines.line(i).len(),
            })
            .collect();
    }
    let slices: Vec<&[u8]> = (0..count).map(|i| lines.line(i)).collect();
    let keys: Vec<&str> = (0..count).map(|i| lines.key(i)).collect();
    pack::pack(&slices, &keys, opts.shard_starts, opts.pack_max_bytes)
        .into_iter()
        .map(|p| {
            let key = keys[p.members[0]];
            KinesisRecord { key: key.to_string(), shard: Some(p.shard), data_len: p.size - key.len(), members: p.members }
        })
        .collect()
}

fn oversize(rec: &SourceRecord<'_>, size: usize, limit: usize) -> Reject {
    let v = Violation {
        index: rec.line.saturating_sub(1),
        field: String::new(),
        rule: "max_record_size",
        message: "event too large for one record".to_string(),
        value: None,
    };
    let reason = format!("the event is {size} bytes as a Kinesis record, over the limit of {limit}");
    Reject { line: rec.line, reason, violations: vec![v], raw: rec.raw.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn opts<'o>(schema: &'o Schema, starts: &'o [u128], pack_max_bytes: usize) -> IngestOptions<'o> {
        IngestOptions {
            format: Format::Ndjson,
            schema,
            job_id: "j-1",
            key_field: KeyField::UserId,
            shard_starts: starts,
            pack_max_bytes,
            max_record_bytes: 1024 * 1024,
            max_events: 0,
        }
    }

    const BODY: &str = concat!(
        "{\"event_id\":\"a\",\"event_type\":\"x\",\"timestamp\":\"2026-11-27T13:45:12Z\",\"user_id\":\"u1\"}\n",
        "not json\n",
        "{\"event_id\":\"b\", \"event_type\":\"x\",\"timestamp\":\"2026-11-27T13:45:12Z\"}\n",
        "{\"event_id\":\"a\",\"event_type\":\"x\",\"timestamp\":\"2026-11-27T13:45:12Z\",\"user_id\":\"u1\"}\n",
        "{\"event_type\":\"x\",\"timestamp\":\"2026-11-27T13:45:12Z\"}\n",
    );

    #[test]
    fn one_record_per_event_without_packing() {
        let schema = Schema::envelope();
        let out = ingest_batch(BODY.as_bytes(), &opts(&schema, &[], 0)).unwrap();
        assert_eq!((out.received, out.accepted, out.duplicates), (5, 2, 1));
        assert_eq!(out.rejects.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 5]);
        let keys: Vec<&str> = out.records.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, vec!["u1", "b"], "user_id, else event_id");
        let first = String::from_utf8(out.data(&out.records[0])).unwrap();
        assert!(first.starts_with("{\"_job_id\":\"j-1\",\"event_id\":\"a\""), "{first}");
        let second = String::from_utf8(out.data(&out.records[1])).unwrap();
        assert!(second.starts_with("{\"_job_id\":\"j-1\",\"event_id\":\"b\", \"event_type\""), "as sent: {second}");
        assert!(out.records.iter().all(|r| r.shard.is_none() && r.events() == 1));
    }

    #[test]
    fn packed_records_hold_every_event_on_its_keys_shard() {
        let schema = Schema::envelope();
        let starts = [0u128, 1u128 << 126, 1u128 << 127, 3u128 << 126];
        let out = ingest_batch(BODY.as_bytes(), &opts(&schema, &starts, 1024)).unwrap();
        assert_eq!(out.records.iter().map(|r| r.events()).sum::<usize>(), 2);
        for record in &out.records {
            for line in out.data(record).split(|&b| b == b'\n') {
                let event: Value = serde_json::from_slice(line).unwrap();
                let key = event.get("user_id").or(event.get("event_id")).and_then(Value::as_str).unwrap();
                assert_eq!(Some(pack::shard_of(key, &starts)), record.shard);
            }
        }
    }

    #[test]
    fn an_event_over_the_record_limit_is_a_reject() {
        let schema = Schema::envelope();
        let mut o = opts(&schema, &[], 0);
        o.max_record_bytes = 90;
        let out = ingest_batch(BODY.as_bytes(), &o).unwrap();
        let oversize: Vec<&Reject> = out.rejects.iter().filter(|r| r.violations[0].rule == "max_record_size").collect();
        assert_eq!(oversize.len(), 1, "{:?}", out.rejects);
        assert_eq!(oversize[0].line, 1);
        assert!(oversize[0].reason.contains("over the limit of 90"), "{}", oversize[0].reason);
        assert_eq!(out.accepted, 1);
        assert_eq!(out.rejects.iter().map(|r| r.line).collect::<Vec<_>>(), vec![1, 2, 5], "sorted by line");
    }

    #[test]
    fn long_keys_are_hashed_and_unknown_key_fields_refused() {
        let long = "k".repeat(300);
        assert_eq!(fit_partition_key(&long).len(), 64);
        assert_eq!(fit_partition_key("short"), "short");
        let wide = "é".repeat(200); // 400 bytes but 200 characters: fits
        assert_eq!(fit_partition_key(&wide), wide.as_str());
        assert!(KeyField::resolve("nope", &Schema::envelope()).is_err());
        assert_eq!(KeyField::resolve("", &Schema::envelope()).unwrap(), KeyField::EventId);
    }

    #[test]
    fn event_lines_are_the_text_as_sent_unless_it_spans_lines_or_has_its_own_job_id() {
        let line = |text: &str| {
            let mut out = String::new();
            let own = serde_json::from_str::<Value>(text).unwrap().get("_job_id").is_some();
            push_event_line(&mut out, text, "\"_job_id\":\"j\"", own);
            out
        };
        assert_eq!(line("{ \"a\": 1 } "), "{\"_job_id\":\"j\", \"a\": 1 }");
        assert_eq!(line("{}"), "{\"_job_id\":\"j\"}");
        assert_eq!(line("{ }"), "{\"_job_id\":\"j\"}");
        assert_eq!(line("{\"a\":\n 1}"), "{\"_job_id\":\"j\",\"a\":1}");
        assert_eq!(line("{\"a\":1,\"_job_id\":\"old\"}"), "{\"_job_id\":\"j\",\"a\":1}");
        assert_eq!(line("{\"\\u005fjob_id\":\"old\",\"a\":1}"), "{\"_job_id\":\"j\",\"a\":1}", "an escaped key too");
        for text in ["{ \"a\": [1, {\"b\": \"x y\"}] }", "{\"a\":\r\n2}", "{\"s\":\"_job_id\"}", "{}",
                     "{\"p\":{\"_job_id\":1}}", "{\"_job\\u005fid\":\"old\",\n\"a\":1}"] {
            let out = line(text);
            let parsed: Value = serde_json::from_str(&out).unwrap();
            assert_eq!(parsed["_job_id"], "j");
            assert!(!out.contains('\n') && !out.contains('\r'), "{out:?}");
            let mut original: Value = serde_json::from_str(text).unwrap();
            original.as_object_mut().unwrap().insert("_job_id".into(), "j".into());
            assert_eq!(parsed, original);
        }
    }

    #[test]
    fn a_json_array_with_an_element_that_is_not_json_fails_whole() {
        let schema = Schema::envelope();
        let mut o = opts(&schema, &[], 0);
        o.format = Format::Json;
        let good = "{\"event_id\":\"a\",\"event_type\":\"x\",\"timestamp\":\"2026-11-27T13:45:12Z\"}";
        let err = ingest_batch(format!("[{good},\n {{\"event_id\": tru}}]").as_bytes(), &o).unwrap_err();
        assert!(matches!(err, Error::Parse { line: 2, .. }), "{err:?}");
        let out = ingest_batch(format!("[{good}, 42, \"x\"]").as_bytes(), &o).unwrap();
        assert_eq!((out.accepted, out.rejects.len()), (1, 2), "valid JSON that is not an object: rejects");
    }
}
