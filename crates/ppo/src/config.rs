//! What a step reads and writes ([`Io`]) and how it trains ([`Config`]).
//!
//! Every default is written once, in `Config::default()` or in the
//! algorithm's [`Preset`]; with the `clap` feature both structs are clap
//! `Args` (their doc comments are the help text) that a tool flattens into
//! its command line, and the help's defaults are read from the same place.

use std::path::PathBuf;

use rl::{AdvantageEstimator, ClipRange, KlEstimator, KlPlacement, LossAgg};

/// DAPO's soft overlong punishment: `MAX:CACHE` tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverlongPenalty {
    pub max_len: usize,
    pub cache: usize,
}

impl std::str::FromStr for OverlongPenalty {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("--overlong-penalty must look like MAX:CACHE with 1 <= CACHE <= MAX, got `{s}`")
        };
        let (m, c) = s.split_once(':').ok_or_else(bad)?;
        let (max_len, cache): (usize, usize) =
            (m.parse().map_err(|_| bad())?, c.parse().map_err(|_| bad())?);
        if cache == 0 || cache > max_len {
            return Err(bad());
        }
        Ok(OverlongPenalty { max_len, cache })
    }
}

impl std::fmt::Display for OverlongPenalty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.max_len, self.cache)
    }
}

/// Where the PPO ratio's old log-probs come from.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OldLogprobs {
    /// A scoring pass of the policy over the batch before the update
    /// (verl's default).
    #[default]
    Recompute,
    /// The rollout's own log-probs (`response_logprobs`), which are the
    /// policy's when it sampled unfiltered (top-p 1, no top-k) in the
    /// compute dtype of the step: one forward pass fewer. The first
    /// mini-batch's training forward, taken before any optimizer step,
    /// checks it: a `logprob_gap` above 1e-3 stops the step before the
    /// weights change.
    Rollout,
}

/// The algorithm: it presets the choices a user leaves unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    /// Actor-critic PPO.
    Ppo,
    /// GRPO: group-normalised advantages over each prompt's samples, no
    /// critic.
    Grpo,
    /// REINFORCE++: token returns with the KL in the reward, whitened over
    /// the batch; no critic.
    ReinforcePp,
    /// REINFORCE++-baseline: the group mean subtracted first; KL (k3) as a
    /// loss term.
    ReinforcePpBaseline,
}

/// An algorithm's choices, where the user gives none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preset {
    pub advantage: AdvantageEstimator,
    pub kl_placement: KlPlacement,
    pub kl_coef: f64,
}

impl Algo {
    pub const ALL: [Algo; 4] = [
        Algo::Ppo,
        Algo::Grpo,
        Algo::ReinforcePp,
        Algo::ReinforcePpBaseline,
    ];

    /// The flag value.
    pub const fn name(self) -> &'static str {
        match self {
            Algo::Ppo => "ppo",
            Algo::Grpo => "grpo",
            Algo::ReinforcePp => "reinforce-pp",
            Algo::ReinforcePpBaseline => "reinforce-pp-baseline",
        }
    }

    /// The one table of what each algorithm presets.
    pub const fn preset(self) -> Preset {
        match self {
            Algo::Ppo => Preset {
                advantage: AdvantageEstimator::Gae,
                kl_placement: KlPlacement::Reward,
                kl_coef: 0.01,
            },
            Algo::Grpo => Preset {
                advantage: AdvantageEstimator::Grpo,
                kl_placement: KlPlacement::Loss,
                kl_coef: 0.001,
            },
            Algo::ReinforcePp => Preset {
                advantage: AdvantageEstimator::ReinforcePp,
                kl_placement: KlPlacement::Reward,
                kl_coef: 0.01,
            },
            Algo::ReinforcePpBaseline => Preset {
                advantage: AdvantageEstimator::ReinforcePpBaseline,
                kl_placement: KlPlacement::Loss,
                kl_coef: 0.001,
            },
        }
    }

    /// The preset in words (the help text of `--algo`).
    pub fn describe(self) -> String {
        let p = self.preset();
        let c = Config {
            algo: self,
            ..Config::default()
        };
        let kind = match self {
            Algo::Ppo => "actor-critic",
            _ => "no critic",
        };
        let lc = |x: &dyn std::fmt::Debug| format!("{x:?}").to_lowercase();
        format!(
            "{kind}: {} advantages{}, KL to the reference ({}, coefficient {}) in the {}",
            lc(&p.advantage),
            if c.whiten_advantages() {
                ", whitened"
            } else {
                ""
            },
            lc(&c.kl_estimator()),
            p.kl_coef,
            lc(&p.kl_placement),
        )
    }
}

