//! The Python binding of eventpipe-core: thin wrappers, errors mapped to `eventpipe_core.exceptions`, panics
//! caught at the boundary, Arrow data handed over through the Arrow PyCapsule interface (no copy).

use std::ffi::CString;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use arrow_array::ffi_stream::{RecordBatchStreamReader, FFI_ArrowArrayStream};
use arrow_array::{RecordBatch, RecordBatchIterator, RecordBatchReader};
use arrow_schema::SchemaRef;
use eventpipe_core::iceberg_parquet::{self, Codec};
use eventpipe_core::ingest;
use eventpipe_core::{Error, Format};
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBool, PyBytes, PyCapsule, PyDict, PyFloat, PyInt, PyList, PyMapping, PySequence, PyString, PyTuple};
use serde_json::Value;

const STREAM_CAPSULE: &std::ffi::CStr = c"arrow_array_stream";

// ------------------------------------------------------------------ errors

fn exception<'py>(py: Python<'py>, name: &str, args: impl pyo3::call::PyCallArgs<'py>) -> PyErr {
    let made = py
        .import("eventpipe_core.exceptions")
        .and_then(|m| m.getattr(name))
        .and_then(|cls| cls.call1(args));
    match made {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

fn eventpipe_error(py: Python<'_>, message: String) -> PyErr {
    exception(py, "EventpipeError", (message,))
}

fn to_py_err(py: Python<'_>, e: Error) -> PyErr {
    match e {
        Error::Parse { line, column, message } => exception(py, "ParseError", (message, line, column)),
        Error::Schema { rule, message } => exception(py, "SchemaError", (message, rule)),
        Error::UnsupportedFormat(format) => exception(py, "UnsupportedFormatError", (format,)),
        other => eventpipe_error(py, other.to_string()),
    }
}

/// Run `f`, turning a Rust panic into `EventpipeError` so that the interpreter survives it (Property 12).
fn guard<T>(py: Python<'_>, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(eventpipe_error(py, format!("internal error in the Rust core: {what}")))
        }
    }
}

// ------------------------------------------------------------------ conversions

/// The bytes of an input argument: `bytes`, `str`, or a read-only contiguous buffer (`memoryview`, an `mmap`
/// opened with `ACCESS_READ`), which is borrowed without a copy. Writable buffers are refused: the Rust core reads
/// them without the GIL, and another thread could change them meanwhile.
enum Input<'a> {
    Slice(&'a [u8]),
    Buffer(PyBuffer<u8>),
}

impl Input<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            Input::Slice(s) => s,
            // SAFETY: the buffer is read-only, C-contiguous and held (so neither freed nor resized) while `self`
            // lives; `len_bytes` is its size and `buf_ptr` its start.
            Input::Buffer(b) => unsafe { std::slice::from_raw_parts(b.buf_ptr() as *const u8, b.len_bytes()) },
        }
    }
}

fn input_bytes<'a>(data: &'a Bound<'_, PyAny>) -> PyResult<Input<'a>> {
    if let Ok(b) = data.downcast::<PyBytes>() {
        return Ok(Input::Slice(b.as_bytes()));
    }
    if let Ok(s) = data.downcast::<PyString>() {
        return Ok(Input::Slice(s.to_str()?.as_bytes()));
    }
    let kind = data.get_type().name()?;
    match PyBuffer::<u8>::get(data) {
        Ok(b) if b.readonly() && b.is_c_contiguous() => Ok(Input::Buffer(b)),
        Ok(_) => Err(PyTypeError::new_err(format!("expected bytes, str or a read-only contiguous buffer, got a writable or strided {kind}"))),
        Err(_) => Err(PyTypeError::new_err(format!("expected bytes, str or a read-only buffer, got {kind}"))),
    }
}

