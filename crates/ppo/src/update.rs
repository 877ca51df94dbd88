//! Part 4 of the step: PPO epochs over shuffled mini-batches, each the
//! sum of its micro-batches' gradients, then one clipped AdamW step for
//! the actor and for the critic.

use std::collections::BTreeMap;
use std::time::Instant;

use artifacts::metrics::Metric;
use candle_core::{backprop::GradStore, Tensor};
use model::checkpointing::{forward_backward, Packing, Pass};
use model::model::Model;
use train::GradAccum;

use crate::batch::{scalar, Batch, Micro};
use crate::{Config, CriticState, Models, OldLogprobs, Result, Scores, Targets, TrainError};

/// Weighted running means of the micro-batch metrics.
#[derive(Debug, Default, Clone)]
pub struct Means(BTreeMap<Metric, (f64, f64)>);

impl Means {
    pub fn add(&mut self, m: Metric, value: f64, weight: f64) {
        let e = self.0.entry(m).or_insert((0.0, 0.0));
        e.0 += value * weight;
        e.1 += weight;
    }

    /// Each metric's weighted mean over what was added since `before` (a
    /// clone taken earlier): one optimizer step's means.
    pub fn since(&self, before: &Means) -> BTreeMap<Metric, f64> {
        self.0
            .iter()
            .filter_map(|(&m, &(s, w))| {
                let (s0, w0) = before.0.get(&m).copied().unwrap_or((0.0, 0.0));
                (w - w0 > 0.0).then(|| (m, (s - s0) / (w - w0)))
            })
            .collect()
    }

    /// Replace what was added since `before` with its sum over the ranks
    /// of the job (weighted sums and weights add), so every rank holds the
    /// means of the whole mini-batch. One process: unchanged.
    pub fn reduce_since(&mut self, before: &Means, world: &dist::World) {
        if world.size() == 1 {
            return;
        }
        let mut flat: Vec<f64> = Metric::ALL
            .iter()
            .flat_map(|m| {
                let (s, w) = self.0.get(m).copied().unwrap_or((0.0, 0.0));
                let (s0, w0) = before.0.get(m).copied().unwrap_or((0.0, 0.0));
                [s - s0, w - w0]
            })
            .collect();
        world.all_reduce_sum_f64(&mut flat);
        for (m, d) in Metric::ALL.iter().zip(flat.chunks(2)) {
            let (s0, w0) = before.0.get(m).copied().unwrap_or((0.0, 0.0));
            if d[1] != 0.0 || self.0.contains_key(m) || before.0.contains_key(m) {
                self.0.insert(*m, (s0 + d[0], w0 + d[1]));
            }
        }
    }

    /// Each metric's weighted mean (NaN when its weights sum to 0).
    pub fn values(&self) -> BTreeMap<Metric, f64> {
        self.0
            .iter()
            .map(|(&m, &(s, w))| (m, if w > 0.0 { s / w } else { f64::NAN }))
            .collect()
    }
}

/// What the update measured.
#[derive(Debug, Default, Clone)]
pub struct UpdateStats {
    /// the micro-batch metrics, weighted as their losses
    pub means: Means,
    /// the policy's gradient norm of each optimizer step, before clipping
    pub grad_norms: Vec<f64>,
    /// prompt + response tokens through the forward and backward passes
    pub trained_tokens: usize,
    /// the actor's learning rate of the last optimizer step
    pub actor_lr: f64,
    /// the critic's learning rate of the last optimizer step (NaN without one)
    pub critic_lr: f64,
    /// each optimizer step's means, norms and rates, with the policy's
    /// optimizer steps done after it (the run's step count)
    pub per_step: Vec<(u64, BTreeMap<Metric, f64>)>,
}

/// Where one micro-batch sits, for its log line.
struct Position {
    step: i64,
    epoch: (usize, usize),
    mini: (usize, usize),
    micro: (usize, usize),
}

/// With `--old-logprobs rollout`, the largest mean |log-prob before the
/// update - rollout log-prob| the first mini-batch may show. The same
/// policy, sampling unfiltered in f32, gives 5e-6-7e-6 on SmolLM2 (sums
/// in another order); another checkpoint gives far more (a test), and a
/// top-k shifts every kept token's log-prob by the log of the mass it
/// keeps.
pub const ROLLOUT_LOGPROB_TOLERANCE: f64 = 1e-3;

