//! The fast path: a batch of bytes in, an Arrow RecordBatch of valid deduplicated events plus the rejects out,
//! in one pass and without a Python object per event.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use std::borrow::Cow;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::{DataType, Field, Schema as ArrowSchema, SchemaRef, TimeUnit};

use crate::dedupe::{Deduper, Ids};
use crate::error::Result;
use crate::parse::{compact_object, first_non_ws, lines_from, records, split_records, strip_bom, Format, SourceRecord};
use crate::schema::{PromotedType, Schema};
use crate::validate::{check_event, Event, Promoted, Violation};

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
    /// The records table's schema.
    pub schema: SchemaRef,
    /// The records, in chunks of at most [`CHUNK_ROWS`] rows (so no builder ever over-allocates much).
    pub records: Vec<RecordBatch>,
    pub rejects: Vec<Reject>,
    /// Valid events dropped because an earlier one had the same event_id.
    pub duplicates: usize,
    /// Records (lines, elements, rows) seen.
    pub received: usize,
}

impl BatchOutput {
    /// Rows over all chunks.
    pub fn num_rows(&self) -> usize {
        self.records.iter().map(RecordBatch::num_rows).sum()
    }

    /// All records as one record batch (copied), e.g. to compare outputs whose chunk boundaries differ.
    pub fn table(&self) -> Result<RecordBatch> {
        Ok(arrow_select::concat::concat_batches(&self.schema, &self.records)?)
    }

    /// The same rows in the same order, the same rejects and counts (record batch boundaries aside).
    pub fn same_as(&self, other: &BatchOutput) -> bool {
        self.table().ok() == other.table().ok()
            && self.rejects == other.rejects
            && (self.duplicates, self.received) == (other.duplicates, other.received)
    }
}

