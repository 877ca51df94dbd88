//! The rollout stage: prompts.parquet + a checkpoint -> rollouts.parquet
//! (the rollout tool, and evaluate's generation).

use std::path::PathBuf;
use std::time::Instant;

use artifacts::prompts::PromptRow;
use artifacts::rollouts::{FinishReason, RolloutRow};
use model::generate::{Engine, SamplingParams};
use model::tokenizer::Tokenizer;
use model::{Checkpoint, Device, Precision};

#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error(transparent)]
    Artifact(#[from] artifacts::Error),
    #[error(transparent)]
    Model(#[from] model::ModelError),
    #[error("{0}")]
    Invalid(String),
}

/// Which part of the prompts file this process samples: rows i with
/// i % n == k (so shards' outputs concatenate to the whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub k: usize,
    pub n: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("--shard must look like k/n with 0 <= k < n, got `{s}`");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (k, n): (usize, usize) = (k.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
        if n == 0 || k >= n {
            return Err(bad());
        }
        Ok(Shard { k, n })
    }
}

/// How a rollout runs. With the `clap` feature these are the rollout
/// tool's flags (the doc comments are their help, and the defaults are
/// written here only); library callers set every field.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct Options {
    /// prompts.parquet (from prep-math).
    #[cfg_attr(feature = "clap", arg(long))]
    pub prompts: PathBuf,
    /// Policy checkpoint directory (config.json, model.safetensors, tokenizer.json).
    #[cfg_attr(feature = "clap", arg(long))]
    pub policy: PathBuf,
    /// Output rollouts.parquet (written atomically).
    #[cfg_attr(feature = "clap", arg(short, long))]
    pub output: PathBuf,
    /// Responses per prompt. [range: >= 1]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 4, value_parser = flags::at_least_one))]
    pub samples_per_prompt: usize,
    /// Longest response, in tokens. [range: >= 1]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 256, value_parser = flags::at_least_one))]
    pub max_new_tokens: usize,
    /// Sampling temperature (0: greedy). [range: >= 0]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 1.0, value_parser = flags::non_negative))]
    pub temperature: f64,
    /// Nucleus sampling threshold. [range: > 0 and <= 1]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 1.0, value_parser = flags::probability))]
    pub top_p: f64,
    /// Keep only the k most likely tokens (absent or 0: off).
    #[cfg_attr(feature = "clap", arg(long))]
    pub top_k: Option<usize>,
    /// Run seed: with the prompt id and sample index it fixes each sample.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0))]
    pub seed: u64,
    /// Sequences decoded together. [range: >= 1]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 16, value_parser = flags::at_least_one))]
    pub batch_size: usize,
    /// Sample only rows i with i % n == k, as k/n: shards' outputs
    /// concatenate to the whole run.
    #[cfg_attr(feature = "clap", arg(long, default_value = "0/1"))]
    pub shard: Shard,
    /// cpu or cuda:N (needs the `cuda` cargo feature).
    #[cfg_attr(feature = "clap", arg(long, default_value = "cpu"))]
    pub device: String,
    /// The dtype the weights are loaded and decoded in (bf16: norms,
    /// softmax and log-probs in f32; on the CPU f32 is the fast path).
    #[cfg_attr(feature = "clap", arg(long, value_enum, default_value_t = Precision::F32))]
    pub dtype: Precision,
    /// Stop a response at the first of these strings, besides the model's
    /// EOS tokens (comma-separated; `--stop-words ''` for none): the
    /// recipe's end-of-turn strings by default. The response keeps the
    /// stop string; verify cuts it there.
    #[cfg_attr(feature = "clap", arg(long, visible_alias = "stop", value_delimiter = ',', default_values_t = grader::STOP_WORDS.map(String::from)))]
    pub stop_words: Vec<String>,
    /// Only the first N prompts of the file, before sharding (quick looks). [range: >= 1]
    #[cfg_attr(feature = "clap", arg(long, value_parser = flags::at_least_one))]
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub rows: usize,
    pub response_tokens: usize,
    pub truncated: usize,
    pub seconds: f64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.rows.max(1) as f64;
        write!(
            f,
            "{} responses, {} tokens, mean length {:.1}, clipped {:.1}%, {:.1} tokens/s",
            self.rows,
            self.response_tokens,
            self.response_tokens as f64 / n,
            100.0 * self.truncated as f64 / n,
            self.response_tokens as f64 / self.seconds.max(1e-9)
        )
    }
}

