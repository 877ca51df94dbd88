//! The verify stage (the verify tool, and evaluate's grading): any Parquet with a response column and a gold-answer
//! column -> the same rows with the grade columns of
//! [`artifacts::scored::GRADE_COLUMNS`] added (replaced if present).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use arrow::array::{Array, AsArray, StringArray};
use arrow::datatypes::DataType;
use grader::{Fallbacks, RewardScheme};
use rayon::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Artifact(#[from] artifacts::Error),
    #[error(
        "{path}: missing column `{column}` (columns present: {present}); set it with --{flag}"
    )]
    MissingColumn {
        path: String,
        column: String,
        present: String,
        flag: &'static str,
    },
    #[error("{0}: no rows to grade")]
    Empty(String),
    #[error("{0}")]
    Threads(String),
    #[error("{path}: row {row}, column `{column}`: the gold answer is {what}; such a row cannot be graded (fix or drop it)")]
    NoGold {
        path: String,
        row: usize,
        column: String,
        what: &'static str,
    },
    #[error("{path}: column `{column}` has type {found}, expected text")]
    NotText {
        path: String,
        column: String,
        found: String,
    },
}

/// An extraction fallback, as a flag value (evaluation only: the
/// recipe's reward uses none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Fallback {
    /// "the answer is X", "final answer: X".
    AnswerPhrase,
    /// The last $...$, \(...\) or \[...\] span.
    MathSpan,
    /// The last number in the response.
    LastNumber,
}

/// The grader's fallbacks for a list of flag values.
pub fn fallbacks(list: &[Fallback]) -> Fallbacks {
    let mut f = Fallbacks::NONE;
    for x in list {
        match x {
            Fallback::AnswerPhrase => f.answer_phrase = true,
            Fallback::MathSpan => f.math_span = true,
            Fallback::LastNumber => f.last_number = true,
        }
    }
    f
}

/// How answers are found, in words (for table headers).
pub fn describe(f: Fallbacks) -> String {
    let mut parts = vec!["last \\boxed{}"];
    if f.answer_phrase {
        parts.push("\"the answer is\" phrase");
    }
    if f.math_span {
        parts.push("last math span");
    }
    if f.last_number {
        parts.push("last number");
    }
    if parts.len() == 1 {
        "last \\boxed{} only (no fallbacks)".into()
    } else {
        parts.join(", then ")
    }
}

/// How to grade.
#[derive(Debug, Clone)]
pub struct Options {
    pub response_column: String,
    pub answer_column: String,
    pub scheme: RewardScheme,
    pub fallbacks: Fallbacks,
    /// Each response is cut at the first of these before grading
    /// (default: [`grader::STOP_WORDS`]).
    pub stop_words: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            response_column: "response".into(),
            answer_column: "answer".into(),
            scheme: RewardScheme::default(),
            fallbacks: Fallbacks::NONE,
            stop_words: grader::STOP_WORDS.map(String::from).to_vec(),
        }
    }
}

/// What a run graded.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub rows: usize,
    pub correct: usize,
    pub no_answer: usize,
    pub seconds: f64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.rows.max(1) as f64;
        write!(
            f,
            "{} rows, accuracy {:.4}, no-answer rate {:.4}, {:.0} rows/s",
            self.rows,
            self.correct as f64 / n,
            self.no_answer as f64 / n,
            self.rows as f64 / self.seconds.max(1e-9)
        )
    }
}

fn text_column(
    t: &artifacts::Table,
    name: &str,
    flag: &'static str,
) -> Result<StringArray, VerifyError> {
    let schema = t.batch.schema();
    let Some((idx, field)) = schema.column_with_name(name) else {
        return Err(VerifyError::MissingColumn {
            path: t.path.display().to_string(),
            column: name.into(),
            present: artifacts::schema::column_list(&schema),
            flag,
        });
    };
    let not_text = || VerifyError::NotText {
        path: t.path.display().to_string(),
        column: name.into(),
        found: format!("{:?}", field.data_type()),
    };
    match field.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {}
        _ => return Err(not_text()),
    }
    let a = arrow::compute::cast(t.batch.column(idx), &DataType::Utf8).map_err(|_| not_text())?;
    Ok(a.as_string::<i32>().clone())
}

