//! ppo-step: one PPO or GRPO update.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ppo_step::{Algo, Options};
use rl::{AdvantageEstimator, KlEstimator, KlPlacement, LossAgg};

/// One policy update from a scored rollouts file (verify's output): PPO
/// with a critic (GAE) or GRPO (group-normalised advantages, no critic).
///
/// Reads the `reward` of each row, recomputes the old log-probs under
/// --policy, and writes the updated policy to --policy-out (and the
/// critic to --critic-out), each an HF-layout checkpoint with its
/// optimizer state (optimizer.safetensors), so the next step resumes
/// exactly. Appends one row to --metrics. Prints one line per micro-batch.
///
/// Defaults are the SimpleRL-Zero recipe's (PPO: actor lr 5e-7, critic lr
/// 9e-6, KL coefficient 0.01 in the reward, clip 0.2, gamma 1, lambda 1,
/// reward normalisation, grad-norm clip 1.0, AdamW). Example, one PPO
/// iteration:
///
///   ppo-step --scored iter-0/scored.parquet --policy models/smollm2-135m-instruct
///     --reference models/smollm2-135m-instruct --policy-out iter-0/policy
///     --critic-out iter-0/critic --metrics metrics.parquet
///
/// and the next one continues from `--policy iter-0/policy --critic iter-0/critic`.
#[derive(Parser)]
#[command(version, about, long_about, verbatim_doc_comment)]
struct Cli {
    /// Scored rollouts (verify's output): token ids, log-probs and `reward`.
    #[arg(long)]
    scored: PathBuf,
    /// The policy that sampled the rollouts (HF-layout checkpoint); its
    /// optimizer.safetensors, when present, is resumed.
    #[arg(long)]
    policy: PathBuf,
    /// The frozen reference for the KL penalty (the initial policy).
    /// Required unless --kl-coef 0 or --kl-placement none.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// The critic to continue (ppo-step's earlier --critic-out). Absent or
    /// missing: a new one is made from --policy.
    #[arg(long)]
    critic: Option<PathBuf>,
    /// Where the updated policy goes (written atomically).
    #[arg(long)]
    policy_out: PathBuf,
    /// Where the updated critic goes (needed with GAE advantages).
    #[arg(long)]
    critic_out: Option<PathBuf>,
    /// Metrics Parquet to append this step's row to (a row of the same
    /// step is replaced).
    #[arg(long)]
    metrics: Option<PathBuf>,
    /// Step number for the metrics row (default: one past the file's last).
    #[arg(long)]
    step: Option<i64>,
    /// ppo (actor-critic) or grpo (no critic).
    #[arg(long, value_enum, default_value_t = Algo::Ppo)]
    algo: Algo,
    /// Advantage estimator [default: gae for ppo, grpo for grpo].
    #[arg(long, value_enum)]
    advantage: Option<AdvantageEstimator>,
    /// Where the KL to the reference goes [default: reward for ppo, loss for grpo].
    #[arg(long, value_enum)]
    kl_placement: Option<KlPlacement>,
    /// KL estimator [default: k1 in the reward, k3 as a loss].
    #[arg(long, value_enum)]
    kl_estimator: Option<KlEstimator>,
    /// KL coefficient [default: 0.01 for ppo, 0.001 for grpo].
    #[arg(long)]
    kl_coef: Option<f64>,
    /// Actor (policy) learning rate.
    #[arg(long, default_value_t = 5e-7)]
    actor_lr: f64,
    /// Critic learning rate.
    #[arg(long, default_value_t = 9e-6)]
    critic_lr: f64,
    /// PPO clip range epsilon (both sides unless set below).
    #[arg(long, default_value_t = 0.2)]
    clip_ratio: f64,
    /// Lower clip epsilon (ratio >= 1 - low).
    #[arg(long)]
    clip_ratio_low: Option<f64>,
    /// Upper clip epsilon (ratio <= 1 + high); above the lower one it is
    /// DAPO's clip-higher, e.g. 0.28.
    #[arg(long)]
    clip_ratio_high: Option<f64>,
    /// Dual-clip constant c > 1: caps the loss of negative-advantage tokens at -A*c.
    #[arg(long)]
    dual_clip: Option<f64>,
    /// Value clip range around the old values.
    #[arg(long, default_value_t = 0.5)]
    value_clip: f64,
    /// Discount.
    #[arg(long, default_value_t = 1.0)]
    gamma: f64,
    /// GAE lambda. 1 (Monte-Carlo returns minus the value baseline): with
    /// a single terminal reward and a critic that starts untrained, a
    /// lower lambda would bootstrap from values that know nothing yet.
    #[arg(long, default_value_t = 1.0)]
    lam: f64,
    /// Standardise the sequence rewards over the batch before GAE.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    reward_norm: bool,
    /// Whiten advantages over the batch [default: on for gae, off otherwise].
    #[arg(long, action = clap::ArgAction::Set)]
    whiten_advantages: Option<bool>,
    /// Entropy bonus coefficient.
    #[arg(long, default_value_t = 0.0)]
    entropy_coef: f64,
    /// Loss aggregation.
    #[arg(long, value_enum, default_value_t = LossAgg::TokenMean)]
    loss_agg: LossAgg,
    /// The constant length of seq-mean-token-sum-norm [default: the
    /// longest response of the batch]; set it to --max-new-tokens.
    #[arg(long)]
    norm_len: Option<usize>,
    /// Global gradient-norm clip (0: off).
    #[arg(long, default_value_t = 1.0)]
    grad_clip: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    /// Sequences per optimizer step [default: the whole file, one step per epoch].
    #[arg(long)]
    train_batch_size: Option<usize>,
    /// Sequences per forward/backward; gradients accumulate over micro-batches,
    /// so memory is bounded by this, not the train batch.
    #[arg(long, default_value_t = 8)]
    micro_batch_size: usize,
    /// Passes over the batch.
    #[arg(long, default_value_t = 1)]
    ppo_epochs: usize,
    /// Seed of the mini-batch shuffle.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// cpu or cuda:N (needs the `cuda` cargo feature).
    #[arg(long, default_value = "cpu")]
    device: String,
}

