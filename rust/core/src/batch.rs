//! The fast path: a batch of bytes in, an Arrow RecordBatch of valid deduplicated events plus the rejects out,
//! in one pass and without a Python object per event.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema as ArrowSchema, TimeUnit};

use crate::dedupe::Deduper;
use crate::error::Result;
use crate::parse::{compact_object, split_records, Format};
use crate::schema::{PromotedType, Schema};
use crate::validate::{check_event, Promoted, Violation};

/// A record that failed parsing or validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    /// 1-based line (or JSON array element).
    pub line: usize,
    /// All violations in one sentence.
    pub reason: String,
    pub violations: Vec<Violation>,
    /// The raw text as received.
    pub raw: String,
}

/// What `process_batch` produces.
#[derive(Debug, Clone)]
pub struct BatchOutput {
    pub records: RecordBatch,
    pub rejects: Vec<Reject>,
    /// Valid events dropped because an earlier one had the same event_id.
    pub duplicates: usize,
    /// Records (lines, elements, rows) seen.
    pub received: usize,
}

/// Options of one batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions<'o> {
    pub format: Format,
    pub schema: &'o Schema,
    /// Sets the job_id column (and `_job_id` in `raw`) for every record.
    pub job_id: Option<&'o str>,
    /// Adds a `raw` column: the event as compact JSON.
    pub include_raw: bool,
}

/// The Arrow schema of the records table for a pipeline schema.
pub fn records_schema(schema: &Schema, include_raw: bool) -> ArrowSchema {
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let mut fields = vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("event_type", DataType::Utf8, false),
        Field::new("user_id", DataType::Utf8, true),
        Field::new("session_id", DataType::Utf8, true),
        Field::new("event_ts", utc, false),
        Field::new("event_date", DataType::Date32, false),
        Field::new("event_hour", DataType::Int32, false),
        Field::new("properties", DataType::Utf8, true),
        Field::new("schema_version", DataType::Int32, false),
    ];
    for p in &schema.promote {
        fields.push(Field::new(&p.column, promoted_data_type(p.ty), true));
    }
    fields.push(Field::new("job_id", DataType::Utf8, true));
    fields.push(Field::new("source_line", DataType::Int64, false));
    if include_raw {
        fields.push(Field::new("raw", DataType::Utf8, false));
    }
    ArrowSchema::new(fields)
}

fn promoted_data_type(ty: PromotedType) -> DataType {
    match ty {
        PromotedType::Double => DataType::Float64,
        PromotedType::Long => DataType::Int64,
        PromotedType::Int => DataType::Int32,
        PromotedType::String => DataType::Utf8,
        PromotedType::Boolean => DataType::Boolean,
    }
}

enum PromotedBuilder {
    Double(Float64Builder),
    Long(Int64Builder),
    Int(Int32Builder),
    Str(StringBuilder),
    Bool(BooleanBuilder),
}

impl PromotedBuilder {
    fn new(ty: PromotedType, n: usize) -> Self {
        match ty {
            PromotedType::Double => Self::Double(Float64Builder::with_capacity(n)),
            PromotedType::Long => Self::Long(Int64Builder::with_capacity(n)),
            PromotedType::Int => Self::Int(Int32Builder::with_capacity(n)),
            PromotedType::String => Self::Str(StringBuilder::with_capacity(n, n * 8)),
            PromotedType::Boolean => Self::Bool(BooleanBuilder::with_capacity(n)),
        }
    }

    fn append(&mut self, v: &Promoted) {
        match (self, v) {
            (Self::Double(b), Promoted::Double(x)) => b.append_value(*x),
            (Self::Long(b), Promoted::Long(x)) => b.append_value(*x),
            (Self::Int(b), Promoted::Int(x)) => b.append_value(*x),
            (Self::Str(b), Promoted::Str(x)) => b.append_value(x),
            (Self::Bool(b), Promoted::Bool(x)) => b.append_value(*x),
            (Self::Double(b), _) => b.append_null(),
            (Self::Long(b), _) => b.append_null(),
            (Self::Int(b), _) => b.append_null(),
            (Self::Str(b), _) => b.append_null(),
            (Self::Bool(b), _) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Double(b) => Arc::new(b.finish()),
            Self::Long(b) => Arc::new(b.finish()),
            Self::Int(b) => Arc::new(b.finish()),
            Self::Str(b) => Arc::new(b.finish()),
            Self::Bool(b) => Arc::new(b.finish()),
        }
    }
}