/// Grade every row of `input` and write `output` (atomically).
/// `progress` is called with the number of rows graded so far.
/// Grade with `n` worker threads. More threads than this machine can
/// start (each reserves a 2 MiB stack from the memory available, and the
/// kernel's threads-max caps them all) is an error, before any starts.
pub fn set_threads(n: usize) -> Result<(), VerifyError> {
    const STACK: f64 = 2.0 * 1024.0 * 1024.0;
    let by_memory = dist::available_memory().map(|m| (m / STACK) as usize);
    let by_kernel = std::fs::read_to_string("/proc/sys/kernel/threads-max")
        .ok()
        .and_then(|t| t.trim().parse::<usize>().ok());
    if let Some(limit) = by_memory.into_iter().chain(by_kernel).min() {
        if n > limit {
            return Err(VerifyError::Threads(format!(
                "--threads {n} is more than this machine can start: at most {limit} (a 2 MiB stack each from the memory available, and the kernel's threads-max)"
            )));
        }
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .map_err(|e| VerifyError::Threads(format!("--threads {n}: {e}")))
}

pub fn verify_file(
    input: &Path,
    output: &Path,
    opts: &Options,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Summary, VerifyError> {
    let start = Instant::now();
    durable::check_not_input(output, &[input]).map_err(artifacts::Error::from)?;
    let mut table = artifacts::read_table(input)?;
    if table.batch.num_rows() == 0 {
        return Err(VerifyError::Empty(input.display().to_string()));
    }
    // Under an N-rank MPI job, rows i with i % N == rank.
    table.batch = artifacts::rank_rows(&table.batch);
    let responses = text_column(&table, &opts.response_column, "response-column")?;
    let answers = text_column(&table, &opts.answer_column, "answer-column")?;
    // A row whose gold is null or empty cannot be graded: refuse the file,
    // naming the first such row.
    if let Some(row) = (0..answers.len())
        .find(|&i| !answers.is_valid(i) || grader::gold_answer(answers.value(i)).is_none())
    {
        return Err(VerifyError::NoGold {
            path: input.display().to_string(),
            row,
            column: opts.answer_column.clone(),
            what: if answers.is_valid(row) {
                "empty"
            } else {
                "null"
            },
        });
    }
    let done = AtomicU64::new(0);
    let grades: Vec<grader::Grade> = (0..table.batch.num_rows())
        .into_par_iter()
        .map(|i| {
            let response = if responses.is_valid(i) {
                responses.value(i)
            } else {
                ""
            };
            let gold = answers.value(i);
            let response = grader::cut_at_stop(response, &opts.stop_words);
            let g = grader::grade_with(response, gold, &opts.scheme, opts.fallbacks);
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_multiple_of(256) {
                progress(n);
            }
            g
        })
        .collect();
    progress(grades.len() as u64);
    let cells: Vec<artifacts::scored::GradeCells> = grades
        .iter()
        .map(|g| artifacts::scored::GradeCells {
            extracted_answer: g.extracted_answer.as_deref(),
            has_answer: g.has_answer,
            correct: g.correct,
            reward: g.reward,
            verdict: g.verdict.code(),
            verdict_detail: g.detail.as_deref(),
        })
        .collect();
    let batch = artifacts::scored::with_grade_columns(&table.batch, &cells);
    // Under an N-rank MPI job: this rank's part of a dataset directory.
    artifacts::write_table_part(output, &batch)?;
    Ok(Summary {
        rows: grades.len(),
        correct: grades.iter().filter(|g| g.correct).count(),
        no_answer: grades.iter().filter(|g| !g.has_answer).count(),
        seconds: start.elapsed().as_secs_f64(),
    })
}
