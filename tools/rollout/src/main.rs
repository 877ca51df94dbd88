//! rollout: sample responses for every prompt.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use stages::rollout::{self, Shard};

/// Sample responses from a policy checkpoint (HF layout) for every prompt
/// of a prompts.parquet, and write rollouts.parquet: one row per sample
/// with the response, its token ids, and the log-prob of each token under
/// the sampling distribution. Stops a response at the model's end-of-turn
/// token, a --stop string, or --max-new-tokens.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// prompts.parquet (from prep-math).
    #[arg(long)]
    prompts: PathBuf,
    /// Policy checkpoint directory (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    policy: PathBuf,
    /// Output rollouts.parquet (written atomically).
    #[arg(short, long)]
    output: PathBuf,
    /// Responses per prompt.
    #[arg(long, default_value_t = 4)]
    samples_per_prompt: usize,
    /// Longest response, in tokens.
    #[arg(long, default_value_t = 256)]
    max_new_tokens: usize,
    /// Sampling temperature (0: greedy).
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    /// Nucleus sampling threshold.
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// Keep only the k most likely tokens (0: off).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Run seed: with the prompt id and sample index it fixes each sample.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Sequences decoded together.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Sample only rows i with i % n == k, as k/n: shards' outputs concatenate to the whole run.
    #[arg(long, default_value = "0/1")]
    shard: Shard,
    /// cpu or cuda:N (needs the `cuda` cargo feature).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Also stop a response at this string (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// Only the first N prompts of the file (quick looks).
    #[arg(long)]
    limit: Option<usize>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let opts = rollout::Options {
        prompts: cli.prompts,
        policy: cli.policy,
        output: cli.output.clone(),
        samples_per_prompt: cli.samples_per_prompt,
        max_new_tokens: cli.max_new_tokens,
        temperature: cli.temperature,
        top_p: cli.top_p,
        top_k: (cli.top_k > 0).then_some(cli.top_k),
        seed: cli.seed,
        batch_size: cli.batch_size,
        shard: cli.shard,
        device: cli.device,
        stop: cli.stop,
        limit: cli.limit,
    };
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("rollout {spinner} {msg} [{elapsed}]")
            .expect("valid template"),
    );
    let (mut tokens, mut done, start) = (0u64, 0u64, std::time::Instant::now());
    let result = rollout::run(&opts, &mut |active, finished| {
        tokens += active;
        done += finished;
        bar.set_message(format!(
            "{done} responses, {tokens} tokens, {:.1} tokens/s",
            tokens as f64 / start.elapsed().as_secs_f64().max(1e-9)
        ));
        bar.tick();
    });
    bar.finish_and_clear();
    match result {
        Ok(s) => {
            eprintln!("rollout: {s} -> {}", cli.output.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rollout: error: {e}");
            ExitCode::FAILURE
        }
    }
}
