//! grader-check: the grader's acceptance rates on labelled cases.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use cli::grader_check::Cli;
use grader::cases;

/// The copy-the-question bench over prompts files.
fn copy_question(files: &[std::path::PathBuf], show: bool) -> Result<()> {
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
        println!("{}: {report}", path.display());
        if show {
            for (copy, gold, verdict) in &report.rewarded_copies {
                println!(
                    "rewarded copy: {} for gold {} ({verdict})",
                    trunc(copy),
                    trunc(gold)
                );
            }
        }
    }
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    if !cli.copy_question.is_empty() {
        return copy_question(&cli.copy_question, cli.show_failures);
    }
    let path = cli.cases.join("variants.jsonl");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let variants =
        cases::read_variants(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let t = Instant::now();
    let report = cases::score_variants(&variants);
    let secs = t.elapsed().as_secs_f64();
    print!("{report}");
    // The slowest single grade, over these cases and the fuzz test's named
    // hard inputs (each timed alone).
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
    println!(
        "slowest single grade: {:.3} ms (gold {:?})",
        slowest.0, slowest.1
    );
    println!(
        "graded {} responses in {:.2}s single-threaded: {:.0} pairs/s",
        variants.len(),
        secs,
        variants.len() as f64 / secs
    );
    if cli.show_failures {
        for (id, gold, variant) in &report.failures {
            println!("against label: {id}: gold {gold:?} variant {variant:?}");
        }
    }
    let path = cli.cases.join("mathverify_cases.jsonl");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let mv =
        cases::read_mathverify(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut agree = 0;
    for c in &mv {
        if cases::mathverify_verdict(c) == c.expected {
            agree += 1;
        } else {
            println!(
                "math-verify case differs: {} (expected {}): gold {:?} pred {:?}",
                c.test_id,
                c.expected,
                trunc(&c.gold),
                trunc(&c.pred)
            );
        }
    }
    println!(
        "math-verify test-suite cases: {agree} of {} as expected",
        mv.len()
    );
    Ok(())
}

fn trunc(s: &str) -> String {
    if s.len() > 100 {
        format!(
            "{}...",
            &s[..s
                .char_indices()
                .take_while(|(i, _)| *i < 100)
                .last()
                .map(|(i, c)| i + c.len_utf8())
                .unwrap_or(0)]
        )
    } else {
        s.to_string()
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("grader-check: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
