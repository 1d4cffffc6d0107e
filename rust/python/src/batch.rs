//! `process_batch`: a whole input to Arrow record batches, rejects and counts, in one call without the GIL.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use eventpipe_core::Format;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyCapsule, PyList};

use crate::arrow::{export_stream, pyarrow_table};
use crate::convert::input_bytes;
use crate::errors::{core, guard, without_gil};
use crate::schema::{schema_of, Schema};
use crate::violations::rejects_to_py;

/// What `process_batch` produced: records (Arrow), rejects, duplicate count.
#[pyclass(module = "eventpipe_core", frozen)]
pub struct BatchResult {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    table: GILOnceCell<PyObject>,
    #[pyo3(get)]
    rejects: Py<PyList>,
    #[pyo3(get)]
    duplicates: usize,
    #[pyo3(get)]
    received: usize,
}

#[pymethods]
impl BatchResult {
    /// The records as a pyarrow.Table (built once, sharing the Rust buffers).
    #[getter]
    fn records(slf: &Bound<'_, Self>) -> PyResult<PyObject> {
        let py = slf.py();
        let this = slf.get();
        this.table
            .get_or_try_init(py, || pyarrow_table(py, slf.as_any()).map(Bound::unbind))
            .map(|t| t.clone_ref(py))
    }

    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(&self, py: Python<'py>, requested_schema: Option<PyObject>) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        export_stream(py, &self.schema, &self.batches)
    }

    fn __repr__(&self) -> String {
        format!(
            "BatchResult(records={}, rejects={}, duplicates={}, received={})",
            self.batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
            Python::with_gil(|py| self.rejects.bind(py).len()),
            self.duplicates,
            self.received
        )
    }
}

#[pyfunction]
#[pyo3(signature = (data, *, format = "ndjson", schema = None, job_id = None, include_raw = false))]
pub fn process_batch(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    format: &str,
    schema: Option<&Bound<'_, Schema>>,
    job_id: Option<&str>,
    include_raw: bool,
) -> PyResult<BatchResult> {
    guard(|| {
        let format = core(Format::from_name(format))?;
        let schema = schema_of(schema);
        let input = input_bytes(data)?;
        let bytes = input.as_slice();
        let out = without_gil(py, "processing the batch", || {
            eventpipe_core::process_batch(bytes, eventpipe_core::BatchOptions { format, schema: &schema, job_id, include_raw })
        })?;
        Ok(BatchResult {
            schema: out.schema,
            batches: out.records,
            table: GILOnceCell::new(),
            rejects: rejects_to_py(py, &out.rejects)?,
            duplicates: out.duplicates,
            received: out.received,
        })
    })
}
