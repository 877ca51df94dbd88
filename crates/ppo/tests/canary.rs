//! The learning canary: rollout -> verify -> ppo-step, iterated through the
//! stages' real code, on a tiny random model and a toy task with the rule
//! reward (the sum of two digits inside \boxed{}). With a fixed seed the
//! mean reward must rise clearly under PPO and under GRPO, and must not
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

/// Mean reward of each iteration's rollouts.
fn canary(algo: Algo, actor_lr: f64, dtype: Precision, dir: &Path) -> Vec<f64> {
    let (init, prompts) = common::toy_task(dir);
    let metrics = dir.join("metrics.parquet");
    let mut policy: PathBuf = init.clone();
    let mut critic: Option<PathBuf> = None;
    for it in 0..ITERS {
        let d = dir.join(format!("iter-{it:04}"));
        let scored = common::rollout_and_score_in(&policy, &prompts, &d, it as u64, 2, dtype);
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
        ppo::run(&o, &mut |_| {}).unwrap();
        policy = d.join("policy");
        critic = o.io.critic_out.clone();
    }
    let rows = artifacts::metrics::read(&metrics).unwrap();
    assert_eq!(rows.len(), ITERS);
    rows.iter()
        .map(|r| r.get(Metric::RewardMean).unwrap())
        .collect()
}

fn rise(curve: &[f64]) -> f64 {
    let first = curve[..2].iter().sum::<f64>() / 2.0;
    let last = curve[curve.len() - 3..].iter().sum::<f64>() / 3.0;
    last - first
}

fn check(algo: Algo, dtype: Precision) {
    let dir = tempfile::tempdir().unwrap();
    let learning = canary(algo, 1e-2, dtype, &dir.path().join("learn"));
    let frozen = canary(algo, 0.0, dtype, &dir.path().join("frozen"));
    let fmt = |c: &[f64]| {
        c.iter()
            .map(|r| format!("{r:.3}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    eprintln!("{algo:?} {dtype} reward curve, lr 1e-2: {}", fmt(&learning));
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
    check(Algo::Ppo, Precision::F32);
}

#[test]
fn canary_grpo_reward_rises() {
    check(Algo::Grpo, Precision::F32);
}

/// In bf16 (rollout in bf16; the trainer computing in bf16 over f32 master
/// weights and moments) the reward rises as well.
#[test]
fn canary_ppo_reward_rises_in_bf16() {
    check(Algo::Ppo, Precision::Bf16);
}
