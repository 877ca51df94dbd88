//! scored.parquet, written by verify: the rollout columns plus the grade.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{Field, Schema};

use crate::rollouts::{self, RolloutRow};
use crate::schema::{col, ColType::*, ColumnSpec, StageSchema};
use crate::table::{batch, read_table, write_table, Cols};
use crate::Result;

/// The columns verify adds.
pub const GRADE_COLUMNS: &[ColumnSpec] = &[
    col(
        "extracted_answer",
        Utf8,
        true,
        "the final answer found in the response (last \\boxed{}), null when none",
    ),
    col(
        "has_answer",
        Bool,
        false,
        "whether a final answer was found",
    ),
    col(
        "correct",
        Bool,
        false,
        "whether it is equivalent to the gold answer",
    ),
    col(
        "reward",
        Float64,
        false,
        "the rule reward: +1 correct, -0.5 wrong, -1 no answer (flags)",
    ),
    col(
        "verdict",
        Utf8,
        false,
        "the grader's rule that decided the grade (codes below)",
    ),
    col(
        "verdict_detail",
        Utf8,
        true,
        "one line on why, where it helps (`\\frac{5}{11} vs 0.5`)",
    ),
];

const N: usize = rollouts::COLUMNS.len() + GRADE_COLUMNS.len();
const ALL: [ColumnSpec; N] = {
    let mut out = [GRADE_COLUMNS[0]; N];
    let mut i = 0;
    while i < rollouts::COLUMNS.len() {
        out[i] = rollouts::COLUMNS[i];
        i += 1;
    }
    let mut j = 0;
    while j < GRADE_COLUMNS.len() {
        out[i + j] = GRADE_COLUMNS[j];
        j += 1;
    }
    out
};

pub const SCHEMA: StageSchema = StageSchema {
    stage: "scored",
    columns: &ALL,
};

/// The schema verify needs of its input when the file is a full rollouts
/// file is [`rollouts::SCHEMA`]; verify itself accepts any file with a
/// response and an answer column and passes other columns through.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredRow {
    pub rollout: RolloutRow,
    pub extracted_answer: Option<String>,
    pub has_answer: bool,
    pub correct: bool,
    pub reward: f64,
    /// A [`grader::Verdict`] code.
    pub verdict: String,
    pub verdict_detail: Option<String>,
}

pub fn write(path: impl AsRef<Path>, rows: &[ScoredRow]) -> Result<()> {
    let refs: Vec<&RolloutRow> = rows.iter().map(|r| &r.rollout).collect();
    let mut cols = rollouts::columns(&refs);
    let grades: Vec<GradeCells> = rows
        .iter()
        .map(|r| GradeCells {
            extracted_answer: r.extracted_answer.as_deref(),
            has_answer: r.has_answer,
            correct: r.correct,
            reward: r.reward,
            verdict: &r.verdict,
            verdict_detail: r.verdict_detail.as_deref(),
        })
        .collect();
    cols.extend(grade_arrays(&grades));
    write_table(path, &batch(&SCHEMA, cols))
}

/// One row's grade, as the [`GRADE_COLUMNS`] hold it.
#[derive(Debug, Clone, Copy)]
pub struct GradeCells<'a> {
    pub extracted_answer: Option<&'a str>,
    pub has_answer: bool,
    pub correct: bool,
    pub reward: f64,
    pub verdict: &'a str,
    pub verdict_detail: Option<&'a str>,
}

/// The [`GRADE_COLUMNS`] arrays, in order.
pub fn grade_arrays(grades: &[GradeCells]) -> Vec<ArrayRef> {
    vec![
        Arc::new(StringArray::from_iter(
            grades.iter().map(|g| g.extracted_answer),
        )),
        Arc::new(BooleanArray::from_iter(
            grades.iter().map(|g| Some(g.has_answer)),
        )),
        Arc::new(BooleanArray::from_iter(
            grades.iter().map(|g| Some(g.correct)),
        )),
        Arc::new(Float64Array::from_iter_values(
            grades.iter().map(|g| g.reward),
        )),
        Arc::new(StringArray::from_iter_values(
            grades.iter().map(|g| g.verdict),
        )),
        Arc::new(StringArray::from_iter(
            grades.iter().map(|g| g.verdict_detail),
        )),
    ]
}

/// `batch` with the grade columns appended (replacing any of the same
/// name), so any file can be scored with its other columns kept.
pub fn with_grade_columns(batch: &RecordBatch, grades: &[GradeCells]) -> RecordBatch {
    let schema = batch.schema();
    let is_grade = |name: &str| GRADE_COLUMNS.iter().any(|c| c.name == name);
    let mut fields: Vec<Field> = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    for (f, c) in schema.fields().iter().zip(batch.columns()) {
        if !is_grade(f.name()) {
            fields.push(f.as_ref().clone());
            cols.push(c.clone());
        }
    }
    for (spec, col) in GRADE_COLUMNS.iter().zip(grade_arrays(grades)) {
        fields.push(Field::new(spec.name, spec.ty.data_type(), spec.nullable));
        cols.push(col);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
        .expect("grade columns match their schema")
}

pub fn read(path: impl AsRef<Path>) -> Result<Vec<ScoredRow>> {
    let t = read_table(path)?;
    let b = SCHEMA.conform(&t.path, &t.batch)?;
    let c = Cols { batch: &b };
    (0..b.num_rows())
        .map(|i| {
            let reward = c.f64("reward").value(i);
            if !reward.is_finite() {
                return Err(crate::Error::BadValue {
                    path: t.path.clone(),
                    row: i,
                    column: "reward".into(),
                    message: format!("{reward} is not a finite number"),
                });
            }
            let verdict = c.string("verdict", i);
            if grader::Verdict::from_code(&verdict).is_none() {
                return Err(crate::Error::BadValue {
                    path: t.path.clone(),
                    row: i,
                    column: "verdict".into(),
                    message: format!("`{verdict}` is not a verdict code ({})", verdict_codes()),
                });
            }
            Ok(ScoredRow {
                rollout: rollouts::checked(&t.path, i, rollouts::row(&c, i))?,
                extracted_answer: c.opt_string("extracted_answer", i),
                has_answer: c.bool("has_answer").value(i),
                correct: c.bool("correct").value(i),
                reward,
                verdict,
                verdict_detail: c.opt_string("verdict_detail", i),
            })
        })
        .collect()
}

/// "equal_exact, equal_symbolic, ...": the codes verify writes.
pub fn verdict_codes() -> String {
    grader::Verdict::ALL.map(|v| v.code()).join(", ")
}

/// The verdict codes as a Markdown table (docs/schemas.md).
pub fn verdicts_markdown() -> String {
    let mut s = String::from("| verdict | meaning |\n|---|---|\n");
    for v in grader::Verdict::ALL {
        s.push_str(&format!("| `{}` | {} |\n", v.code(), v.meaning()));
    }
    s
}
