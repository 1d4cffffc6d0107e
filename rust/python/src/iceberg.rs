//! Iceberg data files: Arrow records to a Parquet file with the Iceberg field ids and the statistics a manifest
//! entry needs (`write_iceberg_parquet`), and back (`read_iceberg_parquet`).

use std::collections::BTreeMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, UInt32Type};
use arrow_array::Array;
use eventpipe_core::iceberg_parquet::{self, Codec};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::arrow::{import_batches, pyarrow_table, StreamHolder};
use crate::batch::threads_or_default;
use crate::errors::{core, eventpipe_error, guard, without_gil};

/// What an Iceberg manifest entry needs to know about a written data file.
#[pyclass(module = "eventpipe_core", frozen)]
pub struct DataFileMeta {
    inner: iceberg_parquet::DataFileMeta,
}

impl From<iceberg_parquet::DataFileMeta> for DataFileMeta {
    fn from(inner: iceberg_parquet::DataFileMeta) -> Self {
        DataFileMeta { inner }
    }
}

#[pymethods]
impl DataFileMeta {
    #[getter]
    fn path(&self) -> &str {
        &self.inner.path
    }
    #[getter]
    pub(crate) fn record_count(&self) -> i64 {
        self.inner.record_count
    }
    #[getter]
    fn file_size_in_bytes(&self) -> i64 {
        self.inner.file_size_in_bytes
    }
    #[getter]
    fn column_sizes(&self) -> BTreeMap<i32, i64> {
        self.inner.column_sizes.clone()
    }
    #[getter]
    fn value_counts(&self) -> BTreeMap<i32, i64> {
        self.inner.value_counts.clone()
    }
    #[getter]
    fn null_value_counts(&self) -> BTreeMap<i32, i64> {
        self.inner.null_value_counts.clone()
    }
    #[getter]
    fn lower_bounds<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        bounds_dict(py, &self.inner.lower_bounds)
    }
    #[getter]
    fn upper_bounds<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        bounds_dict(py, &self.inner.upper_bounds)
    }
    #[getter]
    fn split_offsets(&self) -> Vec<i64> {
        self.inner.split_offsets.clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "DataFileMeta(path={:?}, record_count={}, file_size_in_bytes={})",
            self.inner.path, self.inner.record_count, self.inner.file_size_in_bytes
        )
    }
}

fn bounds_dict<'py>(py: Python<'py>, m: &BTreeMap<i32, Vec<u8>>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in m {
        d.set_item(k, PyBytes::new(py, v))?;
    }
    Ok(d)
}

#[pyfunction]
#[pyo3(signature = (records, path, iceberg_schema, compression = "zstd", *, threads = None))]
pub fn write_iceberg_parquet(
    py: Python<'_>,
    records: &Bound<'_, PyAny>,
    path: &str,
    iceberg_schema: &str,
    compression: &str,
    threads: Option<usize>,
) -> PyResult<DataFileMeta> {
    guard(|| {
        let threads = threads_or_default(threads)?;
        let codec = core(Codec::from_name(compression))?;
        let batches = import_batches(py, records)?;
        let meta = without_gil(py, "writing Parquet", || {
            iceberg_parquet::write_iceberg_parquet_threads(batches.into_iter().map(Ok), path, iceberg_schema, codec, threads)
        })?;
        Ok(DataFileMeta { inner: meta })
    })
}

/// One data file per group of rows: `groups` (an Arrow table or stream of one int32/uint32 column, one value per
/// row of `records`) says which of `paths` each row goes to; returns the files' metadata in the order of `paths`.
#[pyfunction]
#[pyo3(signature = (records, groups, paths, iceberg_schema, compression = "zstd", *, threads = None))]
pub fn write_iceberg_parquet_groups(
    py: Python<'_>,
    records: &Bound<'_, PyAny>,
    groups: &Bound<'_, PyAny>,
    paths: Vec<String>,
    iceberg_schema: &str,
    compression: &str,
    threads: Option<usize>,
) -> PyResult<Vec<DataFileMeta>> {
    guard(|| {
        let threads = threads_or_default(threads)?;
        let codec = core(Codec::from_name(compression))?;
        let batches = import_batches(py, records)?;
        let mut numbers: Vec<u32> = Vec::new();
        for batch in import_batches(py, groups)? {
            if batch.num_columns() != 1 {
                return Err(eventpipe_error("groups must have exactly one column"));
            }
            let column = batch.column(0);
            if column.null_count() > 0 {
                return Err(eventpipe_error("groups must not hold nulls"));
            }
            if let Some(a) = column.as_primitive_opt::<UInt32Type>() {
                numbers.extend(a.values().iter().copied());
            } else if let Some(a) = column.as_primitive_opt::<Int32Type>() {
                for &g in a.values() {
                    numbers.push(u32::try_from(g).map_err(|_| eventpipe_error(format!("negative group {g}")))?);
                }
            } else {
                return Err(eventpipe_error(format!("groups must be int32 or uint32, got {}", column.data_type())));
            }
        }
        let metas = without_gil(py, "writing Parquet", || {
            iceberg_parquet::write_iceberg_parquet_groups(&batches, &numbers, &paths, iceberg_schema, codec, threads)
        })?;
        Ok(metas.into_iter().map(DataFileMeta::from).collect())
    })
}

#[pyfunction]
pub fn read_iceberg_parquet<'py>(py: Python<'py>, path: &str) -> PyResult<Bound<'py, PyAny>> {
    guard(|| {
        let reader = core(iceberg_parquet::read_iceberg_parquet(path))?;
        let holder = Bound::new(py, StreamHolder::new(Box::new(reader)))?;
        pyarrow_table(py, holder.as_any())
    })
}
