//! report: a run folder -> one self-contained HTML page.
//!
//! Reads `metrics.parquet` (ppo-step's rows), each `iter-NNNN/scored.parquet`
//! (the responses of that iteration) and `eval/*.summary.json` (evaluate's
//! summaries), and draws with plotters (inline SVG):
//! reward, accuracy and no-answer rate; response length (mean and the
//! 10th-90th percentile band); KL to the reference, entropy and clip
//! fraction; the share of responses with reflection words per iteration
//! (the recipe's "aha moment" analysis); a few sample responses per
//! iteration; and the evaluation table.

use std::path::{Path, PathBuf};

use artifacts::eval::EvalSummary;
use artifacts::metrics::{Metric, MetricsRow};
use artifacts::scored::ScoredRow;
use plotters::prelude::*;

pub mod compare;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Artifact(#[from] artifacts::Error),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("chart `{0}`: {1}")]
    Chart(String, String),
}

pub type Result<T, E = ReportError> = std::result::Result<T, E>;

/// The reflection phrases of the recipe's analysis.
pub use grader::REFLECTION_WORDS;

/// Whether `response` has any of `words` (case-insensitive, whole words:
/// "wait" does not match "awaited").
pub fn has_reflection(response: &str, words: &[String]) -> bool {
    let text = response.to_lowercase();
    words.iter().any(|w| {
        let w = w.to_lowercase();
        text.match_indices(&w).any(|(i, _)| {
            let before = text[..i].chars().next_back();
            let after = text[i + w.len()..].chars().next();
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        })
    })
}

/// One iteration's responses, summarised.
#[derive(Debug, Clone, PartialEq)]
pub struct IterStats {
    pub iteration: i64,
    pub responses: usize,
    pub accuracy: f64,
    pub boxed_rate: f64,
    pub length_mean: f64,
    pub length_p10: f64,
    pub length_p90: f64,
    pub reflection_share: f64,
    /// How many responses got each verdict (grader::Verdict codes).
    pub verdicts: std::collections::BTreeMap<String, usize>,
    /// (label, prompt question part, response, reward)
    pub samples: Vec<(String, String, f64)>,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

/// Stats of one iteration's scored rows; samples: the first correct, the
/// first wrong and the first unanswered response (in file order).
pub fn iter_stats(iteration: i64, rows: &[ScoredRow], words: &[String]) -> IterStats {
    let n = rows.len().max(1) as f64;
    let mut lens: Vec<f64> = rows
        .iter()
        .map(|r| r.rollout.response_token_ids.len() as f64)
        .collect();
    lens.sort_by(|a, b| a.total_cmp(b));
    let mut samples = Vec::new();
    for (label, pick) in [
        (
            "correct",
            &(|r: &ScoredRow| r.correct) as &dyn Fn(&ScoredRow) -> bool,
        ),
        ("wrong", &|r: &ScoredRow| r.has_answer && !r.correct),
        ("no answer", &|r: &ScoredRow| !r.has_answer),
    ] {
        if let Some(r) = rows.iter().find(|r| pick(r)) {
            samples.push((
                format!("{label} (gold {})", r.rollout.answer),
                r.rollout.response.clone(),
                r.reward,
            ));
        }
    }
    IterStats {
        iteration,
        responses: rows.len(),
        accuracy: rows.iter().filter(|r| r.correct).count() as f64 / n,
        boxed_rate: rows.iter().filter(|r| r.has_answer).count() as f64 / n,
        length_mean: lens.iter().sum::<f64>() / n,
        length_p10: percentile(&lens, 0.1),
        length_p90: percentile(&lens, 0.9),
        reflection_share: rows
            .iter()
            .filter(|r| has_reflection(&r.rollout.response, words))
            .count() as f64
            / n,
        verdicts: rows.iter().fold(Default::default(), |mut m, r| {
            *m.entry(r.verdict.clone()).or_default() += 1;
            m
        }),
        samples,
    }
}

/// The share of each iteration's responses with verdict `code`.
fn per_iter_verdict(stats: &[IterStats], code: &str) -> Vec<(f64, f64)> {
    stats
        .iter()
        .map(|s| {
            let n = s.verdicts.get(code).copied().unwrap_or(0);
            (s.iteration as f64, n as f64 / s.responses.max(1) as f64)
        })
        .collect()
}

/// Every verdict code seen in any iteration, in the grader's order.
fn verdicts_seen(stats: &[IterStats]) -> Vec<&'static str> {
    grader::Verdict::ALL
        .iter()
        .map(|v| v.code())
        .filter(|c| stats.iter().any(|s| s.verdicts.contains_key(*c)))
        .collect()
}

