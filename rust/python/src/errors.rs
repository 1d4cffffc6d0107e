//! Errors at the boundary: the exception classes of `eventpipe_core.exceptions` (defined in Python, where their
//! constructors and `ValidationFailed.errors()` live), one `From<CoreError> for PyErr` mapping every core error to
//! one of them, and `guard`, which turns a Rust panic into `EventpipeError` so that the interpreter survives it.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::prelude::*;

// The classes are Python's (exceptions.py: messages built from their fields, `errors()`, `json()`), so the binding
// imports them (`import_exception!`) instead of defining look-alikes (`create_exception!`).
pyo3::import_exception!(eventpipe_core.exceptions, EventpipeError);
pyo3::import_exception!(eventpipe_core.exceptions, ParseError);
pyo3::import_exception!(eventpipe_core.exceptions, SchemaError);
pyo3::import_exception!(eventpipe_core.exceptions, UnsupportedFormatError);
pyo3::import_exception!(eventpipe_core.exceptions, ValidationFailed);

/// A core error on its way to Python (a local type: the orphan rule forbids `From<eventpipe_core::Error>` here).
pub struct CoreError(pub eventpipe_core::Error);

impl From<eventpipe_core::Error> for CoreError {
    fn from(e: eventpipe_core::Error) -> Self {
        CoreError(e)
    }
}

impl From<CoreError> for PyErr {
    fn from(CoreError(e): CoreError) -> Self {
        use eventpipe_core::Error;
        match e {
            Error::Parse { line, column, message } => ParseError::new_err((message, line, column)),
            Error::Schema { rule, message } => SchemaError::new_err((message, rule)),
            Error::UnsupportedFormat(format) => UnsupportedFormatError::new_err((format,)),
            other => EventpipeError::new_err((other.to_string(),)),
        }
    }
}

/// The result of a core call, as Python sees it.
pub fn core<T>(r: eventpipe_core::Result<T>) -> PyResult<T> {
    r.map_err(|e| CoreError(e).into())
}

/// `EventpipeError(message)`.
pub fn eventpipe_error(message: impl Into<String>) -> PyErr {
    EventpipeError::new_err((message.into(),))
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

/// Run `f`, turning a Rust panic into `EventpipeError` so that the interpreter survives it (Property 12).
pub fn guard<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => Err(eventpipe_error(format!("internal error in the Rust core: {}", panic_message(&*payload)))),
    }
}

/// Run the core's `f` without the GIL, a panic becoming `EventpipeError` "internal error ... while `doing`".
pub fn without_gil<T: Send>(
    py: Python<'_>,
    doing: &str,
    f: impl FnOnce() -> eventpipe_core::Result<T> + Send,
) -> PyResult<T> {
    let out = py
        .allow_threads(|| catch_unwind(AssertUnwindSafe(f)))
        .map_err(|_| eventpipe_error(format!("internal error in the Rust core while {doing}")))?;
    core(out)
}