#[cfg(feature = "clap")]
impl clap::ValueEnum for Algo {
    fn value_variants<'a>() -> &'a [Self] {
        &Algo::ALL
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()).help(self.describe()))
    }
}

/// Where a step reads and writes.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct Io {
    /// Scored rollouts (verify's output): token ids, log-probs and
    /// `reward`; on the command line, the first argument.
    #[cfg_attr(feature = "clap", arg(skip))]
    pub scored: PathBuf,
    /// The policy that sampled the rollouts (HF-layout checkpoint); its
    /// optimizer.safetensors, when present, is resumed.
    #[cfg_attr(feature = "clap", arg(long))]
    pub policy: PathBuf,
    /// The frozen reference for the KL penalty (the initial policy).
    /// Required unless --kl-coef 0 or --kl-placement none.
    #[cfg_attr(feature = "clap", arg(long))]
    pub reference: Option<PathBuf>,
    /// The critic to continue (ppo-step's earlier --critic-out); it must
    /// exist. Absent: a new one is made from --policy.
    #[cfg_attr(feature = "clap", arg(long))]
    pub critic: Option<PathBuf>,
    /// Where the updated policy goes (written atomically).
    #[cfg_attr(
        feature = "clap",
        arg(short = 'o', long = "output", alias = "policy-out", value_name = "DIR")
    )]
    pub policy_out: PathBuf,
    /// Where the updated critic goes (needed with GAE advantages).
    #[cfg_attr(feature = "clap", arg(long))]
    pub critic_out: Option<PathBuf>,
    /// Metrics Parquet to append this step's row to (a row of the same
    /// step is replaced).
    #[cfg_attr(feature = "clap", arg(long))]
    pub metrics: Option<PathBuf>,
    /// Step number for the metrics row (default: one past the file's last).
    #[cfg_attr(feature = "clap", arg(long))]
    pub step: Option<i64>,
    /// TensorBoard event files go here (one file per step, every metric
    /// at each optimizer step) [default: tensorboard/ beside --metrics;
    /// none without --metrics].
    #[cfg_attr(feature = "clap", arg(long))]
    pub tensorboard: Option<PathBuf>,
    /// Let -o be --policy (and --critic-out be --critic): continue in
    /// place, replacing the input checkpoint. Without it an output that is
    /// any input is refused; the reference and the scored file never.
    #[cfg_attr(feature = "clap", arg(long))]
    pub in_place: bool,
}

impl Io {
    /// An error when an output is one of the inputs (or lies inside or
    /// holds one); with `in_place`, -o may be the policy and --critic-out
    /// the critic it continues.
    pub fn check_outputs(&self) -> Result<(), durable::Error> {
        let mut outputs = vec![(&self.policy_out, Some(&self.policy))];
        outputs.extend(self.critic_out.iter().map(|c| (c, self.critic.as_ref())));
        outputs.extend(self.metrics.iter().map(|m| (m, None)));
        outputs.extend(self.tensorboard.iter().map(|t| (t, None)));
        for (out, its_own) in outputs {
            let inputs: Vec<&std::path::Path> = [Some(&self.scored), Some(&self.policy)]
                .into_iter()
                .chain([self.reference.as_ref(), self.critic.as_ref()])
                .flatten()
                .filter(|i| !(self.in_place && Some(*i) == its_own))
                .map(PathBuf::as_path)
                .collect();
            durable::check_not_input(out, &inputs)?;
        }
        Ok(())
    }

    /// Read `scored` and `policy`, write `policy_out`; nothing else.
    pub fn new(scored: PathBuf, policy: PathBuf, policy_out: PathBuf) -> Io {
        Io {
            scored,
            policy,
            reference: None,
            critic: None,
            policy_out,
            critic_out: None,
            metrics: None,
            step: None,
            tensorboard: None,
            in_place: false,
        }
    }
}

