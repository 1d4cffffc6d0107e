//! Arrow data across the boundary through the Arrow PyCapsule interface (`__arrow_c_stream__`), without a copy.

use std::ffi::CString;

use arrow_array::ffi_stream::{RecordBatchStreamReader, FFI_ArrowArrayStream};
use arrow_array::{RecordBatch, RecordBatchIterator, RecordBatchReader};
use arrow_schema::SchemaRef;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use crate::errors::eventpipe_error;

const STREAM_CAPSULE: &std::ffi::CStr = c"arrow_array_stream";

/// A capsule holding a stream over `batches` (which share their buffers with the caller's).
pub fn export_stream<'py>(py: Python<'py>, schema: &SchemaRef, batches: &[RecordBatch]) -> PyResult<Bound<'py, PyCapsule>> {
    let reader = RecordBatchIterator::new(batches.iter().cloned().map(Ok).collect::<Vec<_>>(), schema.clone());
    export_reader(py, Box::new(reader))
}

fn export_reader<'py>(py: Python<'py>, reader: Box<dyn RecordBatchReader + Send>) -> PyResult<Bound<'py, PyCapsule>> {
    PyCapsule::new(py, FFI_ArrowArrayStream::new(reader), Some(CString::from(STREAM_CAPSULE)))
}

/// Read every batch of an object with `__arrow_c_stream__` (pyarrow.Table, BatchResult, ...), without a copy.
pub fn import_batches(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Vec<RecordBatch>> {
    if !obj.hasattr("__arrow_c_stream__")? {
        return Err(PyTypeError::new_err(format!(
            "records must support the Arrow PyCapsule interface (__arrow_c_stream__), got {}",
            obj.get_type().name()?
        )));
    }
    let capsule = obj.call_method1("__arrow_c_stream__", (py.None(),))?;
    let capsule = capsule.downcast::<PyCapsule>()?;
    let name = capsule.name()?.map(|n| n.to_owned());
    if name.as_deref() != Some(STREAM_CAPSULE) {
        return Err(PyTypeError::new_err("__arrow_c_stream__ did not return an arrow_array_stream capsule"));
    }
    // SAFETY: the capsule holds an FFI_ArrowArrayStream (checked by name); from_raw moves it out and leaves a
    // released stream behind, which the capsule's own destructor then ignores.
    let reader = unsafe { RecordBatchStreamReader::from_raw(capsule.pointer() as *mut FFI_ArrowArrayStream) }
        .map_err(|e| eventpipe_error(format!("cannot import the Arrow stream: {e}")))?;
    reader.collect::<Result<Vec<_>, _>>().map_err(|e| eventpipe_error(format!("cannot read the Arrow stream: {e}")))
}

/// `pyarrow.table(obj)`: imports through `__arrow_c_stream__`.
pub fn pyarrow_table<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    py.import("pyarrow")?.call_method1("table", (obj,))
}

/// A holder of one Arrow stream, so that pyarrow can import it through `__arrow_c_stream__`.
#[pyclass(module = "eventpipe_core")]
pub struct StreamHolder {
    reader: std::sync::Mutex<Option<Box<dyn RecordBatchReader + Send>>>,
}

impl StreamHolder {
    pub fn new(reader: Box<dyn RecordBatchReader + Send>) -> Self {
        StreamHolder { reader: std::sync::Mutex::new(Some(reader)) }
    }
}

#[pymethods]
impl StreamHolder {
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(&mut self, py: Python<'py>, requested_schema: Option<PyObject>) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let taken = self.reader.lock().map(|mut r| r.take()).unwrap_or(None);
        let reader = taken.ok_or_else(|| eventpipe_error("the Arrow stream was already consumed"))?;
        export_reader(py, reader)
    }
}
