//! `report --compare`: several runs (the arms of `make compare`) on one
//! page: a table of each arm's last evaluation and the training curves of
//! every arm together (reward, length, reflection words).

use std::path::{Path, PathBuf};

use artifacts::eval::{BenchSummary, EvalSummary};
use artifacts::metrics::Metric;

use crate::{escape, evaluations, iter_stats, iterations, line_chart, IterStats, Result};

/// One arm: its name and its run folder.
#[derive(Debug, Clone, PartialEq)]
pub struct Arm {
    pub name: String,
    pub run: PathBuf,
}

impl Arm {
    /// `NAME=RUN`, or a bare RUN named by its folder.
    pub fn parse(s: &str) -> Arm {
        match s.split_once('=') {
            Some((name, run)) => Arm {
                name: name.to_string(),
                run: run.into(),
            },
            None => Arm {
                name: Path::new(s)
                    .file_name()
                    .map_or_else(|| s.to_string(), |n| n.to_string_lossy().into_owned()),
                run: s.into(),
            },
        }
    }
}

/// The evaluation that stands for an arm: its latest checkpoint's
/// (`iter-NNNN` with the largest NNNN), else `base` (the arm's starting
/// checkpoint: the model itself, or an SFT arm's result).
pub fn last_evaluation(run: &Path) -> Option<(String, EvalSummary)> {
    evaluations(run)
        .into_iter()
        .max_by_key(|(n, _)| n != "base")
}

