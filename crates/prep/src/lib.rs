//! prep-math's library: raw math data sets -> prompts.
//!
//! - [`raw`]: readers for every raw shape (MATH, GSM8K, the evaluation
//!   sets, HF-style Parquet, JSONL with named fields);
//! - [`template`]: the prompt templates, by name;
//! - [`synth`]: the built-in arithmetic set;
//! - [`preset`]: named recipes (`simplerl-zero`);
//! - [`job`]: prep-math's run, one job per subcommand;
//! - [`select`]: de-duplication, stable train/holdout split, seeded
//!   shuffle, limit, and templating into [`artifacts::prompts::PromptRow`].

pub mod job;
pub mod preset;
pub mod raw;
pub mod select;
pub mod synth;
pub mod template;

use std::path::PathBuf;

/// Errors name the file and, for a bad record, its line (JSONL) or row
/// (Parquet), 1-based.
#[derive(Debug, thiserror::Error)]
pub enum PrepError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Json {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}:{line}: {message}", path.display())]
    Row {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(transparent)]
    Artifact(#[from] artifacts::Error),
    #[error("{0}")]
    Template(String),
    #[error("duplicate id `{0}`: ids must be unique in a prompts file")]
    DuplicateId(String),
    #[error("{0}")]
    Invalid(String),
}

/// Whitespace-insensitive problem text, for matching the same problem
/// across data sets.
pub fn normalize_question(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
