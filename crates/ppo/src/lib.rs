//! One PPO (actor-critic) or GRPO update from a scored rollouts file,
//! written as new policy and critic checkpoints with their optimizer state,
//! and one row of metrics. The ppo-step tool is argument parsing plus
//! [`run`].
//!
//! [`run`] reads as the step's five parts, each a function below:
//! 1. [`Batch::read`] and [`Models::load`]: the scored rows as token
//!    sequences; the policy and the critic (made from the policy when there
//!    is none yet), each with its optimizer;
//! 2. [`score`]: without gradients, the old log-probs under the current
//!    policy (their gap to the rollout's is a metric), the reference's
//!    log-probs (the reference is loaded for this and dropped after) and
//!    the critic's values;
//! 3. [`targets`]: token rewards (score on the last token, minus the KL
//!    penalty when it goes in the reward), advantages and returns;
//! 4. [`update`]: PPO epochs over shuffled mini-batches; each accumulates
//!    micro-batch gradients (memory bounded by the micro-batch), clips the
//!    global norm and takes one AdamW step for the actor and the critic;
//! 5. [`save`]: the critic, the policy written beside its folder, the
//!    metrics row, then the policy swapped in (last: its directory is the
//!    step's target).

mod batch;
mod config;
mod update;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use artifacts::metrics::{Metric, MetricsRow};
use candle_core::{DType, Device, Tensor};
use model::checkpointing::{outputs_nograd, Packing};
use model::model::Model;
use model::{Checkpoint, Critic};
use rl::{AdvantageEstimator, KlEstimator, KlPlacement};
use train::memory;
use train::{AdamWConfig, TrainError, Trainable};

pub use batch::{filter_rows, Batch, FilterStats, RowFilter};
pub use config::{Algo, Config, Io, OldLogprobs, Options, OverlongPenalty, Preset};
pub use update::{update, Means, UpdateStats};

use batch::{scalar, stack};

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// What a step did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub metrics: MetricsRow,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = |m: Metric| self.metrics.get(m).unwrap_or(f64::NAN);
        write!(f, "step {}:", self.metrics.step)?;
        for (m, digits) in [
            (Metric::RewardMean, 4),
            (Metric::Accuracy, 4),
            (Metric::PgLoss, 4),
            (Metric::VfLoss, 4),
            (Metric::KlToRef, 5),
            (Metric::GradNorm, 4),
            (Metric::TokensPerS, 1),
            (Metric::ElapsedS, 1),
        ] {
            write!(f, " {m} {:.*}", digits, v(m))?;
        }
        Ok(())
    }
}

