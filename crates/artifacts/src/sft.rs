//! sft.parquet, read by sft-step: a templated prompt and the response to
//! learn, one row per example. prep-math writes it with every prompts
//! column (so a row can be traced to its problem) plus `response`.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{Field, Schema};

use crate::prompts::PromptRow;
use crate::schema::{col, ColType::*, StageSchema};
use crate::table::{append_columns, read_table, write_table, Cols};
use crate::Result;

pub const SCHEMA: StageSchema = StageSchema {
    stage: "sft",
    columns: &[
        col("id", Utf8, false, "example id, unique in the file"),
        col(
            "prompt",
            Utf8,
            false,
            "the templated prompt text (no loss on its tokens)",
        ),
        col(
            "response",
            Utf8,
            false,
            "the target the model learns (e.g. a MATH solution ending in \\boxed{answer})",
        ),
    ],
};

/// One example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftRow {
    pub id: String,
    pub prompt: String,
    pub response: String,
}

/// Write prompts rows with their responses (all prompts columns kept).
pub fn write(path: impl AsRef<Path>, rows: &[(PromptRow, String)]) -> Result<()> {
    let prompts: Vec<PromptRow> = rows.iter().map(|(p, _)| p.clone()).collect();
    let base = crate::prompts::to_batch(&prompts);
    let response = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "response",
            Utf8.data_type(),
            false,
        )])),
        vec![Arc::new(StringArray::from_iter_values(
            rows.iter().map(|(_, r)| r.as_str()),
        ))],
    )
    .expect("one string column");
    let b = append_columns(&base, &response).expect("same row count");
    write_table(path, &b)
}

pub fn read(path: impl AsRef<Path>) -> Result<Vec<SftRow>> {
    let t = read_table(path)?;
    let b = SCHEMA.conform(&t.path, &t.batch)?;
    let c = Cols { batch: &b };
    Ok((0..b.num_rows())
        .map(|i| SftRow {
            id: c.string("id", i),
            prompt: c.string("prompt", i),
            response: c.string("response", i),
        })
        .collect())
}