/// How a step trains. `None` in a choice means the algorithm's preset.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct Config {
    /// The algorithm; it presets the choices below that are left unset.
    #[cfg_attr(feature = "clap", arg(long, value_enum, default_value_t = Config::default().algo))]
    pub algo: Algo,
    /// Advantage estimator [default: the --algo preset].
    #[cfg_attr(feature = "clap", arg(long, value_enum))]
    pub advantage: Option<AdvantageEstimator>,
    /// Where the KL to the reference goes [default: the --algo preset].
    #[cfg_attr(feature = "clap", arg(long, value_enum))]
    pub kl_placement: Option<KlPlacement>,
    /// KL estimator [default: k3 when the KL is a loss term, k1 otherwise].
    #[cfg_attr(feature = "clap", arg(long, value_enum))]
    pub kl_estimator: Option<KlEstimator>,
    /// KL coefficient [default: the --algo preset]. [range: >= 0]
    #[cfg_attr(feature = "clap", arg(long, value_parser = flags::non_negative))]
    pub kl_coef: Option<f64>,
    /// The policy's (actor's) learning rate. [range: >= 0]
    #[cfg_attr(feature = "clap", arg(long = "lr", alias = "actor-lr", value_name = "LR", default_value_t = Config::default().actor_lr, value_parser = flags::non_negative))]
    pub actor_lr: f64,
    /// How the actor's and the critic's learning rates move over the whole
    /// run (several ppo-steps): the position is each model's optimizer
    /// steps so far, saved with its optimizer state. Anything but constant
    /// needs --total-steps.
    #[cfg_attr(feature = "clap", arg(long, value_enum, default_value_t = Config::default().lr_schedule))]
    pub lr_schedule: train::LrSchedule,
    /// Linear warmup of both rates over this share of --total-steps. [range: 0 to 1]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().lr_warmup_ratio, value_parser = flags::unit))]
    pub lr_warmup_ratio: f64,
    /// Each rate decays to this share of its base rate (cosine, linear). [range: 0 to 1]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().min_lr_ratio, value_parser = flags::unit))]
    pub min_lr_ratio: f64,
    /// Optimizer steps of the whole run (every ppo-step of it), which the
    /// schedule and the warmup span. [range: >= 1]
    #[cfg_attr(feature = "clap", arg(long, value_parser = flags::steps))]
    pub total_steps: Option<u64>,
    /// AdamW's betas, as B1,B2.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().adam_betas))]
    pub adam_betas: train::Betas,
    /// Critic learning rate. [range: >= 0]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().critic_lr, value_parser = flags::non_negative))]
    pub critic_lr: f64,
    /// PPO clip range epsilon (both sides unless set below). [range: > 0]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().clip_ratio, value_parser = flags::positive))]
    pub clip_ratio: f64,
    /// Lower clip epsilon (ratio >= 1 - low) [default: --clip-ratio]. [range: > 0]
    #[cfg_attr(feature = "clap", arg(long, value_parser = flags::positive))]
    pub clip_ratio_low: Option<f64>,
    /// Upper clip epsilon (ratio <= 1 + high) [default: --clip-ratio];
    /// above the lower one it is DAPO's clip-higher, e.g. 0.28. [range: > 0]
    #[cfg_attr(feature = "clap", arg(long, value_parser = flags::positive))]
    pub clip_ratio_high: Option<f64>,
    /// Dual-clip constant c > 1: caps the loss of negative-advantage tokens at -A*c. [range: > 1]
    #[cfg_attr(feature = "clap", arg(long, value_parser = flags::above_one))]
    pub dual_clip: Option<f64>,
    /// Value clip range around the old values. [range: > 0]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().value_clip, value_parser = flags::positive))]
    pub value_clip: f64,
    /// Discount. [range: 0 to 1]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().gamma, value_parser = flags::unit))]
    pub gamma: f64,
    /// GAE lambda. 1 (Monte-Carlo returns minus the value baseline): with
    /// a single terminal reward and a critic that starts untrained, a
    /// lower lambda would bootstrap from values that know nothing yet. [range: 0 to 1]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().lam, value_parser = flags::unit))]
    pub lam: f64,
    /// Standardise the sequence rewards over the batch before GAE.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().reward_norm, action = clap::ArgAction::Set))]
    pub reward_norm: bool,
    /// Clamp each sequence's reward to [-C, C] before anything else uses
    /// it (OpenRLHF's reward_clip_range). [range: > 0]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().reward_clip, value_parser = flags::positive))]
    pub reward_clip: f64,
    /// DAPO's dynamic sampling: leave out groups (the samples of one
    /// prompt) whose rewards are all equal, which carry no group-relative
    /// signal (rollout --filter-groups samples further prompts to make up
    /// for them).
    #[cfg_attr(feature = "clap", arg(long))]
    pub filter_groups: bool,
    /// With --filter-groups, train on at most this many informative groups,
    /// the first in the file (the rollout's prompt batch; the groups it
    /// sampled beyond are the `extra_prompts` metric). [range: >= 1]
    #[cfg_attr(feature = "clap", arg(long, value_parser = flags::at_least_one))]
    pub train_groups: Option<usize>,
    /// DAPO's overlong filtering: responses cut at the length limit
    /// (finish reason `length`) add nothing to the loss.
    #[cfg_attr(feature = "clap", arg(long))]
    pub overlong_filter: bool,
    /// DAPO's soft overlong punishment, as MAX:CACHE: a response longer
    /// than MAX - CACHE tokens loses up to 1 of reward, linearly, by MAX.
    #[cfg_attr(feature = "clap", arg(long))]
    pub overlong_penalty: Option<OverlongPenalty>,
    /// Truncated importance sampling: weight each token's policy loss by
    /// min(exp(logp_train - logp_rollout), C), correcting for the gap
    /// between the sampler's and the trainer's log-probs. [range: > 0]
    #[cfg_attr(feature = "clap", arg(long, value_parser = flags::positive))]
    pub tis_cap: Option<f64>,
    /// Where the ratio's old log-probs come from.
    #[cfg_attr(feature = "clap", arg(long, value_enum, default_value_t = Config::default().old_logprobs))]
    pub old_logprobs: OldLogprobs,
    /// Adaptive KL: move the coefficient (starting at --kl-coef) so the KL
    /// to the reference stays near this target; the coefficient is carried
    /// from step to step in the policy's optimizer state. [range: > 0]
    #[cfg_attr(feature = "clap", arg(long, value_parser = flags::positive))]
    pub kl_target: Option<f64>,
    /// The adaptive KL controller's horizon, in samples. [range: > 0]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().kl_horizon, value_parser = flags::positive))]
    pub kl_horizon: f64,
    /// Whiten advantages over the batch [default: on for gae, off otherwise].
    #[cfg_attr(feature = "clap", arg(long, action = clap::ArgAction::Set))]
    pub whiten_advantages: Option<bool>,
    /// Entropy bonus coefficient. [range: >= 0]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().entropy_coef, value_parser = flags::non_negative))]
    pub entropy_coef: f64,
    /// Loss aggregation.
    #[cfg_attr(feature = "clap", arg(long, value_enum, default_value_t = Config::default().loss_agg))]
    pub loss_agg: LossAgg,
    /// The constant length of seq-mean-token-sum-norm [default: the
    /// longest response of the batch]; set it to --max-new-tokens. [range: >= 1]
    #[cfg_attr(feature = "clap", arg(long, value_parser = flags::at_least_one))]
    pub norm_len: Option<usize>,
    /// Global gradient-norm clip (0: off). [range: >= 0]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().grad_clip, value_parser = flags::non_negative))]
    pub grad_clip: f64,
    /// AdamW weight decay. [range: >= 0]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().weight_decay, value_parser = flags::non_negative))]
    pub weight_decay: f64,
    /// Sequences per optimizer step [default: the whole file, one step per epoch]. [range: >= 1]
    #[cfg_attr(feature = "clap", arg(long, value_parser = flags::at_least_one))]
    pub train_batch_size: Option<usize>,
    /// Sequences per forward/backward; gradients accumulate over
    /// micro-batches, so memory is bounded by this, not the train batch. [range: >= 1]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().micro_batch_size, value_parser = flags::at_least_one))]
    pub micro_batch_size: usize,
    /// Passes over the batch. [range: >= 1]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().ppo_epochs, value_parser = flags::at_least_one))]
    pub ppo_epochs: usize,
    /// Seed of the mini-batch shuffle.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().seed))]
    pub seed: u64,
    /// cpu, cuda:N, or cuda (GPU 0; under mpirun each rank's own, by local
    /// rank): the CUDA build, make build-cuda.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Config::default().device))]
    pub device: String,
    #[cfg_attr(feature = "clap", command(flatten))]
    pub memory: train::memory::MemoryOptions,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            algo: Algo::Ppo,
            advantage: None,
            kl_placement: None,
            kl_estimator: None,
            kl_coef: None,
            actor_lr: 5e-7,
            critic_lr: 9e-6,
            lr_schedule: train::LrSchedule::Constant,
            lr_warmup_ratio: 0.0,
            min_lr_ratio: 0.0,
            total_steps: None,
            adam_betas: train::Betas(0.9, 0.999),
            clip_ratio: 0.2,
            clip_ratio_low: None,
            clip_ratio_high: None,
            dual_clip: None,
            value_clip: 0.5,
            gamma: 1.0,
            lam: 1.0,
            reward_norm: true,
            reward_clip: 10.0,
            filter_groups: false,
            train_groups: None,
            overlong_filter: false,
            overlong_penalty: None,
            tis_cap: None,
            old_logprobs: OldLogprobs::Recompute,
            kl_target: None,
            kl_horizon: 10_000.0,
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
            memory: train::memory::MemoryOptions::default(),
        }
    }
}