/// Parse, validate, transform and deduplicate a batch. Only an unreadable container (a broken JSON array, a bad
/// CSV header) fails the batch; every bad record becomes a [`Reject`].
pub fn process_batch(data: &[u8], opts: BatchOptions<'_>) -> Result<BatchOutput> {
    let records = split_records(data, opts.format)?;
    let n = records.len();
    let mut event_id = StringBuilder::with_capacity(n, n * 36);
    let mut event_type = StringBuilder::with_capacity(n, n * 12);
    let mut user_id = StringBuilder::with_capacity(n, n * 8);
    let mut session_id = StringBuilder::with_capacity(n, n * 36);
    let mut event_ts = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut event_date = Date32Builder::with_capacity(n);
    let mut event_hour = Int32Builder::with_capacity(n);
    let mut properties = StringBuilder::with_capacity(n, n * 96);
    let mut schema_version = Int32Builder::with_capacity(n);
    let mut promoted: Vec<PromotedBuilder> = opts.schema.promote.iter().map(|p| PromotedBuilder::new(p.ty, n)).collect();
    let mut job_id = StringBuilder::with_capacity(n, opts.job_id.map_or(0, |j| n * j.len()));
    let mut source_line = Int64Builder::with_capacity(n);
    let mut raw = StringBuilder::with_capacity(if opts.include_raw { n } else { 0 }, if opts.include_raw { data.len() } else { 0 });

    let mut rejects = Vec::new();
    let mut dedupe = Deduper::with_capacity(n);
    let mut duplicates = 0usize;
    let mut violations = Vec::new();
    for rec in &records {
        let text = match &rec.json {
            Ok(t) => t.as_ref(),
            Err(why) => {
                let v = Violation { index: rec.line - 1, field: String::new(), rule: "json", message: why.clone(), value: None };
                rejects.push(Reject { line: rec.line, reason: why.clone(), violations: vec![v], raw: rec.raw.to_string() });
                continue;
            }
        };
        violations.clear();
        let Some(ev) = check_event(text, rec.line.saturating_sub(1), opts.schema, &mut violations) else {
            let reason = violations.iter().map(|v| v.message.as_str()).collect::<Vec<_>>().join("; ");
            rejects.push(Reject { line: rec.line, reason, violations: std::mem::take(&mut violations), raw: rec.raw.to_string() });
            continue;
        };
        if !dedupe.first_seen(&ev.event_id) {
            duplicates += 1;
            continue;
        }
        event_id.append_value(&ev.event_id);
        event_type.append_value(&ev.event_type);
        user_id.append_option(ev.user_id.as_deref());
        session_id.append_option(ev.session_id.as_deref());
        event_ts.append_value(ev.event_ts);
        event_date.append_value(ev.event_date);
        event_hour.append_value(ev.event_hour);
        properties.append_option(ev.properties.as_deref());
        schema_version.append_value(ev.schema_version);
        for (b, v) in promoted.iter_mut().zip(&ev.promoted) {
            b.append(v);
        }
        job_id.append_option(opts.job_id.or(ev.job_id.as_deref()));
        source_line.append_value(rec.line as i64);
        if opts.include_raw {
            raw.append_value(compact_object(text, opts.job_id));
        }
    }

    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(event_id.finish()),
        Arc::new(event_type.finish()),
        Arc::new(user_id.finish()),
        Arc::new(session_id.finish()),
        Arc::new(event_ts.finish()),
        Arc::new(event_date.finish()),
        Arc::new(event_hour.finish()),
        Arc::new(properties.finish()),
        Arc::new(schema_version.finish()),
    ];
    columns.extend(promoted.iter_mut().map(PromotedBuilder::finish));
    columns.push(Arc::new(job_id.finish()));
    columns.push(Arc::new(source_line.finish()));
    if opts.include_raw {
        columns.push(Arc::new(raw.finish()));
    }
    let schema = Arc::new(records_schema(opts.schema, opts.include_raw));
    let records = RecordBatch::try_new(schema, columns)?;
    Ok(BatchOutput { records, rejects, duplicates, received: n })
}

