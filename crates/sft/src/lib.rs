//! Supervised fine-tuning on (prompt, response) pairs, the first stage of
//! the SimpleRL variant (long-CoT SFT, then RL) and the recipe's "8K MATH
//! SFT" baseline: the library behind sft-step.
//!
//! Cross-entropy on response tokens only (the prompt is context, never a
//! target), micro-batches with gradient accumulation, AdamW and a warmup
//! then cosine or linear schedule, from the `train` crate (the same
//! machinery as the PPO step). The output checkpoint carries its optimizer
//! state, whose step count tells a restarted run where the schedule and the
//! data order stand: re-running the same command resumes.
//!
//! [`run`]: load the model (the output's, when it holds a run's state),
//! tokenise the data, then [`train_step`] until the run's last step,
//! logging and appending a metrics row per step and saving as asked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use artifacts::metrics::{Metric, MetricsRow};
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor};
use model::checkpointing::{forward_backward, Packing, Pass};
use model::model::{Model, ResponseBatch};
use model::tokenizer::Tokenizer;
use model::Checkpoint;
use rl::LossAgg;
use train::memory::{self, MemoryOptions};
use train::{AdamWConfig, LrSchedule, TrainError, Trainable, OPTIMIZER_FILE};

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// What a run reads and writes.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct Io {
    /// SFT Parquet: id, prompt (templated), response; on the command line,
    /// the first argument.
    #[cfg_attr(feature = "clap", arg(skip))]
    pub data: PathBuf,
    /// The checkpoint to start from (HF layout).
    #[cfg_attr(feature = "clap", arg(long))]
    pub policy: PathBuf,
    /// Output checkpoint directory (resumed from when it holds a run's state).
    #[cfg_attr(feature = "clap", arg(short, long))]
    pub output: PathBuf,
    /// Metrics Parquet, one row per step.
    #[cfg_attr(feature = "clap", arg(long))]
    pub metrics: Option<PathBuf>,
    /// TensorBoard event file folder (every metric of every step, written
    /// at each checkpoint) [default: tensorboard/ beside --metrics; none
    /// without --metrics].
    #[cfg_attr(feature = "clap", arg(long))]
    pub tensorboard: Option<PathBuf>,
    /// Let -o be --policy: train it in place, replacing the starting
    /// checkpoint. Without it an output that is any input is refused.
    #[cfg_attr(feature = "clap", arg(long))]
    pub in_place: bool,
}

impl Io {
    /// An error when an output is one of the inputs (or lies inside or
    /// holds one); with `in_place`, -o may be the policy.
    pub fn check_outputs(&self) -> Result<(), durable::Error> {
        let policy = (!self.in_place).then_some(self.policy.as_path());
        let inputs: Vec<&std::path::Path> = [Some(self.data.as_path()), policy]
            .into_iter()
            .flatten()
            .collect();
        durable::check_not_input(&self.output, &inputs)?;
        let all = [self.data.as_path(), self.policy.as_path()];
        for out in self.metrics.iter().chain(&self.tensorboard) {
            durable::check_not_input(out, &all)?;
        }
        Ok(())
    }
}

/// How a run trains; every default is written once, in `Config::default()`.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct Config {
    /// Peak learning rate. [range: >= 0]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().lr, value_parser = flags::non_negative))]
    pub lr: f64,
    /// Decay after warmup.
    #[cfg_attr(feature = "clap", arg(long = "lr-schedule", alias = "schedule", value_name = "SCHEDULE", value_enum, default_value_t = Config::default().schedule))]
    pub schedule: LrSchedule,
    /// Linear warmup steps.
    #[cfg_attr(feature = "clap", arg(long = "lr-warmup-steps", alias = "warmup-steps", value_name = "STEPS", default_value_t = Config::default().warmup_steps))]
    pub warmup_steps: u64,
    /// The rate decays to this share of --lr. [range: 0 to 1]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().min_lr_ratio, value_parser = flags::unit))]
    pub min_lr_ratio: f64,
    /// Passes over the data. [range: >= 1]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().epochs, value_parser = flags::at_least_one))]
    pub epochs: usize,
    /// Examples per optimizer step. [range: >= 1]
    #[cfg_attr(feature = "clap", arg(long = "train-batch-size", alias = "batch-size", value_name = "N", default_value_t = Config::default().batch_size, value_parser = flags::at_least_one))]
    pub batch_size: usize,
    /// Examples per forward/backward (memory is bounded by this). [range: >= 1]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().micro_batch_size, value_parser = flags::at_least_one))]
    pub micro_batch_size: usize,
    /// Global gradient-norm clip (0: off). [range: >= 0]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().grad_clip, value_parser = flags::non_negative))]
    pub grad_clip: f64,
    /// AdamW weight decay. [range: >= 0]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().weight_decay, value_parser = flags::non_negative))]
    pub weight_decay: f64,
    /// Seed of the per-epoch shuffle.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().seed))]
    pub seed: u64,
    /// Also save every N steps (and always at the end). [range: >= 1]
    #[cfg_attr(feature = "clap", arg(long, value_parser = flags::steps))]
    pub save_every: Option<u64>,
    /// Stop after N steps in total (the schedule still spans every epoch):
    /// for budgets and interruption tests. [range: >= 1]
    #[cfg_attr(feature = "clap", arg(long, value_parser = flags::steps))]
    pub max_steps: Option<u64>,
    /// cpu, cuda:N, or cuda (GPU 0; under mpirun each rank's own, by local
    /// rank): the CUDA build, make build-cuda.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().device))]
    pub device: String,
    #[cfg_attr(feature = "clap", command(flatten))]
    pub memory: MemoryOptions,
}

