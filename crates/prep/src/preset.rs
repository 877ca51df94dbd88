//! Named data recipes.

use std::collections::HashSet;
use std::path::Path;

use crate::raw::{self, FieldMap, LoadOptions, LoadReport, Problem, RawFormat};
use crate::{normalize_question, PrepError};

/// What the `simplerl-zero` preset kept and dropped, per reason.
#[derive(Debug, Clone, Default)]
pub struct PresetReport {
    pub read: usize,
    pub kept: usize,
    /// (reason, count), in the order the filters run.
    pub dropped: Vec<(String, usize)>,
}

impl std::fmt::Display for PresetReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "read {}, kept {}", self.read, self.kept)?;
        for (reason, n) in &self.dropped {
            write!(f, "; dropped {n} {reason}")?;
        }
        Ok(())
    }
}

/// The published recipe's training set: MATH train + test (`raw/math`),
/// levels 3-5, minus the MATH-500 problems (`raw/eval/math500`, matched on
/// whitespace-normalised problem text), de-duplicated on the same text.
pub fn simplerl_zero(
    raw_dir: &Path,
    skip_bad: bool,
) -> Result<(Vec<Problem>, PresetReport), PrepError> {
    let mut load = LoadReport::default();
    let opts = LoadOptions {
        skip_bad,
        keep_empty_answers: true,
    };
    let mut problems = raw::load(
        &raw_dir.join("math"),
        RawFormat::Math,
        &FieldMap::default(),
        opts,
        &mut load,
    )?;
    let mut report = PresetReport {
        read: load.read,
        ..Default::default()
    };
    for (reason, n) in load.skipped {
        report.dropped.push((format!("bad rows ({reason})"), n));
    }
    let before = problems.len();
    problems.retain(|p| !p.answer.is_empty());
    report.dropped.push((
        "with an empty gold answer (\\boxed{})".into(),
        before - problems.len(),
    ));
    let before = problems.len();
    problems.retain(|p| p.level.is_some());
    report
        .dropped
        .push(("without a level".into(), before - problems.len()));
    let before = problems.len();
    problems.retain(|p| matches!(p.level, Some(3..=5)));
    report
        .dropped
        .push(("below level 3".into(), before - problems.len()));

    let mut m500_report = LoadReport::default();
    let m500 = raw::load(
        &raw_dir.join("eval/math500"),
        RawFormat::Math500,
        &FieldMap::default(),
        LoadOptions::default(),
        &mut m500_report,
    )?;
    let m500: HashSet<String> = m500
        .iter()
        .map(|p| normalize_question(&p.question))
        .collect();
    let before = problems.len();
    problems.retain(|p| !m500.contains(&normalize_question(&p.question)));
    report
        .dropped
        .push(("in MATH-500".into(), before - problems.len()));

    let dups = crate::select::dedupe_questions(&mut problems);
    report.dropped.push(("duplicate problem text".into(), dups));
    report.kept = problems.len();
    Ok((problems, report))
}

/// How many of the questions of a reference Parquet (HF-style, e.g. the
/// recipe's own simplerl/train.parquet) appear in `problems`, on
/// normalised text: (found, reference total).
pub fn overlap(reference: &Path, problems: &[Problem]) -> Result<(usize, usize), PrepError> {
    let mut report = LoadReport::default();
    let opts = LoadOptions {
        skip_bad: true,
        keep_empty_answers: true,
    };
    let refs = raw::load(
        reference,
        RawFormat::Fields,
        &FieldMap::default(),
        opts,
        &mut report,
    )?;
    let ours: HashSet<String> = problems
        .iter()
        .map(|p| normalize_question(&p.question))
        .collect();
    let found = refs
        .iter()
        .filter(|p| ours.contains(&normalize_question(&p.question)))
        .count();
    Ok((found, report.read))
}
