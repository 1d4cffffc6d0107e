//! eventpipe-core: parse, validate, transform and deduplicate events, build Arrow record batches, and write
//! Iceberg-ready Parquet data files. Pure Rust: the Python binding lives in the `eventpipe-core-python` crate.
//! The Parquet half (`iceberg_parquet`, `stream`) is the default feature `parquet`; without it (the fuzz crate)
//! the core does not compile parquet and its codecs.

pub mod batch;
pub mod consume;
pub mod dedupe;
mod envelope;
pub mod error;
#[cfg(feature = "parquet")]
pub mod iceberg_parquet;
pub mod ingest;
pub mod pack;
pub mod parse;
pub mod put_records;
pub mod schema;
#[cfg(feature = "parquet")]
pub mod stream;
pub mod transform;
pub mod validate;
pub mod window;

pub use batch::{available_threads, process_batch, process_batch_threads, records_schema, BatchOptions, BatchOutput, Reject};
pub use error::{Error, Result};
pub use parse::{parse, parse_csv, parse_json, parse_ndjson, Format};
pub use schema::Schema;
#[cfg(feature = "parquet")]
pub use stream::{ndjson_file_to_parquet, FileOutput};
pub use validate::{check_event, check_event_reference, validate_all, Event, Promoted, Violation};