/// Rows per record batch of the output.
pub const CHUNK_ROWS: usize = 65_536;

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
    fn new(ty: PromotedType) -> Self {
        match ty {
            PromotedType::Double => Self::Double(Float64Builder::new()),
            PromotedType::Long => Self::Long(Int64Builder::new()),
            PromotedType::Int => Self::Int(Int32Builder::new()),
            PromotedType::String => Self::Str(StringBuilder::new()),
            PromotedType::Boolean => Self::Bool(BooleanBuilder::new()),
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

    /// An empty builder of the same type, sized for `rows` values like this one's.
    fn sized_like(&self, rows: usize) -> Self {
        match self {
            Self::Double(_) => Self::Double(Float64Builder::with_capacity(rows)),
            Self::Long(_) => Self::Long(Int64Builder::with_capacity(rows)),
            Self::Int(_) => Self::Int(Int32Builder::with_capacity(rows)),
            Self::Str(b) => Self::Str(string_like(b, rows)),
            Self::Bool(_) => Self::Bool(BooleanBuilder::with_capacity(rows)),
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

/// Column builders of one chunk of records.
struct Builders {
    rows: usize,
    event_id: StringBuilder,
    event_type: StringBuilder,
    user_id: StringBuilder,
    session_id: StringBuilder,
    event_ts: TimestampMicrosecondBuilder,
    event_date: Date32Builder,
    event_hour: Int32Builder,
    properties: StringBuilder,
    schema_version: Int32Builder,
    promoted: Vec<PromotedBuilder>,
    job_id: StringBuilder,
    source_line: Int64Builder,
    raw: Option<StringBuilder>,
}

impl Builders {
    fn new(schema: &Schema, include_raw: bool) -> Self {
        Builders {
            rows: 0,
            event_id: StringBuilder::new(),
            event_type: StringBuilder::new(),
            user_id: StringBuilder::new(),
            session_id: StringBuilder::new(),
            event_ts: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            event_date: Date32Builder::new(),
            event_hour: Int32Builder::new(),
            properties: StringBuilder::new(),
            schema_version: Int32Builder::new(),
            promoted: schema.promote.iter().map(|p| PromotedBuilder::new(p.ty)).collect(),
            job_id: StringBuilder::new(),
            source_line: Int64Builder::new(),
            raw: include_raw.then(StringBuilder::new),
        }
    }

    /// Empty builders sized for a chunk of `rows` rows like the one built so far (values bytes scaled to `rows`,
    /// plus 1/8 slack), so the next chunk's buffers never grow by doubling (copying) on the way.
    fn sized_like(&self, rows: usize) -> Self {
        let s = |b: &StringBuilder| string_like(b, rows);
        Builders {
            rows: 0,
            event_id: s(&self.event_id),
            event_type: s(&self.event_type),
            user_id: s(&self.user_id),
            session_id: s(&self.session_id),
            event_ts: TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            event_date: Date32Builder::with_capacity(rows),
            event_hour: Int32Builder::with_capacity(rows),
            properties: s(&self.properties),
            schema_version: Int32Builder::with_capacity(rows),
            promoted: self.promoted.iter().map(|p| p.sized_like(rows)).collect(),
            job_id: s(&self.job_id),
            source_line: Int64Builder::with_capacity(rows),
            raw: self.raw.as_ref().map(s),
        }
    }

    /// Empty builders sized for `rows` rows like the records batch `like` (value bytes per row scaled, plus 1/8
    /// slack): a stream's next input chunk starts at the size its records need instead of growing by doubling.
    fn sized_from(like: &RecordBatch, schema: &Schema, include_raw: bool, rows: usize) -> Self {
        let n = like.num_rows().max(1);
        let s = |i: usize| {
            let offsets = like.column(i).as_string::<i32>().value_offsets();
            let bytes = (offsets[offsets.len() - 1] - offsets[0]) as usize * rows / n;
            StringBuilder::with_capacity(rows, bytes + bytes / 8)
        };
        // Column indices of records_schema: 9 fixed columns, the promoted ones, job_id, source_line, raw.
        let p = schema.promote.len();
        Builders {
            rows: 0,
            event_id: s(0),
            event_type: s(1),
            user_id: s(2),
            session_id: s(3),
            event_ts: TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            event_date: Date32Builder::with_capacity(rows),
            event_hour: Int32Builder::with_capacity(rows),
            properties: s(7),
            schema_version: Int32Builder::with_capacity(rows),
            promoted: schema
                .promote
                .iter()
                .enumerate()
                .map(|(k, c)| match c.ty {
                    PromotedType::String => PromotedBuilder::Str(s(9 + k)),
                    ty => PromotedBuilder::new(ty).sized_like(rows),
                })
                .collect(),
            job_id: s(9 + p),
            source_line: Int64Builder::with_capacity(rows),
            raw: include_raw.then(|| s(11 + p)),
        }
    }

    fn append(&mut self, ev: &Event<'_>, line: usize, job_id: Option<&str>, text: &str) {
        self.rows += 1;
        self.event_id.append_value(&ev.event_id);
        self.event_type.append_value(&ev.event_type);
        self.user_id.append_option(ev.user_id.as_deref());
        self.session_id.append_option(ev.session_id.as_deref());
        self.event_ts.append_value(ev.event_ts);
        self.event_date.append_value(ev.event_date);
        self.event_hour.append_value(ev.event_hour);
        self.properties.append_option(ev.properties.as_deref());
        self.schema_version.append_value(ev.schema_version);
        for (b, v) in self.promoted.iter_mut().zip(&ev.promoted) {
            b.append(v);
        }
        self.job_id.append_option(job_id.or(ev.job_id.as_deref()));
        self.source_line.append_value(line as i64);
        if let Some(raw) = &mut self.raw {
            raw.append_value(compact_object(text, job_id));
        }
    }

    /// The chunk so far as a record batch; the builders start over empty, sized for `next_rows` rows.
    fn finish(&mut self, schema: &SchemaRef, next_rows: usize) -> Result<RecordBatch> {
        let next = self.sized_like(next_rows);
        std::mem::replace(self, next).into_batch(schema)
    }

    fn into_batch(mut self, schema: &SchemaRef) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.event_id.finish()),
            Arc::new(self.event_type.finish()),
            Arc::new(self.user_id.finish()),
            Arc::new(self.session_id.finish()),
            Arc::new(self.event_ts.finish()),
            Arc::new(self.event_date.finish()),
            Arc::new(self.event_hour.finish()),
            Arc::new(self.properties.finish()),
            Arc::new(self.schema_version.finish()),
        ];
        columns.extend(self.promoted.iter_mut().map(PromotedBuilder::finish));
        columns.push(Arc::new(self.job_id.finish()));
        columns.push(Arc::new(self.source_line.finish()));
        if let Some(raw) = &mut self.raw {
            columns.push(Arc::new(raw.finish()));
        }
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

/// The event ids kept so far, by output row, for the dedupe table (which stores no ids of its own): the ids kept
/// before this call (`earlier`, a stream's earlier input chunks), then row r of this call: row r % CHUNK_ROWS of
/// chunk r / CHUNK_ROWS, or of the chunk being built.
struct RowIds<'b> {
    earlier: &'b IdStore,
    chunks: &'b [RecordBatch],
    building: &'b StringBuilder,
}

impl Ids for RowIds<'_> {
    fn id(&self, index: usize) -> &str {
        if index < self.earlier.len() {
            return self.earlier.id(index);
        }
        let index = index - self.earlier.len();
        let (chunk, row) = (index / CHUNK_ROWS, index % CHUNK_ROWS);
        match self.chunks.get(chunk) {
            // Column 0 of every chunk is event_id (records_schema).
            Some(batch) => batch.column(0).as_string::<i32>().value(row),
            None => {
                let offsets = self.building.offsets_slice();
                let bytes = &self.building.values_slice()[offsets[row] as usize..offsets[row + 1] as usize];
                std::str::from_utf8(bytes).expect("the builder holds the UTF-8 text it was given")
            }
        }
    }
}

/// The event ids kept from a stream's earlier input chunks (whose records are already written and freed), in the
/// order the dedupe table indexed them: one byte buffer and the offsets, ~the ids' own size.
#[derive(Debug, Default)]
pub(crate) struct IdStore {
    ends: Vec<usize>,
    bytes: Vec<u8>,
}

impl IdStore {
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    // Only a stream (stream.rs, the `parquet` feature) keeps ids across chunks; the batch path reads an empty store.
    #[cfg(feature = "parquet")]
    pub(crate) fn push(&mut self, id: &str) {
        self.bytes.extend_from_slice(id.as_bytes());
        self.ends.push(self.bytes.len());
    }

    /// Every event_id of `chunks` (records batches), in order.
    #[cfg(feature = "parquet")]
    pub(crate) fn extend_from(&mut self, chunks: &[RecordBatch]) {
        for chunk in chunks {
            for id in chunk.column(0).as_string::<i32>().iter() {
                self.push(id.unwrap_or_default());
            }
        }
    }
}

impl Ids for IdStore {
    fn id(&self, index: usize) -> &str {
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        std::str::from_utf8(&self.bytes[start..self.ends[index]]).expect("the store holds the UTF-8 ids it was given")
    }
}

/// An empty string builder for `rows` values, with room for as many value bytes per row as `b` holds (+1/8).
fn string_like(b: &StringBuilder, rows: usize) -> StringBuilder {
    let filled = b.offsets_slice().len().saturating_sub(1);
    let bytes = (b.values_slice().len() * rows).checked_div(filled).unwrap_or(0);
    StringBuilder::with_capacity(rows, bytes + bytes / 8)
}

/// Parse, validate, transform and deduplicate a batch on one thread. Only an unreadable container (a broken
/// JSON array, a bad CSV header) fails the batch; every bad record becomes a [`Reject`].
pub fn process_batch(data: &[u8], opts: BatchOptions<'_>) -> Result<BatchOutput> {
    process_batch_threads(data, opts, 1)
}

/// The number of threads this process may run at once (its CPU affinity and cgroup quota; 1 if unknown): the
/// default of the binding's `threads`.
pub fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Smallest share of the input worth a thread of its own (a thread costs tens of microseconds to start).
pub const MIN_PIECE_BYTES: usize = 4096;

/// [`process_batch`] on up to `threads` threads: the input is cut into contiguous pieces (at line ends for
/// NDJSON, between records otherwise), each piece is parsed, validated, converted and deduplicated on a thread
/// of its own, then an event whose id an earlier piece kept is dropped (first valid wins across pieces, as on
/// one thread). The result holds the same rows in the same order as on one thread; only the record batches'
/// boundaries may differ.
pub fn process_batch_threads(data: &[u8], opts: BatchOptions<'_>, threads: usize) -> Result<BatchOutput> {
    process_batch_pieces(data, opts, threads, MIN_PIECE_BYTES)
}

/// [`process_batch_threads`] with the smallest piece given (the fuzz invariants cut tiny inputs too).
#[doc(hidden)]
pub fn process_batch_pieces(data: &[u8], opts: BatchOptions<'_>, threads: usize, min_piece: usize) -> Result<BatchOutput> {
    let schema: SchemaRef = Arc::new(records_schema(opts.schema, opts.include_raw));
    debug_assert_eq!(schema.field(0).name(), "event_id", "RowIds reads event ids from column 0");
    let pieces = threads.min(data.len() / min_piece.max(1)).max(1);
    if pieces == 1 {
        let piece = process_records(records(data, opts.format)?, opts, &schema, data.len() / 256)?;
        return Ok(piece.into_output(schema));
    }
    let body = strip_bom(data);
    let lines = matches!(opts.format, Format::Ndjson) || (opts.format == Format::Json && first_non_ws(body) != Some(b'['));
    let parts: Vec<Result<Piece>> = if lines {
        ndjson_pieces(body, 0, opts, &schema, pieces)
    } else {
        let mut all = split_records(data, opts.format)?;
        let per = all.len().div_ceil(pieces).max(1);
        let mut groups = Vec::new();
        while all.len() > per {
            let rest = all.split_off(per);
            groups.push(std::mem::replace(&mut all, rest));
        }
        groups.push(all);
        let schema = &schema;
        on_threads(groups.into_iter().map(|g| move || process_records(g.into_iter(), opts, schema, 0)).collect())
    };
    let parts = parts.into_iter().collect::<Result<Vec<Piece>>>()?;
    let rows = parts.iter().map(Piece::rows).sum();
    merge_pieces(parts, schema, &mut Deduper::with_capacity(rows), &IdStore::default())
}

/// NDJSON lines (no byte-order mark; the first is line `first_line` + 1 of the whole input) cut into `pieces`
/// slices, each processed on a thread of its own and deduplicated within itself.
pub(crate) fn ndjson_pieces(
    body: &[u8],
    first_line: usize,
    opts: BatchOptions<'_>,
    schema: &SchemaRef,
    pieces: usize,
) -> Vec<Result<Piece>> {
    let slices = line_pieces(body, pieces);
    // The 0-based index of each piece's first line: the line ends before it (every piece but the last ends
    // with one). Counted on the threads too: this pass is also the first touch of a mapped input.
    let counts: Vec<usize> = on_threads(slices.iter().map(|s| move || s.iter().filter(|&&b| b == b'\n').count()).collect());
    let firsts = counts.iter().scan(first_line, |acc, n| {
        let first = *acc;
        *acc += n;
        Some(first)
    });
    on_threads(
        slices
            .iter()
            .zip(firsts)
            .map(|(s, first)| move || process_records(lines_from(s, first), opts, schema, s.len() / 256))
            .collect(),
    )
}

/// Run each job on a thread of its own (the first on the calling thread); results in the jobs' order.
fn on_threads<T: Send, F: FnOnce() -> T + Send>(jobs: Vec<F>) -> Vec<T> {
    let mut jobs = jobs.into_iter();
    let Some(first) = jobs.next() else { return Vec::new() };
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs.map(|job| scope.spawn(job)).collect();
        let mut out = vec![first()];
        for h in handles {
            // A panic on a worker is re-raised here (the binding turns it into an EventpipeError).
            out.push(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        out
    })
}

/// Cut NDJSON into up to `pieces` slices of about equal size, each but the last ending just after a `\n`.
fn line_pieces(body: &[u8], pieces: usize) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(pieces);
    let mut start = 0;
    for k in 1..pieces {
        let target = (body.len() * k / pieces).max(start);
        match memchr::memchr(b'\n', &body[target..]) {
            Some(i) => {
                let end = target + i + 1;
                out.push(&body[start..end]);
                start = end;
            }
            None => break,
        }
    }
    out.push(&body[start..]);
    out
}

