//! Parquet data files for Iceberg tables: columns carry the table's field ids ("PARQUET:field_id"), and writing
//! returns the data-file metrics an Iceberg manifest entry needs (sizes, counts, bounds in Iceberg's
//! single-value binary serialization).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Float32Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
};
use arrow_array::{new_null_array, Array, ArrayRef, RecordBatch, RecordBatchReader};
use arrow_schema::{DataType, Field, Schema as ArrowSchema, SchemaRef, TimeUnit};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk, ArrowColumnWriter};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use serde_json::Value;

use crate::error::{Error, Result};

/// How many characters (strings) or bytes (binary) of a bound Iceberg keeps by default: `truncate(16)`.
const BOUND_TRUNCATE: usize = 16;

/// Parquet compression codecs the core writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Zstd,
    Snappy,
}

impl Codec {
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "zstd" => Ok(Codec::Zstd),
            "snappy" => Ok(Codec::Snappy),
            other => Err(Error::Iceberg(format!("unsupported compression {other:?}: expected \"zstd\" or \"snappy\""))),
        }
    }
}

/// The primitive Iceberg types the core writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcebergType {
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Date,
    Timestamp,
    Timestamptz,
    String,
    Binary,
}

impl IcebergType {
    fn from_json(v: &Value, field: &str) -> Result<Self> {
        let Value::String(name) = v else {
            return Err(Error::Iceberg(format!("field {field:?}: nested types are not supported by the core writer")));
        };
        Ok(match name.as_str() {
            "boolean" => Self::Boolean,
            "int" => Self::Int,
            "long" => Self::Long,
            "float" => Self::Float,
            "double" => Self::Double,
            "date" => Self::Date,
            "timestamp" => Self::Timestamp,
            "timestamptz" => Self::Timestamptz,
            "string" => Self::String,
            "binary" => Self::Binary,
            other => return Err(Error::Iceberg(format!("field {field:?}: unsupported Iceberg type {other:?}"))),
        })
    }

    fn arrow(self) -> DataType {
        match self {
            Self::Boolean => DataType::Boolean,
            Self::Int => DataType::Int32,
            Self::Long => DataType::Int64,
            Self::Float => DataType::Float32,
            Self::Double => DataType::Float64,
            Self::Date => DataType::Date32,
            Self::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Self::Timestamptz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Self::String => DataType::Utf8,
            Self::Binary => DataType::Binary,
        }
    }
}

/// One top-level field of an Iceberg schema.
#[derive(Debug, Clone, PartialEq)]
pub struct IcebergField {
    pub id: i32,
    pub name: String,
    pub required: bool,
    pub ty: IcebergType,
}

/// Read the fields of an Iceberg schema from its JSON form (as pyiceberg's `Schema.model_dump_json()` writes it).
pub fn parse_iceberg_schema(text: &str) -> Result<Vec<IcebergField>> {
    let v: Value = serde_json::from_str(text).map_err(|e| Error::Iceberg(format!("the Iceberg schema is not JSON: {e}")))?;
    let fields = v
        .get("fields")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Iceberg("the Iceberg schema has no \"fields\" list".into()))?;
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::Iceberg(format!("fields[{i}] has no name")))?
                .to_string();
            let id = f
                .get("id")
                .and_then(Value::as_i64)
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| Error::Iceberg(format!("field {name:?} has no integer id")))?;
            let required = f.get("required").and_then(Value::as_bool).unwrap_or(false);
            let ty = IcebergType::from_json(f.get("type").unwrap_or(&Value::Null), &name)?;
            Ok(IcebergField { id, name, required, ty })
        })
        .collect()
}

/// The Arrow schema of a data file: Iceberg names, types, nullability and field ids.
pub fn arrow_schema_for(fields: &[IcebergField]) -> ArrowSchema {
    ArrowSchema::new(
        fields
            .iter()
            .map(|f| {
                Field::new(&f.name, f.ty.arrow(), !f.required)
                    .with_metadata(HashMap::from([("PARQUET:field_id".to_string(), f.id.to_string())]))
            })
            .collect::<Vec<_>>(),
    )
}

/// What an Iceberg manifest entry needs to know about a data file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DataFileMeta {
    pub path: String,
    pub record_count: i64,
    pub file_size_in_bytes: i64,
    pub column_sizes: BTreeMap<i32, i64>,
    pub value_counts: BTreeMap<i32, i64>,
    pub null_value_counts: BTreeMap<i32, i64>,
    pub lower_bounds: BTreeMap<i32, Vec<u8>>,
    pub upper_bounds: BTreeMap<i32, Vec<u8>>,
    pub split_offsets: Vec<i64>,
}

/// Running min/max of one column, in Iceberg's ordering.
#[derive(Debug, Clone, PartialEq)]
enum Bounds {
    None,
    Bool(bool, bool),
    Int(i32, i32),
    Long(i64, i64),
    Float(f32, f32),
    Double(f64, f64),
    Bytes(Vec<u8>, Vec<u8>),
}

fn merge<T: PartialOrd + Copy>(lo: T, hi: T, v: T) -> (T, T) {
    (if v < lo { v } else { lo }, if v > hi { v } else { hi })
}