/// The PPO epochs. `step` (the step number) seeds the shuffle with
/// `cfg.seed`; `log` gets one line per micro-batch.
pub fn update(
    models: &mut Models,
    batch: &Batch,
    scores: &Scores,
    targets: &Targets,
    cfg: &Config,
    step: i64,
    log: &mut dyn FnMut(&str),
) -> Result<UpdateStats> {
    let n = batch.len();
    let train_bs = cfg.train_batch_size.unwrap_or(n).clamp(1, n);
    let n_mini = n.div_ceil(train_bs);
    let n_micro = train_bs.div_ceil(cfg.micro_batch_size);
    let mut stats = UpdateStats {
        critic_lr: f64::NAN,
        ..UpdateStats::default()
    };
    for epoch in 0..cfg.ppo_epochs {
        let order = train::epoch_order(n, cfg.seed, step as u64, epoch as u64);
        for (mi, mini) in order.chunks(train_bs).enumerate() {
            let total = (batch.kept_rows(mini), batch.response_tokens(mini));
            let before = stats.means.clone();
            let mut actor_grads = models.actor.grads();
            let mut critic_grads = models.critic.as_ref().map(|c| c.train.grads());
            // Under an N-rank job, rank k takes micro-batches k, k + N, ...
            // and the gradients are summed over the ranks in the step.
            let world = dist::world();
            // A prompt's samples side by side, so a micro-batch holds them
            // together and the CPU pass computes their prompt once; the
            // mini-batch's loss is the sum of its micro-batches' whichever
            // rows go together (a stable sort: the shuffle's order within
            // a prompt).
            let mut mini = mini.to_vec();
            mini.sort_by_key(|&i| batch.groups[i]);
            let micros: Vec<&[usize]> = mini.chunks(cfg.micro_batch_size).collect();
            let tokens_before = stats.trained_tokens;
            for ui in world.mine(micros.len()) {
                let chunk = micros[ui];
                let t0 = Instant::now();
                let m = batch.micro(chunk, models.policy.model.device())?;
                let tokens = (batch.kept_rows(chunk), batch.response_tokens(chunk));
                let ms = MicroStep {
                    m: &m,
                    measure_gap: epoch == 0 && mi == 0 && cfg.old_logprobs == OldLogprobs::Rollout,
                    w: rl::micro_weight(cfg.loss_agg, tokens, total),
                    temperature: batch.temperature,
                    norm_len: cfg.norm_len.unwrap_or(batch.width),
                    scores,
                    targets,
                    cfg,
                };
                let (policy, actor) = (&models.policy.model, &models.actor);
                let mut line = actor_micro(policy, actor, &mut actor_grads, &ms, &mut stats.means)?;
                if let (Some(c), Some(g)) = (&models.critic, critic_grads.as_mut()) {
                    line += &critic_micro(c, g, &ms, &mut stats.means)?;
                }
                let seq_tokens = batch.sequence_tokens(chunk);
                stats.trained_tokens += seq_tokens;
                let at = Position {
                    step,
                    epoch: (epoch + 1, cfg.ppo_epochs),
                    mini: (mi + 1, n_mini),
                    micro: (ui + 1, n_micro),
                };
                let speed = seq_tokens as f64 / t0.elapsed().as_secs_f64().max(1e-9);
                log(&format!("{} | {line} | {speed:.1} tokens/s", at.describe()));
            }
            // The step's metrics and token count over every rank.
            stats.means.reduce_since(&before, &world);
            let mut tokens = [(stats.trained_tokens - tokens_before) as u64];
            world.all_reduce_sum_u64(&mut tokens);
            stats.trained_tokens = tokens_before + tokens[0] as usize;
            // The rollout's log-probs as the old ones: checked on the first
            // mini-batch, before the weights change.
            if epoch == 0 && mi == 0 && cfg.old_logprobs == OldLogprobs::Rollout {
                let gap = stats.means.since(&before).get(&Metric::LogprobGap).copied();
                if let Some(gap) = gap.filter(|g| g.is_nan() || *g > ROLLOUT_LOGPROB_TOLERANCE) {
                    return Err(TrainError::Invalid(format!(
                        "--old-logprobs rollout: the rollout's log-probs are not this policy's (mean gap {gap:.2e} on the first mini-batch, more than {ROLLOUT_LOGPROB_TOLERANCE:e}): it sampled with another checkpoint, dtype or a top-k; use --old-logprobs recompute"
                    )));
                }
            }
            // One optimizer step per mini-batch, after clipping, at the
            // schedule's rate for the run's optimizer step.
            let lr = cfg.actor_lr_at(models.actor.steps_done());
            stats.actor_lr = lr;
            let norm = models
                .actor
                .clip_and_step(&mut actor_grads, lr, cfg.grad_clip, "policy")?;
            stats.grad_norms.push(norm);
            let mut this_step = stats.means.since(&before);
            this_step.insert(Metric::GradNorm, norm);
            this_step.insert(Metric::Lr, lr);
            if let (Some(c), Some(g)) = (models.critic.as_mut(), critic_grads.as_mut()) {
                let lr = cfg.critic_lr_at(c.train.steps_done());
                stats.critic_lr = lr;
                let norm = c.train.clip_and_step(g, lr, cfg.grad_clip, "critic")?;
                stats.means.add(Metric::VfGradNorm, norm, 1.0);
                this_step.insert(Metric::VfGradNorm, norm);
                this_step.insert(Metric::CriticLr, lr);
            }
            stats.per_step.push((models.actor.steps_done(), this_step));
        }
    }
    Ok(stats)
}