impl Default for Config {
    fn default() -> Config {
        Config {
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
            memory: MemoryOptions::default(),
        }
    }
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Options {
    pub io: Io,
    pub config: Config,
}

impl Options {
    /// The defaults, training on `data` from `policy` into `output`.
    pub fn new(data: PathBuf, policy: PathBuf, output: PathBuf) -> Options {
        Options {
            io: Io {
                data,
                policy,
                output,
                metrics: None,
                tensorboard: None,
                in_place: false,
            },
            config: Config::default(),
        }
    }
}

/// One example, tokenised: prompt ids, response ids (ending in eos).
pub type Example = (Vec<u32>, Vec<u32>);

/// The SFT loss of `pairs`: the mean negative log-likelihood of the
/// response tokens (given their prompt), and the number of those tokens.
/// Prompt positions are not targets.
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

/// The rows of `data`, tokenised, each checked against the context `ctx`.
pub fn tokenize(data: &Path, tok: &Tokenizer, ctx: usize) -> Result<Vec<Example>> {
    let rows = artifacts::sft::read(data)?;
    let eos = *tok.eos_ids.first().ok_or_else(|| {
        TrainError::Invalid("the tokenizer has no eos token to end responses".into())
    })?;
    let examples = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let p = tok.encode(&r.prompt)?;
            let mut resp = tok.encode(&r.response)?;
            resp.push(eos);
            if p.is_empty() || p.len() + resp.len() > ctx {
                return Err(TrainError::Invalid(format!(
                    "{}: row {i} (id `{}`): {} prompt + {} response tokens do not fit the context of {ctx} (or the prompt is empty)",
                    data.display(),
                    r.id,
                    p.len(),
                    resp.len()
                )));
            }
            Ok((p, resp))
        })
        .collect::<Result<Vec<_>>>()?;
    if examples.is_empty() {
        return Err(TrainError::Invalid(format!("{}: no rows", data.display())));
    }
    Ok(examples)
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub steps_done: u64,
    pub total_steps: u64,
    pub last_loss: f64,
    pub seconds: f64,
}

/// What one optimizer step measured.
#[derive(Debug, Clone, Copy)]
pub struct StepStats {
    pub loss: f64,
    pub grad_norm: f64,
    /// prompt + response tokens of the step's examples
    pub tokens: usize,
}