impl Bounds {
    fn update(&mut self, ty: IcebergType, array: &ArrayRef) {
        macro_rules! prim {
            ($t:ty, $variant:ident, $skip:expr) => {{
                let a = array.as_primitive::<$t>();
                for v in a.iter().flatten() {
                    #[allow(clippy::redundant_closure_call)]
                    if $skip(v) {
                        continue;
                    }
                    *self = match std::mem::replace(self, Bounds::None) {
                        Bounds::$variant(lo, hi) => {
                            let (lo, hi) = merge(lo, hi, v);
                            Bounds::$variant(lo, hi)
                        }
                        _ => Bounds::$variant(v, v),
                    };
                }
            }};
        }
        match ty {
            IcebergType::Boolean => {
                for v in array.as_boolean().iter().flatten() {
                    *self = match std::mem::replace(self, Bounds::None) {
                        Bounds::Bool(lo, hi) => Bounds::Bool(lo && v, hi || v),
                        _ => Bounds::Bool(v, v),
                    };
                }
            }
            IcebergType::Int => prim!(Int32Type, Int, |_| false),
            IcebergType::Date => prim!(Date32Type, Int, |_| false),
            IcebergType::Long => prim!(Int64Type, Long, |_| false),
            IcebergType::Timestamp | IcebergType::Timestamptz => prim!(TimestampMicrosecondType, Long, |_| false),
            IcebergType::Float => prim!(Float32Type, Float, |v: f32| v.is_nan()),
            IcebergType::Double => prim!(Float64Type, Double, |v: f64| v.is_nan()),
            IcebergType::String => {
                let a = array.as_string::<i32>();
                let (mut lo, mut hi): (Option<&str>, Option<&str>) = (None, None);
                for v in a.iter().flatten() {
                    if lo.is_none_or(|l| v < l) {
                        lo = Some(v);
                    }
                    if hi.is_none_or(|h| v > h) {
                        hi = Some(v);
                    }
                }
                if let (Some(l), Some(h)) = (lo, hi) {
                    self.merge_bytes(l.as_bytes(), h.as_bytes());
                }
            }
            IcebergType::Binary => {
                let a = array.as_binary::<i32>();
                let (mut lo, mut hi): (Option<&[u8]>, Option<&[u8]>) = (None, None);
                for v in a.iter().flatten() {
                    if lo.is_none_or(|l| v < l) {
                        lo = Some(v);
                    }
                    if hi.is_none_or(|h| v > h) {
                        hi = Some(v);
                    }
                }
                if let (Some(l), Some(h)) = (lo, hi) {
                    self.merge_bytes(l, h);
                }
            }
        }
    }

    fn merge_bytes(&mut self, l: &[u8], h: &[u8]) {
        *self = match std::mem::replace(self, Bounds::None) {
            Bounds::Bytes(lo, hi) => Bounds::Bytes(
                if l < lo.as_slice() { l.to_vec() } else { lo },
                if h > hi.as_slice() { h.to_vec() } else { hi },
            ),
            _ => Bounds::Bytes(l.to_vec(), h.to_vec()),
        };
    }

    /// Lower and upper bound in Iceberg's single-value serialization (strings/binary truncated to 16).
    fn serialize(&self, ty: IcebergType) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        match self {
            Bounds::None => (None, None),
            Bounds::Bool(lo, hi) => (Some(vec![u8::from(*lo)]), Some(vec![u8::from(*hi)])),
            Bounds::Int(lo, hi) => (Some(lo.to_le_bytes().to_vec()), Some(hi.to_le_bytes().to_vec())),
            Bounds::Long(lo, hi) => (Some(lo.to_le_bytes().to_vec()), Some(hi.to_le_bytes().to_vec())),
            Bounds::Float(lo, hi) => (Some(lo.to_le_bytes().to_vec()), Some(hi.to_le_bytes().to_vec())),
            Bounds::Double(lo, hi) => (Some(lo.to_le_bytes().to_vec()), Some(hi.to_le_bytes().to_vec())),
            Bounds::Bytes(lo, hi) if ty == IcebergType::String => {
                let lo = std::str::from_utf8(lo).unwrap_or_default();
                // Not UTF-8 (never from the writer): no upper bound rather than a wrong one.
                let hi = std::str::from_utf8(hi).ok().and_then(truncate_str_upper);
                (Some(truncate_str_lower(lo).into_bytes()), hi.map(String::into_bytes))
            }
            Bounds::Bytes(lo, hi) => (
                Some(lo[..lo.len().min(BOUND_TRUNCATE)].to_vec()),
                truncate_bytes_upper(hi),
            ),
        }
    }
}

fn truncate_str_lower(s: &str) -> String {
    s.chars().take(BOUND_TRUNCATE).collect()
}