/// Points of a chart line: (x, y).
pub type Points = [(f64, f64)];

/// A line chart as SVG: `series` of (name, points), optional band
/// (lower, upper points) drawn under the first series.
pub fn line_chart(
    title: &str,
    y_label: &str,
    series: &[(&str, Vec<(f64, f64)>)],
    band: Option<(&Points, &Points)>,
) -> Result<String> {
    let mut svg = String::new();
    let err = |e: &dyn std::fmt::Display| ReportError::Chart(title.to_string(), e.to_string());
    {
        let root = SVGBackend::with_string(&mut svg, (560, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let pts = series
            .iter()
            .flat_map(|(_, p)| p.iter())
            .chain(band.iter().flat_map(|(l, u)| l.iter().chain(u.iter())))
            .filter(|(_, y)| y.is_finite());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in pts {
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
        if x0 > x1 {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        if x1 - x0 < 1.0 {
            x1 = x0 + 1.0;
        }
        let pad = ((y1 - y0) * 0.08).max(1e-3);
        // Headroom above the data for the legend.
        let top = pad + (y1 - y0).max(1e-3) * 0.12 * series.len() as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(32)
            .y_label_area_size(56)
            .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + top))
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("iteration")
            .x_labels(((x1 - x0) as usize + 1).min(13))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_desc(y_label)
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| err(&e))?;
        let palette = [&BLUE, &RED, &GREEN, &MAGENTA, &CYAN, &BLACK];
        if let Some((lo, hi)) = band {
            let mut poly: Vec<(f64, f64)> = lo.to_vec();
            poly.extend(hi.iter().rev());
            chart
                .draw_series(std::iter::once(Polygon::new(poly, BLUE.mix(0.15).filled())))
                .map_err(|e| err(&e))?;
        }
        for (i, (name, points)) in series.iter().enumerate() {
            let color = palette[i % palette.len()];
            let pts: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.1.is_finite()).collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(|e| err(&e))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An error when the page (or table) at `output` would replace what the
/// report reads from `runs`: the metrics file, an iteration folder, the
/// evaluations. `RUN/report.html` is none of them.
pub fn check_output(output: &Path, runs: &[&Path]) -> Result<()> {
    let mut inputs: Vec<PathBuf> = Vec::new();
    for run in runs {
        inputs.push(run.join("metrics.parquet"));
        inputs.push(run.join("eval"));
        if let Ok(rd) = std::fs::read_dir(run) {
            inputs.extend(rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("iter-"))
            }));
        }
    }
    let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    durable::check_not_input(output, &inputs).map_err(|e| ReportError::Artifact(e.into()))
}

/// Iteration folders of `run` with a scored file, in order.
pub(crate) fn iterations(run: &Path) -> Result<Vec<(i64, PathBuf)>> {
    let rd = std::fs::read_dir(run).map_err(|e| ReportError::Io {
        path: run.display().to_string(),
        message: e.to_string(),
    })?;
    let mut out: Vec<(i64, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n: i64 = name.strip_prefix("iter-")?.parse().ok()?;
            let scored = e.path().join("scored.parquet");
            scored.exists().then_some((n, scored))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// A metric's series over steps, labelled with its name.
fn metric(rows: &[MetricsRow], m: Metric) -> (&'static str, Vec<(f64, f64)>) {
    let points = rows
        .iter()
        .filter_map(|r| r.get(m).map(|v| (r.step as f64, v)))
        .collect();
    (m.name(), points)
}

/// The evaluation summaries under `run/eval`: (name, summary). A file
/// that is not a summary is left out.
pub(crate) fn evaluations(run: &Path) -> Vec<(String, EvalSummary)> {
    let Ok(rd) = std::fs::read_dir(run.join("eval")) else {
        return vec![];
    };
    let mut out: Vec<(String, EvalSummary)> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".summary.json")?.to_string();
            Some((stem, artifacts::eval::read_summary(e.path()).ok()?))
        })
        .collect();
    // base first, then iterations in order
    out.sort_by_key(|(n, _)| (n != "base", n.clone()));
    out
}

/// Each benchmark's accuracy against the iterations done when its
/// checkpoint was evaluated: `base` at 0, `iter-NNNN` (the policy after
/// iteration NNNN, 0-based) at NNNN + 1; other evaluations are left out.
pub fn eval_curves(evals: &[(String, EvalSummary)]) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut curves: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for (name, summary) in evals {
        let x = match name.as_str() {
            "base" => 0.0,
            n => match n.strip_prefix("iter-").and_then(|i| i.parse::<u64>().ok()) {
                Some(i) => (i + 1) as f64,
                None => continue,
            },
        };
        for b in &summary.benchmarks {
            match curves.iter_mut().find(|(n, _)| *n == b.benchmark) {
                Some((_, pts)) => pts.push((x, b.accuracy)),
                None => curves.push((b.benchmark.clone(), vec![(x, b.accuracy)])),
            }
        }
    }
    for (_, pts) in &mut curves {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    curves
}

