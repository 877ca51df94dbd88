//! The RL math of PPO and GRPO for language models, as small pure
//! functions over tensors (after verl's `core_algos.py`).
//!
//! Conventions: `B` sequences, `L` token positions; every per-token tensor
//! is `[B, L]` f32 with a 1/0 `mask` `[B, L]` (f32) of the response tokens
//! that count. Each function documents its shapes and returns its metrics
//! beside its result. The choices are enums (clap `ValueEnum`s with the
//! `clap` feature, so a typo in a flag fails at parse time).

use candle_core::{DType, Device, Tensor, D};

pub type Result<T> = std::result::Result<T, candle_core::Error>;

/// How advantages are estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum AdvantageEstimator {
    /// Generalised advantage estimation with a critic (PPO).
    Gae,
    /// Group-normalised: (r - mean(group)) / (std(group) + eps) (GRPO).
    Grpo,
    /// Group mean subtracted, no std division (Dr. GRPO).
    DrGrpo,
    /// Leave-one-out baseline: r - mean(others in the group) (RLOO).
    Rloo,
    /// REINFORCE++: each token's return (the rewards to come, the KL
    /// penalty included when it goes in the reward), whitened over the
    /// whole batch; no critic, no group baseline.
    #[cfg_attr(feature = "clap", value(name = "reinforce-pp"))]
    ReinforcePp,
    /// REINFORCE++-baseline: the group mean subtracted from each score
    /// first, then as REINFORCE++.
    #[cfg_attr(feature = "clap", value(name = "reinforce-pp-baseline"))]
    ReinforcePpBaseline,
}

/// How a per-token loss matrix becomes one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum LossAgg {
    /// Mean over every response token of the batch.
    TokenMean,
    /// Mean over tokens within a sequence, then mean over sequences.
    SeqMeanTokenMean,
    /// Sum over tokens within a sequence divided by a constant length,
    /// then mean over sequences (Dr. GRPO: no length bias).
    SeqMeanTokenSumNorm,
}

/// Estimators of KL(pi || ref) per token from the two log-probs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum KlEstimator {
    /// logp - ref_logp (unbiased, can be negative).
    K1,
    /// 0.5 (logp - ref_logp)^2.
    K2,
    /// exp(ref - logp) - (ref - logp) - 1 (unbiased, non-negative,
    /// low variance; GRPO's choice), clamped to [-10, 10] as verl does.
    K3,
}

/// Where the KL to the reference enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum KlPlacement {
    /// Subtracted from each token's reward before the advantages (PPO).
    Reward,
    /// Added to the policy loss (GRPO).
    Loss,
    /// Not used.
    None,
}

fn scalar(x: &Tensor) -> Result<f64> {
    x.to_dtype(DType::F64)?.to_scalar::<f64>()
}

/// sum(x * mask) / max(sum(mask), 1). x, mask: same shape -> scalar.
pub fn masked_mean(x: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let n = scalar(&mask.sum_all()?)?.max(1.0);
    (x * mask)?.sum_all()? / n
}

/// Masked mean and (unbiased) variance as numbers. x, mask: same shape.
pub fn masked_mean_var(x: &Tensor, mask: &Tensor) -> Result<(f64, f64)> {
    let n = scalar(&mask.sum_all()?)?;
    let mean = scalar(&masked_mean(x, mask)?)?;
    let sq = scalar(&((x - mean)?.sqr()? * mask)?.sum_all()?)?;
    let var = if n > 1.0 { sq / (n - 1.0) } else { 0.0 };
    Ok((mean, var))
}

/// (x - mean) / sqrt(var + 1e-8) over the masked entries (mean added
/// back when `shift_mean` is false); masked-out entries become 0.
pub fn masked_whiten(x: &Tensor, mask: &Tensor, shift_mean: bool) -> Result<Tensor> {
    let (mean, var) = masked_mean_var(x, mask)?;
    let mut w = ((x - mean)? / (var + 1e-8).sqrt())?;
    if !shift_mean {
        w = (w + mean)?;
    }
    w * mask
}

