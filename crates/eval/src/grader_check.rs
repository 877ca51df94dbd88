//! grader-check: the grader's rates on labelled cases, and the
//! copy-the-question bench over prompts files. Each returns the text the
//! tool prints.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use grader::cases;

use crate::{EvalError, Result};

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| EvalError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn bad(path: &Path, message: String) -> EvalError {
    EvalError::Io {
        path: path.display().to_string(),
        message,
    }
}

/// The acceptance rates of `dir/variants.jsonl` per intent and variant
/// type, the slowest single grade (these cases and the fuzz test's named
/// hard inputs, each timed alone), the throughput, and the
/// `dir/mathverify_cases.jsonl` cases whose verdict differs from the one
/// expected. `show_failures` also lists every variant graded against its
/// label.
pub fn check_cases(dir: &Path, show_failures: bool) -> Result<String> {
    let path = dir.join("variants.jsonl");
    let variants = cases::read_variants(&read(&path)?).map_err(|e| bad(&path, e))?;
    let t = Instant::now();
    let report = cases::score_variants(&variants);
    let secs = t.elapsed().as_secs_f64();
    let mut out = report.to_string();
    let mut slowest = (0.0f64, String::new());
    let nested = format!("{}1{}", "{".repeat(100_000), "}".repeat(100_000));
    let hard = [
        ("1", nested.as_str()),
        ("10^{10^{10}}", "10^{10^{10}}"),
        ("100000!", "100000!"),
        ("1", "2^{2^{2^{2^{2^{2}}}}}"),
    ];
    let pairs = variants
        .iter()
        .map(|v| (v.gold.as_str(), v.model_output.as_str()))
        .chain(hard.iter().map(|(g, p)| (*g, *p)));
    for (gold, response) in pairs {
        let t = Instant::now();
        let _ = grader::grade(response, gold, &Default::default());
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if ms > slowest.0 {
            slowest = (ms, gold.chars().take(40).collect());
        }
    }
    let (ms, gold) = slowest;
    let _ = writeln!(out, "slowest single grade: {ms:.3} ms (gold {gold:?})");
    let n = variants.len();
    let rate = n as f64 / secs;
    let _ = writeln!(
        out,
        "graded {n} responses in {secs:.2}s single-threaded: {rate:.0} pairs/s"
    );
    if show_failures {
        for (id, gold, variant) in &report.failures {
            let _ = writeln!(
                out,
                "against label: {id}: gold {gold:?} variant {variant:?}"
            );
        }
    }
    let path = dir.join("mathverify_cases.jsonl");
    let mv = cases::read_mathverify(&read(&path)?).map_err(|e| bad(&path, e))?;
    let mut agree = 0;
    for c in &mv {
        if cases::mathverify_verdict(c) == c.expected {
            agree += 1;
        } else {
            let (id, expected) = (&c.test_id, c.expected);
            let (gold, pred) = (trunc(&c.gold), trunc(&c.pred));
            let _ = writeln!(
                out,
                "math-verify case differs: {id} (expected {expected}): gold {gold:?} pred {pred:?}"
            );
        }
    }
    let _ = writeln!(
        out,
        "math-verify test-suite cases: {agree} of {} as expected",
        mv.len()
    );
    Ok(out)
}

/// The copy-the-question bench: for each prompts file, box each problem's
/// own expression (metadata `expression`) or its question's last math
/// span, grade it against the gold, and report the share that earns +1.
/// `show` also lists every copy that did.
pub fn check_copies(files: &[PathBuf], show: bool) -> Result<String> {
    let mut out = String::new();
    for path in files {
        let rows = artifacts::prompts::read(path)?;
        let expressions: Vec<Option<String>> = rows
            .iter()
            .map(|r| {
                let meta: serde_json::Value =
                    serde_json::from_str(r.metadata.as_deref().unwrap_or("{}")).ok()?;
                meta.get("expression")?.as_str().map(str::to_string)
            })
            .collect();
        let report = cases::score_copies(
            rows.iter()
                .zip(&expressions)
                .map(|(r, e)| (r.question.as_str(), r.answer.as_str(), e.as_deref())),
        );
        let _ = writeln!(out, "{}: {report}", path.display());
        if show {
            for (copy, gold, verdict) in &report.rewarded_copies {
                let (copy, gold) = (trunc(copy), trunc(gold));
                let _ = writeln!(out, "rewarded copy: {copy} for gold {gold} ({verdict})");
            }
        }
    }
    Ok(out)
}

/// At most 100 bytes of `s` (on a character boundary), with `...` when cut.
fn trunc(s: &str) -> String {
    if s.len() <= 100 {
        return s.to_string();
    }
    let end = s
        .char_indices()
        .take_while(|(i, _)| *i < 100)
        .last()
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(0);
    format!("{}...", &s[..end])
}