/// Run one step; `log` gets one line per micro-batch.
pub fn run(opts: &Options, log: &mut dyn FnMut(&str)) -> Result<Summary> {
    let start = Instant::now();
    let (io, cfg) = (&opts.io, &opts.config);
    validate(opts)?;
    let step = match io.step {
        Some(s) => s,
        None => match &io.metrics {
            Some(m) => artifacts::metrics::next_step(m)?,
            None => 0,
        },
    };
    // 1. The batch and the models being trained.
    let dev = model::device(&cfg.device)?;
    let filter = RowFilter {
        filter_groups: cfg.filter_groups,
        train_groups: cfg.train_groups,
        overlong_filter: cfg.overlong_filter,
    };
    let (batch, filtered) = Batch::read_with(&io.scored, &dev, &filter)?;
    if filtered.nothing_informative {
        log("ppo-step: every group's rewards are equal: nothing to filter out, training on all of them");
    }
    if cfg.old_logprobs == OldLogprobs::Rollout {
        batch.check_unfiltered(&io.scored)?;
    }
    let plan = memory_plan(opts, &batch)?;
    log(&plan.describe());
    let mut models = Models::load(opts, &dev, log)?;
    log(&models.describe_state());
    // Each phase's wall time, for the step's last log line.
    let t_load = start.elapsed().as_secs_f64();
    // The KL coefficient of this step: the adaptive controller's, carried
    // in the policy's optimizer state, or --kl-coef.
    let carried_kl = models.actor.opt.carried.get(KL_COEF_STATE).copied();
    let step_cfg = Config {
        kl_coef: Some(match (cfg.kl_target, carried_kl) {
            (Some(_), Some(c)) => c,
            _ => cfg.kl_coef(),
        }),
        ..cfg.clone()
    };
    let cfg = &step_cfg;
    batch.check_context(models.policy.config.max_position_embeddings, &io.scored)?;
    batch.check_vocab(models.policy.config.vocab_size, &io.scored)?;
    // 2. Old log-probs, reference log-probs and values, without gradients.
    let t0 = Instant::now();
    let scores = score(&models, io.reference.as_deref(), &batch, cfg)?;
    let t_score = t0.elapsed().as_secs_f64();
    // 3. Rewards, advantages, returns.
    let targets = targets(&batch, &scores, cfg)?;
    // 4. The update, and the adaptive KL coefficient for the next step.
    let t0 = Instant::now();
    let stats = update(&mut models, &batch, &scores, &targets, cfg, step, log)?;
    let t_update = t0.elapsed().as_secs_f64();
    if let Some(target) = cfg.kl_target {
        let ctl = rl::AdaptiveKl {
            target,
            horizon: cfg.kl_horizon,
        };
        let next = ctl.update(cfg.kl_coef(), targets.kl_to_ref, batch.len());
        train::ensure_finite(next, "the adaptive KL coefficient")?;
        models.actor.opt.carried.insert(KL_COEF_STATE.into(), next);
    }
    // 5. Metrics and checkpoints.
    let elapsed = start.elapsed().as_secs_f64();
    let mut metrics = metrics_row(step, &batch, &scores, &targets, &stats, cfg, elapsed);
    for (m, v, on) in [
        (
            Metric::FilteredGroupRatio,
            filtered.uniform_groups as f64 / filtered.groups.max(1) as f64,
            cfg.filter_groups,
        ),
        (
            Metric::ExtraPrompts,
            filtered.extra_prompts as f64,
            cfg.filter_groups && cfg.train_groups.is_some(),
        ),
        (
            Metric::OverlongFilteredRatio,
            filtered.overlong_filtered as f64 / batch.len().max(1) as f64,
            cfg.overlong_filter,
        ),
    ] {
        if on {
            metrics.values.insert(m, v);
        }
    }
    let t0 = Instant::now();
    save(opts, &models, &metrics, &stats)?;
    log(&format!(
        "ppo-step: timing_s load {t_load:.1} score {t_score:.1} update {t_update:.1} save {:.1}",
        t0.elapsed().as_secs_f64()
    ));
    Ok(Summary { metrics })
}

/// The name of the adaptive KL coefficient in the optimizer state.
pub const KL_COEF_STATE: &str = "kl_coef";

/// Options that cannot make a step, caught before anything is loaded.
fn validate(opts: &Options) -> Result<()> {
    let (io, cfg) = (&opts.io, &opts.config);
    let invalid = |m: &str| Err(TrainError::Invalid(m.into()));
    io.check_outputs()
        .map_err(|e| TrainError::Invalid(e.to_string()))?;
    // The policy's tokenizer files go into the output: they must load.
    model::tokenizer::check_side_files(&io.policy)?;
    if cfg.micro_batch_size == 0 || cfg.ppo_epochs == 0 {
        return invalid("--micro-batch-size and --ppo-epochs must be at least 1");
    }
    if cfg.uses_critic() && io.critic_out.is_none() {
        return invalid("GAE needs a critic: give --critic-out (and --critic to continue one)");
    }
    if cfg.uses_reference() && io.reference.is_none() {
        return invalid(
            "the KL penalty needs --reference (the initial policy); or set --kl-coef 0",
        );
    }
    if cfg.train_groups.is_some() && !cfg.filter_groups {
        return invalid("--train-groups counts informative groups: it needs --filter-groups");
    }
    if cfg.old_logprobs == OldLogprobs::Rollout && cfg.tis_cap.is_some() {
        return invalid(
            "--tis-cap corrects the gap between the rollout's and the trainer's log-probs; with --old-logprobs rollout there is none to correct: use --old-logprobs recompute",
        );
    }
    if cfg.kl_target.is_some() && !cfg.uses_reference() {
        return invalid(
            "--kl-target adapts the KL coefficient from --kl-coef: give a positive --kl-coef, a --reference, and a KL placement",
        );
    }
    let scheduled = cfg.lr_schedule != train::LrSchedule::Constant || cfg.lr_warmup_ratio > 0.0;
    if scheduled && cfg.total_steps.is_none() {
        return invalid(
            "--lr-schedule and --lr-warmup-ratio span the whole run: give --total-steps (optimizer steps of every ppo-step of the run)",
        );
    }
    model::checkpoint::check_output(&io.policy_out)?;
    if let Some(c) = &io.critic_out {
        model::checkpoint::check_output(c)?;
    }
    Ok(())
}

