//! An NDJSON file to one Iceberg Parquet data file, chunk by chunk: the input is read in chunks of about
//! `chunk_bytes` of whole lines, each chunk's records are handed to the writer as soon as they are built, and only
//! the ids kept so far (for first-wins dedupe across chunks), the rejects and the writer's open row group stay
//! behind. Peak memory is then a few chunks plus their records, not the whole input plus all records.
//!
//! On one thread the chunks are processed one after the other into one reused buffer. With `threads` > 1 the
//! chunks are processed on `threads` workers at once (each parses, validates, converts and deduplicates its chunk
//! on its own), while the calling thread reads the next chunks and takes the workers' results in input order:
//! it drops each event whose id an earlier chunk kept (first wins across chunks, as on one thread) and hands the
//! records to the writer, which runs on a thread of its own. At most `threads` chunks are in flight (their
//! buffers and records are what the peak memory grows with).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::batch::{merge_pieces, process_records_after, records_schema, BatchOptions, IdStore, Piece, Reject};
use crate::dedupe::Deduper;
use crate::error::{Error, Result};
use crate::iceberg_parquet::{write_iceberg_parquet_threads, Codec, DataFileMeta};
use crate::parse::{lines_from, strip_bom, Format};

/// Default input chunk: small enough that a chunk read is still in the CPU caches when it is parsed and that a
/// few chunks in flight stay small next to the input, large enough that a chunk's fixed costs do not show.
pub const CHUNK_BYTES: usize = 32 << 20;

/// Record batches built and not yet taken by the writer thread, at most.
const WRITE_QUEUE: usize = 4;

/// What [`ndjson_file_to_parquet`] produced besides the file.
#[derive(Debug, Clone)]
pub struct FileOutput {
    pub data_file: DataFileMeta,
    pub rejects: Vec<Reject>,
    pub duplicates: usize,
    pub received: usize,
}

/// Process the NDJSON file at `input` as `process_batch` would (same rows in the same order, rejects with their
/// lines in the whole file, duplicates and counts) and write the records to `output` as `write_iceberg_parquet`
/// would, reading about `chunk_bytes` at a time (a longer line is read whole). With `threads` > 1 the chunks are
/// processed on `threads` workers and the writer has a thread of its own. `opts.format` must be NDJSON.
pub fn ndjson_file_to_parquet(
    input: &str,
    output: &str,
    opts: BatchOptions<'_>,
    iceberg_schema: &str,
    codec: Codec,
    threads: usize,
    chunk_bytes: usize,
) -> Result<FileOutput> {
    if opts.format != Format::Ndjson {
        return Err(Error::Iceberg("a file is streamed to Parquet from NDJSON only".into()));
    }
    let file = File::open(input).map_err(|e| Error::Io { path: input.to_string(), message: e.to_string() })?;
    let dedupe = Deduper::with_capacity(expected_ids(&file, chunk_bytes));
    let reader = Chunks { file, path: input.to_string(), chunk_bytes: chunk_bytes.max(1), carry: Vec::new(), eof: false, next_line: 0, started: false };
    let schema: SchemaRef = Arc::new(records_schema(opts.schema, opts.include_raw));
    let mut merged = Merged { dedupe, kept: IdStore::default(), rejects: Vec::new(), duplicates: 0, received: 0, sent: false };
    if threads <= 1 {
        let mut stream = Stream { reader, opts, schema, buf: Vec::new(), like: None, merged: &mut merged, ready: Vec::new(), failed: false };
        let data_file = write_iceberg_parquet_threads(&mut stream, output, iceberg_schema, codec, 1)?;
        return Ok(merged.into_output(data_file));
    }
    let data_file = parallel(reader, opts, &schema, &mut merged, output, iceberg_schema, codec, threads)?;
    Ok(merged.into_output(data_file))
}

/// Files up to this size get a dedupe table sized for all of their ids up front; larger ones grow it.
const PRESIZED_BYTES: u64 = 4 << 30;

