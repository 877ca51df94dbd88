//! Evaluation.
//!
//! - this module: evaluate's run, a checkpoint on benchmark prompt files ->
//!   per-sample results (results.parquet) and a summary per benchmark:
//!   accuracy (pass@1 greedy, or avg@k over k samples), maj@k, unbiased
//!   pass@k, boxed-answer rate, mean response length and truncation rate;
//! - [`grader_check`]: the grader's rates on labelled cases, and the
//!   copy-the-question bench.

pub mod grader_check;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use artifacts::eval::{BenchSummary, Breakdown, EvalRow, EvalSummary};
use artifacts::rollouts::FinishReason;
use grader::{Fallbacks, RewardScheme};
use stages::{rollout, verify};

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Artifact(#[from] artifacts::Error),
    #[error(transparent)]
    Rollout(#[from] rollout::RolloutError),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = EvalError> = std::result::Result<T, E>;

#[derive(Debug, Clone)]
pub struct Options {
    pub policy: PathBuf,
    /// (benchmark name, prompts file)
    pub benchmarks: Vec<(String, PathBuf)>,
    pub output: PathBuf,
    /// Samples per problem: 1 is greedy unless a temperature is given.
    pub samples: usize,
    pub temperature: Option<f64>,
    pub top_p: f64,
    /// keep only the k most likely tokens (None: off)
    pub top_k: Option<usize>,
    /// stop a response at the first of these (and cut it there before grading)
    pub stop_words: Vec<String>,
    /// evaluate rows i % n == k of each benchmark only
    pub shard: rollout::Shard,
    pub max_new_tokens: usize,
    pub limit: Option<usize>,
    pub batch_size: usize,
    pub seed: u64,
    pub fallbacks: Fallbacks,
    pub device: String,
    pub dtype: model::Precision,
}

/// Unbiased pass@k from n samples of which c are correct:
/// 1 - C(n-c, k) / C(n, k).
pub fn pass_at_k(n: usize, c: usize, k: usize) -> f64 {
    if k == 0 || n < k {
        return f64::NAN;
    }
    if n - c < k {
        return 1.0;
    }
    // prod_{i = n-c+1}^{n} (1 - k / i)
    1.0 - ((n - c + 1)..=n)
        .map(|i| 1.0 - k as f64 / i as f64)
        .product::<f64>()
}

/// Whether the most frequent extracted answer (ties: the one seen first)
/// is correct; samples without an answer do not vote.
pub fn majority_correct(samples: &[&EvalRow]) -> bool {
    let mut counts: HashMap<&str, (usize, usize, bool)> = HashMap::new();
    for (i, s) in samples.iter().enumerate() {
        if let Some(a) = s.extracted_answer.as_deref() {
            let e = counts.entry(a.trim()).or_insert((0, i, s.correct));
            e.0 += 1;
        }
    }
    counts
        .values()
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
        .is_some_and(|e| e.2)
}

/// What a benchmark's problems are labelled with, by id, to break its
/// figures down: the metadata's `kind` and the `level` column.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    pub kind: HashMap<String, String>,
    pub level: HashMap<String, i64>,
}

impl Labels {
    /// The labels of a prompts file's rows.
    pub fn of(prompts: &[artifacts::prompts::PromptRow]) -> Labels {
        let mut l = Labels::default();
        for p in prompts {
            if let Some(level) = p.level {
                l.level.insert(p.id.clone(), level);
            }
            let kind = p
                .metadata
                .as_deref()
                .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
                .and_then(|m| m.get("kind")?.as_str().map(str::to_string));
            if let Some(kind) = kind {
                l.kind.insert(p.id.clone(), kind);
            }
        }
        l
    }
}

/// Whether a row is right when its answer is read leniently.
pub type Lenient<'a> = &'a dyn Fn(&EvalRow) -> bool;

/// The figures of some rows (all samples of their problems).
fn breakdown(rows: &[&EvalRow], lenient: Option<Lenient>) -> Breakdown {
    let n = rows.len().max(1) as f64;
    let ids: std::collections::HashSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    Breakdown {
        problems: ids.len(),
        accuracy: rows.iter().filter(|r| r.correct).count() as f64 / n,
        lenient_accuracy: lenient.map(|f| rows.iter().filter(|r| f(r)).count() as f64 / n),
        boxed_rate: rows.iter().filter(|r| r.extracted_answer.is_some()).count() as f64 / n,
        mean_response_length: rows.iter().map(|r| r.response_length as f64).sum::<f64>() / n,
    }
}

/// The rows grouped by `label` of their problem (rows without one left
/// out), each group's figures.
fn grouped<T: ToString>(
    rows: &[EvalRow],
    label: &HashMap<String, T>,
    lenient: Option<Lenient>,
) -> std::collections::BTreeMap<String, Breakdown> {
    let mut groups: std::collections::BTreeMap<String, Vec<&EvalRow>> = Default::default();
    for r in rows {
        if let Some(l) = label.get(&r.id) {
            groups.entry(l.to_string()).or_default().push(r);
        }
    }
    groups
        .into_iter()
        .map(|(k, v)| (k, breakdown(&v, lenient)))
        .collect()
}

/// The summary of one benchmark's rows.
pub fn summarize(benchmark: &str, rows: &[EvalRow], samples: usize) -> BenchSummary {
    summarize_labelled(benchmark, rows, samples, &Labels::default(), None)
}

/// [`summarize`], broken down by the problems' kinds and levels; with
/// `lenient`, each accuracy also read leniently.
pub fn summarize_labelled(
    benchmark: &str,
    rows: &[EvalRow],
    samples: usize,
    labels: &Labels,
    lenient: Option<Lenient>,
) -> BenchSummary {
    let mut by_id: Vec<(&str, Vec<&EvalRow>)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for r in rows {
        let i = *index.entry(r.id.as_str()).or_insert_with(|| {
            by_id.push((r.id.as_str(), Vec::new()));
            by_id.len() - 1
        });
        by_id[i].1.push(r);
    }
    let n = rows.len().max(1) as f64;
    let p = by_id.len().max(1) as f64;
    let frac = |f: &dyn Fn(&EvalRow) -> bool| rows.iter().filter(|r| f(r)).count() as f64 / n;
    // The most frequent extracted answer (ties: the smallest string).
    let mut answers: HashMap<&str, usize> = HashMap::new();
    for a in rows.iter().filter_map(|r| r.extracted_answer.as_deref()) {
        *answers.entry(a.trim()).or_default() += 1;
    }
    let top = answers
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)));
    BenchSummary {
        benchmark: benchmark.to_string(),
        problems: by_id.len(),
        samples,
        accuracy: frac(&|r| r.correct),
        lenient_accuracy: lenient.map(|f| frac(&|r| f(r))),
        maj_at_k: by_id.iter().filter(|(_, s)| majority_correct(s)).count() as f64 / p,
        pass_at_k: by_id
            .iter()
            .map(|(_, s)| pass_at_k(s.len(), s.iter().filter(|r| r.correct).count(), samples))
            .sum::<f64>()
            / p,
        boxed_rate: frac(&|r| r.extracted_answer.is_some()),
        mean_response_length: rows.iter().map(|r| r.response_length as f64).sum::<f64>() / n,
        truncation_rate: frac(&|r| FinishReason::is_truncation(&r.finish_reason)),
        top_answer: top.as_ref().map(|(a, _)| a.to_string()),
        top_answer_share: top.map_or(0.0, |(_, c)| c as f64 / n),
        by_kind: grouped(rows, &labels.kind, lenient),
        by_level: grouped(rows, &labels.level, lenient),
    }
}