impl Config {
    /// The defaults for `algo`.
    pub fn for_algo(algo: Algo) -> Config {
        Config {
            algo,
            ..Config::default()
        }
    }

    pub fn advantage(&self) -> AdvantageEstimator {
        self.advantage.unwrap_or(self.algo.preset().advantage)
    }
    pub fn kl_placement(&self) -> KlPlacement {
        self.kl_placement.unwrap_or(self.algo.preset().kl_placement)
    }
    pub fn kl_estimator(&self) -> KlEstimator {
        self.kl_estimator.unwrap_or(match self.kl_placement() {
            KlPlacement::Loss => KlEstimator::K3,
            _ => KlEstimator::K1,
        })
    }
    pub fn kl_coef(&self) -> f64 {
        self.kl_coef.unwrap_or(self.algo.preset().kl_coef)
    }
    pub fn whiten_advantages(&self) -> bool {
        self.whiten_advantages.unwrap_or(matches!(
            self.advantage(),
            AdvantageEstimator::Gae
                | AdvantageEstimator::ReinforcePp
                | AdvantageEstimator::ReinforcePpBaseline
        ))
    }
    pub fn clip_range(&self) -> ClipRange {
        ClipRange {
            low: self.clip_ratio_low.unwrap_or(self.clip_ratio),
            high: self.clip_ratio_high.unwrap_or(self.clip_ratio),
            dual_clip: self.dual_clip,
        }
    }
    /// The actor's learning rate for (0-based) optimizer step `step` of
    /// the run: --lr under the schedule, after the warmup.
    pub fn actor_lr_at(&self, step: u64) -> f64 {
        self.lr_at(self.actor_lr, step)
    }
    /// The critic's, the same way from --critic-lr.
    pub fn critic_lr_at(&self, step: u64) -> f64 {
        self.lr_at(self.critic_lr, step)
    }
    fn lr_at(&self, base: f64, step: u64) -> f64 {
        match self.total_steps {
            None => base,
            Some(total) => {
                self.lr_schedule
                    .lr(base, step, total, self.warmup_steps(), self.min_lr_ratio)
            }
        }
    }
    /// Optimizer steps of the warmup: ceil(ratio x total), as OpenRLHF.
    pub fn warmup_steps(&self) -> u64 {
        self.total_steps
            .map_or(0, |t| (self.lr_warmup_ratio * t as f64).ceil() as u64)
    }
    /// Whether the step trains a critic (GAE needs one).
    pub fn uses_critic(&self) -> bool {
        self.advantage() == AdvantageEstimator::Gae
    }
    /// Whether the step needs the reference's log-probs.
    pub fn uses_reference(&self) -> bool {
        self.kl_placement() != KlPlacement::None && self.kl_coef() != 0.0
    }
    /// Whether the KL to the reference is a term of the policy loss.
    pub fn kl_in_loss(&self) -> bool {
        self.uses_reference() && self.kl_placement() == KlPlacement::Loss
    }
}