/// The report page of run folder `run`.
pub fn build(run: &Path, words: &[String]) -> Result<String> {
    let metrics_path = run.join("metrics.parquet");
    let metrics = if metrics_path.exists() {
        artifacts::metrics::read(&metrics_path)?
    } else {
        vec![]
    };
    let mut stats = Vec::new();
    for (n, path) in iterations(run)? {
        stats.push(iter_stats(n, &artifacts::scored::read(&path)?, words));
    }
    let per_iter = |f: fn(&IterStats) -> f64| -> Vec<(f64, f64)> {
        stats.iter().map(|s| (s.iteration as f64, f(s))).collect()
    };
    let evals = evaluations(run);
    let curves = eval_curves(&evals);
    let mut charts = Vec::new();
    if curves.iter().any(|(_, pts)| pts.len() > 1) {
        let series: Vec<(&str, Vec<(f64, f64)>)> = curves
            .iter()
            .map(|(n, pts)| (n.as_str(), pts.clone()))
            .collect();
        charts.push(line_chart(
            "Evaluation accuracy by iterations done (0: base)",
            "accuracy",
            &series,
            None,
        )?);
    }
    charts.extend([
        line_chart(
            "Reward, accuracy, no-answer rate",
            "",
            &[
                metric(&metrics, Metric::RewardMean),
                metric(&metrics, Metric::Accuracy),
                metric(&metrics, Metric::NoAnswerRate),
            ],
            None,
        )?,
        line_chart(
            "Response length (mean, 10th-90th percentile)",
            "tokens",
            &[("mean length", per_iter(|s| s.length_mean))],
            Some((&per_iter(|s| s.length_p10), &per_iter(|s| s.length_p90))),
        )?,
        line_chart(
            "Reflection words",
            "share of responses",
            &[(
                "share with a reflection word",
                per_iter(|s| s.reflection_share),
            )],
            None,
        )?,
        line_chart(
            "Verdicts (why each response got its reward)",
            "share of responses",
            &verdicts_seen(&stats)
                .into_iter()
                .map(|code| (code, per_iter_verdict(&stats, code)))
                .collect::<Vec<_>>(),
            None,
        )?,
        line_chart(
            "KL to reference",
            "nats/token",
            &[metric(&metrics, Metric::KlToRef)],
            None,
        )?,
        line_chart(
            "Entropy",
            "nats/token",
            &[metric(&metrics, Metric::Entropy)],
            None,
        )?,
        line_chart(
            "Clip fractions",
            "share",
            &[
                metric(&metrics, Metric::PgClipfrac),
                metric(&metrics, Metric::VfClipfrac),
            ],
            None,
        )?,
    ]);
    // The variants' metrics, when a run has them.
    let has = |m: Metric| metrics.iter().any(|r| r.get(m).is_some());
    let shares: Vec<_> = [
        Metric::FilteredGroupRatio,
        Metric::OverlongFilteredRatio,
        Metric::TisClipfrac,
    ]
    .into_iter()
    .filter(|&m| has(m))
    .map(|m| metric(&metrics, m))
    .collect();
    if !shares.is_empty() {
        charts.push(line_chart(
            "Filtered and capped (dynamic sampling, overlong filter, TIS)",
            "share",
            &shares,
            None,
        )?);
    }
    let others: Vec<_> = [
        Metric::ExtraPrompts,
        Metric::OverlongPenaltyMean,
        Metric::TisWeightMean,
    ]
    .into_iter()
    .filter(|&m| has(m))
    .map(|m| metric(&metrics, m))
    .collect();
    for (name, points) in others {
        charts.push(line_chart(name, "", &[(name, points)], None)?);
    }
    let kl_coefs: Vec<f64> = metrics
        .iter()
        .filter_map(|r| r.get(Metric::KlCoef))
        .collect();
    if kl_coefs.windows(2).any(|w| w[0] != w[1]) {
        charts.push(line_chart(
            "KL coefficient (adaptive)",
            "",
            &[metric(&metrics, Metric::KlCoef)],
            None,
        )?);
    }
    if metrics.iter().any(|m| m.get(Metric::VfLoss).is_some()) {
        charts.push(line_chart(
            "Critic",
            "",
            &[
                metric(&metrics, Metric::VfLoss),
                metric(&metrics, Metric::VfExplainedVar),
            ],
            None,
        )?);
    }
    let name = run
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>run {0}</title>\n<style>\nbody {{ font-family: sans-serif; margin: 24px; color: #222; }}\n.grid {{ display: grid; grid-template-columns: repeat(auto-fill, 570px); gap: 8px; }}\ntable {{ border-collapse: collapse; margin: 8px 0 16px; }}\ntd, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}\nth:first-child, td:first-child {{ text-align: left; }}\npre {{ white-space: pre-wrap; background: #f6f6f6; padding: 6px; max-width: 1100px; }}\n</style></head><body>\n<h1>Run {0}</h1>\n<p>{1} iterations with responses, {2} metrics rows. Reflection words: {3}.</p>\n",
        escape(&name),
        stats.len(),
        metrics.len(),
        escape(&words.join(", "))
    );
    if !evals.is_empty() {
        html += "<h2>Evaluations</h2>\n";
        for (ename, v) in &evals {
            html += &format!(
                "<h3>{}</h3><p>{}; {}; answers: {}</p>\n<table><tr><th>benchmark</th><th>problems</th><th>accuracy</th><th>maj@k</th><th>pass@k</th><th>boxed</th><th>mean length</th><th>truncated</th><th>top answer</th></tr>\n",
                escape(ename),
                escape(&v.policy),
                escape(&v.sampling),
                escape(&v.extraction)
            );
            for b in &v.benchmarks {
                let pct = |x: f64| format!("{:.1}", 100.0 * x);
                // The most frequent answer: a copied one shows here.
                let top = match &b.top_answer {
                    Some(a) => format!("{} ({}%)", escape(a), pct(b.top_answer_share)),
                    None => "-".into(),
                };
                html += &format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{top}</td></tr>\n",
                    escape(&b.benchmark),
                    b.problems,
                    pct(b.accuracy),
                    pct(b.maj_at_k),
                    pct(b.pass_at_k),
                    pct(b.boxed_rate),
                    b.mean_response_length,
                    pct(b.truncation_rate)
                );
            }
            html += "</table>\n";
            // Accuracy per kind and per level, where the prompts have them.
            for b in &v.benchmarks {
                for (what, groups) in [("kind", &b.by_kind), ("level", &b.by_level)] {
                    if groups.is_empty() {
                        continue;
                    }
                    let parts: Vec<String> = groups
                        .iter()
                        .map(|(k, g)| {
                            format!("{} {:.1}% ({})", escape(k), 100.0 * g.accuracy, g.problems)
                        })
                        .collect();
                    html += &format!(
                        "<p>{} accuracy by {what}: {}</p>\n",
                        escape(&b.benchmark),
                        parts.join(", ")
                    );
                }
            }
        }
    }
    html += "<h2>Training</h2>\n<div class=\"grid\">\n";
    for c in &charts {
        html += "<div>";
        html += c;
        html += "</div>\n";
    }
    html += "</div>\n<h2>Per iteration</h2>\n<table><tr><th>iteration</th><th>responses</th><th>accuracy</th><th>boxed</th><th>mean length</th><th>reflection</th></tr>\n";
    for s in &stats {
        html += &format!(
            "<tr><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.1}</td><td>{:.3}</td></tr>\n",
            s.iteration, s.responses, s.accuracy, s.boxed_rate, s.length_mean, s.reflection_share
        );
    }
    html += "</table>\n";
    // Why each response got its reward: a run that learns to restate the
    // question (not_final_form) or to stop answering shows here.
    let codes = verdicts_seen(&stats);
    if !codes.is_empty() {
        html += "<h2>Verdicts per iteration</h2>\n<p>Share of responses by the grader's rule that decided their reward (docs/schemas.md lists the codes).</p>\n<table><tr><th>iteration</th>";
        for c in &codes {
            html += &format!("<th>{c}</th>");
        }
        html += "</tr>\n";
        for s in &stats {
            html += &format!("<tr><td>{}</td>", s.iteration);
            for c in &codes {
                let n = s.verdicts.get(*c).copied().unwrap_or(0);
                html += &format!(
                    "<td>{:.1}%</td>",
                    100.0 * n as f64 / s.responses.max(1) as f64
                );
            }
            html += "</tr>\n";
        }
        html += "</table>\n";
    }
    html += "<h2>Sample responses</h2>\n";
    for s in &stats {
        html += &format!("<details><summary>iteration {}</summary>\n", s.iteration);
        for (label, response, reward) in &s.samples {
            html += &format!(
                "<p><b>{}</b>, reward {reward}</p><pre>{}</pre>\n",
                escape(label),
                escape(response)
            );
        }
        html += "</details>\n";
    }
    html += "</body></html>\n";
    Ok(html)
}