/// A row's sampling seed: from the run seed, the prompt id and the sample
/// index only, so sharding and batching never change a sample.
pub fn row_seed(seed: u64, prompt_id: &str, sample_index: usize) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for b in prompt_id.bytes().chain((sample_index as u64).to_le_bytes()) {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The artifact's finish reason for the generator's.
fn finish_reason(r: model::generate::FinishReason) -> FinishReason {
    match r {
        model::generate::FinishReason::Stop => FinishReason::Stop,
        model::generate::FinishReason::Length => FinishReason::Length,
    }
}

/// Run the stage. `progress(new_tokens, finished_responses)` is called
/// after every decoding step with the tokens it produced (and 0), and
/// after every batch with 0 and the responses it finished.
pub fn run(opts: &Options, progress: &mut dyn FnMut(u64, u64)) -> Result<Summary, RolloutError> {
    let start = Instant::now();
    if opts.samples_per_prompt == 0 || opts.batch_size == 0 {
        return Err(RolloutError::Invalid(
            "--samples-per-prompt and --batch-size must be at least 1".into(),
        ));
    }
    if durable::same_file(&opts.output, &opts.prompts) {
        return Err(RolloutError::Invalid(format!(
            "-o {} is the prompts file; write the rollouts elsewhere",
            opts.output.display()
        )));
    }
    let mut prompts: Vec<PromptRow> = artifacts::prompts::read(&opts.prompts)?;
    if prompts.is_empty() {
        return Err(RolloutError::Invalid(format!(
            "{}: no prompts (the file has no rows)",
            opts.prompts.display()
        )));
    }
    if let Some(l) = opts.limit {
        prompts.truncate(l);
    }
    let device: Device = model::device(&opts.device)?;
    let ck = Checkpoint::load(&opts.policy, &device, opts.dtype.dtype())?;
    let tok = Tokenizer::load(&opts.policy)?;
    let ctx = ck.config.max_position_embeddings;
    // This shard's prompts, tokenised and checked against the context.
    let mut work: Vec<(&PromptRow, Vec<u32>)> = Vec::new();
    for (i, p) in prompts.iter().enumerate() {
        if i % opts.shard.n != opts.shard.k {
            continue;
        }
        let ids = tok.encode(&p.prompt)?;
        if ids.len() + opts.max_new_tokens > ctx {
            return Err(RolloutError::Invalid(format!(
                "{}: row {} (id `{}`): prompt of {} tokens + --max-new-tokens {} exceeds the model's context of {ctx}",
                opts.prompts.display(),
                i,
                p.id,
                ids.len(),
                opts.max_new_tokens
            )));
        }
        work.push((p, ids));
    }
    let jobs: Vec<(usize, usize)> = (0..work.len())
        .flat_map(|w| (0..opts.samples_per_prompt).map(move |s| (w, s)))
        .collect();
    let params = SamplingParams {
        max_new_tokens: opts.max_new_tokens,
        temperature: opts.temperature,
        top_p: opts.top_p,
        top_k: opts.top_k.filter(|&k| k > 0),
        stop_token_ids: tok.eos_ids.clone(),
    };
    let stop_words: Vec<&String> = opts.stop_words.iter().filter(|s| !s.is_empty()).collect();
    let policy = opts.policy.display().to_string();
    let mut rows: Vec<RolloutRow> = Vec::with_capacity(jobs.len());
    let mut summary = Summary::default();
    let engine = Engine::new(&ck.model)?;
    for chunk in jobs.chunks(opts.batch_size) {
        let batch_prompts: Vec<Vec<u32>> = chunk.iter().map(|&(w, _)| work[w].1.clone()).collect();
        let seeds: Vec<u64> = chunk
            .iter()
            .map(|&(w, s)| row_seed(opts.seed, &work[w].0.id, s))
            .collect();
        let stop = |_row: usize, toks: &[u32]| -> bool {
            if stop_words.is_empty() {
                return false;
            }
            let tail = &toks[toks.len().saturating_sub(16)..];
            let text = tok.decode(tail).unwrap_or_default();
            stop_words.iter().any(|s| text.contains(s.as_str()))
        };
        let gens = engine.generate(&batch_prompts, &seeds, &params, &stop, |active| {
            progress(active as u64, 0)
        })?;
        for (&(w, s), g) in chunk.iter().zip(gens) {
            let (p, ids) = &work[w];
            let content: Vec<u32> = g
                .tokens
                .iter()
                .copied()
                .filter(|t| !tok.eos_ids.contains(t))
                .collect();
            let mut response = tok.decode(&content)?;
            if let Some(end) = stop_words
                .iter()
                .filter_map(|s| response.find(s.as_str()).map(|pos| pos + s.len()))
                .min()
            {
                response.truncate(end);
            }
            summary.response_tokens += g.tokens.len();
            summary.truncated +=
                (g.finish_reason == model::generate::FinishReason::Length) as usize;
            rows.push(RolloutRow {
                prompt_id: p.id.clone(),
                sample_index: s as i64,
                prompt: p.prompt.clone(),
                answer: p.answer.clone(),
                response,
                prompt_token_ids: ids.clone(),
                response_token_ids: g.tokens,
                response_logprobs: g.logprobs,
                finish_reason: finish_reason(g.finish_reason).as_str().to_string(),
                policy: policy.clone(),
                temperature: opts.temperature,
                top_p: opts.top_p,
                seed: row_seed(opts.seed, &p.id, s) as i64,
            });
        }
        progress(0, chunk.len() as u64);
    }
    artifacts::rollouts::write(&opts.output, &rows)?;
    summary.rows = rows.len();
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}