/// The smallest string of at most 16 characters that is >= `s`: `s` itself when short, else its prefix with the
/// last character incremented (None when no character can be incremented).
fn truncate_str_upper(s: &str) -> Option<String> {
    if s.chars().count() <= BOUND_TRUNCATE {
        return Some(s.to_string());
    }
    let mut chars: Vec<char> = s.chars().take(BOUND_TRUNCATE).collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..0xE000).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn truncate_bytes_upper(b: &[u8]) -> Option<Vec<u8>> {
    if b.len() <= BOUND_TRUNCATE {
        return Some(b.to_vec());
    }
    let mut out = b[..BOUND_TRUNCATE].to_vec();
    while let Some(last) = out.pop() {
        if last < u8::MAX {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

/// Fit one batch of records to the data file's schema: columns by name, cast to the Iceberg type, missing optional
/// columns as nulls. A missing required column or a null in a required one is an error naming the column.
fn conform(batch: &RecordBatch, fields: &[IcebergField], target: &SchemaRef) -> Result<RecordBatch> {
    let n = batch.num_rows();
    let mut columns = Vec::with_capacity(fields.len());
    for f in fields {
        let want = f.ty.arrow();
        let col = match batch.column_by_name(&f.name) {
            Some(c) if c.data_type() == &want => c.clone(),
            Some(c) => arrow_cast::cast(c, &want)
                .map_err(|e| Error::Iceberg(format!("column {:?}: cannot convert {} to {:?}: {e}", f.name, c.data_type(), f.ty)))?,
            None if f.required => {
                return Err(Error::Iceberg(format!("the records have no column {:?}, required by the Iceberg schema", f.name)))
            }
            None => new_null_array(&want, n),
        };
        if f.required && col.null_count() > 0 {
            return Err(Error::Iceberg(format!("column {:?} is required but holds {} nulls", f.name, col.null_count())));
        }
        columns.push(col);
    }
    Ok(RecordBatch::try_new(target.clone(), columns)?)
}

/// Write `batches` to a Parquet file at `path` for a table with `iceberg_schema` (Iceberg JSON).
pub fn write_iceberg_parquet(
    batches: impl IntoIterator<Item = Result<RecordBatch>>,
    path: &str,
    iceberg_schema: &str,
    codec: Codec,
) -> Result<DataFileMeta> {
    write_iceberg_parquet_threads(batches, path, iceberg_schema, codec, 1)
}

/// [`write_iceberg_parquet`] with the columns of each row group encoded and compressed on up to `threads`
/// threads (the file is byte for byte the one a single thread writes; with more than one thread the batches
/// are held until the end of their row group instead of being encoded as they come).
pub fn write_iceberg_parquet_threads(
    batches: impl IntoIterator<Item = Result<RecordBatch>>,
    path: &str,
    iceberg_schema: &str,
    codec: Codec,
    threads: usize,
) -> Result<DataFileMeta> {
    let fields = parse_iceberg_schema(iceberg_schema)?;
    let target: SchemaRef = Arc::new(arrow_schema_for(&fields));
    write_parsed(batches, path, iceberg_schema, &fields, &target, codec, threads)
}

/// Write `batches` as one data file per group: row `i` (counted across the batches, in order) goes to the file
/// `paths[groups[i]]`, rows keeping their order within each file. The files are those
/// [`write_iceberg_parquet`] writes for each group's rows, written from one pass that moves each row once (no
/// sort, no take per partition in the caller), the schema read once; up to `threads` files are written at once.
/// Returns the files' metadata in the order of `paths`. On error, the files this call wrote are removed.
pub fn write_iceberg_parquet_groups(
    batches: &[RecordBatch],
    groups: &[u32],
    paths: &[String],
    iceberg_schema: &str,
    codec: Codec,
    threads: usize,
) -> Result<Vec<DataFileMeta>> {
    let fields = parse_iceberg_schema(iceberg_schema)?;
    let target: SchemaRef = Arc::new(arrow_schema_for(&fields));
    let conformed = batches.iter().map(|b| conform(b, &fields, &target)).collect::<Result<Vec<_>>>()?;
    let total: usize = conformed.iter().map(RecordBatch::num_rows).sum();
    if groups.len() != total {
        return Err(Error::Iceberg(format!("{} group numbers for {total} rows", groups.len())));
    }
    let mut counts = vec![0usize; paths.len()];
    for &g in groups {
        *counts.get_mut(g as usize).ok_or_else(|| {
            Error::Iceberg(format!("group {g} has no path ({} paths)", paths.len()))
        })? += 1;
    }
    if let Some(empty) = counts.iter().position(|&c| c == 0) {
        return Err(Error::Iceberg(format!("no rows for the file of group {empty} ({})", paths[empty])));
    }
    let mut rows: Vec<Vec<u32>> = counts.iter().map(|&c| Vec::with_capacity(c)).collect();
    for (r, &g) in groups.iter().enumerate() {
        rows[g as usize].push(u32::try_from(r).map_err(|_| Error::Iceberg("more than 2^32 rows in one call".into()))?);
    }
    // One batch, then one take per group: an interleave over many batches costs more than the copy (measured:
    // docs/benchmarks.md, Consumer, session 8).
    let all = match conformed.as_slice() {
        [one] => one.clone(),
        _ => arrow_select::concat::concat_batches(&target, &conformed)?,
    };
    drop(conformed);
    let write_group = |g: usize| -> Result<DataFileMeta> {
        let batch = if rows[g].len() == all.num_rows() {
            all.clone()
        } else {
            arrow_select::take::take_record_batch(&all, &arrow_array::UInt32Array::from(rows[g].clone()))?
        };
        write_parsed([Ok(batch)], &paths[g], iceberg_schema, &fields, &target, codec, 1)
    };
    let results: Vec<Result<DataFileMeta>> = if threads <= 1 || paths.len() <= 1 {
        (0..paths.len()).map(write_group).collect()
    } else {
        let next = AtomicUsize::new(0);
        let done: Mutex<Vec<Option<Result<DataFileMeta>>>> = Mutex::new((0..paths.len()).map(|_| None).collect());
        let work = || {
            loop {
                let g = next.fetch_add(1, Ordering::Relaxed);
                if g >= paths.len() {
                    break;
                }
                let out = write_group(g);
                done.lock().expect("no worker panics holding it")[g] = Some(out);
            }
        };
        std::thread::scope(|scope| {
            for _ in 1..threads.min(paths.len()) {
                scope.spawn(work);
            }
            work();
        });
        done.into_inner()
            .expect("no worker panicked")
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::Iceberg("a group's file was not written".into()))))
            .collect()
    };
    if results.iter().any(Result::is_err) {
        for (path, result) in paths.iter().zip(&results) {
            if result.is_ok() {
                // Best effort: files of a failed call must not be mistaken for data files.
                let _ = std::fs::remove_file(path);
            }
        }
    }
    results.into_iter().collect()
}

