//! rollouts.parquet, written by rollout: one row per sampled response.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, ListArray, StringArray};
use arrow::datatypes::{Float32Type, Int32Type};

use crate::schema::{col, ColType::*, ColumnSpec, StageSchema};
use crate::table::{batch, read_table, write_table_part, Cols};
use crate::Result;

/// Why a response ended: the values of the `finish_reason` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// At the model's end-of-turn token or a stop string.
    Stop,
    /// At the limit of new tokens (the response is cut).
    Length,
}

impl FinishReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }

    /// Whether a `finish_reason` cell says the response was cut.
    pub fn is_truncation(cell: &str) -> bool {
        cell == FinishReason::Length.as_str()
    }
}

/// The rollout columns; [`crate::scored`] extends them.
pub const COLUMNS: &[ColumnSpec] = &[
    col("prompt_id", Utf8, false, "`id` of the prompts row"),
    col(
        "sample_index",
        Int64,
        false,
        "0..samples_per_prompt, the sample's index for its prompt",
    ),
    col("prompt", Utf8, false, "the templated prompt text"),
    col(
        "answer",
        Utf8,
        false,
        "gold answer, carried from the prompts file",
    ),
    col(
        "response",
        Utf8,
        false,
        "the decoded response, without the stop token",
    ),
    col("prompt_token_ids", ListInt32, false, "prompt token ids"),
    col(
        "response_token_ids",
        ListInt32,
        false,
        "response token ids, including the EOS token when it stopped on one",
    ),
    col(
        "response_logprobs",
        ListFloat32,
        false,
        "log-prob of each response token under the sampling distribution (after temperature/top-p)",
    ),
    col(
        "finish_reason",
        Utf8,
        false,
        "`stop` (EOS or stop string) or `length` (hit max new tokens)",
    ),
    col("policy", Utf8, false, "the checkpoint that sampled it"),
    col("temperature", Float64, false, "sampling temperature"),
    col("top_p", Float64, false, "nucleus sampling threshold"),
    col("seed", Int64, false, "the sampling seed of this row"),
];

pub const SCHEMA: StageSchema = StageSchema {
    stage: "rollouts",
    columns: COLUMNS,
};

/// One sampled response.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutRow {
    pub prompt_id: String,
    pub sample_index: i64,
    pub prompt: String,
    pub answer: String,
    pub response: String,
    pub prompt_token_ids: Vec<u32>,
    pub response_token_ids: Vec<u32>,
    pub response_logprobs: Vec<f32>,
    pub finish_reason: String,
    pub policy: String,
    pub temperature: f64,
    pub top_p: f64,
    pub seed: i64,
}

pub(crate) fn columns(rows: &[&RolloutRow]) -> Vec<ArrayRef> {
    let s = |f: fn(&RolloutRow) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| f(r))))
    };
    let ids = |f: fn(&RolloutRow) -> &Vec<u32>| -> ArrayRef {
        Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(
            rows.iter()
                .map(|r| Some(f(r).iter().map(|&x| Some(x as i32)))),
        ))
    };
    vec![
        s(|r| &r.prompt_id),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.sample_index),
        )),
        s(|r| &r.prompt),
        s(|r| &r.answer),
        s(|r| &r.response),
        ids(|r| &r.prompt_token_ids),
        ids(|r| &r.response_token_ids),
        Arc::new(ListArray::from_iter_primitive::<Float32Type, _, _>(
            rows.iter()
                .map(|r| Some(r.response_logprobs.iter().map(|&x| Some(x)))),
        )),
        s(|r| &r.finish_reason),
        s(|r| &r.policy),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.temperature),
        )),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.top_p))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.seed))),
    ]
}

pub(crate) fn row(c: &Cols, i: usize) -> RolloutRow {
    RolloutRow {
        prompt_id: c.string("prompt_id", i),
        sample_index: c.i64("sample_index").value(i),
        prompt: c.string("prompt", i),
        answer: c.string("answer", i),
        response: c.string("response", i),
        prompt_token_ids: c.ids("prompt_token_ids", i),
        response_token_ids: c.ids("response_token_ids", i),
        response_logprobs: c.f32s("response_logprobs", i),
        finish_reason: c.string("finish_reason", i),
        policy: c.string("policy", i),
        temperature: c.f64("temperature").value(i),
        top_p: c.f64("top_p").value(i),
        seed: c.i64("seed").value(i),
    }
}

/// Write `rows` (atomically); under an N-rank MPI job every rank calls it
/// with its rows and `path` becomes a dataset directory of N parts
/// ([`crate::write_table_part`]).
pub fn write(path: impl AsRef<Path>, rows: &[RolloutRow]) -> Result<()> {
    let refs: Vec<&RolloutRow> = rows.iter().collect();
    write_table_part(path, &batch(&SCHEMA, columns(&refs)))
}

pub fn read(path: impl AsRef<Path>) -> Result<Vec<RolloutRow>> {
    let t = read_table(path)?;
    let b = SCHEMA.conform(&t.path, &t.batch)?;
    let c = Cols { batch: &b };
    (0..b.num_rows())
        .map(|i| checked(&t.path, i, row(&c, i)))
        .collect()
}

/// What makes a row unusable for training, as (column, reason): a
/// negative token id, a temperature that is NaN, infinite or negative, a
/// log-prob count that differs from the response's
/// token count, a log-prob that is NaN, infinite or positive.
pub fn problem(r: &RolloutRow) -> Option<(&'static str, String)> {
    for (column, ids) in [
        ("prompt_token_ids", &r.prompt_token_ids),
        ("response_token_ids", &r.response_token_ids),
    ] {
        // Stored as Int32: a negative id reads back above i32::MAX.
        if let Some(&id) = ids.iter().find(|&&id| id > i32::MAX as u32) {
            return Some((column, format!("token id {} is negative", id as i32)));
        }
    }
    if !(r.temperature.is_finite() && r.temperature >= 0.0) {
        let t = r.temperature;
        return Some((
            "temperature",
            format!("{t} is not a sampling temperature (a finite number >= 0)"),
        ));
    }
    if r.response_logprobs.len() != r.response_token_ids.len() {
        return Some((
            "response_logprobs",
            format!(
                "{} log-probs for {} response tokens",
                r.response_logprobs.len(),
                r.response_token_ids.len()
            ),
        ));
    }
    if let Some((j, x)) = r
        .response_logprobs
        .iter()
        .enumerate()
        .find(|(_, x)| !(x.is_finite() && **x <= 0.0))
    {
        return Some((
            "response_logprobs",
            format!("token {j}: log-prob {x} is not a finite number <= 0"),
        ));
    }
    None
}

/// `r`, or the error naming `path`, row `i` and the column of its problem.
pub(crate) fn checked(path: &Path, i: usize, r: RolloutRow) -> Result<RolloutRow> {
    match problem(&r) {
        None => Ok(r),
        Some((column, message)) => Err(crate::Error::BadValue {
            path: path.to_path_buf(),
            row: i,
            column: column.into(),
            message,
        }),
    }
}
