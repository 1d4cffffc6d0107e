//! The Python binding of eventpipe-core: thin wrappers, errors mapped to `eventpipe_core.exceptions`, panics
//! caught at the boundary, Arrow data handed over through the Arrow PyCapsule interface (no copy).
//!
//! One module per concern: `errors` (exceptions, panics), `convert` (Python values <-> bytes and JSON), `arrow`
//! (the PyCapsule hand-over), `schema`, `violations` (Violation, Reject), `rows` (the list-of-dicts API),
//! `batch` (`process_batch`), `consume` (`consume_batch`, `DedupeWindow`), `ingest` (`ingest_batch`, `put_records_body`), `iceberg` (Parquet data files), `file` (an NDJSON file streamed to a data file) and,
//! with the `testing` feature only, `testing` (functions for tests and benchmarks).

mod arrow;
mod batch;
mod consume;
mod convert;
mod errors;
mod file;
mod iceberg;
mod ingest;
mod rows;
mod schema;
#[cfg(feature = "testing")]
mod testing;
mod violations;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<schema::Schema>()?;
    m.add_class::<violations::Violation>()?;
    m.add_class::<violations::Reject>()?;
    m.add_class::<batch::BatchResult>()?;
    m.add_class::<ingest::IngestBatch>()?;
    m.add_class::<iceberg::DataFileMeta>()?;
    m.add_class::<file::FileResult>()?;
    m.add_class::<consume::ConsumeResult>()?;
    m.add_class::<consume::DedupeWindow>()?;
    m.add_function(wrap_pyfunction!(rows::parse_json, m)?)?;
    m.add_function(wrap_pyfunction!(rows::parse_csv, m)?)?;
    m.add_function(wrap_pyfunction!(rows::parse, m)?)?;
    m.add_function(wrap_pyfunction!(rows::validate_schema, m)?)?;
    m.add_function(wrap_pyfunction!(rows::validate_or_raise, m)?)?;
    m.add_function(wrap_pyfunction!(rows::transform_batch, m)?)?;
    m.add_function(wrap_pyfunction!(rows::deduplicate, m)?)?;
    m.add_function(wrap_pyfunction!(batch::process_batch, m)?)?;
    m.add_function(wrap_pyfunction!(ingest::ingest_batch, m)?)?;
    m.add_function(wrap_pyfunction!(consume::consume_batch, m)?)?;
    m.add_function(wrap_pyfunction!(consume::record_lines, m)?)?;
    m.add_function(wrap_pyfunction!(consume::record_job_id, m)?)?;
    m.add_function(wrap_pyfunction!(ingest::put_records_body, m)?)?;
    m.add_function(wrap_pyfunction!(iceberg::write_iceberg_parquet, m)?)?;
    m.add_function(wrap_pyfunction!(iceberg::write_iceberg_parquet_groups, m)?)?;
    m.add_function(wrap_pyfunction!(iceberg::read_iceberg_parquet, m)?)?;
    m.add_function(wrap_pyfunction!(file::ndjson_file_to_parquet, m)?)?;
    #[cfg(feature = "testing")]
    {
        m.add_function(wrap_pyfunction!(testing::_panic_for_tests, m)?)?;
        m.add_function(wrap_pyfunction!(testing::_stage_timings, m)?)?;
        m.add_function(wrap_pyfunction!(testing::_check_event_paths, m)?)?;
        m.add_function(wrap_pyfunction!(testing::pack_records, m)?)?;
    }
    Ok(())
}