/// The ids the dedupe table is sized for: one per 256 bytes of the file (events are a few hundred bytes), so a
/// file of up to `PRESIZED_BYTES` never rehashes the table, as `process_batch` sized from its whole input.
fn expected_ids(file: &File, chunk_bytes: usize) -> usize {
    let len = file.metadata().map(|m| m.len()).unwrap_or(0).min(PRESIZED_BYTES);
    (len as usize / 256).max(chunk_bytes / 256)
}

/// The file cut into chunks of whole lines.
struct Chunks {
    file: File,
    path: String,
    chunk_bytes: usize,
    /// The start of a line cut by the previous read.
    carry: Vec<u8>,
    eof: bool,
    /// 0-based index of the next chunk's first line in the whole file.
    next_line: usize,
    started: bool,
}

/// One chunk of whole lines: the bytes (a byte-order mark stripped), the 0-based index of its first line.
struct Chunk {
    buf: Vec<u8>,
    /// Where the lines start in `buf` (after a byte-order mark).
    start: usize,
    first_line: usize,
}

impl Chunk {
    fn body(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

impl Chunks {
    /// Read until `buf` holds `want` bytes or the file ends (into spare capacity: no zero-filling).
    fn fill(&mut self, buf: &mut Vec<u8>, want: usize) -> Result<()> {
        while buf.len() < want && !self.eof {
            let missing = (want - buf.len()) as u64;
            match (&mut self.file).take(missing).read_to_end(buf) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::Io { path: self.path.clone(), message: e.to_string() }),
            }
        }
        Ok(())
    }

    /// The next chunk, read into `buf` (its old contents dropped); None when the file is done.
    fn next(&mut self, mut buf: Vec<u8>) -> Result<Option<Chunk>> {
        buf.clear();
        buf.reserve(self.chunk_bytes.max(self.carry.len()));
        buf.extend_from_slice(&self.carry);
        let mut want = self.chunk_bytes;
        let end = loop {
            self.fill(&mut buf, want)?;
            if self.eof {
                break buf.len();
            }
            match memchr::memrchr(b'\n', &buf) {
                Some(i) => break i + 1,
                // One line longer than the chunk: read on until it ends.
                None => want = buf.len() * 2,
            }
        };
        self.carry.clear();
        self.carry.extend_from_slice(&buf[end..]);
        buf.truncate(end);
        if end == 0 {
            return Ok(None);
        }
        let start = if self.started { 0 } else { end - strip_bom(&buf).len() };
        self.started = true;
        Ok(Some(Chunk { buf, start, first_line: self.next_line }))
    }

    /// The chunk just read has `lines` line ends: the next one starts after them.
    fn passed(&mut self, lines: usize) {
        self.next_line += lines;
    }
}

/// The line ends in `bytes`.
fn line_ends(bytes: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', bytes).count()
}

/// Parse, validate, convert and deduplicate one chunk on its own (first wins within the chunk); `like` sizes the
/// builders (records of an earlier chunk).
fn process_chunk(chunk: &Chunk, opts: BatchOptions<'_>, schema: &SchemaRef, like: Option<&RecordBatch>) -> Result<Piece> {
    let body = chunk.body();
    let mut dedupe = Deduper::with_capacity(body.len() / 256);
    process_records_after(lines_from(body, chunk.first_line), opts, schema, &mut dedupe, &IdStore::default(), like)
}

/// A small copy of a records batch's first rows: what the next chunks' builders are sized from.
fn sample_of(batches: &[RecordBatch]) -> Option<RecordBatch> {
    let b = batches.iter().max_by_key(|b| b.num_rows()).filter(|b| b.num_rows() > 0)?;
    let rows = b.num_rows().min(1024);
    arrow_select::concat::concat_batches(&b.schema(), [&b.slice(0, rows)]).ok()
}

