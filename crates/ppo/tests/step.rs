//! The PPO step's contract on a tiny model: the recomputed log-probs line
//! up with the rollout's, micro-batching does not change the update, the
//! optimizer state resumes, and a non-finite loss leaves nothing behind.

mod common;

use std::path::Path;

use artifacts::metrics::Metric;
use ppo::{Algo, Options};

fn weights(dir: &Path) -> Vec<(String, Vec<f32>)> {
    let t =
        candle_core::safetensors::load(dir.join("model.safetensors"), &candle_core::Device::Cpu)
            .unwrap();
    let mut v: Vec<(String, Vec<f32>)> = t
        .into_iter()
        .map(|(k, t)| (k, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn max_diff(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.1.iter().zip(&y.1).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f32::max)
}

#[test]
fn recomputed_logprobs_match_the_rollout() {
    let dir = tempfile::tempdir().unwrap();
    let (init, prompts) = common::toy_task(dir.path());
    // Longer responses, so prompt/response alignment is really tested.
    let scored = common::rollout_and_score(&init, &prompts, &dir.path().join("it"), 3, 12);
    let mut o = Options::new(Algo::Ppo, scored, init.clone(), dir.path().join("out"));
    o.io.reference = Some(init.clone());
    o.io.critic_out = Some(dir.path().join("critic"));
    o.config.micro_batch_size = 16;
    let s = ppo::run(&o, &mut |_| {}).unwrap();
    let gap = s.metrics.get(Metric::LogprobGap).unwrap();
    assert!(gap < 1e-4, "logprob_gap {gap}");
    // The reference is the policy itself: no KL yet.
    assert!(s.metrics.get(Metric::KlToRef).unwrap().abs() < 1e-6);
    for k in [
        Metric::PgLoss,
        Metric::PgClipfrac,
        Metric::PpoKl,
        Metric::Entropy,
        Metric::VfLoss,
        Metric::VfClipfrac,
        Metric::VfExplainedVar,
        Metric::GradNorm,
        Metric::RewardMean,
        Metric::RewardStd,
        Metric::Accuracy,
        Metric::NoAnswerRate,
        Metric::ResponseLengthMean,
        Metric::ResponseLengthMax,
        Metric::ResponseClipRatio,
        Metric::AdvantageMean,
        Metric::AdvantageStd,
        Metric::Lr,
        Metric::ElapsedS,
        Metric::TokensPerS,
    ] {
        assert!(
            s.metrics.get(k).is_some_and(|v| v.is_finite()),
            "{k} missing: {:?}",
            s.metrics.values
        );
    }
    // The critic is an HF token-classification checkpoint.
    let cfg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("critic/config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cfg["architectures"][0], "LlamaForTokenClassification");
    assert_eq!(cfg["num_labels"], 1);
    let w = weights(&dir.path().join("critic"));
    assert!(w.iter().any(|(k, _)| k == "score.weight") && w.iter().any(|(k, _)| k == "score.bias"));
}

#[test]
fn micro_batching_does_not_change_the_update() {
    let dir = tempfile::tempdir().unwrap();
    let (init, prompts) = common::toy_task(dir.path());
    let scored = common::rollout_and_score(&init, &prompts, &dir.path().join("it"), 1, 6);
    let run = |micro: usize, algo: Algo| {
        let out = dir.path().join(format!("out-{micro}-{algo:?}"));
        let mut o = Options::new(algo, scored.clone(), init.clone(), out.clone());
        o.io.reference = Some(init.clone());
        o.io.critic_out = Some(dir.path().join(format!("critic-{micro}-{algo:?}")));
        o.config.actor_lr = 1e-3;
        o.config.micro_batch_size = micro;
        o.config.weight_decay = 0.0;
        ppo::run(&o, &mut |_| {}).unwrap();
        weights(&out)
    };
    let init_w = weights(&init);
    for algo in [Algo::Ppo, Algo::Grpo] {
        let whole = run(200, algo);
        let micro = run(7, algo);
        assert!(max_diff(&whole, &init_w) > 1e-4, "the step changed nothing");
        let d = max_diff(&whole, &micro);
        assert!(
            d < 2e-5,
            "{algo:?}: micro-batches of 7 moved weights {d} away from one batch of 200"
        );
    }
}

#[test]
fn optimizer_state_resumes_across_steps() {
    let dir = tempfile::tempdir().unwrap();
    let (init, prompts) = common::toy_task(dir.path());
    let scored = common::rollout_and_score(&init, &prompts, &dir.path().join("it"), 1, 2);
    let step = |policy: &Path, critic: Option<&Path>, out: &str| {
        let mut o = Options::new(
            Algo::Ppo,
            scored.clone(),
            policy.to_path_buf(),
            dir.path().join(out),
        );
        o.io.reference = Some(init.clone());
        o.io.critic = critic.map(Path::to_path_buf);
        o.io.critic_out = Some(dir.path().join(format!("{out}-critic")));
        o.io.metrics = Some(dir.path().join("metrics.parquet"));
        o.config.train_batch_size = Some(50);
        ppo::run(&o, &mut |_| {}).unwrap()
    };
    let s0 = step(&init, None, "p0");
    let s1 = step(
        &dir.path().join("p0"),
        Some(&dir.path().join("p0-critic")),
        "p1",
    );
    assert_eq!((s0.metrics.step, s1.metrics.step), (0, 1));
    let steps = |d: &str| {
        let t = candle_core::safetensors::load(
            dir.path().join(d).join(train::OPTIMIZER_FILE),
            &candle_core::Device::Cpu,
        )
        .unwrap();
        t["step"].to_vec1::<i64>().unwrap()[0]
    };
    // 200 rows in train batches of 50: 4 optimizer steps per ppo-step.
    assert_eq!((steps("p0"), steps("p1")), (4, 8));
    assert_eq!((steps("p0-critic"), steps("p1-critic")), (4, 8));
    assert_eq!(
        artifacts::metrics::read(dir.path().join("metrics.parquet"))
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn a_step_over_its_memory_limit_stops_before_loading() {
    let dir = tempfile::tempdir().unwrap();
    let (init, prompts) = common::toy_task(dir.path());
    let scored = common::rollout_and_score(&init, &prompts, &dir.path().join("it"), 1, 2);
    let out = dir.path().join("out");
    let mut o = Options::new(Algo::Ppo, scored, init.clone(), out.clone());
    o.io.reference = Some(init.clone());
    o.io.critic_out = Some(dir.path().join("critic"));
    o.config.memory.max_memory = Some(0.001);
    let mut lines = Vec::new();
    let e = ppo::run(&o, &mut |l| lines.push(l.to_string()))
        .expect_err("over the limit")
        .to_string();
    assert!(e.contains("more than --max-memory (0.00 GB)"), "{e}");
    assert!(e.contains("the step needs an estimated"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(lines.is_empty(), "nothing was loaded or logged: {lines:?}");
    assert!(!out.exists() && !dir.path().join("critic").exists());
    // Within the limit the plan is the step's first line.
    o.config.memory.max_memory = Some(64.0);
    ppo::run(&o, &mut |l| lines.push(l.to_string())).unwrap();
    assert!(lines[0].starts_with("memory plan: peak "), "{lines:?}");
}

/// The actor's rate follows one schedule over the whole run: its position
/// is the optimizer steps taken so far, resumed with the optimizer state,
/// so the second ppo-step continues where the first stopped.
#[test]
fn the_learning_rate_schedule_spans_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let (init, prompts) = common::toy_task(dir.path());
    let scored = common::rollout_and_score(&init, &prompts, &dir.path().join("it"), 1, 2);
    let base = 1e-4;
    let step = |policy: &Path, out: &str| {
        let mut o = Options::new(
            Algo::Grpo,
            scored.clone(),
            policy.to_path_buf(),
            dir.path().join(out),
        );
        o.io.reference = Some(init.clone());
        o.io.metrics = Some(dir.path().join("metrics.parquet"));
        o.config.train_batch_size = Some(50); // 200 rows: 4 optimizer steps
        o.config.actor_lr = base;
        o.config.lr_schedule = train::LrSchedule::Cosine;
        o.config.lr_warmup_ratio = 0.2; // 2 of 10 steps
        o.config.min_lr_ratio = 0.1;
        o.config.total_steps = Some(10);
        o.config.adam_betas = train::Betas(0.9, 0.95);
        ppo::run(&o, &mut |_| {}).unwrap()
    };
    let s0 = step(&init, "p0");
    let s1 = step(&dir.path().join("p0"), "p1");
    let lr = |s: &ppo::Summary| s.metrics.get(Metric::Lr).unwrap();
    // The last optimizer step of each: 0-based steps 3 and 7 of 10, with
    // 2 warmup steps: progress (3-2)/8 and (7-2)/8 of the cosine.
    let at = |p: f64| base * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()));
    assert!((lr(&s0) - at(1.0 / 8.0)).abs() < 1e-12, "{}", lr(&s0));
    assert!((lr(&s1) - at(5.0 / 8.0)).abs() < 1e-12, "{}", lr(&s1));
    // A schedule without the run's length is refused before any work.
    let mut o = Options::new(
        Algo::Grpo,
        scored.clone(),
        init.clone(),
        dir.path().join("x"),
    );
    o.io.reference = Some(init.clone());
    o.config.lr_schedule = train::LrSchedule::Cosine;
    let e = ppo::run(&o, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("--total-steps"), "{e}");
    assert!(!dir.path().join("x").exists());
}

/// The critic's rate follows the same schedule and warmup from its own
/// base rate (OpenRLHF schedules both), and warmup is ceil(ratio x total).
#[test]
fn the_critic_rate_follows_the_same_schedule() {
    let cfg = ppo::Config {
        actor_lr: 5e-7,
        critic_lr: 9e-6,
        lr_schedule: train::LrSchedule::Cosine,
        lr_warmup_ratio: 0.03,
        min_lr_ratio: 0.1,
        total_steps: Some(10_240),
        ..ppo::Config::default()
    };
    assert_eq!(cfg.warmup_steps(), 308); // ceil(307.2)
    for step in [0, 100, 308, 5_000, 10_239] {
        let (a, c) = (cfg.actor_lr_at(step), cfg.critic_lr_at(step));
        assert!((a / 5e-7 - c / 9e-6).abs() < 1e-12, "step {step}: {a} {c}");
    }
    assert!(cfg.critic_lr_at(0) < 9e-6 / 300.0, "warming up from ~0");
    assert!((cfg.critic_lr_at(308) - 9e-6).abs() < 1e-15, "the peak");
    assert!((cfg.critic_lr_at(10_240) - 9e-7).abs() < 1e-15, "the floor");
}