/// Python value -> JSON text, exactly (integers of any size keep their digits).
fn py_to_json(py: Python<'_>, obj: &Bound<'_, PyAny>, out: &mut String, depth: usize) -> PyResult<()> {
    if depth > 256 {
        return Err(eventpipe_error(py, "value nested more than 256 levels deep".into()));
    }
    if obj.is_none() {
        out.push_str("null");
    } else if let Ok(b) = obj.downcast::<PyBool>() {
        out.push_str(if b.is_true() { "true" } else { "false" });
    } else if obj.is_instance_of::<PyInt>() {
        out.push_str(obj.str()?.to_str()?);
    } else if let Ok(f) = obj.downcast::<PyFloat>() {
        let v = f.value();
        if !v.is_finite() {
            return Err(eventpipe_error(py, format!("{v} is not a JSON number")));
        }
        out.push_str(obj.repr()?.to_str()?);
    } else if let Ok(s) = obj.downcast::<PyString>() {
        out.push_str(&Value::String(s.to_str()?.to_owned()).to_string());
    } else if let Ok(d) = obj.downcast::<PyDict>() {
        out.push('{');
        for (i, (k, v)) in d.iter().enumerate() {
            push_key(py, &k, out, i)?;
            py_to_json(py, &v, out, depth + 1)?;
        }
        out.push('}');
    } else if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        out.push('[');
        for (i, v) in obj.try_iter()?.enumerate() {
            if i > 0 {
                out.push(',');
            }
            py_to_json(py, &v?, out, depth + 1)?;
        }
        out.push(']');
    } else if let Ok(m) = obj.downcast::<PyMapping>() {
        out.push('{');
        for (i, item) in m.items()?.try_iter()?.enumerate() {
            let item = item?;
            push_key(py, &item.get_item(0)?, out, i)?;
            py_to_json(py, &item.get_item(1)?, out, depth + 1)?;
        }
        out.push('}');
    } else {
        return Err(eventpipe_error(py, format!("a value of type {} is not JSON", obj.get_type().name()?)));
    }
    Ok(())
}

fn push_key(py: Python<'_>, key: &Bound<'_, PyAny>, out: &mut String, i: usize) -> PyResult<()> {
    if i > 0 {
        out.push(',');
    }
    let Ok(k) = key.downcast::<PyString>() else {
        return Err(eventpipe_error(py, format!("object keys must be strings, got {}", key.get_type().name()?)));
    };
    out.push_str(&Value::String(k.to_str()?.to_owned()).to_string());
    out.push(':');
    Ok(())
}

/// JSON value -> Python value (integers of any size exact).
fn json_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                let text = n.to_string();
                if text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
                    py.get_type::<PyInt>().call1((text,))?
                } else {
                    n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
                }
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let d = PyDict::new(py);
            for (k, item) in map {
                d.set_item(k, json_to_py(py, item)?)?;
            }
            d.into_any()
        }
    })
}

fn events_to_json(py: Python<'_>, events: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    let seq = events.downcast::<PySequence>().map_err(|_| PyTypeError::new_err("events must be a sequence of mappings"))?;
    let mut out = Vec::with_capacity(seq.len()?);
    for (i, e) in seq.try_iter()?.enumerate() {
        let e = e?;
        let mut text = String::new();
        py_to_json(py, &e, &mut text, 0).map_err(|err| eventpipe_error(py, format!("event {i}: {err}")))?;
        out.push(text);
    }
    Ok(out)
}

// ------------------------------------------------------------------ schema

/// A compiled pipeline schema (see `__init__.pyi` for the source form).
#[pyclass(module = "eventpipe_core", frozen)]
struct Schema {
    inner: Arc<eventpipe_core::Schema>,
}

#[pymethods]
impl Schema {
    #[new]
    fn new(py: Python<'_>, source: &Bound<'_, PyAny>) -> PyResult<Self> {
        guard(py, || {
            let text = if let Ok(s) = source.downcast::<PyString>() {
                s.to_str()?.to_owned()
            } else {
                let mut t = String::new();
                py_to_json(py, source, &mut t, 0).map_err(|e| exception(py, "SchemaError", (e.to_string(), "$")))?;
                t
            };
            let inner = eventpipe_core::Schema::from_json(&text).map_err(|e| to_py_err(py, e))?;
            Ok(Schema { inner: Arc::new(inner) })
        })
    }

