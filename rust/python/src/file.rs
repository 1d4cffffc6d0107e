//! `ndjson_file_to_parquet`: an NDJSON file to one Iceberg Parquet data file, chunk by chunk, without the GIL.

use eventpipe_core::iceberg_parquet::Codec;
use eventpipe_core::Format;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::batch::threads_or_default;
use crate::errors::{core, guard, without_gil};
use crate::iceberg::DataFileMeta;
use crate::schema::{schema_of, Schema};
use crate::violations::rejects_to_py;

/// What `ndjson_file_to_parquet` produced: the data file's metrics, rejects, duplicate count.
#[pyclass(module = "eventpipe_core", frozen)]
pub struct FileResult {
    #[pyo3(get)]
    data_file: Py<DataFileMeta>,
    #[pyo3(get)]
    rejects: Py<PyList>,
    #[pyo3(get)]
    duplicates: usize,
    #[pyo3(get)]
    received: usize,
}

#[pymethods]
impl FileResult {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "FileResult(records={}, rejects={}, duplicates={}, received={})",
            self.data_file.get().record_count(),
            self.rejects.bind(py).len(),
            self.duplicates,
            self.received
        )
    }
}

#[pyfunction]
#[pyo3(signature = (path, out_path, iceberg_schema, *, schema = None, job_id = None, include_raw = false, compression = "zstd", threads = None, chunk_bytes = eventpipe_core::stream::CHUNK_BYTES))]
#[allow(clippy::too_many_arguments)]
pub fn ndjson_file_to_parquet(
    py: Python<'_>,
    path: &str,
    out_path: &str,
    iceberg_schema: &str,
    schema: Option<&Bound<'_, Schema>>,
    job_id: Option<&str>,
    include_raw: bool,
    compression: &str,
    threads: Option<usize>,
    chunk_bytes: usize,
) -> PyResult<FileResult> {
    guard(|| {
        let threads = threads_or_default(threads)?;
        if chunk_bytes == 0 {
            return Err(PyValueError::new_err("chunk_bytes must be at least 1"));
        }
        let codec = core(Codec::from_name(compression))?;
        let schema = schema_of(schema);
        let out = without_gil(py, "streaming the file to Parquet", || {
            let opts = eventpipe_core::BatchOptions { format: Format::Ndjson, schema: &schema, job_id, include_raw };
            eventpipe_core::ndjson_file_to_parquet(path, out_path, opts, iceberg_schema, codec, threads, chunk_bytes)
        })?;
        Ok(FileResult {
            data_file: Py::new(py, DataFileMeta::from(out.data_file))?,
            rejects: rejects_to_py(py, &out.rejects)?,
            duplicates: out.duplicates,
            received: out.received,
        })
    })
}