/// What the chunks produced so far, merged in input order: the cross-chunk dedupe state and the counts.
struct Merged {
    dedupe: Deduper,
    /// The ids kept so far, in the order `dedupe` indexed them.
    kept: IdStore,
    rejects: Vec<Reject>,
    duplicates: usize,
    received: usize,
    /// Whether any chunk was merged (an empty file still gets one empty batch: the file has the records schema).
    sent: bool,
}

impl Merged {
    /// Merge the next chunk's piece (deduplicated within itself): its records minus the events whose id an
    /// earlier chunk kept, in order, without empty batches.
    fn merge(&mut self, piece: Piece, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
        let out = merge_pieces(vec![piece], schema.clone(), &mut self.dedupe, &self.kept)?;
        Ok(self.take(out.records, out.rejects, out.duplicates, out.received))
    }

    /// Count a chunk's output whose records were deduplicated against the earlier chunks already.
    fn take(&mut self, records: Vec<RecordBatch>, rejects: Vec<Reject>, duplicates: usize, received: usize) -> Vec<RecordBatch> {
        self.kept.extend_from(&records);
        self.rejects.extend(rejects);
        self.duplicates += duplicates;
        self.received += received;
        self.sent = true;
        records.into_iter().filter(|b| b.num_rows() > 0).collect()
    }

    fn into_output(self, data_file: DataFileMeta) -> FileOutput {
        FileOutput { data_file, rejects: self.rejects, duplicates: self.duplicates, received: self.received }
    }
}

/// The records of an NDJSON file on one thread, as an iterator of record batches: one chunk is processed
/// whenever the batches of the previous one have been taken.
struct Stream<'o, 'm> {
    reader: Chunks,
    opts: BatchOptions<'o>,
    schema: SchemaRef,
    /// The one input buffer, reused by every chunk.
    buf: Vec<u8>,
    like: Option<RecordBatch>,
    merged: &'m mut Merged,
    /// Batches of the current chunk not taken yet, last first.
    ready: Vec<RecordBatch>,
    failed: bool,
}

impl Stream<'_, '_> {
    /// Process the next chunk into `ready`; false when the file is done.
    fn next_chunk(&mut self) -> Result<bool> {
        let Some(chunk) = self.reader.next(std::mem::take(&mut self.buf))? else { return Ok(false) };
        let (body, first) = (chunk.body(), chunk.first_line);
        // The chunk's line ends are counted without a pass of their own: the last record read is line
        // `line` (1-based in the file) and ends at byte `end` of the chunk, so `line - 1 - first` line ends come
        // before it; only the rest (blank lines) is counted. A record whose text is not the chunk's own (invalid
        // UTF-8, shown replaced) is not found in it: then the whole chunk is counted.
        let mut last: Option<(usize, Option<usize>)> = None;
        let base = body.as_ptr() as usize;
        let source = lines_from(body, first).inspect(|r| {
            let end = (r.raw.as_ptr() as usize).checked_sub(base).map(|at| at + r.raw.len()).filter(|&end| end <= body.len());
            last = Some((r.line, end));
        });
        let piece = process_records_after(source, self.opts, &self.schema, &mut self.merged.dedupe, &self.merged.kept, self.like.as_ref())?;
        let lines = match last {
            Some((line, Some(end))) => line - 1 - first + line_ends(&body[end..]),
            _ => line_ends(body),
        };
        self.reader.passed(lines);
        self.buf = chunk.buf;
        if self.like.is_none() {
            self.like = sample_of(&piece.chunks);
        }
        let Piece { chunks, rejects, duplicates, received } = piece;
        let mut ready = self.merged.take(chunks, rejects, duplicates, received);
        ready.reverse();
        self.ready = ready;
        Ok(true)
    }
}

