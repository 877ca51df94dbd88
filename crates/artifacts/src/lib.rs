//! The Parquet artifacts every stage reads and writes: one place for the
//! column names, their types, typed read/write, validation on read, and
//! atomic writes.
//!
//! | stage     | file              | schema                  |
//! |-----------|-------------------|-------------------------|
//! | prep-math | prompts.parquet   | [`prompts::SCHEMA`]     |
//! | prep-math | sft.parquet       | [`sft::SCHEMA`]         |
//! | rollout   | rollouts.parquet  | [`rollouts::SCHEMA`]    |
//! | verify    | scored.parquet    | [`scored::SCHEMA`]      |
//! | ppo-step  | metrics.parquet   | [`metrics::SCHEMA`]     |
//! | evaluate  | results.parquet   | [`eval::SCHEMA`]        |
//! | evaluate  | results.summary.json | [`eval::EvalSummary`] |
//!
//! Every column listed in a schema must be present with a compatible type
//! (strings may be `Utf8`, `LargeUtf8` or `Utf8View`; integers and floats of
//! any width are cast); any other column is allowed and ignored by the typed
//! readers, so users can carry their own metadata through the pipeline.

pub mod atomic;
pub mod eval;
pub mod metrics;
pub mod prompts;
pub mod provenance;
pub mod rollouts;
pub mod schema;
pub mod scored;
pub mod sft;
pub mod table;
pub mod tensorboard;

pub use atomic::AtomicFile;
pub use schema::{ColType, ColumnSpec, StageSchema};
pub use table::{
    dataset_parts, is_stdio, part_name, rank_rows, read_table, read_table_unrecorded, write_table,
    write_table_part, Table, STDIO,
};

use std::path::PathBuf;

impl From<durable::Error> for Error {
    fn from(e: durable::Error) -> Error {
        match e {
            durable::Error::Io { path, source } => Error::Io { path, source },
            durable::Error::Refused { path, reason } => Error::Io {
                path,
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, reason),
            },
        }
    }
}

/// Everything that can go wrong reading or writing an artifact. Each
/// variant names the file, and where it applies the column and row.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a readable Parquet file: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("{path}: {source}")]
    Arrow {
        path: PathBuf,
        #[source]
        source: arrow::error::ArrowError,
    },
    #[error("{path}: missing column `{column}` required by the {stage} schema (columns present: {present})")]
    MissingColumn {
        path: PathBuf,
        stage: &'static str,
        column: String,
        present: String,
    },
    #[error("{path}: column `{column}` has type {found}, the {stage} schema needs {expected}")]
    WrongType {
        path: PathBuf,
        stage: &'static str,
        column: String,
        expected: String,
        found: String,
    },
    #[error("{path}: not a valid summary: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: row {row}, column `{column}`: {message}")]
    BadValue {
        path: PathBuf,
        row: usize,
        column: String,
        message: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every stage's schema, in pipeline order.
pub const ALL_SCHEMAS: [StageSchema; 6] = [
    prompts::SCHEMA,
    sft::SCHEMA,
    rollouts::SCHEMA,
    scored::SCHEMA,
    metrics::SCHEMA,
    eval::SCHEMA,
];

/// docs/schemas.md, generated from the schemas above.
pub fn schemas_markdown() -> String {
    let mut s = String::from(
        "# Artifact schemas\n\nThe column names below are the contract between stages and with users' own tools \
         (pandas, polars, DuckDB). They are defined once, in `crates/artifacts`; this file is generated from there \
         (`make docs`) and a test checks it is current. Every file may carry extra columns: stages ignore them, and \
         verify passes them through. Readers accept any type that casts losslessly (LargeUtf8 for Utf8, any \
         integer width for Int64).\n",
    );
    for schema in ALL_SCHEMAS {
        s.push_str(&format!("\n## {}\n\n{}", schema.stage, schema.markdown()));
        if schema.stage == scored::SCHEMA.stage {
            s.push_str(&format!(
                "\nThe `verdict` codes (one enum in the grader, `grader::Verdict`; `report` counts them per \
                 iteration). The rules behind them are the table in `crates/grader/src/policy.rs`.\n\n{}",
                scored::verdicts_markdown()
            ));
        }
    }
    s
}