    #[staticmethod]
    fn envelope() -> Self {
        Schema { inner: Arc::new(eventpipe_core::Schema::envelope()) }
    }

    #[getter]
    fn event_types(&self) -> Option<Vec<String>> {
        self.inner.event_types.clone()
    }

    #[getter]
    fn promoted(&self) -> Vec<(String, String)> {
        self.inner.promote.iter().map(|p| (p.column.clone(), p.ty.name().to_string())).collect()
    }

    fn to_json(&self) -> String {
        self.inner.to_json()
    }

    fn __repr__(&self) -> String {
        format!("Schema({})", self.inner.to_json())
    }
}

fn schema_of(schema: Option<&Bound<'_, Schema>>) -> Arc<eventpipe_core::Schema> {
    match schema {
        Some(s) => s.get().inner.clone(),
        None => Arc::new(eventpipe_core::Schema::envelope()),
    }
}

// ------------------------------------------------------------------ violations and rejects

/// One broken rule of one event.
#[pyclass(module = "eventpipe_core", frozen, get_all)]
struct Violation {
    index: usize,
    field: String,
    rule: String,
    message: String,
    value: PyObject,
}

#[pymethods]
impl Violation {
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("index", self.index)?;
        d.set_item("field", &self.field)?;
        d.set_item("rule", &self.rule)?;
        d.set_item("message", &self.message)?;
        d.set_item("value", self.value.bind(py))?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!("Violation(index={}, field={:?}, rule={:?}, message={:?})", self.index, self.field, self.rule, self.message)
    }
}

fn violation_to_py(py: Python<'_>, v: &eventpipe_core::Violation) -> PyResult<Py<Violation>> {
    let value = match &v.value {
        Some(value) => json_to_py(py, value)?.unbind(),
        None => py.None(),
    };
    Py::new(py, Violation { index: v.index, field: v.field.clone(), rule: v.rule.to_string(), message: v.message.clone(), value })
}

/// A record that failed parsing or validation.
#[pyclass(module = "eventpipe_core", frozen, get_all)]
struct Reject {
    line: usize,
    reason: String,
    violations: Py<PyList>,
    raw: String,
}

#[pymethods]
impl Reject {
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("line", self.line)?;
        d.set_item("reason", &self.reason)?;
        let vs = PyList::empty(py);
        for v in self.violations.bind(py).iter() {
            vs.append(v.call_method0("to_dict")?)?;
        }
        d.set_item("violations", vs)?;
        d.set_item("raw", &self.raw)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!("Reject(line={}, reason={:?})", self.line, self.reason)
    }
}

// ------------------------------------------------------------------ Arrow hand-over

fn export_stream<'py>(py: Python<'py>, schema: &SchemaRef, batches: &[RecordBatch]) -> PyResult<Bound<'py, PyCapsule>> {
    let reader = RecordBatchIterator::new(batches.iter().cloned().map(Ok).collect::<Vec<_>>(), schema.clone());
    let stream = FFI_ArrowArrayStream::new(Box::new(reader));
    PyCapsule::new(py, stream, Some(CString::from(STREAM_CAPSULE)))
}

fn export_reader<'py>(py: Python<'py>, reader: Box<dyn RecordBatchReader + Send>) -> PyResult<Bound<'py, PyCapsule>> {
    PyCapsule::new(py, FFI_ArrowArrayStream::new(reader), Some(CString::from(STREAM_CAPSULE)))
}

/// Read every batch of an object with `__arrow_c_stream__` (pyarrow.Table, BatchResult, ...), without a copy.
fn import_batches(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Vec<RecordBatch>> {
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
        .map_err(|e| eventpipe_error(py, format!("cannot import the Arrow stream: {e}")))?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| eventpipe_error(py, format!("cannot read the Arrow stream: {e}")))
}

