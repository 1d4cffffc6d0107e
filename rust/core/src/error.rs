//! The one error type of the core. Each variant maps to one Python exception of the binding.

use thiserror::Error;

/// Every failure the core reports. Per-event problems are not errors: they become [`crate::Violation`]s.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// The input cannot be parsed; `line` and `column` are 1-based (`line` 0 when unknown).
    #[error("parse error at line {line}, column {column}: {message}")]
    Parse { line: usize, column: usize, message: String },
    /// A pipeline schema is invalid; `rule` names the offending rule, e.g. `fields[2].pattern`.
    #[error("invalid schema rule {rule}: {message}")]
    Schema { rule: String, message: String },
    /// The requested input format is not one of json, ndjson, csv.
    #[error("unsupported format {0:?}: expected one of \"json\", \"ndjson\", \"csv\"")]
    UnsupportedFormat(String),
    /// Records do not fit the Iceberg schema, or the Iceberg schema itself is bad.
    #[error("iceberg: {0}")]
    Iceberg(String),
    /// Arrow or Parquet failed (I/O included).
    #[error("parquet: {0}")]
    Parquet(String),
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

impl Error {
    pub fn parse(line: usize, column: usize, message: impl Into<String>) -> Self {
        Error::Parse { line, column, message: message.into() }
    }

    pub fn schema(rule: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Schema { rule: rule.into(), message: message.into() }
    }
}

#[cfg(feature = "parquet")]
impl From<parquet::errors::ParquetError> for Error {
    fn from(e: parquet::errors::ParquetError) -> Self {
        Error::Parquet(e.to_string())
    }
}

impl From<arrow_schema::ArrowError> for Error {
    fn from(e: arrow_schema::ArrowError) -> Self {
        Error::Parquet(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, Error>;
