//! Conversions between Python values and what the core reads: input bytes borrowed without a copy, Python values
//! to JSON text and back (integers of any size exact), dates.

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMapping, PySequence, PyString, PyTuple};
use serde_json::Value;

use crate::errors::eventpipe_error;

/// The bytes of an input argument: `bytes`, `str`, or a read-only contiguous buffer (`memoryview`, an `mmap`
/// opened with `ACCESS_READ`), which is borrowed without a copy. Writable buffers are refused: the Rust core reads
/// them without the GIL, and another thread could change them meanwhile.
pub enum Input<'a> {
    Slice(&'a [u8]),
    Buffer(PyBuffer<u8>),
}

impl Input<'_> {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Input::Slice(s) => s,
            // SAFETY: the buffer is read-only, C-contiguous and held (so neither freed nor resized) while `self`
            // lives; `len_bytes` is its size and `buf_ptr` its start.
            Input::Buffer(b) => unsafe { std::slice::from_raw_parts(b.buf_ptr() as *const u8, b.len_bytes()) },
        }
    }
}

pub fn input_bytes<'a>(data: &'a Bound<'_, PyAny>) -> PyResult<Input<'a>> {
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
pub fn py_to_json(obj: &Bound<'_, PyAny>, out: &mut String, depth: usize) -> PyResult<()> {
    if depth > 256 {
        return Err(eventpipe_error("value nested more than 256 levels deep"));
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
            return Err(eventpipe_error(format!("{v} is not a JSON number")));
        }
        out.push_str(obj.repr()?.to_str()?);
    } else if let Ok(s) = obj.downcast::<PyString>() {
        out.push_str(&Value::String(s.to_str()?.to_owned()).to_string());
    } else if let Ok(d) = obj.downcast::<PyDict>() {
        out.push('{');
        for (i, (k, v)) in d.iter().enumerate() {
            push_key(&k, out, i)?;
            py_to_json(&v, out, depth + 1)?;
        }
        out.push('}');
    } else if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        out.push('[');
        for (i, v) in obj.try_iter()?.enumerate() {
            if i > 0 {
                out.push(',');
            }
            py_to_json(&v?, out, depth + 1)?;
        }
        out.push(']');
    } else if let Ok(m) = obj.downcast::<PyMapping>() {
        out.push('{');
        for (i, item) in m.items()?.try_iter()?.enumerate() {
            let item = item?;
            push_key(&item.get_item(0)?, out, i)?;
            py_to_json(&item.get_item(1)?, out, depth + 1)?;
        }
        out.push('}');
    } else {
        return Err(eventpipe_error(format!("a value of type {} is not JSON", obj.get_type().name()?)));
    }
    Ok(())
}

fn push_key(key: &Bound<'_, PyAny>, out: &mut String, i: usize) -> PyResult<()> {
    if i > 0 {
        out.push(',');
    }
    let Ok(k) = key.downcast::<PyString>() else {
        return Err(eventpipe_error(format!("object keys must be strings, got {}", key.get_type().name()?)));
    };
    out.push_str(&Value::String(k.to_str()?.to_owned()).to_string());
    out.push(':');
    Ok(())
}

/// JSON value -> Python value (integers of any size exact).
pub fn json_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
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

/// A sequence of mappings -> one JSON text per event.
pub fn events_to_json(events: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    let seq = events.downcast::<PySequence>().map_err(|_| PyTypeError::new_err("events must be a sequence of mappings"))?;
    let mut out = Vec::with_capacity(seq.len()?);
    for (i, e) in seq.try_iter()?.enumerate() {
        let e = e?;
        let mut text = String::new();
        py_to_json(&e, &mut text, 0).map_err(|err| eventpipe_error(format!("event {i}: {err}")))?;
        out.push(text);
    }
    Ok(out)
}

/// Rows of parsed JSON -> a list of dicts.
pub fn rows_to_py<'py>(py: Python<'py>, rows: Vec<serde_json::Map<String, Value>>) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for row in rows {
        list.append(json_to_py(py, &Value::Object(row))?)?;
    }
    Ok(list)
}

/// Days since 1970-01-01 -> datetime.date.
pub fn py_date<'py>(py: Python<'py>, days: i32) -> PyResult<Bound<'py, PyAny>> {
    py.import("datetime")?.getattr("date")?.call_method1("fromordinal", (719_163 + i64::from(days),))
}
