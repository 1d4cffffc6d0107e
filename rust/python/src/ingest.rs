//! The ingest service's calls: a request body to Kinesis records (`ingest_batch`) and the PutRecords request
//! body with its SigV4 payload hash (`put_records_body`).

use eventpipe_core::ingest;
use eventpipe_core::put_records::PutRecordsBody;
use eventpipe_core::Format;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};

use crate::convert::input_bytes;
use crate::errors::{core, guard, without_gil};
use crate::schema::{schema_of, Schema};
use crate::violations::rejects_to_py;

/// One Kinesis record for Python: (data, partition key, shard index or None, number of events).
type IngestRecord<'py> = (Bound<'py, PyBytes>, String, Option<usize>, usize);

/// What `ingest_batch` produced: Kinesis records ready to send, rejects, counts.
#[pyclass(module = "eventpipe_core", frozen, get_all)]
pub struct IngestBatch {
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

/// The ingest service's path (see `eventpipe_core::ingest`): a request body to Kinesis records, each event
/// validated, deduplicated, written as compact JSON with `_job_id` first, keyed and, with `shard_starts`
/// and `pack_max_bytes`, packed per shard.
#[pyfunction]
#[pyo3(signature = (data, *, job_id, format = "ndjson", schema = None, partition_key_field = "user_id",
                    shard_starts = None, pack_max_bytes = 0, max_record_bytes = 1024 * 1024, max_events = 0))]
#[allow(clippy::too_many_arguments)]
pub fn ingest_batch(
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
    guard(|| {
        let format = core(Format::from_name(format))?;
        let schema = schema_of(schema);
        let key_field = core(ingest::KeyField::resolve(partition_key_field, &schema))?;
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
        let out = without_gil(py, "ingesting the batch", || ingest::ingest_batch(bytes, &opts))?;
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
pub fn put_records_body<'py>(
    py: Python<'py>,
    stream_name: &str,
    records: Vec<(Bound<'py, PyBytes>, Bound<'py, PyString>)>,
) -> PyResult<(Bound<'py, PyBytes>, String)> {
    guard(|| {
        let pairs: Vec<(&[u8], &str)> =
            records.iter().map(|(d, k)| Ok((d.as_bytes(), k.to_str()?))).collect::<PyResult<_>>()?;
        // Written straight into the bytes object, not built and copied: the body is a request's largest buffer.
        let body = PutRecordsBody::new(stream_name, &pairs);
        let mut digest = String::new();
        let bytes = PyBytes::new_with(py, body.len(), |out| {
            digest = py.allow_threads(|| body.write(out));
            Ok(())
        })?;
        Ok((bytes, digest))
    })
}
