//! ppo-step: one PPO (actor-critic) or GRPO update from a scored rollouts
//! file, written as new policy and critic checkpoints with their optimizer
//! state, and one row of metrics.
//!
//! The step, top to bottom:
//! 1. read scored.parquet; load the policy, the frozen reference and the
//!    critic (made from the policy when there is none yet);
//! 2. recompute the old log-probs under the current policy (their gap to
//!    the rollout's log-probs is a metric), the reference log-probs and the
//!    critic's values, micro-batch by micro-batch, without gradients;
//! 3. token rewards (score on the last token, minus the KL penalty when it
//!    goes in the reward), advantages (GAE, or group-normalised) and
//!    returns;
//! 4. PPO epochs over shuffled mini-batches; each mini-batch accumulates
//!    micro-batch gradients (memory bounded by the micro-batch), clips the
//!    global norm and takes one AdamW step for the actor and the critic;
//! 5. write the critic, append the metrics row, write the policy (last:
//!    its directory is the step's target).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use artifacts::metrics::MetricsRow;
use artifacts::scored::ScoredRow;
use candle_core::{DType, Device, Tensor};
use model::model::ResponseBatch;
use model::{Checkpoint, Critic};
use rl::{AdvantageEstimator, ClipRange, KlEstimator, KlPlacement, LossAgg};
use train::{AdamW, AdamWConfig, GradAccum, Params, OPTIMIZER_FILE};

#[derive(Debug, thiserror::Error)]
pub enum PpoError {
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

pub type Result<T, E = PpoError> = std::result::Result<T, E>;

/// The algorithm: its defaults for the choices below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Algo {
    /// Actor-critic PPO: GAE advantages, KL penalty (k1) in the reward,
    /// reward normalisation, advantage whitening.
    Ppo,
    /// GRPO: group-normalised advantages over each prompt's samples, no
    /// critic, KL (k3) as a loss term.
    Grpo,
}

/// Everything one step needs. `None` in an optional choice means the
/// algorithm's default.
#[derive(Debug, Clone)]
pub struct Options {
    pub scored: PathBuf,
    pub policy: PathBuf,
    pub reference: Option<PathBuf>,
    pub critic: Option<PathBuf>,
    pub policy_out: PathBuf,
    pub critic_out: Option<PathBuf>,
    pub metrics: Option<PathBuf>,
    pub step: Option<i64>,
    pub algo: Algo,
    pub advantage: Option<AdvantageEstimator>,
    pub kl_placement: Option<KlPlacement>,
    pub kl_estimator: Option<KlEstimator>,
    pub kl_coef: Option<f64>,
    pub actor_lr: f64,
    pub critic_lr: f64,
    pub clip_ratio_low: f64,
    pub clip_ratio_high: f64,
    pub dual_clip: Option<f64>,
    pub value_clip: f64,
    pub gamma: f64,
    pub lam: f64,
    pub reward_norm: bool,
    pub whiten_advantages: Option<bool>,
    pub entropy_coef: f64,
    pub loss_agg: LossAgg,
    pub norm_len: Option<usize>,
    pub grad_clip: f64,
    pub weight_decay: f64,
    pub train_batch_size: Option<usize>,
    pub micro_batch_size: usize,
    pub ppo_epochs: usize,
    pub seed: u64,
    pub device: String,
}

impl Options {
    /// The recipe's defaults for `algo`, reading `scored` and writing
    /// `policy_out`.
    pub fn new(algo: Algo, scored: PathBuf, policy: PathBuf, policy_out: PathBuf) -> Options {
        Options {
            scored,
            policy,
            reference: None,
            critic: None,
            policy_out,
            critic_out: None,
            metrics: None,
            step: None,
            algo,
            advantage: None,
            kl_placement: None,
            kl_estimator: None,
            kl_coef: None,
            actor_lr: 5e-7,
            critic_lr: 9e-6,
            clip_ratio_low: 0.2,
            clip_ratio_high: 0.2,
            dual_clip: None,
            value_clip: 0.5,
            gamma: 1.0,
            lam: 1.0,
            reward_norm: true,
            whiten_advantages: None,
            entropy_coef: 0.0,
            loss_agg: LossAgg::TokenMean,
            norm_len: None,
            grad_clip: 1.0,
            weight_decay: 0.01,
            train_batch_size: None,
            micro_batch_size: 8,
            ppo_epochs: 1,
            seed: 0,
            device: "cpu".into(),
        }
    }