impl Iterator for Stream<'_, '_> {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Result<RecordBatch>> {
        while self.ready.is_empty() && !self.failed {
            match self.next_chunk() {
                Ok(true) => {}
                Ok(false) if !self.merged.sent => {
                    // An empty file: one empty batch, so the file still has the records schema.
                    self.merged.sent = true;
                    return Some(Ok(RecordBatch::new_empty(self.schema.clone())));
                }
                Ok(false) => return None,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        self.ready.pop().map(Ok)
    }
}

/// A chunk to process and its place in the input.
struct Job {
    seq: usize,
    chunk: Chunk,
}

/// A processed chunk: its piece and its buffer (back to the reader for the next chunk).
struct Done {
    seq: usize,
    piece: Result<Piece>,
    buf: Vec<u8>,
}

/// Threads that encode the Parquet columns (on the writer's own thread and helpers) for `threads` in all: the
/// writer's share of the work is about a third, so one thread of it per three given (at least one).
fn writer_threads(threads: usize) -> usize {
    (threads / 3).max(1)
}

/// The chunks processed on `threads` workers, merged in input order on this thread and written on another.
#[allow(clippy::too_many_arguments)]
fn parallel(
    mut reader: Chunks,
    opts: BatchOptions<'_>,
    schema: &SchemaRef,
    merged: &mut Merged,
    output: &str,
    iceberg_schema: &str,
    codec: Codec,
    threads: usize,
) -> Result<DataFileMeta> {
    let (job_tx, job_rx) = channel::<Job>();
    let job_rx = Mutex::new(job_rx);
    let (done_tx, done_rx) = channel::<Done>();
    let (batch_tx, batch_rx) = sync_channel::<Result<RecordBatch>>(WRITE_QUEUE);
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || write_iceberg_parquet_threads(batch_rx, output, iceberg_schema, codec, writer_threads(threads)));
        for _ in 0..threads {
            let (job_rx, done_tx) = (&job_rx, done_tx.clone());
            scope.spawn(move || work(job_rx, done_tx, opts, schema));
        }
        drop(done_tx);
        let fed = feed(&mut reader, job_tx, &done_rx, &batch_tx, merged, schema, threads);
        if let Err(e) = fed {
            // The writer stops on it and removes its file (a send fails only when the writer stopped already).
            let _ = batch_tx.send(Err(e));
        }
        drop(batch_tx);
        writer.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// A worker: process chunks until there are no more.
fn work(jobs: &Mutex<Receiver<Job>>, done: Sender<Done>, opts: BatchOptions<'_>, schema: &SchemaRef) {
    let mut like: Option<RecordBatch> = None;
    loop {
        // The lock is held only while waiting for a job; a poisoned lock means another worker panicked.
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(Job { seq, chunk }) = job else { return };
        let piece = process_chunk(&chunk, opts, schema, like.as_ref());
        if like.is_none() {
            like = piece.as_ref().ok().and_then(|p| sample_of(&p.chunks));
        }
        if done.send(Done { seq, piece, buf: chunk.buf }).is_err() {
            return;
        }
    }
}

/// Read chunks and hand them to the workers (at most `threads` in flight), take their results in input
/// order, merge them and send the records to the writer. Dropping `jobs` on return stops the workers.
fn feed(
    reader: &mut Chunks,
    jobs: Sender<Job>,
    done: &Receiver<Done>,
    batches: &SyncSender<Result<RecordBatch>>,
    merged: &mut Merged,
    schema: &SchemaRef,
    threads: usize,
) -> Result<()> {
    let mut spare: Vec<Vec<u8>> = Vec::new();
    let mut waiting: BTreeMap<usize, Result<Piece>> = BTreeMap::new();
    let (mut sent, mut next, mut in_flight, mut more) = (0usize, 0usize, 0usize, true);
    loop {
        while more && in_flight < threads {
            match reader.next(spare.pop().unwrap_or_default())? {
                Some(chunk) => {
                    reader.passed(line_ends(&chunk.buf));
                    jobs.send(Job { seq: sent, chunk }).map_err(|_| Error::Iceberg("the chunk workers stopped".into()))?;
                    sent += 1;
                    in_flight += 1;
                }
                None => more = false,
            }
        }
        if in_flight == 0 {
            break;
        }
        let d = done.recv().map_err(|_| Error::Iceberg("the chunk workers stopped".into()))?;
        in_flight -= 1;
        spare.push(d.buf);
        waiting.insert(d.seq, d.piece);
        while let Some(piece) = waiting.remove(&next) {
            next += 1;
            for batch in merged.merge(piece?, schema)? {
                // A send fails only when the writer has stopped on an error of its own, which it returns.
                if batches.send(Ok(batch)).is_err() {
                    return Ok(());
                }
            }
        }
    }
    if !merged.sent {
        merged.sent = true;
        let _ = batches.send(Ok(RecordBatch::new_empty(schema.clone())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::process_batch;
    use crate::iceberg_parquet::{read_all, write_iceberg_parquet};
    use crate::schema::Schema;

    const ICEBERG: &str = r#"{"fields":[
        {"id":1,"name":"event_id","required":true,"type":"string"},
        {"id":2,"name":"event_type","required":true,"type":"string"},
        {"id":3,"name":"event_ts","required":true,"type":"timestamptz"},
        {"id":4,"name":"source_line","required":true,"type":"long"}]}"#;

    #[test]
    fn chunks_of_any_size_give_the_batch_result() {
        let line = |id: usize, ts: &str| format!("{{\"event_id\":\"e{id}\",\"event_type\":\"click\",\"timestamp\":\"{ts}\"}}\n");
        let mut data = String::from("\u{feff}");
        for i in 0..3000 {
            data.push_str(&line(if i % 7 == 6 { i / 3 } else { i }, if i % 11 == 10 { "bad" } else { "2026-01-01T00:00:00Z" }));
            if i % 13 == 0 {
                data.push_str("\r\n  \nnot json\n");
            }
        }
        data.push_str("{\"event_id\":\"last\",\"event_type\":\"click\",\"timestamp\":\"2026-01-01T00:00:00Z\"}");
        let dir = std::env::temp_dir().join(format!("ep-stream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("in.ndjson");
        std::fs::write(&input, &data).unwrap();
        let schema = Schema::envelope();
        let opts = BatchOptions { format: Format::Ndjson, schema: &schema, job_id: None, include_raw: false };
        let whole = process_batch(data.as_bytes(), opts).unwrap();
        let batch_file = dir.join("batch.parquet");
        let meta = write_iceberg_parquet(whole.records.iter().cloned().map(Ok), batch_file.to_str().unwrap(), ICEBERG, Codec::Zstd).unwrap();
        let (_, expected) = read_all(batch_file.to_str().unwrap()).unwrap();
        for (chunk, threads) in [(1, 1), (7, 2), (100, 1), (5000, 3), (20_000, 3), (1 << 20, 1), (1 << 20, 2)] {
            let out = dir.join("stream.parquet");
            let got = ndjson_file_to_parquet(input.to_str().unwrap(), out.to_str().unwrap(), opts, ICEBERG, Codec::Zstd, threads, chunk).unwrap();
            let (_, batches) = read_all(out.to_str().unwrap()).unwrap();
            let cat = |b: &[RecordBatch]| arrow_select::concat::concat_batches(&b[0].schema(), b).unwrap();
            assert_eq!(cat(&batches), cat(&expected), "chunks of {chunk} bytes, {threads} threads");
            assert_eq!(got.rejects, whole.rejects);
            assert_eq!((got.duplicates, got.received), (whole.duplicates, whole.received));
            let m = &got.data_file;
            assert_eq!((m.record_count, &m.value_counts, &m.null_value_counts), (meta.record_count, &meta.value_counts, &meta.null_value_counts));
            assert_eq!((&m.lower_bounds, &m.upper_bounds), (&meta.lower_bounds, &meta.upper_bounds));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