/// The summary as a Markdown table, its header naming the extraction.
pub fn markdown(
    summaries: &[BenchSummary],
    policy: &Path,
    fallbacks: Fallbacks,
    samples: usize,
    sampling: &str,
) -> String {
    let k = samples;
    // With one sample, maj@1 and pass@1 are the accuracy itself: one column.
    let (head, rule) = if k == 1 {
        ("pass@1".to_string(), "---:|")
    } else {
        (format!("avg@{k} | maj@{k} | pass@{k}"), "---:|---:|---:|")
    };
    let mut s = format!(
        "Evaluation of `{}` ({sampling}); answers: {}\n\n| benchmark | problems | {head} | boxed | mean length | truncated | top answer |\n|---|---:|{rule}---:|---:|---:|---|\n",
        policy.display(),
        verify::describe(fallbacks),
    );
    for b in summaries {
        let acc = if k == 1 {
            format!("{:.1}", 100.0 * b.accuracy)
        } else {
            format!(
                "{:.1} | {:.1} | {:.1}",
                100.0 * b.accuracy,
                100.0 * b.maj_at_k,
                100.0 * b.pass_at_k
            )
        };
        let top = match &b.top_answer {
            Some(a) => format!("`{a}` ({:.1}%)", 100.0 * b.top_answer_share),
            None => "-".into(),
        };
        s += &format!(
            "| {} | {} | {acc} | {:.1} | {:.1} | {:.1} | {top} |\n",
            b.benchmark,
            b.problems,
            100.0 * b.boxed_rate,
            b.mean_response_length,
            100.0 * b.truncation_rate
        );
    }
    // The same responses read leniently, unless they already were.
    if fallbacks != Fallbacks::ALL {
        let parts: Vec<String> = summaries
            .iter()
            .filter_map(|b| {
                Some(format!(
                    "{} {:.1}",
                    b.benchmark,
                    100.0 * b.lenient_accuracy?
                ))
            })
            .collect();
        if !parts.is_empty() {
            s += &format!(
                "\nRead leniently (every fallback) from the same responses: {}\n",
                parts.join(", ")
            );
        }
    }
    // Per kind and per level, where the prompts have them.
    for b in summaries {
        for (what, groups) in [("kind", &b.by_kind), ("level", &b.by_level)] {
            if groups.is_empty() {
                continue;
            }
            let acc = if k == 1 {
                "pass@1".to_string()
            } else {
                format!("avg@{k}")
            };
            s += &format!(
                "\n`{}` by {what}:\n\n| {what} | problems | {acc} | boxed | mean length |\n|---|---:|---:|---:|---:|\n",
                b.benchmark
            );
            for (name, g) in groups {
                s += &format!(
                    "| {name} | {} | {:.1} | {:.1} | {:.1} |\n",
                    g.problems,
                    100.0 * g.accuracy,
                    100.0 * g.boxed_rate,
                    g.mean_response_length
                );
            }
        }
    }
    s
}