fn pyarrow_table<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    py.import("pyarrow")?.call_method1("table", (obj,))
}

/// A holder of one Arrow stream, so that pyarrow can import it through `__arrow_c_stream__`.
#[pyclass(module = "eventpipe_core")]
struct StreamHolder {
    reader: std::sync::Mutex<Option<Box<dyn RecordBatchReader + Send>>>,
}

#[pymethods]
impl StreamHolder {
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(&mut self, py: Python<'py>, requested_schema: Option<PyObject>) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let taken = self.reader.lock().map(|mut r| r.take()).unwrap_or(None);
        let reader = taken.ok_or_else(|| eventpipe_error(py, "the Arrow stream was already consumed".into()))?;
        export_reader(py, reader)
    }
}

// ------------------------------------------------------------------ batch result

/// What `process_batch` produced: records (Arrow), rejects, duplicate count.
#[pyclass(module = "eventpipe_core", frozen)]
struct BatchResult {
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

/// `threads` of a call: None = the cores this process may use; at least 1.
fn threads_or_default(threads: Option<usize>) -> PyResult<usize> {
    match threads {
        None => Ok(eventpipe_core::available_threads()),
        Some(0) => Err(PyValueError::new_err("threads must be at least 1")),
        Some(n) => Ok(n),
    }
}

#[pyfunction]
#[pyo3(signature = (data, *, format = "ndjson", schema = None, job_id = None, include_raw = false, threads = None))]
fn process_batch(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    format: &str,
    schema: Option<&Bound<'_, Schema>>,
    job_id: Option<&str>,
    include_raw: bool,
    threads: Option<usize>,
) -> PyResult<BatchResult> {
    guard(py, || {
        let threads = threads_or_default(threads)?;
        let format = Format::from_name(format).map_err(|e| to_py_err(py, e))?;
        let schema = schema_of(schema);
        let input = input_bytes(data)?;
        let bytes = input.as_slice();
        let out = py
            .allow_threads(|| {
                catch_unwind(AssertUnwindSafe(|| {
                    eventpipe_core::process_batch_threads(
                        bytes,
                        eventpipe_core::BatchOptions { format, schema: &schema, job_id, include_raw },
                        threads,
                    )
                }))
            })
            .map_err(|_| eventpipe_error(py, "internal error in the Rust core while processing the batch".into()))?
            .map_err(|e| to_py_err(py, e))?;
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

// ------------------------------------------------------------------ row-level API

fn rows_to_py<'py>(py: Python<'py>, rows: Vec<serde_json::Map<String, Value>>) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for row in rows {
        list.append(json_to_py(py, &Value::Object(row))?)?;
    }
    Ok(list)
}

#[pyfunction]
fn parse_json<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
    guard(py, || {
        let rows = eventpipe_core::parse_json(input_bytes(data)?.as_slice()).map_err(|e| to_py_err(py, e))?;
        rows_to_py(py, rows)
    })
}

#[pyfunction]
fn parse_csv<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
    guard(py, || {
        let rows = eventpipe_core::parse_csv(input_bytes(data)?.as_slice()).map_err(|e| to_py_err(py, e))?;
        rows_to_py(py, rows)
    })
}

#[pyfunction]
fn parse<'py>(py: Python<'py>, data: &Bound<'py, PyAny>, format: &str) -> PyResult<Bound<'py, PyList>> {
    guard(py, || {
        let format = Format::from_name(format).map_err(|e| to_py_err(py, e))?;
        let rows = eventpipe_core::parse(input_bytes(data)?.as_slice(), format).map_err(|e| to_py_err(py, e))?;
        rows_to_py(py, rows)
    })
}

fn violations_of(py: Python<'_>, events: &Bound<'_, PyAny>, schema: Option<&Bound<'_, Schema>>) -> PyResult<Vec<Py<Violation>>> {
    let schema = schema_of(schema);
    let texts = events_to_json(py, events)?;
    let found = eventpipe_core::validate_all(texts.iter().map(String::as_str), &schema);
    found.iter().map(|v| violation_to_py(py, v)).collect()
}

