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
    let compression = match codec {
        Codec::Zstd => Compression::ZSTD(ZstdLevel::try_new(1)?),
        Codec::Snappy => Compression::SNAPPY,
    };
    let mut batches = batches.into_iter();
    let first = match batches.next() {
        Some(b) => Some(conform(&b?, &fields, &target)?),
        None => None,
    };
    // Chunk-level statistics only: the manifest's bounds are computed here, and page statistics of long strings
    // cost time for nothing. Dictionary encoding only for columns whose first values repeat; the other strings
    // (ids, JSON text) are written DELTA_LENGTH_BYTE_ARRAY: lengths apart from the bytes, which ZSTD then
    // compresses faster and smaller than PLAIN's interleaved lengths (standard Parquet, read by pyarrow, DuckDB
    // and Iceberg's Parquet readers).
    let mut builder = WriterProperties::builder()
        .set_compression(compression)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_key_value_metadata(Some(vec![KeyValue::new("iceberg.schema".to_string(), iceberg_schema.to_string())]));
    if let Some(batch) = &first {
        for (i, f) in fields.iter().enumerate() {
            if !repeats(batch.column(i)) {
                builder = builder
                    .set_column_dictionary_enabled(ColumnPath::from(f.name.as_str()), false)
                    .set_column_encoding(ColumnPath::from(f.name.as_str()), Encoding::DELTA_LENGTH_BYTE_ARRAY);
            }
        }
    }
    let props = builder.build();
    let file = File::create(path).map_err(|e| Error::Io { path: path.to_string(), message: e.to_string() })?;
    let rest = first.into_iter().map(Ok).chain(batches.map(|b| b.and_then(|b| conform(&b, &fields, &target))));
    let written = write_file(file, rest, path, &fields, &target, props, threads.max(1));
    if written.is_err() {
        // Best effort: a half-written file must not be mistaken for a data file.
        let _ = std::fs::remove_file(path);
    }
    written
}

/// Whether a string or binary column's first values repeat enough for a dictionary to pay (at most half of a
/// sample of 1024 distinct). Other types always keep dictionary encoding.
fn repeats(col: &ArrayRef) -> bool {
    let sample = col.len().min(1024);
    if sample < 64 {
        return true;
    }
    let distinct: std::collections::HashSet<&[u8]> = match col.data_type() {
        DataType::Utf8 => col.as_string::<i32>().iter().take(sample).flatten().map(str::as_bytes).collect(),
        DataType::Binary => col.as_binary::<i32>().iter().take(sample).flatten().collect(),
        _ => return true,
    };
    distinct.len() * 2 <= sample
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
    debug_assert!(props.max_row_group_bytes().is_none(), "row groups are cut by rows only (write_parallel)");
    let mut writer = ArrowWriter::try_new(file, target.clone(), Some(props))?;
    let mut held = Vec::new();
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
        if threads > 1 {
            held.push(batch);
        } else {
            writer.write(&batch)?;
        }
    }
    let parquet_meta = if threads > 1 { write_parallel(writer, held, target, max_rows, threads)? } else { writer.close()? };
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

/// Cut batches into row groups of `max_rows` rows, as `ArrowWriter::write` does (empty batches skipped).
fn row_groups(batches: Vec<RecordBatch>, max_rows: usize) -> Vec<Vec<RecordBatch>> {
    let mut groups: Vec<Vec<RecordBatch>> = Vec::new();
    let mut filled = max_rows;
    for mut batch in batches {
        while batch.num_rows() > 0 {
            if filled == max_rows {
                groups.push(Vec::new());
                filled = 0;
            }
            let take = batch.num_rows().min(max_rows - filled);
            let group = groups.last_mut().expect("a group was started above");
            group.push(batch.slice(0, take));
            filled += take;
            batch = batch.slice(take, batch.num_rows() - take);
        }
    }
    groups
}

/// Write `batches` through `writer`'s file writer, encoding each row group's columns on up to `threads` threads:
/// the largest columns first, each taken by whichever thread is free (the calling thread works too). The column
/// chunks are then appended in schema order, so the file is the one `ArrowWriter` writes alone.
fn write_parallel(
    writer: ArrowWriter<File>,
    batches: Vec<RecordBatch>,
    target: &SchemaRef,
    max_rows: usize,
    threads: usize,
) -> Result<parquet::file::metadata::ParquetMetaData> {
    let (mut file_writer, factory) = writer.into_serialized_writer()?;
    for (g, group) in row_groups(batches, max_rows).iter().enumerate() {
        let writers = factory.create_column_writers(g)?;
        if writers.len() != target.fields().len() {
            return Err(Error::Iceberg("nested columns are not supported by the parallel writer".into()));
        }
        let size = |i: usize| group.iter().map(|b| b.column(i).get_array_memory_size()).sum::<usize>();
        let mut order: Vec<usize> = (0..writers.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(size(i)));
        let writers: Vec<Mutex<Option<ArrowColumnWriter>>> = writers.into_iter().map(|w| Mutex::new(Some(w))).collect();
        let chunks: Vec<Mutex<Option<Result<ArrowColumnChunk>>>> = (0..writers.len()).map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let work = || {
            while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                let mut w = writers[i].lock().expect("no worker panics holding it").take().expect("each column is taken once");
                let field = target.field(i);
                let encoded = group
                    .iter()
                    .try_for_each(|b| compute_leaves(field, b.column(i))?.iter().try_for_each(|leaf| w.write(leaf)))
                    .and_then(|()| w.close());
                *chunks[i].lock().expect("no worker panics holding it") = Some(encoded.map_err(Error::from));
            }
        };
        std::thread::scope(|scope| {
            for _ in 1..threads.min(order.len()) {
                scope.spawn(work);
            }
            work();
        });
        let mut row_group = file_writer.next_row_group()?;
        for chunk in chunks {
            let chunk = chunk.into_inner().expect("no worker panicked").expect("every column was encoded")?;
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
    }
    Ok(file_writer.close()?)
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
    fn row_groups_are_cut_like_the_arrow_writer() {
        let schema = Arc::new(ArrowSchema::new(vec![Field::new("x", DataType::Int32, false)]));
        let batch = |n: i32| RecordBatch::try_new(schema.clone(), vec![Arc::new(arrow_array::Int32Array::from_iter_values(0..n)) as ArrayRef]).unwrap();
        let groups = row_groups(vec![batch(5), batch(0), batch(7), batch(3)], 4);
        let sizes: Vec<Vec<usize>> = groups.iter().map(|g| g.iter().map(RecordBatch::num_rows).collect()).collect();
        assert_eq!(sizes, vec![vec![4], vec![1, 3], vec![4], vec![3]]);
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
