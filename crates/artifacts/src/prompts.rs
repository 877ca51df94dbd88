//! prompts.parquet, written by prep-math: one row per problem.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Int64Array, StringArray};

use crate::schema::{col, ColType::*, StageSchema};
use crate::table::{batch, read_table, write_table, Cols};
use crate::Result;

pub const SCHEMA: StageSchema = StageSchema {
    stage: "prompts",
    columns: &[
        col(
            "id",
            Utf8,
            false,
            "stable problem id, unique in the file (e.g. `math/algebra/train/17`)",
        ),
        col(
            "source",
            Utf8,
            false,
            "data set the problem came from (`math`, `gsm8k`, `aime24`, `synth`, ...)",
        ),
        col("question", Utf8, false, "the problem text, untemplated"),
        col(
            "answer",
            Utf8,
            false,
            "gold final answer, LaTeX (no \\boxed, no $)",
        ),
        col(
            "level",
            Int64,
            true,
            "difficulty level when the source has one (MATH 1-5, synth 1-3)",
        ),
        col(
            "subject",
            Utf8,
            true,
            "subject or topic when the source has one",
        ),
        col(
            "prompt",
            Utf8,
            false,
            "the exact text the model sees, after the template",
        ),
        col(
            "metadata",
            Utf8,
            true,
            "a JSON object of the source's other fields (options, unit, url, ...)",
        ),
    ],
};

/// One problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptRow {
    pub id: String,
    pub source: String,
    pub question: String,
    pub answer: String,
    pub level: Option<i64>,
    pub subject: Option<String>,
    pub prompt: String,
    pub metadata: Option<String>,
}

pub fn write(path: impl AsRef<Path>, rows: &[PromptRow]) -> Result<()> {
    write_table(path, &to_batch(rows))
}

/// The prompts columns of `rows`.
pub(crate) fn to_batch(rows: &[PromptRow]) -> arrow::array::RecordBatch {
    let s = |f: fn(&PromptRow) -> &str| Arc::new(StringArray::from_iter_values(rows.iter().map(f)));
    batch(
        &SCHEMA,
        vec![
            s(|r| &r.id),
            s(|r| &r.source),
            s(|r| &r.question),
            s(|r| &r.answer),
            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.level))),
            Arc::new(StringArray::from_iter(
                rows.iter().map(|r| r.subject.as_deref()),
            )),
            s(|r| &r.prompt),
            Arc::new(StringArray::from_iter(
                rows.iter().map(|r| r.metadata.as_deref()),
            )),
        ],
    )
}

pub fn read(path: impl AsRef<Path>) -> Result<Vec<PromptRow>> {
    let t = read_table(path)?;
    let b = SCHEMA.conform(&t.path, &t.batch)?;
    let c = Cols { batch: &b };
    // Samples are keyed by (prompt_id, sample_index): ids must be unique.
    let mut seen = std::collections::HashMap::new();
    for i in 0..b.num_rows() {
        if let Some(first) = seen.insert(c.string("id", i), i) {
            return Err(crate::Error::BadValue {
                path: t.path.clone(),
                row: i,
                column: "id".into(),
                message: format!(
                    "`{}` is also the id of row {first}; ids must be unique",
                    c.string("id", i)
                ),
            });
        }
    }
    Ok((0..b.num_rows())
        .map(|i| PromptRow {
            id: c.string("id", i),
            source: c.string("source", i),
            question: c.string("question", i),
            answer: c.string("answer", i),
            level: c.opt_i64("level", i),
            subject: c.opt_string("subject", i),
            prompt: c.string("prompt", i),
            metadata: c.opt_string("metadata", i),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> PromptRow {
        PromptRow {
            id: id.into(),
            source: "t".into(),
            question: "1+1".into(),
            answer: "2".into(),
            level: None,
            subject: None,
            prompt: "1+1=".into(),
            metadata: None,
        }
    }

    #[test]
    fn repeated_ids_are_refused_naming_the_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.parquet");
        write(&path, &[row("a"), row("b"), row("a")]).unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(
            e.contains("row 2, column `id`") && e.contains("row 0"),
            "{e}"
        );
        write(&path, &[row("a"), row("b")]).unwrap();
        assert_eq!(read(&path).unwrap().len(), 2);
    }
}
