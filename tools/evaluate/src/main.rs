//! evaluate: benchmark a checkpoint.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use stages::verify::{self, Fallback};

/// Evaluate a checkpoint on benchmark prompt files (prep-math's output,
/// e.g. `make data-eval` writes data/eval/<benchmark>.parquet).
///
/// Writes one row per sample to --output (benchmark, id, response,
/// extracted_answer, correct, response_length, finish_reason), the summary
/// as JSON beside it (<output>.summary.json), and prints the summary as a
/// Markdown table: pass@1 with greedy decoding by default; with --samples k,
/// avg@k, maj@k and unbiased pass@k; the boxed-answer rate, mean response
/// length and truncation rate. The table's header says how answers were
/// extracted.
#[derive(Parser)]
#[command(allow_negative_numbers = true, version = version::VERSION, about, long_about)]
struct Cli {
    /// Checkpoint directory (HF layout).
    #[arg(long)]
    policy: PathBuf,
    /// Benchmark prompt files; the benchmark is named by the file stem, or
    /// NAME=PATH.
    #[arg(required = true)]
    benchmarks: Vec<String>,
    /// Per-sample results Parquet (written atomically).
    #[arg(short, long)]
    output: PathBuf,
    /// Samples per problem (k). [range: >= 1]
    #[arg(long, default_value_t = 1, value_parser = flags::at_least_one)]
    samples: usize,
    /// Sampling temperature [default: 0 (greedy) for one sample, 0.6 for k > 1]. [range: >= 0]
    #[arg(long, value_parser = flags::non_negative)]
    temperature: Option<f64>,
    /// Nucleus sampling threshold. [range: > 0 and <= 1]
    #[arg(long, default_value_t = 1.0, value_parser = flags::probability)]
    top_p: f64,
    /// Keep only the k most likely tokens (absent or 0: off).
    #[arg(long)]
    top_k: Option<usize>,
    /// Stop each response at the first of these strings and grade it only
    /// up to there (comma-separated; `--stop-words ''` for none).
    #[arg(long, visible_alias = "stop", value_delimiter = ',', default_values_t = grader::STOP_WORDS.map(String::from))]
    stop_words: Vec<String>,
    /// Evaluate only rows i % n == k of each benchmark, as k/n (the parts'
    /// results files concatenate; each summary covers its part).
    #[arg(long, default_value = "0/1")]
    shard: stages::rollout::Shard,
    /// Longest response, in tokens. [range: >= 1]
    #[arg(long, default_value_t = 1024, value_parser = flags::at_least_one)]
    max_new_tokens: usize,
    /// Only the first N problems of each benchmark (quick looks). [range: >= 1]
    #[arg(long, value_parser = flags::at_least_one)]
    limit: Option<usize>,
    /// Sequences decoded together. [range: >= 1]
    #[arg(long, default_value_t = 16, value_parser = flags::at_least_one)]
    batch_size: usize,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Extraction fallbacks when there is no \boxed{} (comma-separated);
    /// the table's header names them.
    #[arg(long, value_enum, value_delimiter = ',')]
    fallback: Vec<Fallback>,
    /// cpu or cuda:N (needs the `cuda` cargo feature).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// The dtype the weights are loaded and decoded in (on the CPU f32 is
    /// the fast path).
    #[arg(long, value_enum, default_value_t = model::Precision::F32)]
    dtype: model::Precision,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let benchmarks: Vec<(String, PathBuf)> = cli
        .benchmarks
        .iter()
        .map(|b| match b.split_once('=') {
            Some((name, path)) => (name.to_string(), PathBuf::from(path)),
            None => {
                let p = PathBuf::from(b);
                let name = p
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| b.clone());
                (name, p)
            }
        })
        .collect();
    // A Hugging Face id (`org/name[@revision]`) names a cached snapshot.
    let policy = match model::hub::resolve(&cli.policy) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("evaluate: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = evaluate::Options {
        policy,
        benchmarks,
        output: cli.output.clone(),
        samples: cli.samples.max(1),
        temperature: cli.temperature,
        top_p: cli.top_p,
        max_new_tokens: cli.max_new_tokens,
        limit: cli.limit,
        batch_size: cli.batch_size,
        seed: cli.seed,
        fallbacks: verify::fallbacks(&cli.fallback),
        top_k: cli.top_k.filter(|&k| k > 0),
        stop_words: cli.stop_words,
        shard: cli.shard,
        device: cli.device,
        dtype: cli.dtype,
    };
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("evaluate {spinner} {msg} [{elapsed}]").expect("template"),
    );
    let (mut tokens, mut done, start) = (0u64, 0u64, std::time::Instant::now());
    let result = evaluate::run(&opts, &mut |name, t, d| {
        tokens += t;
        done += d;
        bar.set_message(format!(
            "{name}: {done} responses, {:.1} tokens/s",
            tokens as f64 / start.elapsed().as_secs_f64().max(1e-9)
        ));
        bar.tick();
    });
    bar.finish_and_clear();
    match result {
        Ok((rows, _, md)) if artifacts::is_stdio(&cli.output) => {
            // The results are on stdout: the table goes to stderr.
            eprintln!("{md}");
            eprintln!("evaluate: {} samples -> stdout", rows.len());
            ExitCode::SUCCESS
        }
        Ok((rows, _, md)) => {
            println!("{md}");
            eprintln!(
                "evaluate: {} samples -> {} (summary: {})",
                rows.len(),
                cli.output.display(),
                evaluate::summary_path(&cli.output).display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("evaluate: error: {e}");
            ExitCode::FAILURE
        }
    }
}