/// One optimizer step over the examples `rows` at learning rate `lr`:
/// their micro-batches' gradients (weighted so they add up to the batch's
/// token-mean loss), clipped, then AdamW.
pub fn train_step(
    model: &Model,
    trainee: &mut Trainable,
    examples: &[Example],
    rows: &[usize],
    pad: u32,
    lr: f64,
    cfg: &Config,
) -> Result<StepStats> {
    let total_tokens: usize = rows.iter().map(|&r| examples[r].1.len()).sum();
    let mut grads = trainee.grads();
    let mut loss = 0.0;
    // Under an N-rank job, rank k takes micro-batches k, k + N, ...; the
    // gradients are summed over the ranks in the step.
    let world = dist::world();
    let micros: Vec<&[usize]> = rows.chunks(cfg.micro_batch_size).collect();
    for ci in world.mine(micros.len()) {
        let chunk = micros[ci];
        let pairs: Vec<(&[u32], &[u32])> = chunk
            .iter()
            .map(|&r| (examples[r].0.as_slice(), examples[r].1.as_slice()))
            .collect();
        let tokens: usize = pairs.iter().map(|(_, r)| r.len()).sum();
        let w = rl::micro_weight(
            LossAgg::TokenMean,
            (chunk.len(), tokens),
            (rows.len(), total_tokens),
        );
        let rb = ResponseBatch::new(&pairs, pad, model.device())?;
        let head = model.logprob_head_of(&rb.batch, Some(&rb.index), 1.0, false);
        let pass = Pass {
            checkpointing: cfg.memory.grad_checkpointing,
            head_rows: model.head_rows(rb.width),
            engine: Default::default(),
            packing: Packing::Packed,
        };
        let nll_of = |outs: &[Tensor]| -> Result<(Tensor, f64)> {
            let nll = rl::agg_loss(&outs[0].neg()?, &rb.mask, LossAgg::TokenMean, 0)?;
            let v = nll.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            train::ensure_finite(v, "the loss")?;
            Ok(((nll * w)?, v))
        };
        let mut sink = |store: &GradStore| grads.add(&trainee.params, store);
        let v = forward_backward(model, &rb.batch, &head, pass, nll_of, &mut sink)?;
        loss += v * w;
    }
    let mut sum = [loss];
    world.all_reduce_sum_f64(&mut sum);
    let loss = sum[0];
    let grad_norm = trainee.clip_and_step(&mut grads, lr, cfg.grad_clip, "model")?;
    let tokens = rows
        .iter()
        .map(|&r| examples[r].0.len() + examples[r].1.len())
        .sum();
    Ok(StepStats {
        loss,
        grad_norm,
        tokens,
    })
}

/// The run's TensorBoard event file, rewritten whole from its metrics
/// file (`sft/NAME` per step), so a resumed run keeps one file.
fn write_tensorboard(io: &Io) -> Result<()> {
    let Some(metrics) = &io.metrics else {
        return Ok(());
    };
    let dir = io
        .tensorboard
        .clone()
        .unwrap_or_else(|| artifacts::tensorboard::dir_beside(metrics));
    let wall = artifacts::tensorboard::now();
    let scalars: Vec<artifacts::tensorboard::Scalar> = artifacts::metrics::read(metrics)?
        .iter()
        .flat_map(|row| {
            // Each event at the time its row was written; the timestamp
            // itself is no scalar (a Unix time does not fit an f32).
            let wall_time = row.get(Metric::Timestamp).unwrap_or(wall);
            row.values
                .iter()
                .filter(|(m, _)| **m != Metric::Timestamp)
                .map(move |(m, v)| artifacts::tensorboard::Scalar {
                    tag: format!("sft/{m}"),
                    step: row.step,
                    value: *v as f32,
                    wall_time,
                })
        })
        .collect();
    artifacts::tensorboard::write(&dir, "sft-step", &scalars)?;
    Ok(())
}

/// What one step of a run did, for its log line and metrics row.
struct StepRecord {
    /// the step, from 0
    step: u64,
    /// steps in the whole run
    total: u64,
    epoch: u64,
    lr: f64,
    stats: StepStats,
    elapsed: f64,
}

impl StepRecord {
    fn tokens_per_s(&self) -> f64 {
        self.stats.tokens as f64 / self.elapsed.max(1e-9)
    }

    fn line(&self) -> String {
        format!(
            "step {}/{} epoch {} | {} {:.4} | {} {:.3e} | {} {:.3} | {:.1} tokens/s",
            self.step + 1,
            self.total,
            self.epoch + 1,
            Metric::Loss,
            self.stats.loss,
            Metric::Lr,
            self.lr,
            Metric::GradNorm,
            self.stats.grad_norm,
            self.tokens_per_s(),
        )
    }

    fn row(&self) -> MetricsRow {
        let values = BTreeMap::from([
            (Metric::Loss, self.stats.loss),
            (Metric::Lr, self.lr),
            (Metric::GradNorm, self.stats.grad_norm),
            (Metric::ElapsedS, self.elapsed),
            (Metric::TokensPerS, self.tokens_per_s()),
            (Metric::Epoch, self.epoch as f64),
            (Metric::Timestamp, artifacts::tensorboard::now()),
        ]);
        MetricsRow {
            step: self.step as i64,
            values,
        }
    }
}