/// The step's memory plan from the models' config.json files and the
/// batch's longest sequence, checked against `--max-memory` before
/// anything is loaded.
pub fn memory_plan(opts: &Options, batch: &Batch) -> Result<memory::Plan> {
    let (io, cfg) = (&opts.io, &opts.config);
    let (policy_cfg, _) = model::checkpoint::read_config(&io.policy)?;
    let resumed = |dir: Option<&Path>| dir.is_some_and(|d| d.join(train::OPTIMIZER_FILE).exists());
    let cpu_pass = cfg.device == "cpu" && cfg.memory.dtype == model::Precision::F32;
    let m = |name, trained, scoring_only, value_head, weight_bytes, resumed| memory::ModelPlan {
        name,
        cfg: policy_cfg.clone(),
        weight_bytes,
        trained,
        resumed,
        scoring_only,
        value_head,
        cpu_pass,
    };
    let mut models = vec![m(
        "policy",
        true,
        false,
        false,
        4.0,
        resumed(Some(&io.policy)),
    )];
    if cfg.uses_critic() {
        models.push(m(
            "critic",
            true,
            false,
            true,
            4.0,
            resumed(io.critic.as_deref()),
        ));
    }
    if cfg.uses_reference() && io.reference.is_some() {
        let s = cfg.memory.dtype.dtype().size_in_bytes() as f64;
        models.push(m("reference", false, true, false, s, false));
    }
    let micro = memory::MicroShape {
        rows: cfg.micro_batch_size.min(batch.len()),
        seq_len: batch.longest(),
        response_len: batch.width,
    };
    let train_bs = cfg
        .train_batch_size
        .unwrap_or(batch.len())
        .clamp(1, batch.len());
    let steps = batch.len().div_ceil(train_bs) * cfg.ppo_epochs;
    memory::check(&models, micro, &cfg.memory, steps)
}

/// The critic being trained, with its optimizer.
pub struct CriticState {
    pub model: Critic,
    pub train: Trainable,
}

/// The models a step trains: the policy, and the critic when the
/// advantage estimator needs one.
pub struct Models {
    pub policy: Checkpoint,
    pub actor: Trainable,
    pub critic: Option<CriticState>,
}