    pub fn advantage(&self) -> AdvantageEstimator {
        self.advantage.unwrap_or(match self.algo {
            Algo::Ppo => AdvantageEstimator::Gae,
            Algo::Grpo => AdvantageEstimator::Grpo,
        })
    }
    pub fn kl_placement(&self) -> KlPlacement {
        self.kl_placement.unwrap_or(match self.algo {
            Algo::Ppo => KlPlacement::Reward,
            Algo::Grpo => KlPlacement::Loss,
        })
    }
    pub fn kl_estimator(&self) -> KlEstimator {
        self.kl_estimator.unwrap_or(match self.kl_placement() {
            KlPlacement::Loss => KlEstimator::K3,
            _ => KlEstimator::K1,
        })
    }
    pub fn kl_coef(&self) -> f64 {
        self.kl_coef.unwrap_or(match self.algo {
            Algo::Ppo => 0.01,
            Algo::Grpo => 0.001,
        })
    }
    pub fn whiten_advantages(&self) -> bool {
        self.whiten_advantages
            .unwrap_or(self.advantage() == AdvantageEstimator::Gae)
    }
    fn uses_critic(&self) -> bool {
        self.advantage() == AdvantageEstimator::Gae
    }
    fn uses_reference(&self) -> bool {
        self.kl_placement() != KlPlacement::None && self.kl_coef() != 0.0
    }
}

/// What a step did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub metrics: MetricsRow,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = |k: &str| self.metrics.values.get(k).copied().unwrap_or(f64::NAN);
        write!(
            f,
            "step {}: reward_mean {:.4}, accuracy {:.4}, pg_loss {:.4}, vf_loss {:.4}, kl_to_ref {:.5}, grad_norm {:.4}, {:.1} tokens/s, {:.1}s",
            self.metrics.step,
            v("reward_mean"),
            v("accuracy"),
            v("pg_loss"),
            v("vf_loss"),
            v("kl_to_ref"),
            v("grad_norm"),
            v("tokens_per_s"),
            v("elapsed_s"),
        )
    }
}

/// One row as the trainer sees it.
struct Sample {
    /// prompt + response token ids
    ids: Vec<u32>,
    prompt_len: usize,
    response_len: usize,
}

/// A micro-batch: its rows and their prompt + response batch.
struct Micro {
    rb: ResponseBatch,
    rows: Vec<usize>,
}

impl std::ops::Deref for Micro {
    type Target = ResponseBatch;
    fn deref(&self) -> &ResponseBatch {
        &self.rb
    }
}

fn micro(samples: &[Sample], rows: &[usize], dev: &Device) -> Result<Micro> {
    let pairs: Vec<(&[u32], &[u32])> = rows
        .iter()
        .map(|&r| {
            let s = &samples[r];
            (&s.ids[..s.prompt_len], &s.ids[s.prompt_len..])
        })
        .collect();
    Ok(Micro {
        rb: ResponseBatch::new(&pairs, 0, dev)?,
        rows: rows.to_vec(),
    })
}

/// The response tokens' entries of a `[b, T-1]` forward output: `[b, Rm]`.
fn responses(x: &Tensor, m: &Micro) -> Result<Tensor> {
    Ok(x.contiguous()?.gather(&m.index, 1)?)
}

/// Rows `m.rows` of a response-aligned `[N, Rmax]` tensor, cut to the
/// micro-batch's width: `[b, Rm]`.
fn rows_of(x: &Tensor, m: &Micro) -> Result<Tensor> {
    let idx = Tensor::from_vec(
        m.rows.iter().map(|&r| r as u32).collect::<Vec<_>>(),
        m.rows.len(),
        x.device(),
    )?;
    Ok(x.index_select(&idx, 0)?
        .narrow(1, 0, m.width)?
        .contiguous()?)
}