/// What `make compare` records beside each arm: its wall time in seconds.
fn wall_seconds(run: &Path) -> Option<u64> {
    std::fs::read_to_string(run.join("wall-seconds"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn pct(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

fn minutes(s: Option<u64>) -> String {
    s.map_or("-".into(), |s| format!("{}:{:02}", s / 60, s % 60))
}

fn bench<'a>(e: &'a EvalSummary, name: &str) -> Option<&'a BenchSummary> {
    e.benchmarks.iter().find(|b| b.benchmark == name)
}

/// One arm's figures, gathered.
struct Row {
    name: String,
    checkpoint: String,
    wall: Option<u64>,
    eval: Option<EvalSummary>,
    stats: Vec<IterStats>,
    rewards: Vec<(f64, f64)>,
}

fn gather(arm: &Arm, words: &[String]) -> Result<Row> {
    let mut stats = Vec::new();
    for (n, path) in iterations(&arm.run)? {
        stats.push(iter_stats(n, &artifacts::scored::read(&path)?, words));
    }
    let metrics_path = arm.run.join("metrics.parquet");
    let rewards = if metrics_path.exists() {
        artifacts::metrics::read(&metrics_path)?
            .iter()
            .filter_map(|r| Some((r.step as f64, r.get(Metric::RewardMean)?)))
            .collect()
    } else {
        vec![]
    };
    let last = last_evaluation(&arm.run);
    Ok(Row {
        name: arm.name.clone(),
        checkpoint: last.as_ref().map_or("-".into(), |(_, e)| e.policy.clone()),
        wall: wall_seconds(&arm.run),
        eval: last.map(|(_, e)| e),
        stats,
        rewards,
    })
}

/// The comparison's table as Markdown: per arm, the held-out set's strict
/// and lenient accuracy, boxed rate, mean length and most frequent
/// answer, GSM8K's strict and lenient accuracy, and wall time; then the
/// held-out accuracy per kind.
fn markdown(rows: &[Row], held_out: &str, other: &[String]) -> String {
    let mut s = format!(
        "| arm | wall time | {held_out} strict | {held_out} lenient | boxed | mean length | top answer |"
    );
    for o in other {
        s += &format!(" {o} strict | {o} lenient |");
    }
    s += "\n|---|---:|---:|---:|---:|---:|---|";
    for _ in other {
        s += "---:|---:|";
    }
    s += "\n";
    let lenient = |b: &BenchSummary| b.lenient_accuracy.map_or("-".into(), pct);
    for r in rows {
        s += &format!("| {} | {} |", r.name, minutes(r.wall));
        match r.eval.as_ref().and_then(|e| bench(e, held_out)) {
            Some(b) => {
                let top = b.top_answer.as_ref().map_or("-".into(), |a| {
                    format!("`{a}` ({}%)", pct(b.top_answer_share))
                });
                s += &format!(
                    " {} | {} | {} | {:.1} | {top} |",
                    pct(b.accuracy),
                    lenient(b),
                    pct(b.boxed_rate),
                    b.mean_response_length
                );
            }
            None => s += " - | - | - | - | - |",
        }
        for o in other {
            match r.eval.as_ref().and_then(|e| bench(e, o)) {
                Some(b) => s += &format!(" {} | {} |", pct(b.accuracy), lenient(b)),
                None => s += " - | - |",
            }
        }
        s += "\n";
    }
    // Strict accuracy per kind (held-out set).
    let mut kinds: Vec<String> = rows
        .iter()
        .filter_map(|r| r.eval.as_ref().and_then(|e| bench(e, held_out)))
        .flat_map(|b| b.by_kind.keys().cloned())
        .collect();
    kinds.sort();
    kinds.dedup();
    if !kinds.is_empty() {
        s += &format!("\n{held_out} strict accuracy by kind (problems):\n\n| arm |");
        let first = rows
            .iter()
            .find_map(|r| r.eval.as_ref().and_then(|e| bench(e, held_out)));
        for k in &kinds {
            let n = first
                .and_then(|b| b.by_kind.get(k))
                .map_or(String::new(), |g| format!(" ({})", g.problems));
            s += &format!(" {k}{n} |");
        }
        s += "\n|---|";
        for _ in &kinds {
            s += "---:|";
        }
        s += "\n";
        for r in rows {
            s += &format!("| {} |", r.name);
            for k in &kinds {
                let v = r
                    .eval
                    .as_ref()
                    .and_then(|e| bench(e, held_out))
                    .and_then(|b| b.by_kind.get(k));
                s += &format!(" {} |", v.map_or("-".into(), |g| pct(g.accuracy)));
            }
            s += "\n";
        }
    }
    s
}

/// The comparison page of `arms` and its table as Markdown. The held-out
/// set is the benchmark named `holdout` (else the first arm's first).
pub fn build(arms: &[Arm], words: &[String]) -> Result<(String, String)> {
    let rows: Vec<Row> = arms
        .iter()
        .map(|a| gather(a, words))
        .collect::<Result<_>>()?;
    let names: Vec<String> = rows
        .iter()
        .filter_map(|r| r.eval.as_ref())
        .flat_map(|e| e.benchmarks.iter().map(|b| b.benchmark.clone()))
        .fold(Vec::new(), |mut v, n| {
            if !v.contains(&n) {
                v.push(n);
            }
            v
        });
    let held_out = if names.iter().any(|n| n == "holdout") {
        "holdout".to_string()
    } else {
        names.first().cloned().unwrap_or_else(|| "holdout".into())
    };
    let other: Vec<String> = names.into_iter().filter(|n| *n != held_out).collect();
    let md = markdown(&rows, &held_out, &other);

    let trained: Vec<&Row> = rows.iter().filter(|r| !r.stats.is_empty()).collect();
    let per_iter = |f: fn(&IterStats) -> f64| -> Vec<(&str, Vec<(f64, f64)>)> {
        trained
            .iter()
            .map(|r| {
                let pts = r.stats.iter().map(|s| (s.iteration as f64, f(s))).collect();
                (r.name.as_str(), pts)
            })
            .collect()
    };
    let rewards: Vec<(&str, Vec<(f64, f64)>)> = trained
        .iter()
        .map(|r| (r.name.as_str(), r.rewards.clone()))
        .collect();
    let charts = [
        line_chart("Reward (mean)", "reward", &rewards, None)?,
        line_chart(
            "Training accuracy (rollouts)",
            "accuracy",
            &per_iter(|s| s.accuracy),
            None,
        )?,
        line_chart(
            "Response length (mean)",
            "tokens",
            &per_iter(|s| s.length_mean),
            None,
        )?,
        line_chart(
            "Reflection words",
            "share of responses",
            &per_iter(|s| s.reflection_share),
            None,
        )?,
    ];
    let mut html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>comparison</title>\n<style>\nbody {{ font-family: sans-serif; margin: 24px; color: #222; }}\n.grid {{ display: grid; grid-template-columns: repeat(auto-fill, 570px); gap: 8px; }}\ntable {{ border-collapse: collapse; margin: 8px 0 16px; }}\ntd, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}\nth:first-child, td:first-child {{ text-align: left; }}\n</style></head><body>\n<h1>Comparison of {} arms</h1>\n<p>Each arm's last evaluation (greedy; strict: the last \\boxed{{}}; lenient: the same responses read with every fallback). Reflection words: {}.</p>\n",
        rows.len(),
        escape(&words.join(", "))
    );
    html += &markdown_to_html(&md);
    html += "<h2>Checkpoints</h2>\n<table><tr><th>arm</th><th>run</th><th>evaluated checkpoint</th></tr>\n";
    for (r, a) in rows.iter().zip(arms) {
        html += &format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&r.name),
            escape(&a.run.display().to_string()),
            escape(&r.checkpoint)
        );
    }
    html += "</table>\n<h2>Training</h2>\n<div class=\"grid\">\n";
    for c in &charts {
        html += "<div>";
        html += c;
        html += "</div>\n";
    }
    html += "</div>\n</body></html>\n";
    Ok((html, md))
}

/// The Markdown tables above as HTML tables (and their captions as
/// paragraphs).
fn markdown_to_html(md: &str) -> String {
    let mut html = String::new();
    let mut in_table = false;
    for line in md.lines() {
        if let Some(inner) = line.strip_prefix('|') {
            if inner.starts_with("---") {
                continue;
            }
            if !in_table {
                html += "<table>\n";
                in_table = true;
            }
            html += "<tr>";
            for cell in inner.trim_end_matches('|').split(" |") {
                html += &format!("<td>{}</td>", escape(cell.trim().trim_matches('`')));
            }
            html += "</tr>\n";
        } else {
            if in_table {
                html += "</table>\n";
                in_table = false;
            }
            if !line.trim().is_empty() {
                html += &format!("<p>{}</p>\n", escape(line));
            }
        }
    }
    if in_table {
        html += "</table>\n";
    }
    html
}