/// What one piece of the input produced: records in chunks of [`CHUNK_ROWS`] rows (the last may be shorter),
/// deduplicated within the piece.
pub(crate) struct Piece {
    pub(crate) chunks: Vec<RecordBatch>,
    pub(crate) rejects: Vec<Reject>,
    pub(crate) duplicates: usize,
    pub(crate) received: usize,
}

impl Piece {
    pub(crate) fn rows(&self) -> usize {
        self.chunks.iter().map(RecordBatch::num_rows).sum()
    }

    fn into_output(self, schema: SchemaRef) -> BatchOutput {
        BatchOutput { schema, records: self.chunks, rejects: self.rejects, duplicates: self.duplicates, received: self.received }
    }

    fn id(&self, row: usize) -> &str {
        self.chunks[row / CHUNK_ROWS].column(0).as_string::<i32>().value(row % CHUNK_ROWS)
    }
}

/// The ids the cross-piece dedupe table has kept: those of `earlier` (a stream's earlier chunks), then by
/// (piece, row of the piece).
struct KeptIds<'p> {
    earlier: &'p IdStore,
    parts: &'p [Piece],
    kept: &'p [(u32, u32)],
}

impl Ids for KeptIds<'_> {
    fn id(&self, index: usize) -> &str {
        if index < self.earlier.len() {
            return self.earlier.id(index);
        }
        let (piece, row) = self.kept[index - self.earlier.len()];
        self.parts[piece as usize].id(row as usize)
    }
}

