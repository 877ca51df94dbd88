//! The learning canary: rollout -> verify -> ppo-step, iterated through the
//! stages' real code, on a tiny random model and a toy task with the rule
//! reward (the sum of two digits inside \boxed{}). With a fixed seed the
//! mean reward must rise clearly under PPO, GRPO, the DAPO variant and
//! REINFORCE++, and must not
//! rise with a learning rate of 0 (so the test can fail); PPO also with
//! rollout and trainer in bf16.
//!
//! The toy task's answers are single tokens (`\boxed{0}` .. `\boxed{8}`,
//! added to the byte-level vocabulary), so a random policy finds a boxed
//! answer now and then, and the signal is there to learn from.
//! `cargo test canary` runs exactly these tests.

mod common;

use std::path::{Path, PathBuf};

use artifacts::metrics::Metric;
use model::Precision;
use ppo::{Algo, Options};

const ITERS: usize = 12;

/// The configurations the canary runs: the algorithms, and the named
/// variants of pipelines/dapo.mk and pipelines/reinforce-pp.mk.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Recipe {
    Ppo,
    Grpo,
    /// GRPO + clip-higher 0.28 + token-level loss + dynamic sampling
    /// (batches of 10 of the 25 prompts, up to 10 extra) + the overlong
    /// penalty, no KL.
    Dapo,
    ReinforcePp,
}

impl Recipe {
    /// Iterations of the canary: DAPO's, at half the rate, gets 16.
    fn iters(self) -> usize {
        if self == Recipe::Dapo {
            16
        } else {
            ITERS
        }
    }

    fn algo(self) -> Algo {
        match self {
            Recipe::Ppo => Algo::Ppo,
            Recipe::Grpo | Recipe::Dapo => Algo::Grpo,
            Recipe::ReinforcePp => Algo::ReinforcePp,
        }
    }
}

/// Mean reward of each iteration's rollouts.
fn canary(recipe: Recipe, actor_lr: f64, dtype: Precision, dir: &Path) -> Vec<f64> {
    let algo = recipe.algo();
    let dapo = recipe == Recipe::Dapo;
    let (init, prompts) = common::toy_task(dir);
    let metrics = dir.join("metrics.parquet");
    let mut policy: PathBuf = init.clone();
    let mut critic: Option<PathBuf> = None;
    for it in 0..recipe.iters() {
        let d = dir.join(format!("iter-{it:04}"));
        let (max_new_tokens, batch) = if dapo { (3, 20) } else { (2, 25) };
        let scored = common::rollout_and_score_with(
            &policy,
            &prompts,
            &d,
            it as u64,
            max_new_tokens,
            dtype,
            &|o| {
                if dapo {
                    o.prompt_batch = Some(stages::rollout::PromptBatch {
                        iteration: it,
                        size: batch,
                    });
                    o.filter_groups = true;
                    o.max_extra_prompts = 5;
                }
            },
        );
        let mut o = Options::new(algo, scored, policy.clone(), d.join("policy"));
        o.io.reference = Some(init.clone());
        o.io.critic = critic.clone();
        o.io.critic_out = (algo == Algo::Ppo).then(|| d.join("critic"));
        o.io.metrics = Some(metrics.clone());
        o.io.step = Some(it as i64);
        o.config.actor_lr = actor_lr;
        o.config.critic_lr = 1e-2;
        o.config.micro_batch_size = 64;
        o.config.train_batch_size = Some(100);
        o.config.memory.dtype = dtype;
        if dapo {
            o.config.clip_ratio_high = Some(0.28);
            o.config.loss_agg = rl::LossAgg::TokenMean;
            o.config.kl_coef = Some(0.0);
            o.config.filter_groups = true;
            o.config.train_groups = Some(batch);
            o.config.overlong_penalty = Some(ppo::OverlongPenalty {
                max_len: 3,
                cache: 1,
            });
        }
        ppo::run(&o, &mut |_| {}).unwrap();
        policy = d.join("policy");
        critic = o.io.critic_out.clone();
    }
    let rows = artifacts::metrics::read(&metrics).unwrap();
    assert_eq!(rows.len(), recipe.iters());
    if dapo {
        // The variant's own metrics are there.
        for m in [
            Metric::FilteredGroupRatio,
            Metric::ExtraPrompts,
            Metric::OverlongPenaltyMean,
        ] {
            assert!(rows.iter().all(|r| r.get(m).is_some()), "no {m}");
        }
    }
    rows.iter()
        .map(|r| r.get(Metric::RewardMean).unwrap())
        .collect()
}

fn rise(curve: &[f64]) -> f64 {
    let first = curve[..2].iter().sum::<f64>() / 2.0;
    let last = curve[curve.len() - 3..].iter().sum::<f64>() / 3.0;
    last - first
}

fn check(algo: Recipe, dtype: Precision) {
    let dir = tempfile::tempdir().unwrap();
    // DAPO's clip-higher lets each step go further: half the rate.
    let lr = if algo == Recipe::Dapo { 5e-3 } else { 1e-2 };
    let learning = canary(algo, lr, dtype, &dir.path().join("learn"));
    let frozen = canary(algo, 0.0, dtype, &dir.path().join("frozen"));
    let fmt = |c: &[f64]| {
        c.iter()
            .map(|r| format!("{r:.3}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    eprintln!("{algo:?} {dtype} reward curve, lr {lr}: {}", fmt(&learning));
    eprintln!("{algo:?} {dtype} reward curve, lr 0:    {}", fmt(&frozen));
    assert!(
        rise(&learning) > 0.3,
        "{algo:?}: reward did not rise: {}",
        fmt(&learning)
    );
    assert!(
        rise(&frozen).abs() < 0.1,
        "{algo:?}: reward moved without learning: {}",
        fmt(&frozen)
    );
}

#[test]
fn canary_ppo_reward_rises() {
    check(Recipe::Ppo, Precision::F32);
}

#[test]
fn canary_grpo_reward_rises() {
    check(Recipe::Grpo, Precision::F32);
}

#[test]
fn canary_dapo_reward_rises() {
    check(Recipe::Dapo, Precision::F32);
}

#[test]
fn canary_reinforce_pp_reward_rises() {
    check(Recipe::ReinforcePp, Precision::F32);
}

/// In bf16 (rollout in bf16; the trainer computing in bf16 over f32 master
/// weights and moments) the reward rises as well.
#[test]
fn canary_ppo_reward_rises_in_bf16() {
    check(Recipe::Ppo, Precision::Bf16);
}