/// One number for a per-token loss `[B, L]` under `mask` `[B, L]`.
/// `norm_len` is the constant length of [`LossAgg::SeqMeanTokenSumNorm`]
/// (the maximum response length). Sequences with no token under the mask
/// (filtered out) are left out of the sequence means, as verl does.
pub fn agg_loss(loss: &Tensor, mask: &Tensor, agg: LossAgg, norm_len: usize) -> Result<Tensor> {
    let b = if agg == LossAgg::TokenMean {
        1.0
    } else {
        let seqs = mask.sum(D::Minus1)?.gt(0.0)?.to_dtype(DType::F32)?;
        scalar(&seqs.sum_all()?)?.max(1.0)
    };
    match agg {
        LossAgg::TokenMean => masked_mean(loss, mask),
        LossAgg::SeqMeanTokenMean => {
            let per_seq = (loss * mask)?.sum(D::Minus1)?;
            let lens = mask.sum(D::Minus1)?.clamp(1.0, f64::INFINITY)?;
            (per_seq / lens)?.sum_all()? / b
        }
        LossAgg::SeqMeanTokenSumNorm => (loss * mask)?.sum_all()? / (b * norm_len.max(1) as f64),
    }
}

/// The weight of a micro-batch's aggregated loss inside its mini-batch,
/// so that the summed micro-batch gradients equal the mini-batch's:
/// its share of the tokens for token-mean, of the sequences otherwise.
pub fn micro_weight(agg: LossAgg, micro: (usize, usize), total: (usize, usize)) -> f64 {
    let (seqs, tokens) = micro;
    let (all_seqs, all_tokens) = total;
    match agg {
        LossAgg::TokenMean => tokens as f64 / all_tokens.max(1) as f64,
        _ => seqs as f64 / all_seqs.max(1) as f64,
    }
}

/// Per-token KL estimate. logp, ref_logp: `[B, L]` -> `[B, L]`.
pub fn kl_penalty(logp: &Tensor, ref_logp: &Tensor, est: KlEstimator) -> Result<Tensor> {
    let d = (logp - ref_logp)?;
    match est {
        KlEstimator::K1 => Ok(d),
        KlEstimator::K2 => d.sqr()? * 0.5,
        KlEstimator::K3 => {
            let r = d.neg()?;
            ((r.exp()? - r)? - 1.0)?.clamp(-10.0, 10.0)
        }
    }
}

/// Token-level rewards: the sequence score on each row's last response
/// token, minus `beta * kl` on every response token (when `kl` is given).
/// scores `[B]`, kl `[B, L]`, mask `[B, L]` -> `[B, L]`.
pub fn token_rewards(
    scores: &[f32],
    kl: Option<&Tensor>,
    beta: f64,
    mask: &Tensor,
) -> Result<Tensor> {
    let m = mask.to_vec2::<f32>()?;
    let (b, l) = mask.dims2()?;
    let mut r = vec![0f32; b * l];
    for (i, row) in m.iter().enumerate() {
        if let Some(last) = row.iter().rposition(|&v| v > 0.0) {
            r[i * l + last] = scores[i];
        }
    }
    let r = Tensor::from_vec(r, (b, l), mask.device())?;
    match kl {
        Some(kl) if beta != 0.0 => r - (kl * beta)? * mask,
        _ => Ok(r),
    }
}

/// Generalised advantage estimation over each row's masked positions in
/// order (the episode ends after the last one: its next value is 0).
/// rewards, values, mask: `[B, L]` -> (advantages, returns) `[B, L]`,
/// zero off the mask. Returns = advantages + values.
pub fn gae(
    rewards: &Tensor,
    values: &Tensor,
    mask: &Tensor,
    gamma: f64,
    lam: f64,
) -> Result<(Tensor, Tensor)> {
    let (b, l) = mask.dims2()?;
    let (r, v, m) = (
        rewards.to_vec2::<f32>()?,
        values.to_vec2::<f32>()?,
        mask.to_vec2::<f32>()?,
    );
    let (gamma, lam) = (gamma as f32, lam as f32);
    let mut adv = vec![0f32; b * l];
    let mut ret = vec![0f32; b * l];
    for i in 0..b {
        let (mut next_value, mut last_gae) = (0f32, 0f32);
        for t in (0..l).rev() {
            if m[i][t] <= 0.0 {
                continue;
            }
            let delta = r[i][t] + gamma * next_value - v[i][t];
            last_gae = delta + gamma * lam * last_gae;
            adv[i * l + t] = last_gae;
            ret[i * l + t] = last_gae + v[i][t];
            next_value = v[i][t];
        }
    }
    let dev = mask.device();
    Ok((
        Tensor::from_vec(adv, (b, l), dev)?,
        Tensor::from_vec(ret, (b, l), dev)?,
    ))
}