/// [`write_iceberg_parquet_threads`] with the schema already read.
fn write_parsed(
    batches: impl IntoIterator<Item = Result<RecordBatch>>,
    path: &str,
    iceberg_schema: &str,
    fields: &[IcebergField],
    target: &SchemaRef,
    codec: Codec,
    threads: usize,
) -> Result<DataFileMeta> {
    let compression = match codec {
        Codec::Zstd => Compression::ZSTD(ZstdLevel::try_new(1)?),
        Codec::Snappy => Compression::SNAPPY,
    };
    let mut batches = batches.into_iter();
    // The first batches, up to a dictionary sample's worth of rows (a stream may start with small ones).
    let mut first = Vec::new();
    let mut sampled = 0;
    while sampled < DICTIONARY_SAMPLE {
        let Some(b) = batches.next() else { break };
        let b = conform(&b?, fields, target)?;
        sampled += b.num_rows();
        first.push(b);
    }
    // Chunk-level statistics only: the manifest's bounds are computed here, and page statistics of long strings
    // cost time for nothing. Dictionary encoding only for columns whose first values repeat; the other strings
    // (ids, JSON text) are written DELTA_LENGTH_BYTE_ARRAY: lengths apart from the bytes, which ZSTD then
    // compresses faster and smaller than PLAIN's interleaved lengths (standard Parquet, read by pyarrow, DuckDB
    // and Iceberg's Parquet readers).
    let mut builder = WriterProperties::builder()
        .set_compression(compression)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_key_value_metadata(Some(vec![KeyValue::new("iceberg.schema".to_string(), iceberg_schema.to_string())]));
    if !first.is_empty() {
        let sample = if first.len() == 1 { first[0].clone() } else { arrow_select::concat::concat_batches(target, &first)? };
        for (i, f) in fields.iter().enumerate() {
            if !repeats(sample.column(i)) {
                builder = builder
                    .set_column_dictionary_enabled(ColumnPath::from(f.name.as_str()), false)
                    .set_column_encoding(ColumnPath::from(f.name.as_str()), Encoding::DELTA_LENGTH_BYTE_ARRAY);
            }
        }
    }
    let props = builder.build();
    let file = File::create(path).map_err(|e| Error::Io { path: path.to_string(), message: e.to_string() })?;
    let rest = first.into_iter().map(Ok).chain(batches.map(|b| b.and_then(|b| conform(&b, fields, target))));
    let written = write_file(file, rest, path, fields, target, props, threads.max(1));
    if written.is_err() {
        // Best effort: a half-written file must not be mistaken for a data file.
        let _ = std::fs::remove_file(path);
    }
    written
}

/// Rows whose values decide each string column's encoding.
const DICTIONARY_SAMPLE: usize = 1024;

/// Whether a string or binary column's first values repeat enough for a dictionary to pay (at most half of a
/// sample of 1024 distinct). Other types always keep dictionary encoding. Each file of a commit decides for its
/// own rows, so this runs per file: aHash (keyed per call, like the batch deduper) and an early answer once more
/// than half the sample is distinct.
fn repeats(col: &ArrayRef) -> bool {
    let sample = col.len().min(DICTIONARY_SAMPLE);
    if sample < 64 {
        return true;
    }
    let values: Box<dyn Iterator<Item = &[u8]>> = match col.data_type() {
        DataType::Utf8 => Box::new(col.as_string::<i32>().iter().take(sample).flatten().map(str::as_bytes)),
        DataType::Binary => Box::new(col.as_binary::<i32>().iter().take(sample).flatten()),
        _ => return true,
    };
    let most = sample / 2;
    let mut distinct: std::collections::HashSet<&[u8], ahash::RandomState> =
        std::collections::HashSet::with_capacity_and_hasher(most + 1, ahash::RandomState::new());
    for value in values {
        if distinct.insert(value) && distinct.len() > most {
            return false;
        }
    }
    true
}