/// The file beside `output` that holds the summary as JSON.
pub fn summary_path(output: &Path) -> PathBuf {
    artifacts::eval::summary_path(output)
}

/// Run every benchmark; `progress(benchmark, new_tokens, finished)`.
pub fn run(
    opts: &Options,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<(Vec<EvalRow>, Vec<BenchSummary>, String)> {
    if opts.benchmarks.is_empty() {
        return Err(EvalError::Invalid("no benchmark prompt files given".into()));
    }
    let inputs: Vec<&Path> = (opts.benchmarks.iter().map(|(_, p)| p.as_path()))
        .chain([opts.policy.as_path()])
        .collect();
    for out in [opts.output.clone(), summary_path(&opts.output)] {
        durable::check_not_input(&out, &inputs).map_err(|e| EvalError::Invalid(e.to_string()))?;
    }
    let temperature = opts
        .temperature
        .unwrap_or(if opts.samples > 1 { 0.6 } else { 0.0 });
    if opts.samples > 1 && temperature == 0.0 {
        return Err(EvalError::Invalid(
            "--samples > 1 with greedy decoding gives k copies of one answer: set --temperature"
                .into(),
        ));
    }
    // Results to standard output (`-o -`): the scratch folder goes to the
    // temporary directory and no summary file is written.
    let to_stdout = artifacts::is_stdio(&opts.output);
    if to_stdout && dist::world().size() > 1 {
        return Err(EvalError::Invalid(
            "-o - under an MPI job: the ranks write a dataset directory of one part each; name it with -o".into(),
        ));
    }
    let scratch = if to_stdout {
        std::env::temp_dir().join(format!("evaluate-{}.rollouts.tmp", std::process::id()))
    } else {
        opts.output.with_extension("rollouts.tmp")
    };
    std::fs::create_dir_all(&scratch).map_err(|e| EvalError::Io {
        path: scratch.display().to_string(),
        message: e.to_string(),
    })?;
    // Each benchmark's labels (kind, level), read before anything is
    // generated; a stream (standard input, a pipe) is read once, by the
    // rollout, and has no breakdown.
    let mut labels: Vec<Labels> = Vec::new();
    for (_, prompts) in &opts.benchmarks {
        let readable_twice = !artifacts::is_stdio(prompts)
            && std::fs::metadata(prompts).is_ok_and(|m| m.is_file() || m.is_dir());
        let l = if readable_twice {
            Labels::of(&artifacts::prompts::read(prompts)?)
        } else {
            Labels::default()
        };
        labels.push(l);
    }
    let world = dist::world();
    let mut all = Vec::new();
    let scheme = RewardScheme::default();
    let result = (|| -> Result<()> {
        for (name, prompts) in &opts.benchmarks {
            let out = scratch.join(format!("{name}.parquet"));
            let ro = rollout::Options {
                prompts: prompts.clone(),
                policy: opts.policy.clone(),
                output: out.clone(),
                samples_per_prompt: opts.samples,
                max_new_tokens: opts.max_new_tokens,
                temperature,
                top_p: opts.top_p,
                top_k: opts.top_k,
                seed: opts.seed,
                batch_size: opts.batch_size,
                shard: opts.shard,
                prompt_batch: None,
                shuffle_seed: 0,
                max_prompt_tokens: None,
                filter_groups: false,
                max_extra_prompts: 0,
                device: opts.device.clone(),
                dtype: opts.dtype,
                stop_words: opts.stop_words.clone(),
                limit: opts.limit,
            };
            rollout::run(&ro, &mut |tokens, done| progress(name, tokens, done))?;
            // Under an N-rank MPI job the rollouts are a dataset of one
            // part per rank: this rank grades its own part.
            let mine = if world.size() > 1 {
                out.join(artifacts::part_name(world.rank()))
            } else {
                out
            };
            all.extend(artifacts::rollouts::read(&mine)?.into_iter().map(|r| {
                let response = grader::cut_at_stop(&r.response, &opts.stop_words);
                let g = grader::grade_with(response, &r.answer, &scheme, opts.fallbacks);
                EvalRow {
                    benchmark: name.clone(),
                    id: r.prompt_id,
                    sample_index: r.sample_index,
                    answer: r.answer,
                    response: r.response,
                    extracted_answer: g.extracted_answer.filter(|_| g.has_answer),
                    correct: g.correct,
                    response_length: r.response_token_ids.len() as i64,
                    finish_reason: r.finish_reason,
                }
            }));
        }
        Ok(())
    })();
    world.barrier();
    if world.is_root() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    result?;
    artifacts::eval::write(&opts.output, &all)?;
    if world.size() > 1 {
        // Every rank's rows, for the summary: the dataset just written.
        all = artifacts::eval::read(&opts.output)?;
    }
    let summaries: Vec<BenchSummary> = opts
        .benchmarks
        .iter()
        .zip(&labels)
        .map(|((name, _), labels)| {
            let rows: Vec<EvalRow> = all
                .iter()
                .filter(|r| &r.benchmark == name)
                .cloned()
                .collect();
            // The same responses read with every fallback (the grader is
            // cheap next to decoding): strict and lenient from one run.
            let lenient = |r: &EvalRow| {
                let response = grader::cut_at_stop(&r.response, &opts.stop_words);
                grader::grade_with(response, &r.answer, &scheme, Fallbacks::ALL).correct
            };
            summarize_labelled(name, &rows, opts.samples, labels, Some(&lenient))
        })
        .collect();
    let sampling = if temperature == 0.0 {
        "greedy".to_string()
    } else {
        format!(
            "{} samples, temperature {temperature}, top-p {}",
            opts.samples, opts.top_p
        )
    };
    let md = markdown(
        &summaries,
        &opts.policy,
        opts.fallbacks,
        opts.samples,
        &sampling,
    );
    let summary = EvalSummary {
        policy: opts.policy.display().to_string(),
        extraction: verify::describe(opts.fallbacks),
        sampling,
        max_new_tokens: opts.max_new_tokens,
        benchmarks: summaries.clone(),
    };
    if !to_stdout && world.is_root() {
        artifacts::eval::write_summary(summary_path(&opts.output), &summary)?;
    }
    Ok((all, summaries, md))
}