/// Sequence advantages from the scores of each group (the samples of one
/// prompt): `scores[i]` with group label `groups[i]` -> `[B]` values.
/// A group of one sample gets 0 (nothing to compare with).
pub fn group_advantages(
    scores: &[f32],
    groups: &[usize],
    est: AdvantageEstimator,
    eps: f64,
) -> Vec<f32> {
    let n_groups = groups.iter().copied().max().map_or(0, |g| g + 1);
    let mut sum = vec![0f64; n_groups];
    let mut count = vec![0usize; n_groups];
    for (&s, &g) in scores.iter().zip(groups) {
        sum[g] += s as f64;
        count[g] += 1;
    }
    let mean: Vec<f64> = sum
        .iter()
        .zip(&count)
        .map(|(s, &c)| s / c.max(1) as f64)
        .collect();
    // Unbiased std, as torch.std.
    let mut sq = vec![0f64; n_groups];
    for (&s, &g) in scores.iter().zip(groups) {
        sq[g] += (s as f64 - mean[g]).powi(2);
    }
    let std: Vec<f64> = sq
        .iter()
        .zip(&count)
        .map(|(q, &c)| {
            if c > 1 {
                (q / (c - 1) as f64).sqrt()
            } else {
                0.0
            }
        })
        .collect();
    scores
        .iter()
        .zip(groups)
        .map(|(&s, &g)| {
            let (n, d) = (count[g] as f64, s as f64 - mean[g]);
            if count[g] < 2 {
                return 0.0;
            }
            (match est {
                AdvantageEstimator::Grpo => d / (std[g] + eps),
                AdvantageEstimator::DrGrpo
                | AdvantageEstimator::Gae
                | AdvantageEstimator::ReinforcePpBaseline => d,
                AdvantageEstimator::ReinforcePp => s as f64,
                AdvantageEstimator::Rloo => d * n / (n - 1.0),
            }) as f32
        })
        .collect()
}

/// Each token's discounted return, the sum of `gamma^k` times the
/// rewards from it to the end of its response (REINFORCE++).
/// rewards, mask: `[B, L]` -> `[B, L]`, zero off the mask.
pub fn reinforce_returns(rewards: &Tensor, mask: &Tensor, gamma: f64) -> Result<Tensor> {
    let (b, l) = mask.dims2()?;
    let (r, m) = (rewards.to_vec2::<f32>()?, mask.to_vec2::<f32>()?);
    let gamma = gamma as f32;
    let mut out = vec![0f32; b * l];
    for i in 0..b {
        let mut acc = 0f32;
        for t in (0..l).rev() {
            if m[i][t] <= 0.0 {
                continue;
            }
            acc = r[i][t] + gamma * acc;
            out[i * l + t] = acc;
        }
    }
    Tensor::from_vec(out, (b, l), mask.device())
}

/// Whether each group (the samples of one prompt, labelled as in
/// [`group_advantages`]) is informative: its scores are not all equal.
/// A group whose samples all got the same reward has no group-relative
/// signal; DAPO's dynamic sampling drops it.
pub fn informative_groups(scores: &[f32], groups: &[usize]) -> Vec<bool> {
    let n_groups = groups.iter().copied().max().map_or(0, |g| g + 1);
    let mut first: Vec<Option<f32>> = vec![None; n_groups];
    let mut varied = vec![false; n_groups];
    for (&s, &g) in scores.iter().zip(groups) {
        match first[g] {
            None => first[g] = Some(s),
            Some(f) => varied[g] |= f != s,
        }
    }
    varied
}

/// DAPO's soft overlong punishment of a response of `len` tokens, for a
/// limit of `max_len` and a buffer of the last `cache` tokens before it:
/// 0 up to `max_len - cache`, then falling linearly to -1 at `max_len`,
/// and -1 beyond.
pub fn overlong_penalty(len: usize, max_len: usize, cache: usize) -> f64 {
    let start = max_len.saturating_sub(cache);
    if len <= start {
        0.0
    } else if len <= max_len {
        (start as f64 - len as f64) / cache.max(1) as f64
    } else {
        -1.0
    }
}