/// Whether a column's Iceberg bounds come from the Parquet writer's own chunk statistics instead of a second
/// min/max pass over the values: strings and binary, where that pass is costly (one byte comparison per value).
/// The writer truncates them to 64 bytes (a prefix for the minimum, an incremented prefix for the maximum); both
/// keep Iceberg's 16-character truncation exact for the lower bound and a valid upper bound.
fn bounds_from_parquet(ty: IcebergType) -> bool {
    matches!(ty, IcebergType::String | IcebergType::Binary)
}

/// Write already conformed batches; the caller removes the file on error.
fn write_file(
    file: File,
    batches: impl IntoIterator<Item = Result<RecordBatch>>,
    path: &str,
    fields: &[IcebergField],
    target: &SchemaRef,
    props: WriterProperties,
    threads: usize,
) -> Result<DataFileMeta> {
    let max_rows = props.max_row_group_row_count().unwrap_or(usize::MAX);
    debug_assert!(props.max_row_group_bytes().is_none(), "row groups are cut by rows only (ParallelWriter)");
    let writer = ArrowWriter::try_new(file, target.clone(), Some(props))?;
    let mut out = if threads > 1 { Out::Parallel(ParallelWriter::new(writer, max_rows, threads)?) } else { Out::One(writer) };
    let mut bounds = vec![Bounds::None; fields.len()];
    let mut meta = DataFileMeta { path: path.to_string(), ..DataFileMeta::default() };
    for batch in batches {
        let batch = batch?;
        for (i, f) in fields.iter().enumerate() {
            let col = batch.column(i);
            *meta.value_counts.entry(f.id).or_default() += col.len() as i64;
            *meta.null_value_counts.entry(f.id).or_default() += col.null_count() as i64;
            if !bounds_from_parquet(f.ty) {
                bounds[i].update(f.ty, col);
            }
        }
        meta.record_count += batch.num_rows() as i64;
        match &mut out {
            Out::One(w) => w.write(&batch)?,
            Out::Parallel(w) => w.write(&batch, target)?,
        }
    }
    let parquet_meta = match out {
        Out::One(w) => w.close()?,
        Out::Parallel(w) => w.close()?,
    };
    for f in fields {
        meta.value_counts.entry(f.id).or_default();
        meta.null_value_counts.entry(f.id).or_default();
    }
    for rg in parquet_meta.row_groups() {
        for (i, f) in fields.iter().enumerate() {
            *meta.column_sizes.entry(f.id).or_default() += rg.column(i).compressed_size();
        }
        for (i, f) in fields.iter().enumerate() {
            let stats = rg.column(i).statistics();
            if let (true, Some(lo), Some(hi)) = (
                bounds_from_parquet(f.ty),
                stats.and_then(|s| s.min_bytes_opt()),
                stats.and_then(|s| s.max_bytes_opt()),
            ) {
                bounds[i].merge_bytes(lo, hi);
            }
        }
        let first = rg.column(0);
        meta.split_offsets.push(rg.file_offset().unwrap_or_else(|| {
            first.dictionary_page_offset().unwrap_or(first.data_page_offset())
        }));
    }
    for (i, f) in fields.iter().enumerate() {
        let (lo, hi) = bounds[i].serialize(f.ty);
        if let Some(lo) = lo {
            meta.lower_bounds.insert(f.id, lo);
        }
        if let Some(hi) = hi {
            meta.upper_bounds.insert(f.id, hi);
        }
    }
    meta.file_size_in_bytes = std::fs::metadata(path)
        .map_err(|e| Error::Io { path: path.to_string(), message: e.to_string() })?
        .len() as i64;
    Ok(meta)
}

/// Where written batches go: `ArrowWriter` on the calling thread, or each batch's columns on threads.
enum Out {
    One(ArrowWriter<File>),
    Parallel(ParallelWriter),
}

/// Writes batches as they come, encoding and compressing each batch's columns on up to `threads` threads (the
/// largest columns first, each taken by whichever thread is free; the calling thread works too), and cutting row
/// groups of `max_rows` rows as `ArrowWriter::write` does. The column chunks are appended in schema order, so the
/// file is the one `ArrowWriter` writes alone; only the open row group's encoded pages are held.
struct ParallelWriter {
    file: parquet::file::writer::SerializedFileWriter<File>,
    factory: parquet::arrow::arrow_writer::ArrowRowGroupWriterFactory,
    max_rows: usize,
    threads: usize,
    group: Vec<ArrowColumnWriter>,
    groups: usize,
    filled: usize,
}

impl ParallelWriter {
    fn new(writer: ArrowWriter<File>, max_rows: usize, threads: usize) -> Result<Self> {
        let (file, factory) = writer.into_serialized_writer()?;
        Ok(ParallelWriter { file, factory, max_rows, threads, group: Vec::new(), groups: 0, filled: 0 })
    }