/// Join the pieces in input order, dropping each row whose event_id an earlier piece kept (or `earlier` holds:
/// `dedupe` has indexed those already).
pub(crate) fn merge_pieces(parts: Vec<Piece>, schema: SchemaRef, dedupe: &mut Deduper, earlier: &IdStore) -> Result<BatchOutput> {
    let rows: usize = parts.iter().map(Piece::rows).sum();
    let mut kept: Vec<(u32, u32)> = Vec::with_capacity(rows);
    // Rows to drop, by piece: (chunk, row in chunk).
    let mut drops: Vec<Vec<(usize, usize)>> = vec![Vec::new(); parts.len()];
    for (p, piece) in parts.iter().enumerate() {
        let mut row = 0usize;
        for (c, chunk) in piece.chunks.iter().enumerate() {
            let ids = chunk.column(0).as_string::<i32>();
            let mut next = (ids.len() > 0).then(|| dedupe.hash(ids.value(0)));
            for r in 0..ids.len() {
                let hash = next.take().expect("hashed one row ahead");
                if r + 1 < ids.len() {
                    next = Some(dedupe.hash(ids.value(r + 1)));
                }
                let id = ids.value(r);
                if dedupe.first_seen_hashed(id, hash, &KeptIds { earlier, parts: &parts, kept: &kept }) {
                    let index = |n: usize| u32::try_from(n).expect("fewer than 2^32 rows per batch");
                    kept.push((index(p), index(row)));
                } else {
                    drops[p].push((c, r));
                }
                row += 1;
            }
        }
    }
    drop(kept);
    let mut out = BatchOutput { schema: schema.clone(), records: Vec::new(), rejects: Vec::new(), duplicates: 0, received: 0 };
    for (piece, drop_rows) in parts.into_iter().zip(drops) {
        out.duplicates += piece.duplicates + drop_rows.len();
        out.received += piece.received;
        out.rejects.extend(piece.rejects);
        let mut drop_rows = drop_rows.into_iter().peekable();
        for (c, chunk) in piece.chunks.into_iter().enumerate() {
            let mut keep: Option<Vec<bool>> = None;
            while let Some(&(_, r)) = drop_rows.peek().filter(|(dc, _)| *dc == c) {
                keep.get_or_insert_with(|| vec![true; chunk.num_rows()])[r] = false;
                drop_rows.next();
            }
            let chunk = match keep {
                Some(keep) => arrow_select::filter::filter_record_batch(&chunk, &BooleanArray::from(keep))?,
                None => chunk,
            };
            if chunk.num_rows() > 0 {
                out.records.push(chunk);
            }
        }
    }
    if out.records.is_empty() {
        out.records.push(RecordBatch::new_empty(schema));
    }
    Ok(out)
}

