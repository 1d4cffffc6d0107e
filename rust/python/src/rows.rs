//! The row-level API: Python lists of dicts in and out (parse, validate, transform, deduplicate), for callers
//! that hold events as Python objects. Batches go through [`crate::batch`] and [`crate::ingest`] instead.

use eventpipe_core::Format;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PySequence, PyString};

use crate::convert::{events_to_json, input_bytes, py_date, rows_to_py};
use crate::errors::{core, guard};
use crate::schema::{schema_of, Schema};
use crate::violations::{validation_failed, violation_to_py, Violation};

#[pyfunction]
pub fn parse_json<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
    guard(|| rows_to_py(py, core(eventpipe_core::parse_json(input_bytes(data)?.as_slice()))?))
}

#[pyfunction]
pub fn parse_csv<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
    guard(|| rows_to_py(py, core(eventpipe_core::parse_csv(input_bytes(data)?.as_slice()))?))
}

#[pyfunction]
pub fn parse<'py>(py: Python<'py>, data: &Bound<'py, PyAny>, format: &str) -> PyResult<Bound<'py, PyList>> {
    guard(|| {
        let format = core(Format::from_name(format))?;
        rows_to_py(py, core(eventpipe_core::parse(input_bytes(data)?.as_slice(), format))?)
    })
}

fn violations_of(py: Python<'_>, events: &Bound<'_, PyAny>, schema: Option<&Bound<'_, Schema>>) -> PyResult<Vec<Py<Violation>>> {
    let schema = schema_of(schema);
    let texts = events_to_json(events)?;
    let found = eventpipe_core::validate_all(texts.iter().map(String::as_str), &schema);
    found.iter().map(|v| violation_to_py(py, v)).collect()
}

#[pyfunction]
#[pyo3(signature = (events, schema = None))]
pub fn validate_schema(py: Python<'_>, events: &Bound<'_, PyAny>, schema: Option<&Bound<'_, Schema>>) -> PyResult<Vec<Py<Violation>>> {
    guard(|| violations_of(py, events, schema))
}

#[pyfunction]
#[pyo3(signature = (events, schema = None))]
pub fn validate_or_raise(py: Python<'_>, events: &Bound<'_, PyAny>, schema: Option<&Bound<'_, Schema>>) -> PyResult<()> {
    guard(|| {
        let violations = violations_of(py, events, schema)?;
        if violations.is_empty() {
            Ok(())
        } else {
            Err(validation_failed(violations))
        }
    })
}

#[pyfunction]
#[pyo3(signature = (events, schema = None))]
pub fn transform_batch<'py>(py: Python<'py>, events: &Bound<'py, PyAny>, schema: Option<&Bound<'py, Schema>>) -> PyResult<Bound<'py, PyList>> {
    guard(|| {
        let schema = schema_of(schema);
        let texts = events_to_json(events)?;
        let mut violations = Vec::new();
        let mut transformed = Vec::with_capacity(texts.len());
        for (i, t) in texts.iter().enumerate() {
            if let Some(e) = eventpipe_core::check_event(t, i, &schema, &mut violations) {
                transformed.push(e);
            }
        }
        if !violations.is_empty() {
            let vs = violations.iter().map(|v| violation_to_py(py, v)).collect::<PyResult<Vec<_>>>()?;
            return Err(validation_failed(vs));
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
pub fn deduplicate<'py>(py: Python<'py>, events: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
    guard(|| {
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
