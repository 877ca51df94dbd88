//! results.parquet, written by evaluate: one row per benchmark sample.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{BooleanArray, Int64Array, StringArray};

use crate::schema::{col, ColType::*, StageSchema};
use crate::table::{batch, read_table, write_table, Cols};
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
    write_table(path, &b)
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