/// Parse, validate, transform and deduplicate a sequence of records (a whole batch, or one piece of it).
fn process_records<'a>(
    source: impl Iterator<Item = SourceRecord<'a>>,
    opts: BatchOptions<'_>,
    schema: &SchemaRef,
    expected_ids: usize,
) -> Result<Piece> {
    process_records_after(source, opts, schema, &mut Deduper::with_capacity(expected_ids), &IdStore::default(), None)
}

/// [`process_records`] with a dedupe table that already holds the ids of `earlier` (a stream's earlier chunks):
/// an event whose id was kept there is a duplicate too. With `like` (records of an earlier chunk) the builders
/// start sized for a full chunk of such records.
pub(crate) fn process_records_after<'a>(
    source: impl Iterator<Item = SourceRecord<'a>>,
    opts: BatchOptions<'_>,
    schema: &SchemaRef,
    dedupe: &mut Deduper,
    earlier: &IdStore,
    like: Option<&RecordBatch>,
) -> Result<Piece> {
    let mut builders = match like {
        Some(like) if like.num_rows() > 0 => Builders::sized_from(like, opts.schema, opts.include_raw, CHUNK_ROWS),
        _ => Builders::new(opts.schema, opts.include_raw),
    };
    let mut chunks = Vec::new();
    let mut rejects = Vec::new();
    let mut duplicates = 0usize;
    let mut received = 0usize;
    let mut violations = Vec::new();
    // A valid event waits here while the next record is checked: its dedupe slot (a cache miss in a table of
    // millions) is prefetched when it arrives and probed one record later. Order is kept: the pending event is
    // always handled before the next valid one.
    let mut pending: Option<Pending<'_>> = None;
    for rec in source {
        received += 1;
        let text: &str = match &rec.json {
            // `*t` keeps the input's lifetime (auto-deref would shorten it to this iteration's borrow).
            #[allow(clippy::explicit_auto_deref)]
            Ok(Cow::Borrowed(t)) => *t,
            Ok(Cow::Owned(_)) => {
                if let Some(p) = pending.take() {
                    p.handle(opts, schema, &mut builders, &mut chunks, &mut duplicates, dedupe, earlier)?;
                }
                // CSV rows are rendered as owned JSON text: handle them without borrowing past this iteration.
                process_owned(&rec, opts, schema, &mut builders, &mut chunks, &mut rejects, &mut duplicates, dedupe, earlier)?;
                continue;
            }
            Err(why) => {
                rejects.push(unreadable(&rec, why));
                continue;
            }
        };
        let Some(ev) = checked(&rec, text, opts.schema, &mut violations, &mut rejects) else { continue };
        let hash = dedupe.hash(&ev.event_id);
        if let Some(p) = pending.replace(Pending { ev, hash, line: rec.line, text }) {
            p.handle(opts, schema, &mut builders, &mut chunks, &mut duplicates, dedupe, earlier)?;
        }
    }
    if let Some(p) = pending.take() {
        p.handle(opts, schema, &mut builders, &mut chunks, &mut duplicates, dedupe, earlier)?;
    }
    if builders.rows > 0 || chunks.is_empty() {
        chunks.push(builders.finish(schema, 0)?);
    }
    Ok(Piece { chunks, rejects, duplicates, received })
}