fn main() -> ExitCode {
    let c = Cli::parse();
    let mut o = Options::new(c.algo, c.scored, c.policy, c.policy_out);
    o.reference = c.reference;
    o.critic = c.critic;
    o.critic_out = c.critic_out;
    o.metrics = c.metrics;
    o.step = c.step;
    o.advantage = c.advantage;
    o.kl_placement = c.kl_placement;
    o.kl_estimator = c.kl_estimator;
    o.kl_coef = c.kl_coef;
    o.actor_lr = c.actor_lr;
    o.critic_lr = c.critic_lr;
    o.clip_ratio_low = c.clip_ratio_low.unwrap_or(c.clip_ratio);
    o.clip_ratio_high = c.clip_ratio_high.unwrap_or(c.clip_ratio);
    o.dual_clip = c.dual_clip;
    o.value_clip = c.value_clip;
    o.gamma = c.gamma;
    o.lam = c.lam;
    o.reward_norm = c.reward_norm;
    o.whiten_advantages = c.whiten_advantages;
    o.entropy_coef = c.entropy_coef;
    o.loss_agg = c.loss_agg;
    o.norm_len = c.norm_len;
    o.grad_clip = c.grad_clip;
    o.weight_decay = c.weight_decay;
    o.train_batch_size = c.train_batch_size;
    o.micro_batch_size = c.micro_batch_size;
    o.ppo_epochs = c.ppo_epochs;
    o.seed = c.seed;
    o.device = c.device;
    match ppo_step::run(&o, &mut |line| eprintln!("{line}")) {
        Ok(s) => {
            eprintln!("ppo-step: {s} -> {}", o.policy_out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ppo-step: error: {e}");
            ExitCode::FAILURE
        }
    }
}