impl Models {
    /// The policy with its optimizer state; the critic of `--critic` with
    /// its state, or a new one made from the policy.
    pub fn load(opts: &Options, dev: &Device, log: &mut dyn FnMut(&str)) -> Result<Models> {
        let (io, cfg) = (&opts.io, &opts.config);
        let adam = AdamWConfig {
            weight_decay: cfg.weight_decay,
            beta1: cfg.adam_betas.0,
            beta2: cfg.adam_betas.1,
            ..AdamWConfig::default()
        };
        let compute = cfg.memory.dtype.dtype();
        let mut policy = Checkpoint::load(&io.policy, dev, DType::F32)?;
        policy.model.set_compute_dtype(compute)?;
        let shard = cfg.memory.shard_optimizer;
        let actor = Trainable::with_sharding(&policy.varmap, adam, Some(&io.policy), shard)?;
        let critic = if !cfg.uses_critic() {
            None
        } else if let Some(c) = &io.critic {
            if !c.join("config.json").exists() {
                return Err(TrainError::Invalid(format!(
                    "--critic {}: no critic checkpoint there (no config.json); leave out --critic to start a new critic from the policy",
                    c.display()
                )));
            }
            let mut model = Critic::load(c, dev, DType::F32)?;
            model.model.set_compute_dtype(compute)?;
            let train = Trainable::with_sharding(&model.varmap, adam, Some(c), shard)?;
            Some(CriticState { model, train })
        } else {
            log(&format!(
                "ppo-step: new critic from {} (value head at zero)",
                io.policy.display()
            ));
            let mut model = Critic::from_policy(&io.policy, dev, DType::F32)?;
            model.model.set_compute_dtype(compute)?;
            let train = Trainable::with_sharding(&model.varmap, adam, None, shard)?;
            Some(CriticState { model, train })
        };
        Ok(Models {
            policy,
            actor,
            critic,
        })
    }
}

impl Models {
    /// The AdamW state each rank keeps (collective: every rank calls it),
    /// e.g. `ppo-step: AdamW state per rank: policy 0.54/0.54 GB, critic
    /// 0.54/0.54 GB (of 1.08 GB each; 2 ranks, --shard-optimizer)`.
    pub fn describe_state(&self) -> String {
        let w = dist::world();
        let mut models = vec![("policy", &self.actor)];
        if let Some(c) = &self.critic {
            models.push(("critic", &c.train));
        }
        let parts: Vec<String> = models
            .iter()
            .map(|(name, t)| {
                let (mine, all) = t.state_bytes_planned();
                let mut per_rank = vec![0.0; w.size()];
                per_rank[w.rank()] = mine as f64 / 1e9;
                w.all_reduce_sum_f64(&mut per_rank);
                let shown: Vec<String> = per_rank.iter().map(|g| format!("{g:.2}")).collect();
                format!(
                    "{name} {} GB (of {:.2} GB)",
                    shown.join("/"),
                    all as f64 / 1e9
                )
            })
            .collect();
        let how = if self.actor.is_sharded() {
            format!("{} ranks, --shard-optimizer", w.size())
        } else if w.size() > 1 {
            format!("{} ranks, each with all of it", w.size())
        } else {
            "one process".to_string()
        };
        format!(
            "ppo-step: AdamW state per rank: {} ({how})",
            parts.join(", ")
        )
    }
}

/// What the models said about the batch before the update, response
/// aligned, `[N, W]` (zero past each response).
pub struct Scores {
    /// log-probs under the policy before the update
    pub old_logp: Tensor,
    /// log-probs under the reference, when the step uses it
    pub ref_logp: Option<Tensor>,
    /// the critic's values, when there is a critic
    pub values: Option<Tensor>,
    /// mean |old log-prob - rollout log-prob| over response tokens (NaN
    /// with `--old-logprobs rollout`: the update measures it)
    pub logprob_gap: f64,
}