#[pyfunction]
#[pyo3(signature = (events, schema = None))]
fn validate_schema(py: Python<'_>, events: &Bound<'_, PyAny>, schema: Option<&Bound<'_, Schema>>) -> PyResult<Vec<Py<Violation>>> {
    guard(py, || violations_of(py, events, schema))
}

fn validation_failed(py: Python<'_>, violations: Vec<Py<Violation>>) -> PyErr {
    exception(py, "ValidationFailed", (violations,))
}

#[pyfunction]
#[pyo3(signature = (events, schema = None))]
fn validate_or_raise(py: Python<'_>, events: &Bound<'_, PyAny>, schema: Option<&Bound<'_, Schema>>) -> PyResult<()> {
    guard(py, || {
        let violations = violations_of(py, events, schema)?;
        if violations.is_empty() {
            Ok(())
        } else {
            Err(validation_failed(py, violations))
        }
    })
}

/// Days since 1970-01-01 -> datetime.date.
fn py_date<'py>(py: Python<'py>, days: i32) -> PyResult<Bound<'py, PyAny>> {
    py.import("datetime")?.getattr("date")?.call_method1("fromordinal", (719_163 + i64::from(days),))
}

#[pyfunction]
#[pyo3(signature = (events, schema = None))]
fn transform_batch<'py>(py: Python<'py>, events: &Bound<'py, PyAny>, schema: Option<&Bound<'py, Schema>>) -> PyResult<Bound<'py, PyList>> {
    guard(py, || {
        let schema = schema_of(schema);
        let texts = events_to_json(py, events)?;
        let mut violations = Vec::new();
        let mut transformed = Vec::with_capacity(texts.len());
        for (i, t) in texts.iter().enumerate() {
            if let Some(e) = eventpipe_core::check_event(t, i, &schema, &mut violations) {
                transformed.push(e);
            }
        }
        if !violations.is_empty() {
            let vs = violations.iter().map(|v| violation_to_py(py, v)).collect::<PyResult<Vec<_>>>()?;
            return Err(validation_failed(py, vs));
        }
        let out = PyList::empty(py);
        for e in transformed {
            let d = PyDict::new(py);
            d.set_item("event_id", e.event_id.as_ref())?;
            d.set_item("event_type", e.event_type.as_ref())?;
            d.set_item("user_id", e.user_id.as_deref())?;
            d.set_item("session_id", e.session_id.as_deref())?;
            d.set_item("event_ts", e.event_ts)?;
            d.set_item("event_date", py_date(py, e.event_date)?)?;
            d.set_item("event_hour", e.event_hour)?;
            d.set_item("properties", e.properties.as_deref())?;
            d.set_item("schema_version", e.schema_version)?;
            for (p, v) in schema.promote.iter().zip(&e.promoted) {
                let value: PyObject = match v {
                    eventpipe_core::Promoted::Null => py.None(),
                    eventpipe_core::Promoted::Double(x) => x.into_pyobject(py)?.into_any().unbind(),
                    eventpipe_core::Promoted::Long(x) => x.into_pyobject(py)?.into_any().unbind(),
                    eventpipe_core::Promoted::Int(x) => x.into_pyobject(py)?.into_any().unbind(),
                    eventpipe_core::Promoted::Str(x) => PyString::new(py, x).into_any().unbind(),
                    eventpipe_core::Promoted::Bool(x) => PyBool::new(py, *x).to_owned().into_any().unbind(),
                };
                d.set_item(&p.column, value)?;
            }
            d.set_item("job_id", e.job_id.as_deref())?;
            out.append(d)?;
        }
        Ok(out)
    })
}