#[cfg(feature = "clap")]
impl Config {
    /// Every setting as the step will use it (presets applied), as
    /// (flag name without the dashes, value as a flag would take it):
    /// what `ppo-step --print-config` prints.
    pub fn resolved(&self) -> Vec<(&'static str, String)> {
        fn name<T: clap::ValueEnum>(v: T) -> String {
            v.to_possible_value()
                .map(|p| p.get_name().to_string())
                .unwrap_or_default()
        }
        let opt = |v: Option<String>| v.unwrap_or_else(|| "none".into());
        let clip = self.clip_range();
        vec![
            ("algo", name(self.algo)),
            ("advantage", name(self.advantage())),
            ("kl-placement", name(self.kl_placement())),
            ("kl-estimator", name(self.kl_estimator())),
            ("kl-coef", self.kl_coef().to_string()),
            ("lr", self.actor_lr.to_string()),
            ("critic-lr", self.critic_lr.to_string()),
            ("lr-schedule", name(self.lr_schedule)),
            ("lr-warmup-ratio", self.lr_warmup_ratio.to_string()),
            ("min-lr-ratio", self.min_lr_ratio.to_string()),
            ("total-steps", opt(self.total_steps.map(|t| t.to_string()))),
            ("warmup-steps", self.warmup_steps().to_string()),
            ("adam-betas", self.adam_betas.to_string()),
            ("weight-decay", self.weight_decay.to_string()),
            ("clip-ratio-low", clip.low.to_string()),
            ("clip-ratio-high", clip.high.to_string()),
            ("dual-clip", opt(clip.dual_clip.map(|c| c.to_string()))),
            ("value-clip", self.value_clip.to_string()),
            ("gamma", self.gamma.to_string()),
            ("lam", self.lam.to_string()),
            ("reward-norm", self.reward_norm.to_string()),
            ("reward-clip", self.reward_clip.to_string()),
            ("filter-groups", self.filter_groups.to_string()),
            (
                "train-groups",
                opt(self.train_groups.map(|n| n.to_string())),
            ),
            ("overlong-filter", self.overlong_filter.to_string()),
            (
                "overlong-penalty",
                opt(self.overlong_penalty.map(|p| p.to_string())),
            ),
            ("tis-cap", opt(self.tis_cap.map(|c| c.to_string()))),
            ("old-logprobs", name(self.old_logprobs)),
            ("kl-target", opt(self.kl_target.map(|t| t.to_string()))),
            ("kl-horizon", self.kl_horizon.to_string()),
            ("whiten-advantages", self.whiten_advantages().to_string()),
            ("entropy-coef", self.entropy_coef.to_string()),
            ("loss-agg", name(self.loss_agg)),
            ("norm-len", opt(self.norm_len.map(|n| n.to_string()))),
            ("grad-clip", self.grad_clip.to_string()),
            (
                "train-batch-size",
                opt(self.train_batch_size.map(|n| n.to_string())),
            ),
            ("micro-batch-size", self.micro_batch_size.to_string()),
            ("ppo-epochs", self.ppo_epochs.to_string()),
            ("seed", self.seed.to_string()),
            ("device", self.device.clone()),
            ("dtype", name(self.memory.dtype)),
            (
                "grad-checkpointing",
                self.memory.grad_checkpointing.to_string(),
            ),
        ]
    }
}

/// Everything one step needs.
#[derive(Debug, Clone)]
pub struct Options {
    pub io: Io,
    pub config: Config,
}

impl Options {
    /// `algo`'s defaults, reading `scored` and `policy`, writing `policy_out`.
    pub fn new(algo: Algo, scored: PathBuf, policy: PathBuf, policy_out: PathBuf) -> Options {
        Options {
            io: Io::new(scored, policy, policy_out),
            config: Config::for_algo(algo),
        }
    }
}