    fn write(&mut self, batch: &RecordBatch, target: &SchemaRef) -> Result<()> {
        let mut batch = batch.clone();
        while batch.num_rows() > 0 {
            if self.group.is_empty() {
                self.group = self.factory.create_column_writers(self.groups)?;
                if self.group.len() != target.fields().len() {
                    return Err(Error::Iceberg("nested columns are not supported by the parallel writer".into()));
                }
            }
            let take = batch.num_rows().min(self.max_rows - self.filled);
            self.encode(&batch.slice(0, take), target)?;
            self.filled += take;
            if self.filled == self.max_rows {
                self.close_group()?;
            }
            batch = batch.slice(take, batch.num_rows() - take);
        }
        Ok(())
    }

    fn encode(&mut self, batch: &RecordBatch, target: &SchemaRef) -> Result<()> {
        let mut order: Vec<usize> = (0..self.group.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(batch.column(i).get_array_memory_size()));
        let writers: Vec<Mutex<&mut ArrowColumnWriter>> = self.group.iter_mut().map(Mutex::new).collect();
        let errors: Mutex<Vec<Error>> = Mutex::new(Vec::new());
        let next = AtomicUsize::new(0);
        let work = || {
            while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                let mut w = writers[i].lock().expect("no worker panics holding it");
                let field = target.field(i);
                let written = compute_leaves(field, batch.column(i)).and_then(|leaves| leaves.iter().try_for_each(|leaf| w.write(leaf)));
                if let Err(e) = written {
                    errors.lock().expect("no worker panics holding it").push(e.into());
                }
            }
        };
        std::thread::scope(|scope| {
            for _ in 1..self.threads.min(order.len()) {
                scope.spawn(work);
            }
            work();
        });
        match errors.into_inner().expect("no worker panicked").into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn close_group(&mut self) -> Result<()> {
        let chunks: Vec<ArrowColumnChunk> =
            std::mem::take(&mut self.group).into_iter().map(ArrowColumnWriter::close).collect::<std::result::Result<_, _>>()?;
        let mut row_group = self.file.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        self.groups += 1;
        self.filled = 0;
        Ok(())
    }

    fn close(mut self) -> Result<parquet::file::metadata::ParquetMetaData> {
        if !self.group.is_empty() {
            self.close_group()?;
        }
        Ok(self.file.close()?)
    }
}

/// Open a Parquet data file for reading as Arrow batches (field ids stay in the field metadata).
pub fn read_iceberg_parquet(path: &str) -> Result<ParquetRecordBatchReader> {
    let file = File::open(path).map_err(|e| Error::Io { path: path.to_string(), message: e.to_string() })?;
    Ok(ParquetRecordBatchReaderBuilder::try_new(file)?.build()?)
}

