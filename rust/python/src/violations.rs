//! Per-event problems as Python objects: `Violation` (one broken rule) and `Reject` (one refused record).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::convert::json_to_py;
use crate::errors::ValidationFailed;

/// One broken rule of one event.
#[pyclass(module = "eventpipe_core", frozen, get_all)]
pub struct Violation {
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

pub fn violation_to_py(py: Python<'_>, v: &eventpipe_core::Violation) -> PyResult<Py<Violation>> {
    let value = match &v.value {
        Some(value) => json_to_py(py, value)?.unbind(),
        None => py.None(),
    };
    Py::new(py, Violation { index: v.index, field: v.field.clone(), rule: v.rule.to_string(), message: v.message.clone(), value })
}

/// `ValidationFailed(violations)`.
pub fn validation_failed(violations: Vec<Py<Violation>>) -> PyErr {
    ValidationFailed::new_err((violations,))
}

/// A record that failed parsing or validation.
#[pyclass(module = "eventpipe_core", frozen, get_all)]
pub struct Reject {
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

pub fn rejects_to_py(py: Python<'_>, rejects: &[eventpipe_core::Reject]) -> PyResult<Py<PyList>> {
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