/// Where the time of `process_batch` goes, measured by running its stages cumulatively over `data` (NDJSON):
/// split into lines; + parse each envelope; + validate and transform (envelope contract); + the schema's rules
/// and promotions; + dedupe and Arrow building (the whole `process_batch`). Seconds per stage, cumulative.
pub fn stage_timings(data: &[u8], schema: &Schema) -> Result<Vec<(&'static str, f64)>> {
    use std::time::Instant;
    let mut out = Vec::new();
    let t = Instant::now();
    let records = split_records(data, Format::Ndjson)?;
    out.push(("split", t.elapsed().as_secs_f64()));
    let t = Instant::now();
    let parsed = records.iter().filter(|r| r.json.as_ref().is_ok_and(|j| crate::validate::parse_envelope_only(j))).count();
    out.push(("split+parse", out[0].1 + t.elapsed().as_secs_f64()));
    let mut violations = Vec::new();
    for (name, s) in [("split+parse+validate+transform", &Schema::envelope()), ("split+parse+validate+transform+schema", schema)] {
        let t = Instant::now();
        let mut ok = 0usize;
        for r in &records {
            if let Ok(j) = &r.json {
                violations.clear();
                ok += usize::from(check_event(j, r.line, s, &mut violations).is_some());
            }
        }
        out.push((name, out[0].1 + t.elapsed().as_secs_f64()));
        std::hint::black_box(ok);
    }
    std::hint::black_box(parsed);
    drop(records);
    let t = Instant::now();
    let batch = process_batch(data, BatchOptions { format: Format::Ndjson, schema, job_id: None, include_raw: false })?;
    out.push(("process_batch", t.elapsed().as_secs_f64()));
    std::hint::black_box(batch.records.num_rows());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, TimestampMicrosecondType};

    fn run(data: &str, job_id: Option<&str>, include_raw: bool) -> BatchOutput {
        let schema = Schema::envelope();
        process_batch(data.as_bytes(), BatchOptions { format: Format::Ndjson, schema: &schema, job_id, include_raw }).unwrap()
    }

    #[test]
    fn records_rejects_and_duplicates() {
        let data = concat!(
            "{\"event_id\":\"a\",\"event_type\":\"click\",\"timestamp\":\"2026-01-01T00:00:00Z\"}\r\n",
            "not json\n",
            "{\"event_id\":\"a\",\"event_type\":\"click\",\"timestamp\":\"2026-01-01T00:00:00Z\"}\n",
            "\n",
            "{\"event_id\":\"b\",\"event_type\":\"click\",\"timestamp\":\"2026-01-01T00:00:00\"}\n",
            "{\"event_id\":\"c\",\"event_type\":\"click\",\"timestamp\":\"2026-01-01T00:00:00.5+01:00\",\"_job_id\":\"j\"}\n",
        );
        let out = run(data, None, false);
        assert_eq!(out.received, 5);
        assert_eq!(out.records.num_rows(), 2);
        assert_eq!(out.duplicates, 1);
        assert_eq!(out.rejects.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 5]);
        assert_eq!(out.rejects[0].raw, "not json");
        let lines = out.records.column_by_name("source_line").unwrap().as_primitive::<Int64Type>();
        assert_eq!(lines.values().to_vec(), vec![1, 6]);
        let ts = out.records.column_by_name("event_ts").unwrap().as_primitive::<TimestampMicrosecondType>();
        assert_eq!(ts.value(1), 1_767_222_000_500_000);
        let job = out.records.column_by_name("job_id").unwrap().as_string::<i32>();
        assert!(job.is_null(0));
        assert_eq!(job.value(1), "j");
    }

    #[test]
    fn job_id_and_raw() {
        let data = "{ \"event_id\": \"a\", \"event_type\": \"click\", \"timestamp\": \"2026-01-01T00:00:00Z\", \"_job_id\": \"x\" }\n";
        let out = run(data, Some("job-1"), true);
        let raw = out.records.column_by_name("raw").unwrap().as_string::<i32>();
        assert_eq!(
            raw.value(0),
            "{\"_job_id\":\"job-1\",\"event_id\":\"a\",\"event_type\":\"click\",\"timestamp\":\"2026-01-01T00:00:00Z\"}"
        );
        let job = out.records.column_by_name("job_id").unwrap().as_string::<i32>();
        assert_eq!(job.value(0), "job-1");
    }

    #[test]
    fn a_one_megabyte_line() {
        let big = "x".repeat(1 << 20);
        let data = format!("{{\"event_id\":\"a\",\"event_type\":\"t\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"properties\":{{\"blob\":\"{big}\"}}}}\n");
        let out = run(&data, None, false);
        assert_eq!(out.records.num_rows(), 1);
    }

    #[test]
    fn stage_timings_are_cumulative() {
        let data = "{\"event_id\":\"a\",\"event_type\":\"c\",\"timestamp\":\"2026-01-01T00:00:00Z\"}\n".repeat(100);
        let stages = stage_timings(data.as_bytes(), &Schema::envelope()).unwrap();
        assert_eq!(stages.len(), 5);
        assert!(stages.iter().all(|(_, s)| *s >= 0.0));
    }

    #[test]
    fn csv_batches() {
        let schema = Schema::envelope();
        let data = "event_id,event_type,timestamp,properties\ne1,click,2026-01-01T00:00:00Z,\"{\"\"a\"\":1}\"\ne2,click,bad,\n";
        let out = process_batch(data.as_bytes(), BatchOptions { format: Format::Csv, schema: &schema, job_id: None, include_raw: false }).unwrap();
        assert_eq!(out.records.num_rows(), 1);
        assert_eq!(out.rejects[0].line, 3);
        assert_eq!(out.rejects[0].raw, "e2,click,bad,");
    }
}