/// Stack per-row vectors into `[N, Rmax]` (zero padded).
fn stack(rows: &[Vec<f32>], width: usize, dev: &Device) -> Result<Tensor> {
    let mut flat = Vec::with_capacity(rows.len() * width);
    for r in rows {
        flat.extend_from_slice(r);
        flat.extend(std::iter::repeat_n(0.0, width - r.len()));
    }
    Ok(Tensor::from_vec(flat, (rows.len(), width), dev)?)
}

fn scalar(x: &Tensor) -> Result<f64> {
    Ok(x.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

/// Weighted running means of the micro-batch metrics.
#[derive(Default)]
struct Means(BTreeMap<&'static str, (f64, f64)>);

impl Means {
    fn add(&mut self, name: &'static str, value: f64, weight: f64) {
        let e = self.0.entry(name).or_insert((0.0, 0.0));
        e.0 += value * weight;
        e.1 += weight;
    }
    fn into_values(self, out: &mut BTreeMap<String, f64>) {
        for (k, (s, w)) in self.0 {
            out.insert(k.to_string(), if w > 0.0 { s / w } else { f64::NAN });
        }
    }
}

/// The next step number: one past the last in the metrics file, else 0.
fn next_step(metrics: Option<&Path>) -> Result<i64> {
    match metrics {
        Some(p) if p.exists() => Ok(artifacts::metrics::read(p)?
            .iter()
            .map(|r| r.step + 1)
            .max()
            .unwrap_or(0)),
        _ => Ok(0),
    }
}

/// Run one step; `log` gets one line per micro-batch.
pub fn run(opts: &Options, log: &mut dyn FnMut(&str)) -> Result<Summary> {
    let start = Instant::now();
    let step = match opts.step {
        Some(s) => s,
        None => next_step(opts.metrics.as_deref())?,
    };
    if opts.micro_batch_size == 0 || opts.ppo_epochs == 0 {
        return Err(PpoError::Invalid(
            "--micro-batch-size and --ppo-epochs must be at least 1".into(),
        ));
    }
    if opts.uses_critic() && opts.critic_out.is_none() {
        return Err(PpoError::Invalid(
            "GAE needs a critic: give --critic-out (and --critic to continue one)".into(),
        ));
    }
    let reference = match (&opts.reference, opts.uses_reference()) {
        (Some(r), true) => Some(r.clone()),
        (None, true) => {
            return Err(PpoError::Invalid(
                "the KL penalty needs --reference (the initial policy); or set --kl-coef 0".into(),
            ))
        }
        (_, false) => None,
    };

    // 1. Inputs.
    let rows: Vec<ScoredRow> = artifacts::scored::read(&opts.scored)?;
    if rows.is_empty() {
        return Err(PpoError::Invalid(format!(
            "{}: no rows to train on",
            opts.scored.display()
        )));
    }
    let temperature = rows[0].rollout.temperature;
    if let Some((i, r)) = rows
        .iter()
        .enumerate()
        .find(|(_, r)| r.rollout.temperature != temperature)
    {
        return Err(PpoError::Invalid(format!(
            "{}: row {i}: column `temperature` is {} but row 0 has {temperature}; one step trains on one sampling temperature",
            opts.scored.display(),
            r.rollout.temperature
        )));
    }
    // Greedy rollouts recorded the model's log-probs at temperature 1.
    let temperature = if temperature > 0.0 { temperature } else { 1.0 };
    let dev = model::device(&opts.device)?;
    let policy = Checkpoint::load(&opts.policy, &dev, DType::F32)?;
    let ctx = policy.config.max_position_embeddings;
    let samples: Vec<Sample> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut ids = r.rollout.prompt_token_ids.clone();
            ids.extend(&r.rollout.response_token_ids);
            if ids.len() > ctx || r.rollout.prompt_token_ids.is_empty() {
                return Err(PpoError::Invalid(format!(
                    "{}: row {i}: {} prompt + response tokens do not fit the model's context of {ctx} (or the prompt is empty)",
                    opts.scored.display(),
                    ids.len()
                )));
            }
            Ok(Sample {
                prompt_len: r.rollout.prompt_token_ids.len(),
                response_len: r.rollout.response_token_ids.len(),
                ids,
            })
        })
        .collect::<Result<_>>()?;
    let n = samples.len();
    let width = samples
        .iter()
        .map(|s| s.response_len)
        .max()
        .unwrap_or(0)
        .max(1);
    let norm_len = opts.norm_len.unwrap_or(width);
    let reference = match &reference {
        Some(r) => Some(Checkpoint::load(r, &dev, DType::F32)?),
        None => None,
    };
    // (critic, whether it was just made: a new critic has no optimizer state)
    let critic = if opts.uses_critic() {
        Some(match &opts.critic {
            Some(c) if c.join("config.json").exists() => {
                (Critic::load(c, &dev, DType::F32)?, false)
            }
            _ => {
                log(&format!(
                    "ppo-step: new critic from {} (value head at zero)",
                    opts.policy.display()
                ));
                (Critic::from_policy(&opts.policy, &dev, DType::F32)?, true)
            }
        })
    } else {
        None
    };
    let (critic, critic_is_new) = match critic {
        Some((c, new)) => (Some(c), new),
        None => (None, false),
    };

    // 2. Old log-probs, reference log-probs and values, without gradients.
    let all: Vec<usize> = (0..n).collect();
    let (mut old_lp, mut ref_lp, mut old_v) = (Vec::new(), Vec::new(), Vec::new());
    // [b, Rm] response-aligned -> each row's response_len values
    let per_row = |x: &Tensor, m: &Micro| -> Result<Vec<Vec<f32>>> {
        let v = x.to_vec2::<f32>()?;
        Ok(v.into_iter()
            .zip(&m.rows)
            .map(|(mut r, &i)| {
                r.truncate(samples[i].response_len);
                r
            })
            .collect())
    };
    for chunk in all.chunks(opts.micro_batch_size) {
        let m = micro(&samples, chunk, &dev)?;
        let lp = policy
            .model
            .token_logprobs_at(&m.batch, temperature, Some(&m.index), false)?;
        old_lp.extend(per_row(&lp.logprobs.detach(), &m)?);
        if let Some(r) = &reference {
            let lp = r
                .model
                .token_logprobs_at(&m.batch, temperature, Some(&m.index), false)?;
            ref_lp.extend(per_row(&lp.logprobs.detach(), &m)?);
        }
        if let Some(c) = &critic {
            old_v.extend(per_row(&responses(&c.values(&m.batch)?.detach(), &m)?, &m)?);
        }
    }
    let mask = stack(
        &samples
            .iter()
            .map(|s| vec![1.0; s.response_len])
            .collect::<Vec<_>>(),
        width,
        &dev,
    )?;
    let old_logp = stack(&old_lp, width, &dev)?;
    let rollout_logp = stack(
        &rows
            .iter()
            .map(|r| r.rollout.response_logprobs.clone())
            .collect::<Vec<_>>(),
        width,
        &dev,
    )?;
    let logprob_gap = scalar(&rl::masked_mean(
        &(&old_logp - &rollout_logp)?.abs()?,
        &mask,
    )?)?;
    let ref_logp = if reference.is_some() {
        Some(stack(&ref_lp, width, &dev)?)
    } else {
        None
    };

    // 3. Rewards, advantages, returns.
    let scores: Vec<f32> = rows.iter().map(|r| r.reward as f32).collect();
    let kl_in_reward = match (&ref_logp, opts.kl_placement()) {
        (Some(r), KlPlacement::Reward) => Some(rl::kl_penalty(&old_logp, r, opts.kl_estimator())?),
        _ => None,
    };
    let kl_to_ref = match &ref_logp {
        Some(r) => scalar(&rl::masked_mean(
            &rl::kl_penalty(&old_logp, r, KlEstimator::K1)?,
            &mask,
        )?)?,
        None => f64::NAN,
    };
    let (mut advantages, returns, old_values) = match opts.advantage() {
        AdvantageEstimator::Gae => {
            let s = if opts.reward_norm {
                rl::standardize(&scores)
            } else {
                scores.clone()
            };
            let r = rl::token_rewards(&s, kl_in_reward.as_ref(), opts.kl_coef(), &mask)?;
            let v = stack(&old_v, width, &dev)?;
            let (a, ret) = rl::gae(&r, &v, &mask, opts.gamma, opts.lam)?;
            (a, Some(ret), Some(v))
        }
        est => {
            let mut ids: Vec<&str> = rows.iter().map(|r| r.rollout.prompt_id.as_str()).collect();
            ids.sort();
            ids.dedup();
            let groups: Vec<usize> = rows
                .iter()
                .map(|r| {
                    ids.binary_search(&r.rollout.prompt_id.as_str())
                        .expect("id")
                })
                .collect();
            let a = rl::group_advantages(&scores, &groups, est, 1e-6);
            let mut adv = rl::broadcast_to_tokens(&a, &mask)?;
            if let Some(kl) = &kl_in_reward {
                // KL in the reward without a critic: each token's advantage
                // also pays the KL to come (gamma = 1 returns of -beta*kl).
                let r = rl::token_rewards(&vec![0.0; n], Some(kl), opts.kl_coef(), &mask)?;
                let (kl_adv, _) = rl::gae(&r, &mask.zeros_like()?, &mask, 1.0, 1.0)?;
                adv = (adv + kl_adv)?;
            }
            (adv, None, None)
        }
    };
    if opts.whiten_advantages() {
        advantages = rl::masked_whiten(&advantages, &mask, true)?;
    }
    let (adv_mean, adv_var) = rl::masked_mean_var(&advantages, &mask)?;
    let explained_var = match (&returns, &old_values) {
        (Some(r), Some(v)) => rl::explained_variance(r, v, &mask)?,
        _ => f64::NAN,
    };

    // 4. PPO epochs over mini-batches of micro-batches.
    let actor_params = Params::from_varmap(&policy.varmap);
    let adam = AdamWConfig {
        weight_decay: opts.weight_decay,
        ..AdamWConfig::default()
    };
    let mut actor_opt = AdamW::resume_or_new(&actor_params, adam, &opts.policy)?;
    let critic_params = critic.as_ref().map(|c| Params::from_varmap(&c.varmap));
    let mut critic_opt = match (&critic, &critic_params) {
        (Some(_), Some(p)) if critic_is_new => Some(AdamW::new(p, adam)),
        (Some(c), Some(p)) => Some(AdamW::resume_or_new(p, adam, &c.dir)?),
        _ => None,
    };
    let clip = ClipRange {
        low: opts.clip_ratio_low,
        high: opts.clip_ratio_high,
        dual_clip: opts.dual_clip,
    };
    let train_bs = opts.train_batch_size.unwrap_or(n).clamp(1, n);
    let n_mini = n.div_ceil(train_bs);
    let n_micro = train_bs.div_ceil(opts.micro_batch_size);
    let mut means = Means::default();
    let mut grad_norms = Vec::new();
    let mut trained_tokens = 0usize;
    let (kl_coef, kl_est) = (opts.kl_coef(), opts.kl_estimator());
    let kl_in_loss = opts.kl_placement() == KlPlacement::Loss && ref_logp.is_some();
    for epoch in 0..opts.ppo_epochs {
        let order = shuffled(
            n,
            opts.seed ^ (step as u64).wrapping_mul(0x9E37_79B9) ^ epoch as u64,
        );
        for (mi, mini) in order.chunks(train_bs).enumerate() {
            let total = (
                mini.len(),
                mini.iter().map(|&r| samples[r].response_len).sum::<usize>(),
            );
            let mut actor_grads = GradAccum::new(&actor_params);
            let mut critic_grads = critic_params.as_ref().map(GradAccum::new);
            for (ui, chunk) in mini.chunks(opts.micro_batch_size).enumerate() {
                let t0 = Instant::now();
                let m = micro(&samples, chunk, &dev)?;
                let tokens: usize = chunk.iter().map(|&r| samples[r].response_len).sum();
                let w = rl::micro_weight(opts.loss_agg, (chunk.len(), tokens), total);
                // The policy's graph lives in this block only, so it is
                // freed before the critic's forward.
                let (pg_loss, pm, ent, kl_loss_value) = {
                    let out = policy.model.token_logprobs_at(
                        &m.batch,
                        temperature,
                        Some(&m.index),
                        opts.entropy_coef != 0.0,
                    )?;
                    let logp = out.logprobs;
                    let (pg_loss, pm) = rl::policy_loss(
                        &rows_of(&old_logp, &m)?,
                        &logp,
                        &rows_of(&advantages, &m)?,
                        &m.mask,
                        clip,
                        opts.loss_agg,
                        norm_len,
                    )?;
                    let ent = rl::agg_loss(&out.entropy, &m.mask, opts.loss_agg, norm_len)?;
                    let mut loss = pg_loss.clone();
                    if opts.entropy_coef != 0.0 {
                        loss = (loss - (&ent * opts.entropy_coef)?)?;
                    }
                    let mut kl_loss_value = f64::NAN;
                    if kl_in_loss {
                        let r = rows_of(ref_logp.as_ref().expect("reference"), &m)?;
                        let kl = rl::agg_loss(
                            &rl::kl_penalty(&logp, &r, kl_est)?,
                            &m.mask,
                            opts.loss_agg,
                            norm_len,
                        )?;
                        kl_loss_value = scalar(&kl)?;
                        loss = (loss + (kl * kl_coef)?)?;
                    }
                    train::ensure_finite(scalar(&loss)?, "the policy loss")?;
                    actor_grads.add(&actor_params, &(loss * w)?.backward()?)?;
                    (pg_loss.detach(), pm, ent.detach(), kl_loss_value)
                };
                let pg = scalar(&pg_loss)?;
                means.add("pg_loss", pg, w);
                means.add("pg_clipfrac", pm.pg_clipfrac, w);
                means.add("pg_clipfrac_lower", pm.pg_clipfrac_lower, w);
                means.add("ppo_kl", pm.ppo_kl, w);
                means.add("entropy", scalar(&ent)?, w);
                if kl_in_loss {
                    means.add("kl_loss", kl_loss_value, w);
                }
                let mut line = format!(
                    "step {step} epoch {}/{} mini {}/{n_mini} micro {}/{n_micro} | pg_loss {pg:.5} pg_clipfrac {:.3} ppo_kl {:.5} entropy {:.4}",
                    epoch + 1,
                    opts.ppo_epochs,
                    mi + 1,
                    ui + 1,
                    pm.pg_clipfrac,
                    pm.ppo_kl,
                    scalar(&ent)?,
                );
                if let (Some(c), Some(grads), Some(ret), Some(ov)) =
                    (&critic, critic_grads.as_mut(), &returns, &old_values)
                {
                    let v = responses(&c.values(&m.batch)?, &m)?;
                    let (vf_loss, vf_clipfrac) = rl::value_loss(
                        &v,
                        &rows_of(ov, &m)?,
                        &rows_of(ret, &m)?,
                        &m.mask,
                        opts.value_clip,
                        opts.loss_agg,
                        norm_len,
                    )?;
                    let vf = scalar(&vf_loss)?;
                    train::ensure_finite(vf, "the value loss")?;
                    grads.add(
                        critic_params.as_ref().expect("critic"),
                        &(vf_loss * w)?.backward()?,
                    )?;
                    means.add("vf_loss", vf, w);
                    means.add("vf_clipfrac", vf_clipfrac, w);
                    line += &format!(" vf_loss {vf:.5} vf_clipfrac {vf_clipfrac:.3}");
                }
                let seq_tokens: usize = chunk.iter().map(|&r| samples[r].ids.len()).sum();
                trained_tokens += seq_tokens;
                line += &format!(
                    " | {:.1} tokens/s",
                    seq_tokens as f64 / t0.elapsed().as_secs_f64().max(1e-9)
                );
                log(&line);
            }
            // One optimizer step per mini-batch, after clipping.
            let norm = actor_grads.norm();
            train::ensure_finite(norm, "the policy gradient norm")?;
            grad_norms.push(norm);
            actor_opt.step(
                &actor_params,
                &actor_grads,
                opts.actor_lr,
                train::clip_coef(norm, opts.grad_clip),
            )?;
            if let (Some(grads), Some(p), Some(o)) =
                (&critic_grads, &critic_params, critic_opt.as_mut())
            {
                let norm = grads.norm();
                train::ensure_finite(norm, "the critic gradient norm")?;
                means.add("vf_grad_norm", norm, 1.0);
                o.step(
                    p,
                    grads,
                    opts.critic_lr,
                    train::clip_coef(norm, opts.grad_clip),
                )?;
            }
        }
    }

    // 5. Metrics and checkpoints.
    let elapsed = start.elapsed().as_secs_f64();
    let mut values = BTreeMap::new();
    means.into_values(&mut values);
    let rewards: Vec<f64> = rows.iter().map(|r| r.reward).collect();
    let (reward_mean, reward_std) = rl::mean_std(&rewards);
    let lens: Vec<f64> = samples.iter().map(|s| s.response_len as f64).collect();
    let frac =
        |f: &dyn Fn(&ScoredRow) -> bool| rows.iter().filter(|r| f(r)).count() as f64 / n as f64;
    for (k, v) in [
        ("kl_to_ref", kl_to_ref),
        ("vf_explained_var", explained_var),
        ("grad_norm", rl::mean_std(&grad_norms).0),
        ("reward_mean", reward_mean),
        ("reward_std", reward_std),
        ("accuracy", frac(&|r| r.correct)),
        ("no_answer_rate", frac(&|r| !r.has_answer)),
        ("response_length_mean", rl::mean_std(&lens).0),
        (
            "response_length_max",
            lens.iter().cloned().fold(0.0, f64::max),
        ),
        (
            "response_clip_ratio",
            frac(&|r| r.rollout.finish_reason == "length"),
        ),
        ("advantage_mean", adv_mean),
        ("advantage_std", adv_var.sqrt()),
        ("logprob_gap", logprob_gap),
        ("lr", opts.actor_lr),
        ("critic_lr", opts.critic_lr),
        ("kl_coef", kl_coef),
        ("elapsed_s", elapsed),
        ("tokens_per_s", trained_tokens as f64 / elapsed.max(1e-9)),
    ] {
        if !v.is_nan() {
            values.insert(k.to_string(), v);
        }
    }
    let metrics = MetricsRow { step, values };
    if let (Some(c), Some(p), Some(o), Some(out)) =
        (&critic, &critic_params, &critic_opt, &opts.critic_out)
    {
        c.save_with(out, Some(&opts.policy), &|dir| save_state(o, p, dir))?;
    }
    if let Some(m) = &opts.metrics {
        artifacts::metrics::append(m, metrics.clone())?;
    }
    policy.save_with(&opts.policy_out, None, &|dir| {
        save_state(&actor_opt, &actor_params, dir)
    })?;
    Ok(Summary { metrics })
}

fn save_state(opt: &AdamW, params: &Params, dir: &Path) -> model::Result<()> {
    opt.save(params, &dir.join(OPTIMIZER_FILE))
        .map_err(|e| model::ModelError::Invalid(e.to_string()))
}

/// 0..n in an order fixed by `seed`.
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    prep::rng::SplitMix64::new(seed).shuffle(&mut v);
    v
}