/// A valid event of borrowed input text waiting for its dedupe probe.
struct Pending<'a> {
    ev: Event<'a>,
    hash: u64,
    line: usize,
    text: &'a str,
}

impl<'a> Pending<'a> {
    /// Dedupe the event and append it to the chunk when it is the first of its id.
    #[allow(clippy::too_many_arguments)]
    fn handle(
        self,
        opts: BatchOptions<'_>,
        schema: &SchemaRef,
        builders: &mut Builders,
        chunks: &mut Vec<RecordBatch>,
        duplicates: &mut usize,
        dedupe: &mut Deduper,
        earlier: &IdStore,
    ) -> Result<()> {
        let kept = RowIds { earlier, chunks, building: &builders.event_id };
        if !dedupe.first_seen_hashed(&self.ev.event_id, self.hash, &kept) {
            *duplicates += 1;
            return Ok(());
        }
        builders.append(&self.ev, self.line, opts.job_id, self.text);
        if builders.rows == CHUNK_ROWS {
            chunks.push(builders.finish(schema, CHUNK_ROWS)?);
        }
        Ok(())
    }
}

/// The reject of a record that could not even be read (invalid UTF-8, a bad CSV row).
pub(crate) fn unreadable(rec: &SourceRecord<'_>, why: &str) -> Reject {
    let v = Violation { index: rec.line.saturating_sub(1), field: String::new(), rule: "json", message: why.to_string(), value: None };
    Reject { line: rec.line, reason: why.to_string(), violations: vec![v], raw: rec.raw.to_string() }
}

