//! The consumer's call: one shard's Kinesis records to raw_events rows with lineage, rejected rows and job
//! counts (`consume_batch`), against the shard's `DedupeWindow`, in one crossing per batch.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use eventpipe_core::consume::{self, Reasons, StreamRecord};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBytes, PyCapsule, PyDict, PyList, PyString};

use crate::arrow::{export_stream, pyarrow_table};
use crate::errors::{guard, without_gil};
use crate::schema::{schema_of, Schema};
use crate::violations::violation_to_py;

/// The event ids kept last on one shard (see `eventpipe_core::consume::DedupeWindow`).
#[pyclass(module = "eventpipe_core")]
pub struct DedupeWindow {
    inner: consume::DedupeWindow,
}

#[pymethods]
impl DedupeWindow {
    #[new]
    fn new(capacity: i64) -> Self {
        DedupeWindow { inner: consume::DedupeWindow::new(usize::try_from(capacity).unwrap_or(0)) }
    }

    #[getter]
    fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    fn add_all(&mut self, event_ids: Vec<String>) {
        self.inner.add_all(event_ids.iter().map(String::as_str));
    }

    fn unseen(&self, event_ids: Vec<String>) -> Vec<bool> {
        event_ids.iter().map(|id| !self.inner.contains(id)).collect()
    }

    fn clear(&mut self) {
        self.inner.clear();
    }

    fn __contains__(&self, event_id: &str) -> bool {
        self.inner.contains(event_id)
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        format!("DedupeWindow(capacity={}, len={})", self.inner.capacity(), self.inner.len())
    }
}

/// What `consume_batch` produced (see `__init__.pyi`).
#[pyclass(module = "eventpipe_core", frozen)]
pub struct ConsumeResult {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    table: GILOnceCell<PyObject>,
    #[pyo3(get)]
    parsed: bool,
    #[pyo3(get)]
    rejects: Py<PyList>,
    #[pyo3(get)]
    duplicates: usize,
    #[pyo3(get)]
    received: usize,
    #[pyo3(get)]
    events: usize,
    #[pyo3(get)]
    bytes_read: usize,
    #[pyo3(get)]
    job_events: Vec<(usize, String, usize)>,
}

#[pymethods]
impl ConsumeResult {
    /// The rows as a pyarrow.Table (built once, sharing the Rust buffers).
    #[getter]
    fn records(slf: &Bound<'_, Self>) -> PyResult<PyObject> {
        let py = slf.py();
        slf.get().table.get_or_try_init(py, || pyarrow_table(py, slf.as_any()).map(Bound::unbind)).map(|t| t.clone_ref(py))
    }

    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(&self, py: Python<'py>, requested_schema: Option<PyObject>) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        export_stream(py, &self.schema, &self.batches)
    }

    fn __repr__(&self) -> String {
        format!(
            "ConsumeResult(records={}, rejects={}, duplicates={}, received={}, events={})",
            self.batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
            Python::with_gil(|py| self.rejects.bind(py).len()),
            self.duplicates,
            self.received,
            self.events
        )
    }
}

/// One rejected row for Python: (record index, source, raw, reasons, line, job id).
type RejectRow<'py> = (usize, &'static str, String, Bound<'py, PyList>, Option<i64>, Option<String>);

fn reasons_to_py<'py>(py: Python<'py>, reasons: &Reasons) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    match reasons {
        Reasons::Violations(vs) => {
            for v in vs {
                list.append(violation_to_py(py, v)?.bind(py).call_method0("to_dict")?)?;
            }
        }
        Reasons::Refused { field, rule, message } => {
            let d = PyDict::new(py);
            d.set_item("field", field)?;
            d.set_item("rule", rule)?;
            d.set_item("message", message)?;
            list.append(d)?;
        }
        // Python's json keeps the members in the order the record has them, as the reasons were written.
        Reasons::Ingest(text) => return Ok(py.import("json")?.call_method1("loads", (text,))?.downcast_into::<PyList>()?),
    }
    Ok(list)
}

/// The consumer's path (see `eventpipe_core::consume`): one shard's records (data, sequence number, arrival in
/// UTC microseconds, in stream order) to raw_events rows with lineage, rejected rows and job counts. `window`
/// learns the kept event ids when the call succeeds.
#[pyfunction]
#[pyo3(signature = (data, sequence_numbers, arrival_us, *, shard_id, window, schema = None))]
pub fn consume_batch(
    py: Python<'_>,
    data: Vec<Bound<'_, PyBytes>>,
    sequence_numbers: Vec<Bound<'_, PyString>>,
    arrival_us: Vec<i64>,
    shard_id: &str,
    window: &Bound<'_, DedupeWindow>,
    schema: Option<&Bound<'_, Schema>>,
) -> PyResult<ConsumeResult> {
    guard(|| {
        if data.len() != sequence_numbers.len() || data.len() != arrival_us.len() {
            return Err(PyTypeError::new_err(format!(
                "consume_batch: {} records, {} sequence numbers, {} arrival times",
                data.len(),
                sequence_numbers.len(),
                arrival_us.len()
            )));
        }
        let schema = schema_of(schema);
        let sequences: Vec<&str> = sequence_numbers.iter().map(|s| s.to_str()).collect::<PyResult<_>>()?;
        let records: Vec<StreamRecord<'_>> = data
            .iter()
            .zip(&sequences)
            .zip(&arrival_us)
            .map(|((d, &sequence_number), &arrival_us)| StreamRecord { data: d.as_bytes(), sequence_number, arrival_us })
            .collect();
        let mut window = window.try_borrow_mut()?;
        let inner = &mut window.inner;
        let out = without_gil(py, "consuming the batch", || consume::consume_batch(&records, shard_id, &schema, inner))?;
        let rejects = PyList::empty(py);
        for r in &out.rejects {
            let row: RejectRow<'_> = (r.record, r.source.name(), r.raw.clone(), reasons_to_py(py, &r.reasons)?, r.line, r.job_id.clone());
            rejects.append(row)?;
        }
        Ok(ConsumeResult {
            schema: out.schema,
            batches: out.records,
            table: GILOnceCell::new(),
            parsed: out.parsed,
            rejects: rejects.unbind(),
            duplicates: out.duplicates,
            received: out.received,
            events: out.events,
            bytes_read: out.bytes_read,
            job_events: out.job_events,
        })
    })
}

/// The lines of a packed record, or None when `data` is not one (see `eventpipe_core::consume::pack_lines`).
#[pyfunction]
pub fn record_lines<'py>(py: Python<'py>, data: &[u8]) -> Option<Vec<Bound<'py, PyBytes>>> {
    consume::pack_lines(data).map(|lines| lines.into_iter().map(|line| PyBytes::new(py, line)).collect())
}

/// The job id an event record carries as ingest publishes it (`"_job_id"` first), from its first bytes.
#[pyfunction]
pub fn record_job_id(data: &[u8]) -> Option<String> {
    consume::job_id_from_prefix(data).map(str::to_string)
}
