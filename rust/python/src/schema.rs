//! The compiled pipeline schema (`eventpipe_core.Schema`).

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::convert::py_to_json;
use crate::errors::{core, guard, SchemaError};

/// A compiled pipeline schema (see `__init__.pyi` for the source form).
#[pyclass(module = "eventpipe_core", frozen)]
pub struct Schema {
    inner: Arc<eventpipe_core::Schema>,
}

#[pymethods]
impl Schema {
    #[new]
    fn new(source: &Bound<'_, PyAny>) -> PyResult<Self> {
        guard(|| {
            let text = if let Ok(s) = source.downcast::<PyString>() {
                s.to_str()?.to_owned()
            } else {
                let mut t = String::new();
                py_to_json(source, &mut t, 0).map_err(|e| SchemaError::new_err((e.to_string(), "$")))?;
                t
            };
            let inner = core(eventpipe_core::Schema::from_json(&text))?;
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

/// The schema argument of a function, the envelope's when none is given.
pub fn schema_of(schema: Option<&Bound<'_, Schema>>) -> Arc<eventpipe_core::Schema> {
    match schema {
        Some(s) => s.get().inner.clone(),
        None => Arc::new(eventpipe_core::Schema::envelope()),
    }
}