/// The reject of a record that broke the rules in `violations` (taken, leaving it empty for the next record).
pub(crate) fn rejected(rec: &SourceRecord<'_>, violations: &mut Vec<Violation>) -> Reject {
    let reason = violations.iter().map(|v| v.message.as_str()).collect::<Vec<_>>().join("; ");
    Reject { line: rec.line, reason, violations: std::mem::take(violations), raw: rec.raw.to_string() }
}

/// The event of `rec` (whose JSON text is `text`) when it passes validation; otherwise its reject is pushed and
/// None comes back. `violations` is scratch space, reused across records.
pub(crate) fn checked<'a>(
    rec: &SourceRecord<'_>,
    text: &'a str,
    schema: &Schema,
    violations: &mut Vec<Violation>,
    rejects: &mut Vec<Reject>,
) -> Option<Event<'a>> {
    violations.clear();
    let ev = check_event(text, rec.line.saturating_sub(1), schema, violations);
    if ev.is_none() {
        rejects.push(rejected(rec, violations));
    }
    ev
}

/// One record whose JSON text is owned (a CSV row).
#[allow(clippy::too_many_arguments)]
fn process_owned(
    rec: &SourceRecord<'_>,
    opts: BatchOptions<'_>,
    schema: &SchemaRef,
    builders: &mut Builders,
    chunks: &mut Vec<RecordBatch>,
    rejects: &mut Vec<Reject>,
    duplicates: &mut usize,
    dedupe: &mut Deduper,
    earlier: &IdStore,
) -> Result<()> {
    let Ok(text) = &rec.json else { return Ok(()) };
    let Some(ev) = checked(rec, text, opts.schema, &mut Vec::new(), rejects) else { return Ok(()) };
    if !dedupe.first_seen(&ev.event_id, &RowIds { earlier, chunks, building: &builders.event_id }) {
        *duplicates += 1;
        return Ok(());
    }
    builders.append(&ev, rec.line, opts.job_id, text);
    if builders.rows == CHUNK_ROWS {
        chunks.push(builders.finish(schema, CHUNK_ROWS)?);
    }
    Ok(())
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
    std::hint::black_box(batch.num_rows());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::Array;
    use arrow_array::types::{Int64Type, TimestampMicrosecondType};

    fn run(data: &str, job_id: Option<&str>, include_raw: bool) -> BatchOutput {
        let schema = Schema::envelope();
        process_batch(data.as_bytes(), BatchOptions { format: Format::Ndjson, schema: &schema, job_id, include_raw }).unwrap()
    }

    fn table(out: &BatchOutput) -> RecordBatch {
        arrow_select::concat::concat_batches(&out.schema, &out.records).unwrap()
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
        let t = table(&out);
        assert_eq!(out.num_rows(), 2);
        assert_eq!(out.duplicates, 1);
        assert_eq!(out.rejects.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 5]);
        assert_eq!(out.rejects[0].raw, "not json");
        let lines = t.column_by_name("source_line").unwrap().as_primitive::<Int64Type>();
        assert_eq!(lines.values().to_vec(), vec![1, 6]);
        let ts = t.column_by_name("event_ts").unwrap().as_primitive::<TimestampMicrosecondType>();
        assert_eq!(ts.value(1), 1_767_222_000_500_000);
        let job = t.column_by_name("job_id").unwrap().as_string::<i32>();
        assert!(job.is_null(0));
        assert_eq!(job.value(1), "j");
    }

    #[test]
    fn job_id_and_raw() {
        let data = "{ \"event_id\": \"a\", \"event_type\": \"click\", \"timestamp\": \"2026-01-01T00:00:00Z\", \"_job_id\": \"x\" }\n";
        let out = run(data, Some("job-1"), true);
        let t = table(&out);
        let raw = t.column_by_name("raw").unwrap().as_string::<i32>();
        assert_eq!(
            raw.value(0),
            "{\"_job_id\":\"job-1\",\"event_id\":\"a\",\"event_type\":\"click\",\"timestamp\":\"2026-01-01T00:00:00Z\"}"
        );
        let job = t.column_by_name("job_id").unwrap().as_string::<i32>();
        assert_eq!(job.value(0), "job-1");
    }

    #[test]
    fn a_one_megabyte_line() {
        let big = "x".repeat(1 << 20);
        let data = format!("{{\"event_id\":\"a\",\"event_type\":\"t\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"properties\":{{\"blob\":\"{big}\"}}}}\n");
        let out = run(&data, None, false);
        assert_eq!(out.num_rows(), 1);
    }

    #[test]
    fn stage_timings_are_cumulative() {
        let data = "{\"event_id\":\"a\",\"event_type\":\"c\",\"timestamp\":\"2026-01-01T00:00:00Z\"}\n".repeat(100);
        let stages = stage_timings(data.as_bytes(), &Schema::envelope()).unwrap();
        assert_eq!(stages.len(), 5);
        assert!(stages.iter().all(|(_, s)| *s >= 0.0));
    }

    #[test]
    fn threads_keep_rows_order_and_first_wins_across_pieces() {
        let line = |id: usize, ts: &str| format!("{{\"event_id\":\"e{id}\",\"event_type\":\"click\",\"timestamp\":\"{ts}\"}}\n");
        let mut data = String::from("\u{feff}");
        for i in 0..400 {
            // Every 7th line repeats an id from far back (another piece), every 11th is invalid, blank lines too.
            data.push_str(&line(if i % 7 == 6 { i / 3 } else { i }, if i % 11 == 10 { "bad" } else { "2026-01-01T00:00:00Z" }));
            if i % 13 == 0 {
                data.push_str("\r\n  \n");
            }
        }
        let schema = Schema::envelope();
        for format in [Format::Ndjson, Format::Json] {
            let opts = BatchOptions { format, schema: &schema, job_id: Some("j"), include_raw: true };
            let one = process_batch(data.as_bytes(), opts).unwrap();
            assert!(one.duplicates > 0 && !one.rejects.is_empty());
            for (threads, min_piece) in [(2, 1), (3, 1), (4, 1000), (16, 1), (2, MIN_PIECE_BYTES)] {
                let many = process_batch_pieces(data.as_bytes(), opts, threads, min_piece).unwrap();
                assert!(one.same_as(&many), "{threads} threads, pieces of {min_piece} bytes");
            }
        }
        let array = format!("[{}]", (0..300).map(|i| format!("{{\"event_id\":\"e{}\",\"event_type\":\"click\",\"timestamp\":\"2026-01-01T00:00:00Z\"}}", i % 250)).collect::<Vec<_>>().join(","));
        let opts = BatchOptions { format: Format::Json, schema: &schema, job_id: None, include_raw: false };
        let one = process_batch(array.as_bytes(), opts).unwrap();
        assert_eq!(one.duplicates, 50);
        assert!(one.same_as(&process_batch_pieces(array.as_bytes(), opts, 3, 1).unwrap()));
    }

    #[test]
    fn csv_batches() {
        let schema = Schema::envelope();
        let data = "event_id,event_type,timestamp,properties\ne1,click,2026-01-01T00:00:00Z,\"{\"\"a\"\":1}\"\ne2,click,bad,\n";
        let out = process_batch(data.as_bytes(), BatchOptions { format: Format::Csv, schema: &schema, job_id: None, include_raw: false }).unwrap();
        assert_eq!(out.num_rows(), 1);
        assert_eq!(out.rejects[0].line, 3);
        assert_eq!(out.rejects[0].raw, "e2,click,bad,");
        let mut rows = String::from("event_id,event_type,timestamp,properties\n");
        for i in 0..200 {
            rows.push_str(&format!("e{},click,2026-01-01T00:00:0{}Z,\"{{\"\"n\"\":{i}}}\"\n", i % 150, i % 10));
        }
        let opts = BatchOptions { format: Format::Csv, schema: &schema, job_id: None, include_raw: true };
        let one = process_batch(rows.as_bytes(), opts).unwrap();
        assert_eq!((one.num_rows(), one.duplicates), (150, 50));
        assert!(one.same_as(&process_batch_pieces(rows.as_bytes(), opts, 4, 1).unwrap()));
    }
}