/// Metrics of truncated importance sampling.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TisMetrics {
    /// mean weight over response tokens
    pub tis_weight_mean: f64,
    /// share of response tokens whose ratio was capped
    pub tis_clipfrac: f64,
}

/// Truncated importance-sampling weights for the gap between the policy
/// that sampled (the rollout engine's log-probs) and the trainer's old
/// log-probs of the same tokens: min(exp(old_logp - rollout_logp), cap),
/// as constants (no gradient). old_logp, rollout_logp, mask: `[B, L]` ->
/// (weights `[B, L]`, metrics).
pub fn tis_weights(
    old_logp: &Tensor,
    rollout_logp: &Tensor,
    mask: &Tensor,
    cap: f64,
) -> Result<(Tensor, TisMetrics)> {
    let ratio = (old_logp - rollout_logp)?.clamp(-20.0, 20.0)?.exp()?;
    let capped = ratio.gt(cap)?.to_dtype(DType::F32)?;
    let w = ratio.clamp(0.0, cap)?.detach();
    let metrics = TisMetrics {
        tis_weight_mean: scalar(&masked_mean(&w, mask)?)?,
        tis_clipfrac: scalar(&masked_mean(&capped, mask)?)?,
    };
    Ok(((w * mask)?, metrics))
}

/// The adaptive KL controller of Ziegler et al. (2019), as OpenRLHF and
/// TRL run it: the coefficient moves towards the value that keeps the
/// KL to the reference at `target`, at a rate set by `horizon`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveKl {
    pub target: f64,
    pub horizon: f64,
}

impl AdaptiveKl {
    /// The next coefficient after a batch of `n_steps` samples whose KL
    /// was `kl`: coef * (1 + clip(kl / target - 1, -0.2, 0.2) * n_steps /
    /// horizon).
    pub fn update(&self, coef: f64, kl: f64, n_steps: usize) -> f64 {
        let error = (kl / self.target - 1.0).clamp(-0.2, 0.2);
        coef * (1.0 + error * n_steps as f64 / self.horizon)
    }
}

/// A sequence value on every masked token: adv `[B]`, mask `[B, L]` ->
/// `[B, L]`.
pub fn broadcast_to_tokens(adv: &[f32], mask: &Tensor) -> Result<Tensor> {
    let b = mask.dim(0)?;
    Tensor::from_slice(adv, (b, 1), mask.device())?.broadcast_mul(mask)
}

/// The PPO clip ranges: ratio kept in [1 - low, 1 + high] (DAPO's
/// clip-higher when high > low); with `dual_clip = Some(c)` (c > 1) the
/// loss of a negative-advantage token is also capped at -A * c.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipRange {
    pub low: f64,
    pub high: f64,
    pub dual_clip: Option<f64>,
}

/// Metrics of the policy loss.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PolicyLossMetrics {
    /// share of tokens where the clipped term was taken
    pub pg_clipfrac: f64,
    /// share of negative-advantage tokens capped by the dual clip
    pub pg_clipfrac_lower: f64,
    /// mean of (old_logp - logp): the KL between the old and new policy
    pub ppo_kl: f64,
}

/// The PPO clipped surrogate loss.
/// old_logp, logp, advantages, mask: `[B, L]` -> (loss scalar, metrics).
/// Gradients flow through `logp` only.
pub fn policy_loss(
    old_logp: &Tensor,
    logp: &Tensor,
    advantages: &Tensor,
    mask: &Tensor,
    clip: ClipRange,
    agg: LossAgg,
    norm_len: usize,
) -> Result<(Tensor, PolicyLossMetrics)> {
    policy_loss_weighted(old_logp, logp, advantages, mask, clip, agg, norm_len, None)
}

