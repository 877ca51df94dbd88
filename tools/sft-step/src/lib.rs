//! sft-step: supervised fine-tuning on (prompt, response) pairs, the first
//! stage of the SimpleRL variant (long-CoT SFT, then RL) and the recipe's
//! "8K MATH SFT" baseline.
//!
//! Cross-entropy on response tokens only (the prompt is context, never a
//! target), micro-batches with gradient accumulation, AdamW and a warmup
//! then cosine or linear schedule from the `train` crate (the same
//! machinery as ppo-step). The output checkpoint carries its optimizer state, whose
//! step count tells a restarted run where the schedule and the data order
//! stand: re-running the same command resumes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use artifacts::metrics::MetricsRow;
use candle_core::{DType, Tensor};
use model::model::{Model, ResponseBatch};
use model::tokenizer::Tokenizer;
use model::Checkpoint;
use rl::LossAgg;
use train::{AdamW, AdamWConfig, GradAccum, LrSchedule, Params, OPTIMIZER_FILE};

#[derive(Debug, thiserror::Error)]
pub enum SftError {
    #[error(transparent)]
    Artifact(#[from] artifacts::Error),
    #[error(transparent)]
    Model(#[from] model::ModelError),
    #[error(transparent)]
    Train(#[from] train::TrainError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = SftError> = std::result::Result<T, E>;

#[derive(Debug, Clone)]
pub struct Options {
    pub data: PathBuf,
    pub policy: PathBuf,
    pub output: PathBuf,
    pub metrics: Option<PathBuf>,
    pub lr: f64,
    pub schedule: LrSchedule,
    pub warmup_steps: u64,
    pub min_lr_ratio: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub micro_batch_size: usize,
    pub grad_clip: f64,
    pub weight_decay: f64,
    pub seed: u64,
    /// Save every n steps (and at the end).
    pub save_every: Option<u64>,
    /// Stop after this many steps in total (the schedule still spans the
    /// whole run): for budgets and interruption tests.
    pub max_steps: Option<u64>,
    pub device: String,
}

impl Options {
    pub fn new(data: PathBuf, policy: PathBuf, output: PathBuf) -> Options {
        Options {
            data,
            policy,
            output,
            metrics: None,
            lr: 1e-5,
            schedule: LrSchedule::Cosine,
            warmup_steps: 0,
            min_lr_ratio: 0.0,
            epochs: 1,
            batch_size: 32,
            micro_batch_size: 4,
            grad_clip: 1.0,
            weight_decay: 0.0,
            seed: 0,
            save_every: None,
            max_steps: None,
            device: "cpu".into(),
        }
    }
}

/// One example, tokenised: prompt ids, response ids (ending in eos).
pub type Example = (Vec<u32>, Vec<u32>);

/// The SFT loss of `pairs`: the mean negative log-likelihood of the
/// response tokens (given their prompt), summed with weight `weight` so
/// micro-batches add up to their batch. Prompt positions are not targets.
pub fn response_nll(
    model: &Model,
    pairs: &[(&[u32], &[u32])],
    pad: u32,
) -> Result<(Tensor, usize)> {
    let rb = ResponseBatch::new(pairs, pad, model.device())?;
    let out = model.token_logprobs_at(&rb.batch, 1.0, Some(&rb.index), false)?;
    let nll = rl::agg_loss(&out.logprobs.neg()?, &rb.mask, LossAgg::TokenMean, 0)?;
    let tokens = pairs.iter().map(|(_, r)| r.len()).sum();
    Ok((nll, tokens))
}

fn tokenize(opts: &Options, tok: &Tokenizer, ctx: usize) -> Result<Vec<Example>> {
    let rows = artifacts::sft::read(&opts.data)?;
    let eos = *tok.eos_ids.first().ok_or_else(|| {
        SftError::Invalid("the tokenizer has no eos token to end responses".into())
    })?;
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            let p = tok.encode(&r.prompt)?;
            let mut resp = tok.encode(&r.response)?;
            resp.push(eos);
            if p.is_empty() || p.len() + resp.len() > ctx {
                return Err(SftError::Invalid(format!(
                    "{}: row {i} (id `{}`): {} prompt + {} response tokens do not fit the context of {ctx} (or the prompt is empty)",
                    opts.data.display(),
                    r.id,
                    p.len(),
                    resp.len()
                )));
            }
            Ok((p, resp))
        })
        .collect()
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub steps_done: u64,
    pub total_steps: u64,
    pub last_loss: f64,
    pub seconds: f64,
}

/// Train; `log` gets one line per optimizer step.
pub fn run(opts: &Options, log: &mut dyn FnMut(&str)) -> Result<Summary> {
    let start = Instant::now();
    if opts.batch_size == 0 || opts.micro_batch_size == 0 || opts.epochs == 0 {
        return Err(SftError::Invalid(
            "--batch-size, --micro-batch-size and --epochs must be at least 1".into(),
        ));
    }
    let dev = model::device(&opts.device)?;
    // Resume from the output when it holds a run's state.
    let resume = opts.output.join(OPTIMIZER_FILE).exists();
    let from: &Path = if resume { &opts.output } else { &opts.policy };
    let ck = Checkpoint::load(from, &dev, DType::F32)?;
    let tok = Tokenizer::load(from)?;
    let examples = tokenize(opts, &tok, ck.config.max_position_embeddings)?;
    if examples.is_empty() {
        return Err(SftError::Invalid(format!(
            "{}: no rows",
            opts.data.display()
        )));
    }
    let params = Params::from_varmap(&ck.varmap);
    let adam = AdamWConfig {
        weight_decay: opts.weight_decay,
        ..AdamWConfig::default()
    };
    let mut opt = AdamW::resume_or_new(&params, adam, from)?;
    let n = examples.len();
    let steps_per_epoch = n.div_ceil(opts.batch_size) as u64;
    let total = steps_per_epoch * opts.epochs as u64;
    let stop = opts.max_steps.unwrap_or(total).min(total);
    if resume {
        log(&format!(
            "sft-step: resuming {} at step {} of {total}",
            opts.output.display(),
            opt.step
        ));
    }
    let save = |opt: &AdamW| -> Result<()> {
        ck.save_with(&opts.output, Some(from), &|dir| {
            opt.save(&params, &dir.join(OPTIMIZER_FILE))
                .map_err(|e| model::ModelError::Invalid(e.to_string()))
        })?;
        Ok(())
    };
    let mut last_loss = f64::NAN;
    let mut order: Option<(u64, Vec<usize>)> = None;
    while opt.step < stop {
        let t0 = Instant::now();
        let step = opt.step;
        let epoch = step / steps_per_epoch;
        if order.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let mut v: Vec<usize> = (0..n).collect();
            prep::rng::SplitMix64::new(opts.seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15))
                .shuffle(&mut v);
            order = Some((epoch, v));
        }
        let ord = &order.as_ref().expect("order").1;
        let first = (step % steps_per_epoch) as usize * opts.batch_size;
        let rows = &ord[first..(first + opts.batch_size).min(n)];
        let total_tokens: usize = rows.iter().map(|&r| examples[r].1.len()).sum();
        let lr = opts
            .schedule
            .lr(opts.lr, step, total, opts.warmup_steps, opts.min_lr_ratio);
        let mut grads = GradAccum::new(&params);
        let mut loss = 0.0;
        for chunk in rows.chunks(opts.micro_batch_size) {
            let pairs: Vec<(&[u32], &[u32])> = chunk
                .iter()
                .map(|&r| (examples[r].0.as_slice(), examples[r].1.as_slice()))
                .collect();
            let (nll, tokens) = response_nll(&ck.model, &pairs, tok.pad_id)?;
            let w = rl::micro_weight(
                LossAgg::TokenMean,
                (chunk.len(), tokens),
                (rows.len(), total_tokens),
            );
            let v = nll.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            train::ensure_finite(v, "the loss")?;
            grads.add(&params, &(nll * w)?.backward()?)?;
            loss += v * w;
        }
        let norm = grads.norm();
        train::ensure_finite(norm, "the gradient norm")?;
        opt.step(&params, &grads, lr, train::clip_coef(norm, opts.grad_clip))?;
        let elapsed = t0.elapsed().as_secs_f64();
        let seq_tokens: usize = rows
            .iter()
            .map(|&r| examples[r].0.len() + examples[r].1.len())
            .sum();
        log(&format!(
            "step {}/{total} epoch {} | loss {loss:.4} | lr {lr:.3e} | grad_norm {norm:.3} | {:.1} tokens/s",
            step + 1,
            epoch + 1,
            seq_tokens as f64 / elapsed.max(1e-9)
        ));
        last_loss = loss;
        if let Some(m) = &opts.metrics {
            let values = BTreeMap::from([
                ("loss".to_string(), loss),
                ("lr".to_string(), lr),
                ("grad_norm".to_string(), norm),
                ("elapsed_s".to_string(), elapsed),
                (
                    "tokens_per_s".to_string(),
                    seq_tokens as f64 / elapsed.max(1e-9),
                ),
                ("epoch".to_string(), epoch as f64),
            ]);
            artifacts::metrics::append(
                m,
                MetricsRow {
                    step: step as i64,
                    values,
                },
            )?;
        }
        if opt.step == stop || opts.save_every.is_some_and(|k| opt.step % k == 0) {
            save(&opt)?;
        }
    }
    Ok(Summary {
        steps_done: opt.step,
        total_steps: total,
        last_loss,
        seconds: start.elapsed().as_secs_f64(),
    })
}
