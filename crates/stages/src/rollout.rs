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

/// The shard this process samples: `--shard k/n`, and under an N-rank MPI
/// job (mpirun, srun) rank r's share of it: every N-th of the shard's
/// rows, which is shard k + n*r of n*N (the ranks' shards make up k/n).
pub fn effective_shard(given: Shard) -> Shard {
    let w = dist::world();
    Shard {
        k: given.k + given.n * w.rank(),
        n: given.n * w.size(),
    }
}

/// One rollout's prompts as a shuffling data loader serves them (OpenRLHF's
/// prompt loader: shuffle, fixed batch size, drop the last partial batch):
/// iteration `i` of a run takes batch `i % B` of pass `i / B` over the
/// file, where B = floor(rows / size) and each pass is its own permutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptBatch {
    pub iteration: usize,
    pub size: usize,
}

impl std::str::FromStr for PromptBatch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("--prompt-batch must look like ITERATION:SIZE with SIZE >= 1, got `{s}`");
        let (i, n) = s.split_once(':').ok_or_else(bad)?;
        let (iteration, size) = (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
        if size == 0 {
            return Err(bad());
        }
        Ok(PromptBatch { iteration, size })
    }
}

impl PromptBatch {
    /// Batches per pass over `rows` prompts (0 when the file is smaller
    /// than one batch).
    pub fn per_pass(&self, rows: usize) -> usize {
        rows / self.size
    }