/// Read a whole Parquet file into batches.
pub fn read_all(path: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let reader = read_iceberg_parquet(path)?;
    let schema = reader.schema();
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((schema, batches))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{process_batch, BatchOptions};
    use crate::parse::Format;
    use crate::schema::Schema;

    const ICEBERG: &str = r#"{"type":"struct","schema-id":0,"fields":[
        {"id":1,"name":"event_id","required":true,"type":"string"},
        {"id":2,"name":"event_type","required":true,"type":"string"},
        {"id":3,"name":"event_ts","required":true,"type":"timestamptz"},
        {"id":4,"name":"event_date","required":true,"type":"date"},
        {"id":5,"name":"event_hour","required":true,"type":"int"},
        {"id":6,"name":"user_id","required":false,"type":"string"},
        {"id":8,"name":"properties","required":false,"type":"string"},
        {"id":9,"name":"schema_version","required":true,"type":"int"},
        {"id":12,"name":"shard_id","required":false,"type":"string"},
        {"id":100,"name":"amount","required":false,"type":"double"}]}"#;

    #[test]
    fn writes_field_ids_and_metrics() {
        let schema = Schema::from_json(r#"{"promote":[{"path":"properties.amount","column":"amount","type":"double"}]}"#).unwrap();
        let data = concat!(
            "{\"event_id\":\"b\",\"event_type\":\"click\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"properties\":{\"amount\":2.5}}\n",
            "{\"event_id\":\"a-very-long-event-id-over-sixteen\",\"event_type\":\"view\",\"timestamp\":\"2026-01-02T00:00:00Z\",\"user_id\":\"u\"}\n",
        );
        let out = process_batch(data.as_bytes(), BatchOptions { format: Format::Ndjson, schema: &schema, job_id: None, include_raw: false }).unwrap();
        let dir = std::env::temp_dir().join(format!("ep-core-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.parquet");
        let path = path.to_str().unwrap();
        let meta = write_iceberg_parquet(out.records.into_iter().map(Ok), path, ICEBERG, Codec::Zstd).unwrap();
        assert_eq!(meta.record_count, 2);
        assert_eq!(meta.value_counts[&1], 2);
        assert_eq!(meta.null_value_counts[&6], 1);
        assert_eq!(meta.null_value_counts[&12], 2);
        assert_eq!(meta.null_value_counts[&100], 1);
        assert_eq!(meta.lower_bounds[&1], b"a-very-long-even".to_vec());
        assert_eq!(meta.upper_bounds[&1], b"b".to_vec());
        assert_eq!(meta.lower_bounds[&100], 2.5f64.to_le_bytes().to_vec());
        assert!(!meta.lower_bounds.contains_key(&12));
        assert_eq!(meta.file_size_in_bytes as u64, std::fs::metadata(path).unwrap().len());
        assert!(meta.column_sizes.values().all(|&s| s > 0));
        assert_eq!(meta.split_offsets.len(), 1);
        let (schema, batches) = read_all(path).unwrap();
        assert_eq!(schema.field(0).metadata()["PARQUET:field_id"], "1");
        assert_eq!(schema.field(9).metadata()["PARQUET:field_id"], "100");
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn threads_write_the_same_file() {
        let schema = Schema::envelope();
        let data: String = (0..3000)
            .map(|i| format!("{{\"event_id\":\"e{i}\",\"event_type\":\"click\",\"user_id\":\"u{}\",\"timestamp\":\"2026-01-01T00:00:{:02}Z\",\"properties\":{{\"n\":{i}}}}}\n", i % 7, i % 60))
            .collect();
        let out = process_batch(data.as_bytes(), BatchOptions { format: Format::Ndjson, schema: &schema, job_id: None, include_raw: false }).unwrap();
        // Small batches, so that several go into each row group.
        let batches: Vec<RecordBatch> = out.records.iter().flat_map(|b| (0..b.num_rows()).step_by(700).map(|s| b.slice(s, 700.min(b.num_rows() - s)))).collect();
        let dir = std::env::temp_dir().join(format!("ep-threads-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut files = Vec::new();
        for threads in [1, 2, 5] {
            let path = dir.join(format!("t{threads}.parquet"));
            let meta = write_iceberg_parquet_threads(batches.iter().cloned().map(Ok), path.to_str().unwrap(), ICEBERG, Codec::Zstd, threads).unwrap();
            assert_eq!(meta.record_count, 3000);
            files.push((std::fs::read(&path).unwrap(), format!("{:?}", (meta.lower_bounds, meta.upper_bounds, meta.column_sizes, meta.split_offsets))));
        }
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(files.iter().all(|f| *f == files[0]), "the same bytes and metrics on 1, 2 and 5 threads");
    }

    #[test]
    fn groups_write_the_files_of_each_group_alone() {
        let schema = Schema::envelope();
        let data: String = (0..2500)
            .map(|i| format!("{{\"event_id\":\"e{i}\",\"event_type\":\"t{}\",\"timestamp\":\"2026-01-0{}T00:00:00Z\"}}\n", i % 3, 1 + i % 4))
            .collect();
        let out = process_batch(data.as_bytes(), BatchOptions { format: Format::Ndjson, schema: &schema, job_id: None, include_raw: false }).unwrap();
        let batches: Vec<RecordBatch> = out.records.iter().flat_map(|b| (0..b.num_rows()).step_by(900).map(|s| b.slice(s, 900.min(b.num_rows() - s)))).collect();
        let groups: Vec<u32> = (0..2500u32).map(|i| [2, 0, 1, 0][(i % 4) as usize]).collect();
        let dir = std::env::temp_dir().join(format!("ep-groups-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let paths: Vec<String> = (0..3).map(|g| dir.join(format!("g{g}.parquet")).to_str().unwrap().to_string()).collect();
        for threads in [1, 2] {
            let metas = write_iceberg_parquet_groups(&batches, &groups, &paths, ICEBERG, Codec::Zstd, threads).unwrap();
            for (g, meta) in metas.iter().enumerate() {
                let all = arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap();
                let picked: Vec<u32> = (0..2500u32).filter(|&i| groups[i as usize] == g as u32).collect();
                let alone = arrow_select::take::take_record_batch(&all, &arrow_array::UInt32Array::from(picked)).unwrap();
                let path = dir.join("alone.parquet");
                let want = write_iceberg_parquet([Ok(alone)], path.to_str().unwrap(), ICEBERG, Codec::Zstd).unwrap();
                assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(&paths[g]).unwrap(), "group {g}");
                assert_eq!(DataFileMeta { path: paths[g].clone(), ..want }, *meta);
            }
        }
        let err = write_iceberg_parquet_groups(&batches, &groups[1..], &paths, ICEBERG, Codec::Zstd, 1).unwrap_err();
        assert!(err.to_string().contains("group numbers"), "{err}");
        let err = write_iceberg_parquet_groups(&batches, &groups, &paths[..2], ICEBERG, Codec::Zstd, 1).unwrap_err();
        assert!(err.to_string().contains("no path"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn row_groups_are_cut_like_the_arrow_writer() {
        let schema = Arc::new(ArrowSchema::new(vec![Field::new("x", DataType::Int32, false)]));
        let batch = |n: i32| RecordBatch::try_new(schema.clone(), vec![Arc::new(arrow_array::Int32Array::from_iter_values(0..n)) as ArrayRef]).unwrap();
        let batches = [batch(5), batch(0), batch(7), batch(3)];
        let dir = std::env::temp_dir().join(format!("ep-groups-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let props = || WriterProperties::builder().set_max_row_group_row_count(Some(4)).build();
        let one = dir.join("one.parquet");
        let mut w = ArrowWriter::try_new(File::create(&one).unwrap(), schema.clone(), Some(props())).unwrap();
        batches.iter().for_each(|b| w.write(b).unwrap());
        let groups: Vec<i64> = w.close().unwrap().row_groups().iter().map(|g| g.num_rows()).collect();
        assert_eq!(groups, vec![4, 4, 4, 3]);
        let two = dir.join("two.parquet");
        let w = ArrowWriter::try_new(File::create(&two).unwrap(), schema.clone(), Some(props())).unwrap();
        let mut w = ParallelWriter::new(w, 4, 2).unwrap();
        batches.iter().for_each(|b| w.write(b, &schema).unwrap());
        w.close().unwrap();
        assert_eq!(std::fs::read(&one).unwrap(), std::fs::read(&two).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_required_column_is_named() {
        let schema = Schema::envelope();
        let out = process_batch(b"", BatchOptions { format: Format::Ndjson, schema: &schema, job_id: None, include_raw: false }).unwrap();
        let iceberg = r#"{"fields":[{"id":10,"name":"ingested_at","required":true,"type":"timestamptz"}]}"#;
        let err = write_iceberg_parquet(out.records.into_iter().map(Ok), "/tmp/ep-never.parquet", iceberg, Codec::Snappy).unwrap_err();
        assert!(err.to_string().contains("ingested_at"), "{err}");
    }

    #[test]
    fn bounds_of_values_longer_than_the_writer_statistics() {
        // The writer's statistics keep 64 bytes; the bounds must be those of the full values.
        let iceberg = r#"{"fields":[{"id":1,"name":"s","required":false,"type":"string"},
            {"id":2,"name":"b","required":false,"type":"binary"}]}"#;
        let long_hi = format!("{}{}", "é".repeat(20), "z".repeat(80));
        let long_lo = format!("{}{}", "a".repeat(70), "b");
        let strings = arrow_array::StringArray::from(vec![Some(long_lo.as_str()), None, Some(long_hi.as_str()), Some("m")]);
        let binary = arrow_array::BinaryArray::from(vec![Some(&[0xffu8; 90][..]), Some(&[1u8; 70][..]), None, Some(&b"x"[..])]);
        let batch = RecordBatch::try_from_iter(vec![
            ("s", Arc::new(strings) as ArrayRef),
            ("b", Arc::new(binary) as ArrayRef),
        ])
        .unwrap();
        let path = std::env::temp_dir().join(format!("ep-core-bounds-{}.parquet", std::process::id()));
        let path = path.to_str().unwrap();
        let meta = write_iceberg_parquet([Ok(batch)], path, iceberg, Codec::Zstd).unwrap();
        std::fs::remove_file(path).unwrap();
        assert_eq!(meta.lower_bounds[&1], "a".repeat(16).into_bytes());
        assert_eq!(meta.upper_bounds[&1], format!("{}{}", "é".repeat(15), "ê").into_bytes());
        assert_eq!(meta.lower_bounds[&2], vec![1u8; 16]);
        // No 16-byte string of 0xff bytes is above a longer one: no upper bound, as for the exact maximum.
        assert!(!meta.upper_bounds.contains_key(&2));
        assert_eq!(meta.null_value_counts[&1], 1);
    }

    #[test]
    fn distinct_strings_are_delta_length_encoded() {
        let iceberg = r#"{"fields":[{"id":1,"name":"id","required":true,"type":"string"},
            {"id":2,"name":"kind","required":true,"type":"string"}]}"#;
        let ids: Vec<String> = (0..2000).map(|i| format!("id-{i}")).collect();
        let kinds: Vec<&str> = (0..2000).map(|i| if i % 2 == 0 { "a" } else { "b" }).collect();
        let batch = RecordBatch::try_from_iter(vec![
            ("id", Arc::new(arrow_array::StringArray::from(ids.clone())) as ArrayRef),
            ("kind", Arc::new(arrow_array::StringArray::from(kinds)) as ArrayRef),
        ])
        .unwrap();
        let path = std::env::temp_dir().join(format!("ep-core-enc-{}.parquet", std::process::id()));
        let path = path.to_str().unwrap();
        write_iceberg_parquet([Ok(batch)], path, iceberg, Codec::Snappy).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
        let column = |i: usize| reader.metadata().row_group(0).column(i).encodings().collect::<Vec<_>>();
        assert!(column(0).contains(&Encoding::DELTA_LENGTH_BYTE_ARRAY), "{:?}", column(0));
        assert!(column(1).contains(&Encoding::RLE_DICTIONARY), "{:?}", column(1));
        let (_, batches) = read_all(path).unwrap();
        std::fs::remove_file(path).unwrap();
        let back: Vec<String> = batches.iter().flat_map(|b| b.column(0).as_string::<i32>().iter().map(|v| v.unwrap().to_string()).collect::<Vec<_>>()).collect();
        assert_eq!(back, ids);
    }

    #[test]
    fn string_upper_bound_truncation() {
        assert_eq!(truncate_str_upper("abcdefghijklmnopq").as_deref(), Some("abcdefghijklmnoq"));
        assert_eq!(truncate_str_upper("short").as_deref(), Some("short"));
    }
}