/// The no-gradient pass over the batch, micro-batch by micro-batch. The
/// reference (at `reference`, when the step uses it) is loaded here and
/// dropped before training.
pub fn score(
    models: &Models,
    reference: Option<&Path>,
    batch: &Batch,
    cfg: &Config,
) -> Result<Scores> {
    let dev = models.policy.model.device();
    let compute = cfg.memory.dtype.dtype();
    // The reference only scores: its weights are loaded in the compute dtype.
    let reference = match reference.filter(|_| cfg.uses_reference()) {
        Some(r) => Some(Checkpoint::load(r, dev, compute)?),
        None => None,
    };
    let (mut old, mut refs, mut values) = (Vec::new(), Vec::new(), Vec::new());
    let all: Vec<usize> = (0..batch.len()).collect();
    // Under an N-rank job each rank scores every N-th micro-batch; the
    // rows are gathered below.
    let world = dist::world();
    let chunks: Vec<&[usize]> = all.chunks(cfg.micro_batch_size).collect();
    for ci in world.mine(chunks.len()) {
        let chunk = chunks[ci];
        let m = batch.micro(chunk, dev)?;
        let t = batch.temperature;
        let logprobs = |model: &Model| -> Result<Vec<Vec<f32>>> {
            let head = model.logprob_head_of(&m.batch, Some(&m.index), t, false);
            let rows = model.head_rows(batch.width);
            // The losses read real positions only: packed.
            let out = outputs_nograd(model, &m.batch, &head, rows, Packing::Packed)?;
            batch.per_row(&out[0], &m)
        };
        if cfg.old_logprobs == OldLogprobs::Recompute {
            old.extend(logprobs(&models.policy.model)?);
        }
        if let Some(r) = &reference {
            refs.extend(logprobs(&r.model)?);
        }
        if let Some(c) = &models.critic {
            let v = outputs_nograd(
                &c.model.model,
                &m.batch,
                &c.model.head(),
                m.batch.ids.dim(0)?,
                Packing::Packed,
            )?;
            values.extend(batch.per_row(&m.responses(&v[0])?, &m)?);
        }
    }
    let had_reference = reference.is_some();
    drop(reference);
    let sizes: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
    let old = gather_rows(&world, &sizes, old);
    let refs = gather_rows(&world, &sizes, refs);
    let values = gather_rows(&world, &sizes, values);
    let (w, mask) = (batch.width, &batch.mask);
    let rollout_logp = stack(&batch.rollout_logprobs(), w, dev)?;
    // With the rollout's log-probs, the gap is measured by the update, on
    // its first mini-batch (see `update::ROLLOUT_LOGPROB_TOLERANCE`).
    let (old_logp, logprob_gap) = match cfg.old_logprobs {
        OldLogprobs::Recompute => {
            let old_logp = stack(&old, w, dev)?;
            let gap = scalar(&rl::masked_mean(
                &(&old_logp - &rollout_logp)?.abs()?,
                mask,
            )?)?;
            (old_logp, gap)
        }
        OldLogprobs::Rollout => (rollout_logp, f64::NAN),
    };
    Ok(Scores {
        old_logp,
        ref_logp: had_reference.then(|| stack(&refs, w, dev)).transpose()?,
        values: models
            .critic
            .as_ref()
            .map(|_| stack(&values, w, dev))
            .transpose()?,
        logprob_gap,
    })
}

