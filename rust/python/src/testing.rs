//! Functions for the tests and benchmarks only, compiled with the `testing` feature (scripts/build-core.sh builds
//! the test and bench wheel with it; the images' wheel is built without it, so production cannot call them).

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::convert::input_bytes;
use crate::errors::{core, guard};
use crate::schema::{schema_of, Schema};

/// Benchmark diagnostics: cumulative seconds of the stages of `process_batch` over NDJSON `data`.
#[pyfunction]
#[pyo3(signature = (data, schema = None))]
pub fn _stage_timings(py: Python<'_>, data: &Bound<'_, PyAny>, schema: Option<&Bound<'_, Schema>>) -> PyResult<Vec<(String, f64)>> {
    guard(|| {
        let schema = schema_of(schema);
        let input = input_bytes(data)?;
        let bytes = input.as_slice();
        let stages = core(py.allow_threads(|| eventpipe_core::batch::stage_timings(bytes, &schema)))?;
        Ok(stages.into_iter().map(|(n, s)| (n.to_string(), s)).collect())
    })
}

/// The fast envelope reader against the serde_json reference on one event text: `check_event`'s and
/// `check_event_reference`'s results (the event and every violation), each rendered with `{:?}`.
#[pyfunction]
#[pyo3(signature = (text, schema = None))]
pub fn _check_event_paths(text: &str, schema: Option<&Bound<'_, Schema>>) -> PyResult<(String, String)> {
    guard(|| {
        let schema = schema_of(schema);
        let run = |check: for<'a> fn(&'a str, usize, &eventpipe_core::Schema, &mut Vec<eventpipe_core::Violation>) -> Option<eventpipe_core::Event<'a>>| {
            let mut violations = Vec::new();
            let event = check(text, 0, &schema, &mut violations);
            format!("{event:?} {violations:?}")
        };
        Ok((run(eventpipe_core::check_event), run(eventpipe_core::check_event_reference)))
    })
}

/// Panics on purpose: the only way to check from Python that a panic surfaces as EventpipeError (Property 12).
#[pyfunction]
pub fn _panic_for_tests(message: &str) -> PyResult<()> {
    guard(|| panic!("{message}"))
}

/// One packed Kinesis record for Python: (data, index of its first line, shard index, number of lines).
type PackedRecord<'py> = (Bound<'py, PyBytes>, usize, usize, usize);

/// Kinesis records from NDJSON lines (see `eventpipe_core::pack`; ingest packs inside `ingest_batch`): the lines
/// of each shard, by the MD5 of their partition keys against the open shards' starting hash keys, joined into
/// records of at most `max_bytes`. Returns one tuple per record: (data, index of its first line, shard index,
/// number of lines).
#[pyfunction]
pub fn pack_records<'py>(
    py: Python<'py>,
    lines: Vec<Bound<'py, PyBytes>>,
    keys: Vec<Bound<'py, PyString>>,
    starts: Vec<u128>,
    max_bytes: usize,
) -> PyResult<Vec<PackedRecord<'py>>> {
    guard(|| {
        if lines.len() != keys.len() {
            return Err(PyTypeError::new_err(format!("pack_records: {} lines but {} partition keys", lines.len(), keys.len())));
        }
        let line_bytes: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        let key_strs: Vec<&str> = keys.iter().map(|k| k.to_str()).collect::<PyResult<_>>()?;
        let packs = eventpipe_core::pack::pack(&line_bytes, &key_strs, &starts, max_bytes);
        Ok(packs.iter().map(|p| (PyBytes::new(py, &p.data(&line_bytes)), p.members[0], p.shard, p.members.len())).collect())
    })
}