/// Train; `log` gets one line per optimizer step.
/// The step's memory plan (the model's weights, gradients and AdamW
/// moments in f32, one micro-batch of the longest examples), checked
/// against `--max-memory` before the model is loaded.
pub fn memory_plan(
    cfg: &Config,
    config: &model::Config,
    examples: &[Example],
    resumed: bool,
) -> Result<memory::Plan> {
    let mut lens: Vec<(usize, usize)> = examples
        .iter()
        .map(|(p, r)| (p.len() + r.len(), r.len()))
        .collect();
    lens.sort_unstable_by(|a, b| b.cmp(a));
    let rows = cfg.micro_batch_size.min(examples.len());
    let micro = memory::MicroShape {
        rows,
        seq_len: lens.first().map_or(0, |l| l.0),
        response_len: lens.iter().map(|l| l.1).max().unwrap_or(0),
    };
    let policy = memory::ModelPlan {
        name: "model",
        cfg: config.clone(),
        weight_bytes: 4.0,
        trained: true,
        resumed,
        scoring_only: false,
        value_head: false,
        cpu_pass: cfg.device == "cpu" && cfg.memory.dtype == model::Precision::F32,
    };
    let steps = examples.len().div_ceil(cfg.batch_size) * cfg.epochs;
    memory::check(&[policy], micro, &cfg.memory, steps)
}

pub fn run(opts: &Options, log: &mut dyn FnMut(&str)) -> Result<Summary> {
    let start = Instant::now();
    let (io, cfg) = (&opts.io, &opts.config);
    if cfg.batch_size == 0 || cfg.micro_batch_size == 0 || cfg.epochs == 0 {
        return Err(TrainError::Invalid(
            "--train-batch-size, --micro-batch-size and --epochs must be at least 1".into(),
        ));
    }
    io.check_outputs()
        .map_err(|e| TrainError::Invalid(e.to_string()))?;
    model::checkpoint::check_output(&io.output)?;
    let dev = model::device(&cfg.device)?;
    // Resume from the output when it holds a run's state.
    let resume = io.output.join(OPTIMIZER_FILE).exists();
    let from: &Path = if resume { &io.output } else { &io.policy };
    let (config, _) = model::checkpoint::read_config(from)?;
    let tok = Tokenizer::load(from)?;
    let examples = tokenize(&io.data, &tok, config.max_position_embeddings)?;
    let plan = memory_plan(cfg, &config, &examples, resume)?;
    log(&plan.describe());
    let mut ck = Checkpoint::load(from, &dev, DType::F32)?;
    ck.model.set_compute_dtype(cfg.memory.dtype.dtype())?;
    let adam = AdamWConfig {
        weight_decay: cfg.weight_decay,
        ..AdamWConfig::default()
    };
    let shard = cfg.memory.shard_optimizer;
    let mut trainee = Trainable::with_sharding(&ck.varmap, adam, Some(from), shard)?;
    // Rank 0 writes the metrics and checkpoints of an N-rank job.
    let root = dist::world().is_root();
    let n = examples.len();
    let steps_per_epoch = n.div_ceil(cfg.batch_size) as u64;
    let total = steps_per_epoch * cfg.epochs as u64;
    let stop = cfg.max_steps.unwrap_or(total).min(total);
    if resume {
        let at = trainee.opt.step;
        log(&format!(
            "sft-step: resuming {} at step {at} of {total}",
            io.output.display()
        ));
    }
    let mut last_loss = f64::NAN;
    while trainee.opt.step < stop {
        let t0 = Instant::now();
        let step = trainee.opt.step;
        let epoch = step / steps_per_epoch;
        let order = train::epoch_order(n, cfg.seed, 0, epoch);
        let first = (step % steps_per_epoch) as usize * cfg.batch_size;
        let rows = &order[first..(first + cfg.batch_size).min(n)];
        let lr = cfg
            .schedule
            .lr(cfg.lr, step, total, cfg.warmup_steps, cfg.min_lr_ratio);
        let (model, pad) = (&ck.model, tok.pad_id);
        let stats = train_step(model, &mut trainee, &examples, rows, pad, lr, cfg)?;
        let record = StepRecord {
            step,
            total,
            epoch,
            lr,
            stats,
            elapsed: t0.elapsed().as_secs_f64(),
        };
        log(&record.line());
        last_loss = stats.loss;
        if let (Some(m), true) = (&io.metrics, root) {
            artifacts::metrics::append(m, record.row())?;
        }
        let done = trainee.opt.step;
        if done == stop || cfg.save_every.is_some_and(|k| done % k == 0) {
            // Every rank has finished the step before rank 0 writes.
            dist::world().barrier();
            if root {
                ck.save_with(&io.output, Some(from), &|dir| trainee.save_state(dir))?;
                write_tensorboard(io)?;
            } else {
                trainee.save_state_elsewhere()?;
            }
        }
    }
    Ok(Summary {
        steps_done: trainee.opt.step,
        total_steps: total,
        last_loss,
        seconds: start.elapsed().as_secs_f64(),
    })
}