impl Position {
    fn describe(&self) -> String {
        format!(
            "step {} epoch {}/{} mini {}/{} micro {}/{}",
            self.step,
            self.epoch.0,
            self.epoch.1,
            self.mini.0,
            self.mini.1,
            self.micro.0,
            self.micro.1
        )
    }
}

/// One micro-batch of the update: its rows, its share of the mini-batch's
/// loss, and what the losses need of the batch.
struct MicroStep<'a> {
    m: &'a Micro,
    /// measure `logprob_gap` (the old log-probs are the rollout's and the
    /// policy has not changed yet)
    measure_gap: bool,
    /// the micro-batch's weight in its mini-batch (`rl::micro_weight`)
    w: f64,
    /// the sampling temperature of the batch
    temperature: f64,
    /// the length of seq-mean-token-sum-norm
    norm_len: usize,
    scores: &'a Scores,
    targets: &'a Targets,
    cfg: &'a Config,
}

impl MicroStep<'_> {
    /// The training pass the settings ask for, the head `head_rows` rows
    /// at a time.
    fn pass(&self, head_rows: usize) -> Pass {
        Pass {
            checkpointing: self.cfg.memory.grad_checkpointing,
            head_rows,
            engine: Default::default(),
            packing: Packing::Packed,
        }
    }
}