#[pyfunction]
fn deduplicate<'py>(py: Python<'py>, events: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
    guard(py, || {
        let seq = events.downcast::<PySequence>().map_err(|_| PyTypeError::new_err("events must be a sequence of mappings"))?;
        let items: Vec<Bound<'py, PyAny>> = seq.try_iter()?.collect::<PyResult<_>>()?;
        let mut ids: Vec<Option<String>> = Vec::with_capacity(items.len());
        for e in &items {
            let id = e.get_item("event_id").ok();
            ids.push(id.and_then(|v| v.downcast::<PyString>().ok().and_then(|s| s.to_str().ok().map(str::to_owned))));
        }
        let keep = eventpipe_core::dedupe::keep_indices(ids.iter().map(Option::as_deref));
        let out = PyList::empty(py);
        let dict_type = py.get_type::<PyDict>();
        for i in keep {
            out.append(dict_type.call1((&items[i],))?)?;
        }
        Ok(out)
    })
}

// ------------------------------------------------------------------ Iceberg Parquet

/// What an Iceberg manifest entry needs to know about a written data file.
#[pyclass(module = "eventpipe_core", frozen)]
struct DataFileMeta {
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
    fn column_sizes(&self) -> std::collections::BTreeMap<i32, i64> {
        self.inner.column_sizes.clone()
    }
    #[getter]
    fn value_counts(&self) -> std::collections::BTreeMap<i32, i64> {
        self.inner.value_counts.clone()
    }
    #[getter]
    fn null_value_counts(&self) -> std::collections::BTreeMap<i32, i64> {
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

fn bounds_dict<'py>(py: Python<'py>, m: &std::collections::BTreeMap<i32, Vec<u8>>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in m {
        d.set_item(k, PyBytes::new(py, v))?;
    }
    Ok(d)
}

#[pyfunction]
#[pyo3(signature = (records, path, iceberg_schema, compression = "zstd", *, threads = None))]
fn write_iceberg_parquet(
    py: Python<'_>,
    records: &Bound<'_, PyAny>,
    path: &str,
    iceberg_schema: &str,
    compression: &str,
    threads: Option<usize>,
) -> PyResult<DataFileMeta> {
    guard(py, || {
        let threads = threads_or_default(threads)?;
        let codec = Codec::from_name(compression).map_err(|e| to_py_err(py, e))?;
        let batches = import_batches(py, records)?;
        let meta = py
            .allow_threads(|| {
                catch_unwind(AssertUnwindSafe(|| {
                    iceberg_parquet::write_iceberg_parquet_threads(batches.into_iter().map(Ok), path, iceberg_schema, codec, threads)
                }))
            })
            .map_err(|_| eventpipe_error(py, "internal error in the Rust core while writing Parquet".into()))?
            .map_err(|e| to_py_err(py, e))?;
        Ok(DataFileMeta { inner: meta })
    })
}

#[pyfunction]
fn read_iceberg_parquet<'py>(py: Python<'py>, path: &str) -> PyResult<Bound<'py, PyAny>> {
    guard(py, || {
        let reader = iceberg_parquet::read_iceberg_parquet(path).map_err(|e| to_py_err(py, e))?;
        let holder = Bound::new(py, StreamHolder { reader: std::sync::Mutex::new(Some(Box::new(reader))) })?;
        pyarrow_table(py, holder.as_any())
    })
}

/// One packed Kinesis record for Python: (data, index of its first line, shard index, number of lines).
type PackedRecord<'py> = (Bound<'py, PyBytes>, usize, usize, usize);