/// [`policy_loss`] with each token's loss multiplied by a constant weight
/// `[B, L]` before aggregation (truncated importance sampling's
/// [`tis_weights`]).
#[allow(clippy::too_many_arguments)]
pub fn policy_loss_weighted(
    old_logp: &Tensor,
    logp: &Tensor,
    advantages: &Tensor,
    mask: &Tensor,
    clip: ClipRange,
    agg: LossAgg,
    norm_len: usize,
    weights: Option<&Tensor>,
) -> Result<(Tensor, PolicyLossMetrics)> {
    let neg_kl = (logp - old_logp)?;
    let ratio = neg_kl.clamp(-20.0, 20.0)?.exp()?;
    let ppo_kl = scalar(&masked_mean(&neg_kl.neg()?, mask)?)?;
    let l1 = (advantages.neg()? * &ratio)?;
    let clipped = ratio.clamp(1.0 - clip.low, 1.0 + clip.high)?;
    let l2 = (advantages.neg()? * clipped)?;
    let clip1 = l1.maximum(&l2)?;
    let pg_clipfrac = scalar(&masked_mean(&l2.gt(&l1)?.to_dtype(DType::F32)?, mask)?)?;
    let (losses, lower) = match clip.dual_clip {
        Some(c) => {
            let l3 = (advantages.neg()? * c)?;
            let clip2 = clip1.minimum(&l3)?;
            let neg_adv = advantages.lt(0.0)?;
            let capped = (clip1.gt(&l3)?.to_dtype(DType::F32)? * neg_adv.to_dtype(DType::F32)?)?;
            let lower = scalar(&masked_mean(&capped, mask)?)?;
            (neg_adv.where_cond(&clip2, &clip1)?, lower)
        }
        None => (clip1, 0.0),
    };
    let losses = match weights {
        Some(w) => (losses * w)?,
        None => losses,
    };
    let loss = agg_loss(&losses, mask, agg, norm_len)?;
    Ok((
        loss,
        PolicyLossMetrics {
            pg_clipfrac,
            pg_clipfrac_lower: lower,
            ppo_kl,
        },
    ))
}

/// The clipped value loss 0.5 * max((V - R)^2, (V_clip - R)^2) with
/// V_clip = V_old + clamp(V - V_old, -clip, clip).
/// values, old_values, returns, mask: `[B, L]` -> (loss, vf_clipfrac).
pub fn value_loss(
    values: &Tensor,
    old_values: &Tensor,
    returns: &Tensor,
    mask: &Tensor,
    clip: f64,
    agg: LossAgg,
    norm_len: usize,
) -> Result<(Tensor, f64)> {
    let delta = (values - old_values)?.clamp(-clip, clip)?;
    let clipped = (old_values + delta)?;
    let l1 = (values - returns)?.sqr()?;
    let l2 = (clipped - returns)?.sqr()?;
    let clipfrac = scalar(&masked_mean(&l2.gt(&l1)?.to_dtype(DType::F32)?, mask)?)?;
    let loss = (agg_loss(&l1.maximum(&l2)?, mask, agg, norm_len)? * 0.5)?;
    Ok((loss, clipfrac))
}

/// 1 - Var(returns - values) / Var(returns) over the mask (how much of
/// the returns the critic explains; 1 is perfect, 0 is a constant).
pub fn explained_variance(returns: &Tensor, values: &Tensor, mask: &Tensor) -> Result<f64> {
    let (_, var_r) = masked_mean_var(returns, mask)?;
    let (_, var_d) = masked_mean_var(&(returns - values)?, mask)?;
    Ok(if var_r > 0.0 {
        1.0 - var_d / var_r
    } else {
        f64::NAN
    })
}

/// Mean and std (population) of numbers, as logged.
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// A `[B, L]` f32 tensor from rows (tests, small inputs).
pub fn from_rows(rows: &[Vec<f32>], dev: &Device) -> Result<Tensor> {
    let b = rows.len();
    let l = rows.first().map_or(0, Vec::len);
    Tensor::from_vec(rows.concat(), (b, l), dev)
}

/// Sequence scores clamped to `[-c, c]` (OpenRLHF's `reward_clip_range`,
/// applied before the KL penalty and any normalisation).
pub fn clip_rewards(scores: &[f32], c: f64) -> Vec<f32> {
    let c = c as f32;
    scores.iter().map(|&s| s.clamp(-c, c)).collect()
}

/// Batch standardisation of sequence scores, (s - mean) / (std + 1e-8):
/// the reward normalisation of the PPO recipe.
pub fn standardize(scores: &[f32]) -> Vec<f32> {
    let xs: Vec<f64> = scores.iter().map(|&s| s as f64).collect();
    let (mean, std) = mean_std(&xs);
    xs.iter()
        .map(|x| ((x - mean) / (std + 1e-8)) as f32)
        .collect()
}