/// The actor's loss on micro-batch `m` (policy loss, minus the entropy
/// bonus, plus the KL term when the KL is a loss), backpropagated with
/// weight `w` into `grads`; its metrics go into `means`. Returns the log
/// line's part. The policy's graph lives in this function only, so it is
/// freed before the critic's forward.
fn actor_micro(
    policy: &Model,
    actor: &train::Trainable,
    grads: &mut GradAccum,
    ms: &MicroStep,
    means: &mut Means,
) -> Result<String> {
    let (m, w, norm_len, cfg) = (ms.m, ms.w, ms.norm_len, ms.cfg);
    let (scores, targets) = (ms.scores, ms.targets);
    let with_entropy = cfg.entropy_coef != 0.0;
    let head = policy.logprob_head_of(&m.batch, Some(&m.index), ms.temperature, with_entropy);
    let pass = ms.pass(policy.head_rows(m.index.dim(1)?));
    let loss_of = |outs: &[Tensor]| -> Result<(Tensor, (Tensor, rl::PolicyLossMetrics, Tensor))> {
        let (logp, entropy) = (&outs[0], &outs[1]);
        if ms.measure_gap {
            let old = m.rows_of(&scores.old_logp)?;
            let tokens = scalar(&m.loss_mask.sum_all()?)?;
            if tokens > 0.0 {
                let gap = rl::masked_mean(&(logp - &old)?.abs()?, &m.loss_mask)?;
                means.add(Metric::LogprobGap, scalar(&gap)?, tokens);
            }
        }
        let tis = targets
            .tis_weights
            .as_ref()
            .map(|w| m.rows_of(w))
            .transpose()?;
        let (pg_loss, pm) = rl::policy_loss_weighted(
            &m.rows_of(&scores.old_logp)?,
            logp,
            &m.rows_of(&targets.advantages)?,
            &m.loss_mask,
            cfg.clip_range(),
            cfg.loss_agg,
            norm_len,
            tis.as_ref(),
        )?;
        let ent = rl::agg_loss(entropy, &m.loss_mask, cfg.loss_agg, norm_len)?;
        let mut loss = pg_loss.clone();
        if with_entropy {
            loss = (loss - (&ent * cfg.entropy_coef)?)?;
        }
        if let (true, Some(r)) = (cfg.kl_in_loss(), &scores.ref_logp) {
            let kl = rl::kl_penalty(logp, &m.rows_of(r)?, cfg.kl_estimator())?;
            let kl = rl::agg_loss(&kl, &m.loss_mask, cfg.loss_agg, norm_len)?;
            means.add(Metric::KlLoss, scalar(&kl)?, w);
            loss = (loss + (kl * cfg.kl_coef())?)?;
        }
        train::ensure_finite(scalar(&loss)?, "the policy loss")?;
        Ok(((loss * w)?, (pg_loss, pm, ent)))
    };
    let mut sink = |store: &GradStore| grads.add(&actor.params, store);
    let (pg_loss, pm, ent) = forward_backward(policy, &m.batch, &head, pass, loss_of, &mut sink)?;
    let (pg, entropy) = (scalar(&pg_loss)?, scalar(&ent)?);
    for (metric, v) in [
        (Metric::PgLoss, pg),
        (Metric::PgClipfrac, pm.pg_clipfrac),
        (Metric::PgClipfracLower, pm.pg_clipfrac_lower),
        (Metric::PpoKl, pm.ppo_kl),
        (Metric::Entropy, entropy),
    ] {
        means.add(metric, v, w);
    }
    Ok(format!(
        "{} {pg:.5} {} {:.3} {} {:.5} {} {entropy:.4}",
        Metric::PgLoss,
        Metric::PgClipfrac,
        pm.pg_clipfrac,
        Metric::PpoKl,
        pm.ppo_kl,
        Metric::Entropy,
    ))
}

/// The critic's clipped value loss on micro-batch `m`, backpropagated with
/// weight `w` into `grads`; its metrics go into `means`. Returns the log
/// line's part.
fn critic_micro(
    critic: &CriticState,
    grads: &mut GradAccum,
    ms: &MicroStep,
    means: &mut Means,
) -> Result<String> {
    let (m, w, norm_len, cfg) = (ms.m, ms.w, ms.norm_len, ms.cfg);
    let (scores, targets) = (ms.scores, ms.targets);
    let (Some(old_values), Some(returns)) = (&scores.values, &targets.returns) else {
        return Ok(String::new());
    };
    let head = critic.model.head();
    let pass = ms.pass(m.batch.ids.dim(0)?);
    let loss_of = |outs: &[Tensor]| -> Result<(Tensor, (f64, f64))> {
        let v = m.responses(&outs[0])?;
        let (vf_loss, vf_clipfrac) = rl::value_loss(
            &v,
            &m.rows_of(old_values)?,
            &m.rows_of(returns)?,
            &m.loss_mask,
            cfg.value_clip,
            cfg.loss_agg,
            norm_len,
        )?;
        let vf = scalar(&vf_loss)?;
        train::ensure_finite(vf, "the value loss")?;
        Ok(((vf_loss * w)?, (vf, vf_clipfrac)))
    };
    let mut sink = |store: &GradStore| grads.add(&critic.train.params, store);
    let (vf, vf_clipfrac) = forward_backward(
        &critic.model.model,
        &m.batch,
        &head,
        pass,
        loss_of,
        &mut sink,
    )?;
    means.add(Metric::VfLoss, vf, w);
    means.add(Metric::VfClipfrac, vf_clipfrac, w);
    Ok(format!(
        " {} {vf:.5} {} {vf_clipfrac:.3}",
        Metric::VfLoss,
        Metric::VfClipfrac
    ))
}