/// Kinesis records from NDJSON lines (see `eventpipe_core::pack`): the lines of each shard, by the MD5 of their
/// partition keys against the open shards' starting hash keys, joined into records of at most `max_bytes`.
/// Returns one tuple per record: (data, index of its first line, shard index, number of lines).
#[pyfunction]
fn pack_records<'py>(
    py: Python<'py>,
    lines: Vec<Bound<'py, PyBytes>>,
    keys: Vec<Bound<'py, PyString>>,
    starts: Vec<u128>,
    max_bytes: usize,
) -> PyResult<Vec<PackedRecord<'py>>> {
    guard(py, || {
        if lines.len() != keys.len() {
            return Err(PyTypeError::new_err(format!(
                "pack_records: {} lines but {} partition keys", lines.len(), keys.len())));
        }
        let line_bytes: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        let key_strs: Vec<&str> = keys.iter().map(|k| k.to_str()).collect::<PyResult<_>>()?;
        let packs = eventpipe_core::pack::pack(&line_bytes, &key_strs, &starts, max_bytes);
        Ok(packs
            .iter()
            .map(|p| (PyBytes::new(py, &p.data(&line_bytes)), p.members[0], p.shard, p.members.len()))
            .collect())
    })
}

// ------------------------------------------------------------------ ingest

/// One Kinesis record for Python: (data, partition key, shard index or None, number of events).
type IngestRecord<'py> = (Bound<'py, PyBytes>, String, Option<usize>, usize);

/// What `ingest_batch` produced: Kinesis records ready to send, rejects, counts.
#[pyclass(module = "eventpipe_core", frozen, get_all)]
struct IngestBatch {
    records: Py<PyList>,
    accepted: usize,
    rejects: Py<PyList>,
    duplicates: usize,
    received: usize,
}

#[pymethods]
impl IngestBatch {
    fn __repr__(&self) -> String {
        Python::with_gil(|py| {
            format!(
                "IngestBatch(records={}, accepted={}, rejects={}, duplicates={}, received={})",
                self.records.bind(py).len(),
                self.accepted,
                self.rejects.bind(py).len(),
                self.duplicates,
                self.received
            )
        })
    }
}

fn rejects_to_py(py: Python<'_>, rejects: &[eventpipe_core::Reject]) -> PyResult<Py<PyList>> {
    let out = PyList::empty(py);
    for r in rejects {
        let vs = PyList::empty(py);
        for v in &r.violations {
            vs.append(violation_to_py(py, v)?)?;
        }
        out.append(Py::new(py, Reject { line: r.line, reason: r.reason.clone(), violations: vs.unbind(), raw: r.raw.clone() })?)?;
    }
    Ok(out.unbind())
}

/// The ingest service's path (see `eventpipe_core::ingest`): a request body to Kinesis records, each event
/// validated, deduplicated, written as compact JSON with `_job_id` first, keyed and, with `shard_starts`
/// and `pack_max_bytes`, packed per shard.
#[pyfunction]
#[pyo3(signature = (data, *, job_id, format = "ndjson", schema = None, partition_key_field = "user_id",
                    shard_starts = None, pack_max_bytes = 0, max_record_bytes = 1024 * 1024, max_events = 0))]
#[allow(clippy::too_many_arguments)]
fn ingest_batch(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    job_id: &str,
    format: &str,
    schema: Option<&Bound<'_, Schema>>,
    partition_key_field: &str,
    shard_starts: Option<Vec<u128>>,
    pack_max_bytes: usize,
    max_record_bytes: usize,
    max_events: usize,
) -> PyResult<IngestBatch> {
    guard(py, || {
        let format = Format::from_name(format).map_err(|e| to_py_err(py, e))?;
        let schema = schema_of(schema);
        let key_field = ingest::KeyField::resolve(partition_key_field, &schema).map_err(|e| to_py_err(py, e))?;
        let starts = shard_starts.unwrap_or_default();
        let opts = ingest::IngestOptions {
            format,
            schema: &schema,
            job_id,
            key_field,
            shard_starts: &starts,
            pack_max_bytes,
            max_record_bytes,
            max_events,
        };
        let input = input_bytes(data)?;
        let bytes = input.as_slice();
        let out = py
            .allow_threads(|| catch_unwind(AssertUnwindSafe(|| ingest::ingest_batch(bytes, &opts))))
            .map_err(|_| eventpipe_error(py, "internal error in the Rust core while ingesting the batch".into()))?
            .map_err(|e| to_py_err(py, e))?;
        let records = PyList::empty(py);
        for r in &out.records {
            let data = PyBytes::new_with(py, r.data_len, |buf| {
                out.write_data(r, buf);
                Ok(())
            })?;
            let record: IngestRecord<'_> = (data, r.key.clone(), r.shard, r.events());
            records.append(record)?;
        }
        Ok(IngestBatch {
            records: records.unbind(),
            accepted: out.accepted,
            rejects: rejects_to_py(py, &out.rejects)?,
            duplicates: out.duplicates,
            received: out.received,
        })
    })
}

