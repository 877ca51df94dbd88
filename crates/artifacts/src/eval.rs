//! results.parquet, written by evaluate: one row per benchmark sample.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{BooleanArray, Int64Array, StringArray};

use crate::schema::{col, ColType::*, StageSchema};
use crate::table::{batch, read_table, write_table_part, Cols};
use crate::Result;

pub const SCHEMA: StageSchema = StageSchema {
    stage: "eval results",
    columns: &[
        col(
            "benchmark",
            Utf8,
            false,
            "benchmark name (`math500`, `aime24`, ...)",
        ),
        col("id", Utf8, false, "problem id within the benchmark"),
        col(
            "sample_index",
            Int64,
            false,
            "0 for greedy; 0..k with --samples k",
        ),
        col("answer", Utf8, false, "gold answer"),
        col("response", Utf8, false, "the model's response"),
        col(
            "extracted_answer",
            Utf8,
            true,
            "final answer extracted from the response",
        ),
        col(
            "correct",
            Bool,
            false,
            "whether it is equivalent to the gold answer",
        ),
        col("response_length", Int64, false, "response length in tokens"),
        col("finish_reason", Utf8, false, "`stop` or `length`"),
    ],
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalRow {
    pub benchmark: String,
    pub id: String,
    pub sample_index: i64,
    pub answer: String,
    pub response: String,
    pub extracted_answer: Option<String>,
    pub correct: bool,
    pub response_length: i64,
    pub finish_reason: String,
}

pub fn write(path: impl AsRef<Path>, rows: &[EvalRow]) -> Result<()> {
    let s = |f: fn(&EvalRow) -> &str| Arc::new(StringArray::from_iter_values(rows.iter().map(f)));
    let b = batch(
        &SCHEMA,
        vec![
            s(|r| &r.benchmark),
            s(|r| &r.id),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.sample_index),
            )),
            s(|r| &r.answer),
            s(|r| &r.response),
            Arc::new(StringArray::from_iter(
                rows.iter().map(|r| r.extracted_answer.as_deref()),
            )),
            Arc::new(BooleanArray::from_iter(
                rows.iter().map(|r| Some(r.correct)),
            )),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.response_length),
            )),
            s(|r| &r.finish_reason),
        ],
    );
    // Under an N-rank MPI job: this rank's part of a dataset directory.
    write_table_part(path, &b)
}

pub fn read(path: impl AsRef<Path>) -> Result<Vec<EvalRow>> {
    let t = read_table(path)?;
    let b = SCHEMA.conform(&t.path, &t.batch)?;
    let c = Cols { batch: &b };
    Ok((0..b.num_rows())
        .map(|i| EvalRow {
            benchmark: c.string("benchmark", i),
            id: c.string("id", i),
            sample_index: c.i64("sample_index").value(i),
            answer: c.string("answer", i),
            response: c.string("response", i),
            extracted_answer: c.opt_string("extracted_answer", i),
            correct: c.bool("correct").value(i),
            response_length: c.i64("response_length").value(i),
            finish_reason: c.string("finish_reason", i),
        })
        .collect())
}

/// One benchmark's figures: an entry of `benchmarks` in
/// `<results>.summary.json`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BenchSummary {
    pub benchmark: String,
    pub problems: usize,
    /// samples per problem (k)
    #[serde(default = "one")]
    pub samples: usize,
    /// mean correctness over all samples: pass@1 (greedy) or avg@k
    pub accuracy: f64,
    /// `accuracy` with the answer read leniently from the same responses
    /// (every fallback: "the answer is" phrase, last math span, last
    /// number), what a base model knows before it learns the format
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lenient_accuracy: Option<f64>,
    /// correctness of the most frequent extracted answer
    pub maj_at_k: f64,
    /// unbiased pass@k (Chen et al. 2021) with k = samples
    pub pass_at_k: f64,
    /// share of samples with a final answer found
    pub boxed_rate: f64,
    pub mean_response_length: f64,
    /// share of samples cut at max new tokens
    pub truncation_rate: f64,
    /// the most frequent extracted answer (ties: the smallest), if any
    #[serde(default)]
    pub top_answer: Option<String>,
    /// share of all samples that gave `top_answer`: a model that copies
    /// one answer (the prompt's example) shows here
    #[serde(default)]
    pub top_answer_share: f64,
    /// the figures per problem kind (the prompts' metadata `kind`, as the
    /// synth set has), when the prompts have kinds
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub by_kind: std::collections::BTreeMap<String, Breakdown>,
    /// the figures per level (the prompts' `level` column), when the
    /// prompts have levels
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub by_level: std::collections::BTreeMap<String, Breakdown>,
}

/// A benchmark's figures over the problems of one kind or level.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Breakdown {
    pub problems: usize,
    /// mean correctness over their samples
    pub accuracy: f64,
    /// the same, read leniently (see [`BenchSummary::lenient_accuracy`])
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lenient_accuracy: Option<f64>,
    pub boxed_rate: f64,
    pub mean_response_length: f64,
}

fn one() -> usize {
    1
}

/// `<results>.summary.json`, written by evaluate beside its results and
/// read by report: how the run sampled and graded, and each benchmark's
/// figures.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EvalSummary {
    /// the evaluated checkpoint
    pub policy: String,
    /// how final answers were extracted, in words
    pub extraction: String,
    /// how responses were sampled, in words
    pub sampling: String,
    #[serde(default)]
    pub max_new_tokens: usize,
    pub benchmarks: Vec<BenchSummary>,
}

/// The summary file beside the results file `results`.
pub fn summary_path(results: &Path) -> std::path::PathBuf {
    results.with_extension("summary.json")
}

/// Write `summary` to `path` (atomically).
pub fn write_summary(path: impl AsRef<Path>, summary: &EvalSummary) -> Result<()> {
    let json = serde_json::to_string_pretty(summary).expect("a summary serialises");
    crate::atomic::write_bytes(path, json.as_bytes())
}

/// The summary at `path`.
pub fn read_summary(path: impl AsRef<Path>) -> Result<EvalSummary> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| crate::Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| crate::Error::Json {
        path: path.to_path_buf(),
        source,
    })
}