    /// The file rows of this batch, in the loader's order: batch
    /// `iteration % B` of the permutation of pass `iteration / B`, seeded
    /// by `seed` and the pass.
    pub fn rows(&self, rows: usize, seed: u64) -> Vec<usize> {
        let per_pass = self.per_pass(rows);
        if per_pass == 0 {
            return Vec::new();
        }
        let (pass, b) = (self.iteration / per_pass, self.iteration % per_pass);
        let order = rng::shuffled(
            rows,
            rng::SplitMix64::new(seed ^ (pass as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
                .next_u64(),
        );
        order[b * self.size..(b + 1) * self.size].to_vec()
    }
}

/// How a rollout runs. With the `clap` feature these are the rollout
/// tool's flags (the doc comments are their help, and the defaults are
/// written here only); library callers set every field.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct Options {
    /// prompts.parquet (from prep-math); on the command line, the first
    /// argument.
    #[cfg_attr(feature = "clap", arg(skip))]
    pub prompts: PathBuf,
    /// Policy checkpoint directory (config.json, model.safetensors, tokenizer.json).
    #[cfg_attr(feature = "clap", arg(long))]
    pub policy: PathBuf,
    /// Output rollouts.parquet (written atomically); `-` writes standard
    /// output.
    #[cfg_attr(feature = "clap", arg(short, long))]
    pub output: PathBuf,
    /// Responses per prompt. [range: >= 1]
    #[cfg_attr(feature = "clap", arg(long = "samples", alias = "samples-per-prompt", value_name = "N", default_value_t = 4, value_parser = flags::at_least_one))]
    pub samples_per_prompt: usize,
    /// Longest response, in tokens. [range: >= 1]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 256, value_parser = flags::at_least_one))]
    pub max_new_tokens: usize,
    /// Sampling temperature (0: greedy). [range: 0, or >= 1e-4]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 1.0, value_parser = flags::temperature))]
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
    #[cfg_attr(feature = "clap", arg(long = "decode-batch-size", alias = "batch-size", value_name = "N", default_value_t = 16, value_parser = flags::at_least_one))]
    pub batch_size: usize,
    /// Sample only rows i with i % n == k, as k/n: shards' outputs
    /// concatenate to the whole run. Under an MPI job (mpirun -np N,
    /// srun) each rank samples its share of these rows and -o is a
    /// dataset directory of one part per rank.
    #[cfg_attr(feature = "clap", arg(long, default_value = "0/1"))]
    pub shard: Shard,
    /// Sample only the prompts a shuffling loader of SIZE prompts per
    /// rollout gives iteration ITERATION of a run, as ITERATION:SIZE: each
    /// pass over the file is a new permutation (--shuffle-seed and the
    /// pass), cut into floor(rows / SIZE) batches, the rest of the pass
    /// dropped. --shard then splits the batch.
    #[cfg_attr(feature = "clap", arg(long))]
    pub prompt_batch: Option<PromptBatch>,
    /// Seed of --prompt-batch's permutations.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0))]
    pub shuffle_seed: u64,
    /// DAPO's dynamic sampling: when fewer of the batch's prompts than it
    /// has got samples of different grades (correct, wrong, no answer),
    /// sample further prompts, up to --max-extra-prompts, until as many
    /// groups are informative; every sample is written (ppo-step
    /// --filter-groups leaves the uniform groups out).
    #[cfg_attr(feature = "clap", arg(long))]
    pub filter_groups: bool,
    /// The most prompts --filter-groups samples beyond the batch (of
    /// --shard's share; the ranks of an MPI job share it as one process).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0))]
    pub max_extra_prompts: usize,
    /// Leave out prompts longer than this many tokens (counted in the
    /// summary), as the recipe's prompt_max_len bounds them. [range: >= 1]
    #[cfg_attr(feature = "clap", arg(long, value_parser = flags::at_least_one))]
    pub max_prompt_tokens: Option<usize>,
    /// cpu, cuda:N, or cuda (GPU 0; under mpirun each rank's own, by local
    /// rank): the CUDA build, make build-cuda.
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
    /// prompts left out for --max-prompt-tokens
    pub long_prompts: usize,
    /// prompts sampled beyond the batch (--filter-groups)
    pub extra_prompts: usize,
    /// groups whose samples did not all get the same grade (--filter-groups)
    pub informative_groups: Option<usize>,
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
        )?;
        if let Some(n) = self.informative_groups {
            write!(
                f,
                "; {n} informative groups after {} extra prompts",
                self.extra_prompts
            )?;
        }
        if self.long_prompts > 0 {
            write!(
                f,
                "; left out {} prompts over --max-prompt-tokens",
                self.long_prompts
            )?;
        }
        Ok(())
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

/// How many groups (the samples of one prompt) of `rows` have samples of
/// different grades (correct, wrong, no answer) under the recipe's reward,
/// each response cut at `stop_words` as verify cuts it.
pub fn informative_groups(rows: &[RolloutRow], stop_words: &[String]) -> usize {
    let scheme = grader::RewardScheme::default();
    let mut first: std::collections::HashMap<&str, (f64, bool)> = Default::default();
    for r in rows {
        let response = grader::cut_at_stop(&r.response, stop_words);
        let reward = grader::grade(response, &r.answer, &scheme).reward;
        first
            .entry(r.prompt_id.as_str())
            .and_modify(|(f, varied)| *varied |= *f != reward)
            .or_insert((reward, false));
    }
    first.values().filter(|(_, varied)| *varied).count()
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
/// An error when this rank's responses cannot fit in memory before one is
/// sampled: each response row holds at least its prompt's text and the
/// row itself, so `--samples` of 10^9 is refused here instead of aborting
/// an allocation.
fn check_response_memory(
    opts: &Options,
    prompts: &[PromptRow],
    selected: &[usize],
) -> Result<(), RolloutError> {
    let Some(have) = dist::available_memory() else {
        return Ok(());
    };
    let per_prompt: f64 = selected
        .iter()
        .map(|&i| (std::mem::size_of::<RolloutRow>() + prompts[i].prompt.len()) as f64)
        .sum();
    let need = per_prompt * opts.samples_per_prompt as f64;
    if need > have {
        return Err(RolloutError::Invalid(format!(
            "--samples {} x {} prompts: the response rows alone need at least {:.3e} GB, more than the memory available ({:.1} GB)",
            opts.samples_per_prompt,
            selected.len(),
            need / 1e9,
            have / 1e9
        )));
    }
    Ok(())
}

pub fn run(opts: &Options, progress: &mut dyn FnMut(u64, u64)) -> Result<Summary, RolloutError> {
    let start = Instant::now();
    if opts.samples_per_prompt == 0 || opts.batch_size == 0 {
        return Err(RolloutError::Invalid(
            "--samples and --decode-batch-size must be at least 1".into(),
        ));
    }
    if opts.temperature > 0.0 && opts.temperature < flags::MIN_TEMPERATURE {
        return Err(RolloutError::Invalid(format!(
            "--temperature {} is below {}: the logits divided by it overflow; 0 is greedy decoding",
            opts.temperature,
            flags::MIN_TEMPERATURE
        )));
    }
    durable::check_not_input(&opts.output, &[&opts.prompts, &opts.policy])
        .map_err(|e| RolloutError::Invalid(e.to_string()))?;
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
    let shard = effective_shard(opts.shard);
    // The file rows this rollout samples: the loader's batch (or all),
    // then this shard's share of them.
    let batch: Vec<usize> = match opts.prompt_batch {
        Some(pb) => {
            if pb.per_pass(prompts.len()) == 0 {
                return Err(RolloutError::Invalid(format!(
                    "{}: {} prompts are fewer than one --prompt-batch of {}",
                    opts.prompts.display(),
                    prompts.len(),
                    pb.size
                )));
            }
            pb.rows(prompts.len(), opts.shuffle_seed)
        }
        None => (0..prompts.len()).collect(),
    };
    let selected: Vec<usize> = batch
        .iter()
        .copied()
        .enumerate()
        .filter(|(j, _)| j % shard.n == shard.k)
        .map(|(_, i)| i)
        .collect();
    check_response_memory(opts, &prompts, &selected)?;
    let device: Device = model::device(&opts.device)?;
    let ck = Checkpoint::load(&opts.policy, &device, opts.dtype.dtype())?;
    let tok = Tokenizer::load(&opts.policy)?;
    let ctx = ck.config.max_position_embeddings;
    let mut summary = Summary::default();
    // Prompts tokenised and checked against the context (long ones left
    // out and counted).
    // A prompt longer than the context's worth of the longest token
    // cannot fit: refused before tokenising it (a 20 MB prompt took 3.4 GB).
    let max_prompt_bytes = ctx.saturating_mul(tok.max_token_bytes());
    let tokenise = |rows: &[usize],
                    summary: &mut Summary|
     -> Result<Vec<(&PromptRow, Vec<u32>)>, RolloutError> {
        let mut work = Vec::new();
        for &i in rows {
            let p = &prompts[i];
            if p.prompt.len() > max_prompt_bytes {
                return Err(RolloutError::Invalid(format!(
                    "{}: row {i} (id `{}`), column `prompt`: {} bytes cannot fit the model's context of {ctx} tokens (at most {max_prompt_bytes} bytes: its longest token is {} bytes)",
                    opts.prompts.display(),
                    p.id,
                    p.prompt.len(),
                    tok.max_token_bytes()
                )));
            }
            let ids = tok.encode(&p.prompt)?;
            if opts.max_prompt_tokens.is_some_and(|m| ids.len() > m) {
                summary.long_prompts += 1;
                continue;
            }
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
        Ok(work)
    };
    let params = SamplingParams {
        max_new_tokens: opts.max_new_tokens,
        temperature: opts.temperature,
        top_p: opts.top_p,
        top_k: opts.top_k.filter(|&k| k > 0),
        stop_token_ids: tok.eos_ids.clone(),
    };
    let stop_words: Vec<&String> = opts.stop_words.iter().filter(|s| !s.is_empty()).collect();
    // A stop string can only be completed by a token whose text holds its
    // last character: the tail is decoded only after such tokens (each
    // token's text looked at once, when first sampled; 0 not yet, 1 may
    // end a stop string, 2 cannot).
    let last_chars: Vec<char> = stop_words.iter().filter_map(|s| s.chars().last()).collect();
    let may_end: Vec<std::cell::Cell<u8>> = vec![std::cell::Cell::new(0); ck.config.vocab_size];
    let can_end = |id: u32| -> bool {
        let Some(c) = may_end.get(id as usize) else {
            return true;
        };
        if c.get() == 0 {
            let hit = tok
                .decode(&[id])
                .map_or(true, |t| t.contains(last_chars.as_slice()));
            c.set(if hit { 1 } else { 2 });
        }
        c.get() == 1
    };
    let policy = opts.policy.display().to_string();
    let engine = Engine::new(&ck.model)?;
    // Every sample of the prompts `work`, as rows.
    let mut sample = |work: &[(&PromptRow, Vec<u32>)],
                      summary: &mut Summary|
     -> Result<Vec<RolloutRow>, RolloutError> {
        let jobs: Vec<(usize, usize)> = (0..work.len())
            .flat_map(|w| (0..opts.samples_per_prompt).map(move |s| (w, s)))
            .collect();
        let mut rows: Vec<RolloutRow> = Vec::with_capacity(jobs.len());
        for chunk in jobs.chunks(opts.batch_size) {
            let batch_prompts: Vec<Vec<u32>> =
                chunk.iter().map(|&(w, _)| work[w].1.clone()).collect();
            let seeds: Vec<u64> = chunk
                .iter()
                .map(|&(w, s)| row_seed(opts.seed, &work[w].0.id, s))
                .collect();
            let stop = |_row: usize, toks: &[u32]| -> bool {
                if stop_words.is_empty() || !toks.last().is_some_and(|&t| can_end(t)) {
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
        Ok(rows)
    };
    let work = tokenise(&selected, &mut summary)?;
    let target = work.len();
    let mut rows = sample(&work, &mut summary)?;
    // DAPO's dynamic sampling: while fewer groups than the batch's prompts
    // are informative, sample further prompts (rows outside the batch, in
    // an order fixed by --shuffle-seed and --seed; --shard's share), at
    // most --max-extra-prompts of them. The ranks of an MPI job act as one
    // process: the counts are summed over them, every rank takes the same
    // next candidates and samples its every N-th, so the union of their
    // rows is the one-process output.
    if opts.filter_groups {
        let world = dist::world();
        let total = |local: usize| -> usize {
            let mut x = [local as u64];
            world.all_reduce_sum_u64(&mut x);
            x[0] as usize
        };
        // (outside the whole batch: not another shard's or rank's rows)
        let in_batch: std::collections::HashSet<usize> = batch.iter().copied().collect();
        let mut candidates: Vec<usize> = rng::shuffled(
            prompts.len(),
            opts.shuffle_seed ^ opts.seed.wrapping_mul(0xD6E8_FEB8_6659_FD93),
        )
        .into_iter()
        .filter(|i| !in_batch.contains(i))
        .enumerate()
        .filter(|(j, _)| j % opts.shard.n == opts.shard.k)
        .map(|(_, i)| i)
        .collect();
        candidates.reverse();
        let target = total(target);
        let mut extra = 0;
        let mut informative = total(informative_groups(&rows, &opts.stop_words));
        while informative < target && extra < opts.max_extra_prompts {
            let want = (target - informative).min(opts.max_extra_prompts - extra);
            let next: Vec<usize> = (0..want).map_while(|_| candidates.pop()).collect();
            if next.is_empty() {
                break;
            }
            extra += next.len();
            let mine: Vec<usize> = world.mine(next.len()).map(|j| next[j]).collect();
            summary.extra_prompts += mine.len();
            let more = tokenise(&mine, &mut summary)?;
            rows.extend(sample(&more, &mut summary)?);
            informative = total(informative_groups(&rows, &opts.stop_words));
        }
        summary.informative_groups = Some(informative_groups(&rows, &opts.stop_words));
    }
    artifacts::rollouts::write(&opts.output, &rows)?;
    summary.rows = rows.len();
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::PromptBatch;

    /// A pass is a permutation cut into whole batches: the batches of a
    /// pass are disjoint, the tail is dropped, and the next pass is a new
    /// order.
    #[test]
    fn prompt_batches_are_a_shuffling_loader() {
        let (rows, size) = (10, 3);
        let batch = |i| PromptBatch { iteration: i, size }.rows(rows, 7);
        assert_eq!(PromptBatch { iteration: 0, size }.per_pass(rows), 3);
        let pass0: Vec<usize> = (0..3).flat_map(batch).collect();
        let mut seen = pass0.clone();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 9, "three disjoint batches: {pass0:?}");
        let pass1: Vec<usize> = (3..6).flat_map(batch).collect();
        assert_ne!(pass0, pass1, "each pass has its own order");
        assert_eq!(batch(4), batch(4), "deterministic");
        assert_ne!(
            PromptBatch { iteration: 0, size }.rows(rows, 8),
            batch(0),
            "the seed matters"
        );
        assert!(PromptBatch {
            iteration: 0,
            size: 11
        }
        .rows(rows, 7)
        .is_empty());
        assert_eq!(
            "5:1024".parse::<PromptBatch>().unwrap(),
            PromptBatch {
                iteration: 5,
                size: 1024
            }
        );
        assert!("5:0".parse::<PromptBatch>().is_err() && "5".parse::<PromptBatch>().is_err());
    }
}
