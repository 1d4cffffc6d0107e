//! Iceberg data files: Arrow records to a Parquet file with the Iceberg field ids and the statistics a manifest
//! entry needs (`write_iceberg_parquet`), and back (`read_iceberg_parquet`).

use std::collections::BTreeMap;

use eventpipe_core::iceberg_parquet::{self, Codec};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::arrow::{import_batches, pyarrow_table, StreamHolder};
use crate::errors::{core, guard, without_gil};

/// What an Iceberg manifest entry needs to know about a written data file.
#[pyclass(module = "eventpipe_core", frozen)]
pub struct DataFileMeta {
    inner: iceberg_parquet::DataFileMeta,
}

#[pymethods]
impl DataFileMeta {
    #[getter]
    fn path(&self) -> &str {
        &self.inner.path
    }
    #[getter]
    fn record_count(&self) -> i64 {
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
#[pyo3(signature = (records, path, iceberg_schema, compression = "zstd"))]
pub fn write_iceberg_parquet(
    py: Python<'_>,
    records: &Bound<'_, PyAny>,
    path: &str,
    iceberg_schema: &str,
    compression: &str,
) -> PyResult<DataFileMeta> {
    guard(|| {
        let codec = core(Codec::from_name(compression))?;
        let batches = import_batches(py, records)?;
        let meta = without_gil(py, "writing Parquet", || {
            iceberg_parquet::write_iceberg_parquet(batches.into_iter().map(Ok), path, iceberg_schema, codec)
        })?;
        Ok(DataFileMeta { inner: meta })
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