/// The JSON body of a Kinesis PutRecords call for (data, partition key) pairs, and its SHA-256 in hex.
#[pyfunction]
fn put_records_body<'py>(
    py: Python<'py>,
    stream_name: &str,
    records: Vec<(Bound<'py, PyBytes>, Bound<'py, PyString>)>,
) -> PyResult<(Bound<'py, PyBytes>, String)> {
    guard(py, || {
        let pairs: Vec<(&[u8], &str)> =
            records.iter().map(|(d, k)| Ok((d.as_bytes(), k.to_str()?))).collect::<PyResult<_>>()?;
        // Written straight into the bytes object, not built and copied: the body is a request's largest buffer.
        let body = ingest::PutRecordsBody::new(stream_name, &pairs);
        let mut digest = String::new();
        let bytes = PyBytes::new_with(py, body.len(), |out| {
            digest = py.allow_threads(|| body.write(out));
            Ok(())
        })?;
        Ok((bytes, digest))
    })
}

/// Benchmark diagnostics: cumulative seconds of the stages of `process_batch` over NDJSON `data`.
#[pyfunction]
#[pyo3(signature = (data, schema = None))]
fn _stage_timings(py: Python<'_>, data: &Bound<'_, PyAny>, schema: Option<&Bound<'_, Schema>>) -> PyResult<Vec<(String, f64)>> {
    guard(py, || {
        let schema = schema_of(schema);
        let input = input_bytes(data)?;
        let bytes = input.as_slice();
        let stages = py
            .allow_threads(|| eventpipe_core::batch::stage_timings(bytes, &schema))
            .map_err(|e| to_py_err(py, e))?;
        Ok(stages.into_iter().map(|(n, s)| (n.to_string(), s)).collect())
    })
}

/// Panics on purpose: the only way to check from Python that a panic surfaces as EventpipeError (Property 12).
#[pyfunction]
fn _panic_for_tests(py: Python<'_>, message: &str) -> PyResult<()> {
    guard(py, || panic!("{message}"))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Schema>()?;
    m.add_class::<Violation>()?;
    m.add_class::<Reject>()?;
    m.add_class::<BatchResult>()?;
    m.add_class::<IngestBatch>()?;
    m.add_class::<DataFileMeta>()?;
    m.add_function(wrap_pyfunction!(parse_json, m)?)?;
    m.add_function(wrap_pyfunction!(parse_csv, m)?)?;
    m.add_function(wrap_pyfunction!(parse, m)?)?;
    m.add_function(wrap_pyfunction!(validate_schema, m)?)?;
    m.add_function(wrap_pyfunction!(validate_or_raise, m)?)?;
    m.add_function(wrap_pyfunction!(transform_batch, m)?)?;
    m.add_function(wrap_pyfunction!(deduplicate, m)?)?;
    m.add_function(wrap_pyfunction!(process_batch, m)?)?;
    m.add_function(wrap_pyfunction!(pack_records, m)?)?;
    m.add_function(wrap_pyfunction!(ingest_batch, m)?)?;
    m.add_function(wrap_pyfunction!(put_records_body, m)?)?;
    m.add_function(wrap_pyfunction!(write_iceberg_parquet, m)?)?;
    m.add_function(wrap_pyfunction!(read_iceberg_parquet, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_tests, m)?)?;
    m.add_function(wrap_pyfunction!(_stage_timings, m)?)?;
    Ok(())
}