/// Every rank's rows in micro-batch order, on every rank: `mine` holds
/// this rank's rows of micro-batches rank, rank + N, ... (`sizes`: the
/// rows of each micro-batch). One process: `mine` itself.
fn gather_rows(world: &dist::World, sizes: &[usize], mine: Vec<Vec<f32>>) -> Vec<Vec<f32>> {
    if world.size() == 1 || mine.is_empty() && sizes.is_empty() {
        return mine;
    }
    // Each row as its length (u32) and its values.
    let mut bytes = Vec::new();
    for row in &mine {
        bytes.extend_from_slice(&(row.len() as u32).to_le_bytes());
        for x in row {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
    }
    let parts = world.all_gather_bytes(&bytes);
    if parts.iter().all(|p| p.is_empty()) {
        return Vec::new(); // nothing was scored (no reference, no critic)
    }
    let mut at = vec![0usize; parts.len()];
    let f32_at = |p: &[u8], i: usize| f32::from_le_bytes(p[i..i + 4].try_into().expect("4 bytes"));
    let mut rows = Vec::new();
    for (ci, &n) in sizes.iter().enumerate() {
        let r = ci % world.size();
        let p = &parts[r];
        for _ in 0..n {
            let len = u32::from_le_bytes(p[at[r]..at[r] + 4].try_into().expect("4 bytes")) as usize;
            let start = at[r] + 4;
            rows.push((0..len).map(|j| f32_at(p, start + 4 * j)).collect());
            at[r] = start + 4 * len;
        }
    }
    rows
}

/// What the update trains towards, `[N, W]`, and its batch statistics.
pub struct Targets {
    pub advantages: Tensor,
    /// the critic's targets (GAE only)
    pub returns: Option<Tensor>,
    /// mean k1 KL to the reference over response tokens (NaN without one)
    pub kl_to_ref: f64,
    pub advantage_mean: f64,
    pub advantage_std: f64,
    /// of the returns by the old values (NaN without a critic)
    pub explained_var: f64,
    /// truncated importance-sampling weights `[N, W]` (with --tis-cap)
    pub tis_weights: Option<Tensor>,
    pub tis: Option<rl::TisMetrics>,
    /// mean overlong penalty added to the scores (NaN without one)
    pub overlong_penalty_mean: f64,
}

/// Token rewards, advantages (GAE with the critic's values, or
/// group-normalised over each prompt's samples), optionally whitened.
pub fn targets(batch: &Batch, scores: &Scores, cfg: &Config) -> Result<Targets> {
    let mask = &batch.mask;
    let kl_in_reward = match (&scores.ref_logp, cfg.kl_placement()) {
        (Some(r), KlPlacement::Reward) => {
            Some(rl::kl_penalty(&scores.old_logp, r, cfg.kl_estimator())?)
        }
        _ => None,
    };
    let kl_to_ref = match &scores.ref_logp {
        Some(r) => scalar(&rl::masked_mean(
            &rl::kl_penalty(&scores.old_logp, r, KlEstimator::K1)?,
            mask,
        )?)?,
        None => f64::NAN,
    };
    // The sequence scores: the reward, plus DAPO's overlong penalty, clipped.
    let penalties: Option<Vec<f64>> = cfg.overlong_penalty.map(|p| {
        batch
            .response_lens()
            .map(|l| rl::overlong_penalty(l, p.max_len, p.cache))
            .collect()
    });
    let penalized: Vec<f32> = match &penalties {
        Some(p) => batch
            .scores
            .iter()
            .zip(p)
            .map(|(&s, &p)| s + p as f32)
            .collect(),
        None => batch.scores.clone(),
    };
    let overlong_penalty_mean = penalties.as_ref().map_or(f64::NAN, |p| rl::mean_std(p).0);
    let scores_clipped = rl::clip_rewards(&penalized, cfg.reward_clip);
    let reinforce = |s: &[f32]| -> Result<Tensor> {
        let r = rl::token_rewards(s, kl_in_reward.as_ref(), cfg.kl_coef(), mask)?;
        Ok(rl::reinforce_returns(&r, mask, cfg.gamma)?)
    };
    let (mut advantages, returns) = match (cfg.advantage(), &scores.values) {
        (AdvantageEstimator::Gae, Some(values)) => {
            let s = if cfg.reward_norm {
                rl::standardize(&scores_clipped)
            } else {
                scores_clipped
            };
            let r = rl::token_rewards(&s, kl_in_reward.as_ref(), cfg.kl_coef(), mask)?;
            let (a, ret) = rl::gae(&r, values, mask, cfg.gamma, cfg.lam)?;
            (a, Some(ret))
        }
        (AdvantageEstimator::Gae, None) => {
            return Err(TrainError::Invalid("GAE advantages need a critic".into()))
        }
        (AdvantageEstimator::ReinforcePp, _) => (reinforce(&scores_clipped)?, None),
        (AdvantageEstimator::ReinforcePpBaseline, _) => {
            let centred = rl::group_advantages(
                &scores_clipped,
                &batch.groups,
                AdvantageEstimator::ReinforcePpBaseline,
                1e-6,
            );
            (reinforce(&centred)?, None)
        }
        (est, _) => (
            group_advantages(batch, &scores_clipped, est, kl_in_reward.as_ref(), cfg)?,
            None,
        ),
    };
    if cfg.whiten_advantages() {
        advantages = rl::masked_whiten(&advantages, mask, true)?;
    }
    let (advantage_mean, adv_var) = rl::masked_mean_var(&advantages, mask)?;
    let explained_var = match (&returns, &scores.values) {
        (Some(r), Some(v)) => rl::explained_variance(r, v, mask)?,
        _ => f64::NAN,
    };
    let (tis_weights, tis) = match cfg.tis_cap {
        Some(cap) => {
            let rollout_logp = stack(&batch.rollout_logprobs(), batch.width, mask.device())?;
            let (w, m) = rl::tis_weights(&scores.old_logp, &rollout_logp, mask, cap)?;
            (Some(w), Some(m))
        }
        None => (None, None),
    };
    Ok(Targets {
        advantages,
        returns,
        kl_to_ref,
        advantage_mean,
        advantage_std: adv_var.sqrt(),
        explained_var,
        tis_weights,
        tis,
        overlong_penalty_mean,
    })
}

/// Group advantages over each prompt's samples, broadcast to the tokens;
/// with the KL in the reward (and no critic), each token's advantage also
/// pays the KL to come (gamma = 1 returns of -beta * kl).
fn group_advantages(
    batch: &Batch,
    scores: &[f32],
    est: AdvantageEstimator,
    kl_in_reward: Option<&Tensor>,
    cfg: &Config,
) -> Result<Tensor> {
    let mask = &batch.mask;
    let a = rl::group_advantages(scores, &batch.groups, est, 1e-6);
    let mut adv = rl::broadcast_to_tokens(&a, mask)?;
    if let Some(kl) = kl_in_reward {
        let r = rl::token_rewards(&vec![0.0; batch.len()], Some(kl), cfg.kl_coef(), mask)?;
        let (kl_adv, _) = rl::gae(&r, &mask.zeros_like()?, mask, 1.0, 1.0)?;
        adv = (adv + kl_adv)?;
    }
    Ok(adv)
}

/// The step's metrics row: the update's means, the batch's statistics and
/// the settings used.
pub fn metrics_row(
    step: i64,
    batch: &Batch,
    scores: &Scores,
    targets: &Targets,
    stats: &UpdateStats,
    cfg: &Config,
    elapsed: f64,
) -> MetricsRow {
    let mut values: BTreeMap<Metric, f64> = stats.means.values();
    // The rollout's facts over every row of the file (before filters).
    let file = &batch.file;
    let frac = |xs: &[bool]| xs.iter().filter(|&&x| x).count() as f64 / xs.len().max(1) as f64;
    let (reward_mean, reward_std) = rl::mean_std(&file.reward);
    let lens: Vec<f64> = file.response_len.iter().map(|&l| l as f64).collect();
    for (m, v) in [
        (Metric::KlToRef, targets.kl_to_ref),
        (Metric::VfExplainedVar, targets.explained_var),
        (Metric::GradNorm, rl::mean_std(&stats.grad_norms).0),
        (Metric::RewardMean, reward_mean),
        (Metric::RewardStd, reward_std),
        (Metric::Accuracy, frac(&file.correct)),
        (Metric::NoAnswerRate, 1.0 - frac(&file.has_answer)),
        (Metric::ResponseLengthMean, rl::mean_std(&lens).0),
        (
            Metric::ResponseLengthMax,
            lens.iter().cloned().fold(0.0, f64::max),
        ),
        (Metric::ResponseClipRatio, frac(&file.truncated)),
        (Metric::AdvantageMean, targets.advantage_mean),
        (Metric::AdvantageStd, targets.advantage_std),
        (
            Metric::LogprobGap,
            match cfg.old_logprobs {
                OldLogprobs::Recompute => scores.logprob_gap,
                OldLogprobs::Rollout => {
                    values.get(&Metric::LogprobGap).copied().unwrap_or(f64::NAN)
                }
            },
        ),
        (
            Metric::TisWeightMean,
            targets.tis.map_or(f64::NAN, |t| t.tis_weight_mean),
        ),
        (
            Metric::TisClipfrac,
            targets.tis.map_or(f64::NAN, |t| t.tis_clipfrac),
        ),
        (Metric::OverlongPenaltyMean, targets.overlong_penalty_mean),
        (Metric::Lr, stats.actor_lr),
        (Metric::CriticLr, stats.critic_lr),
        (Metric::KlCoef, cfg.kl_coef()),
        (Metric::ElapsedS, elapsed),
        (
            Metric::TokensPerS,
            stats.trained_tokens as f64 / elapsed.max(1e-9),
        ),
        (
            Metric::RolloutS,
            artifacts::provenance::upstream_seconds("rollout").unwrap_or(f64::NAN),
        ),
        (
            Metric::VerifyS,
            artifacts::provenance::upstream_seconds("verify").unwrap_or(f64::NAN),
        ),
        (Metric::Timestamp, artifacts::tensorboard::now()),
    ] {
        if !v.is_nan() {
            values.insert(m, v);
        }
    }
    MetricsRow { step, values }
}

/// The step's TensorBoard scalars, against the run's optimizer steps:
/// `train/NAME` for each optimizer step's means, norms and rates, and
/// `iteration/NAME` for every value of the metrics row at the step's last
/// optimizer step.
pub fn tensorboard_scalars(
    metrics: &MetricsRow,
    stats: &UpdateStats,
) -> Vec<artifacts::tensorboard::Scalar> {
    let wall = artifacts::tensorboard::now();
    let point = |prefix: &str, step: u64, m: &Metric, v: f64| artifacts::tensorboard::Scalar {
        tag: format!("{prefix}/{m}"),
        step: step as i64,
        value: v as f32,
        wall_time: wall,
    };
    let mut out: Vec<_> = stats
        .per_step
        .iter()
        .flat_map(|(step, values)| values.iter().map(|(m, v)| point("train", *step, m, *v)))
        .collect();
    let last = stats.per_step.last().map_or(0, |(s, _)| *s);
    // A Unix time does not fit an f32 scalar; TensorBoard has each
    // event's wall time.
    out.extend(
        metrics
            .values
            .iter()
            .filter(|(m, _)| **m != Metric::Timestamp)
            .map(|(m, v)| point("iteration", last, m, *v)),
    );
    out
}

/// Write the critic, then the policy (flushed beside its destination),
/// then the metrics row, then swap the policy in: the policy's directory
/// is the step's target, so it comes last, and a write that fails (a full
/// disk) fails before the metrics row exists. A step killed after its
/// metrics row is rerun whole, and its row (keyed by step) replaced.
pub fn save(
    opts: &Options,
    models: &Models,
    metrics: &MetricsRow,
    stats: &UpdateStats,
) -> Result<()> {
    let io = &opts.io;
    // Every rank has finished the step before rank 0 writes anything.
    dist::world().barrier();
    if !dist::world().is_root() {
        // Rank 0 writes; a rank with a share of the optimizer state writes
        // it into rank 0's checkpoints, in the order rank 0 writes them.
        if let (Some(c), Some(_)) = (&models.critic, &io.critic_out) {
            c.train.save_state_elsewhere()?;
        }
        models.actor.save_state_elsewhere()?;
        return Ok(());
    }
    if let (Some(c), Some(out)) = (&models.critic, &io.critic_out) {
        c.model
            .save_with(out, Some(&io.policy), &|dir| c.train.save_state(dir))?;
    }
    let policy = models
        .policy
        .prepare(&io.policy_out, None, &|dir| models.actor.save_state(dir))?;
    let tb = io.tensorboard.clone().or_else(|| {
        io.metrics
            .as_deref()
            .map(artifacts::tensorboard::dir_beside)
    });
    if let Some(dir) = tb {
        artifacts::tensorboard::write(
            &dir,
            &format!("ppo-step.{:08}", metrics.step),
            &tensorboard_scalars(metrics, stats),
        )?;
    }
    if let Some(m) = &io.metrics {
        // A step numbered from the file must still be new; --step is an
        // explicit resume and replaces its row.
        match io.step {
            Some(_) => artifacts::metrics::append(m, metrics.clone())?,
            None => artifacts::metrics::append_new(m, metrics.clone())?,
        }
    }
    policy.commit()?;
    Ok(())
}
