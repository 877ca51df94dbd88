//! The PPO step's contract on a tiny model: the recomputed log-probs line
//! up with the rollout's, micro-batching does not change the update, the
//! optimizer state resumes, and a non-finite loss leaves nothing behind.

mod common;

use std::path::Path;

use artifacts::metrics::Metric;
use common::{max_diff, weights};
use ppo::{Algo, Options};

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

/// `--old-logprobs rollout` skips the policy's scoring pass and gives the
/// update of the recomputed log-probs (they differ by f32 rounding only),
/// with `logprob_gap` measured on the first mini-batch; a rollout of
/// another checkpoint, or one sampled with top-p below 1, is refused
/// before the weights change, and nothing is written.
#[test]
fn the_rollouts_logprobs_serve_as_the_old_ones_only_when_they_are_the_policys() {
    let dir = tempfile::tempdir().unwrap();
    let (init, prompts) = common::toy_task(dir.path());
    let scored = common::rollout_and_score(&init, &prompts, &dir.path().join("it"), 2, 6);
    let run = |scored: &Path, old: ppo::OldLogprobs, name: &str| {
        let out = dir.path().join(format!("out-{name}"));
        let mut o = Options::new(Algo::Ppo, scored.to_path_buf(), init.clone(), out.clone());
        o.io.reference = Some(init.clone());
        o.io.critic_out = Some(dir.path().join(format!("critic-{name}")));
        o.config.actor_lr = 1e-3;
        o.config.train_batch_size = Some(64);
        o.config.micro_batch_size = 16;
        o.config.old_logprobs = old;
        (ppo::run(&o, &mut |_| {}), out)
    };
    let (recomputed, out_r) = run(&scored, ppo::OldLogprobs::Recompute, "recompute");
    let (from_rollout, out_o) = run(&scored, ppo::OldLogprobs::Rollout, "rollout");
    let (recomputed, from_rollout) = (recomputed.unwrap(), from_rollout.unwrap());
    let gap = from_rollout.metrics.get(Metric::LogprobGap).unwrap();
    assert!(gap.is_finite() && gap < 1e-4, "logprob_gap {gap}");
    let d = max_diff(&weights(&out_r), &weights(&out_o));
    assert!(
        max_diff(&weights(&out_r), &weights(&init)) > 1e-4,
        "the step changed nothing"
    );
    assert!(
        d < 1e-4,
        "the rollout's log-probs moved the weights {d} away"
    );
    for k in [Metric::PgLoss, Metric::VfLoss, Metric::KlToRef] {
        let (a, b) = (
            recomputed.metrics.get(k).unwrap(),
            from_rollout.metrics.get(k).unwrap(),
        );
        assert!((a - b).abs() < 1e-4 * a.abs().max(1.0), "{k}: {a} vs {b}");
    }

    // Sampled by another checkpoint: refused, nothing written.
    let other = dir.path().join("other");
    let words: Vec<String> = common::answers();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    model::tiny::write_tiny_with_words(&other, 32, 2, 8, &words).unwrap();
    let foreign = common::rollout_and_score(&other, &prompts, &dir.path().join("foreign"), 2, 6);
    let (e, out) = run(&foreign, ppo::OldLogprobs::Rollout, "foreign");
    let Err(e) = e else {
        panic!("another checkpoint's log-probs were taken as the policy's")
    };
    let e = e.to_string();
    assert!(
        e.contains("not this policy's") && e.contains("--old-logprobs recompute"),
        "{e}"
    );
    assert!(!out.exists(), "a refused step wrote {}", out.display());

    // Sampled from the nucleus: refused before loading, naming the row.
    let nucleus = common::rollout_and_score_with(
        &init,
        &prompts,
        &dir.path().join("nucleus"),
        2,
        6,
        model::Precision::F32,
        &|o| o.top_p = 0.9,
    );
    let (e, out) = run(&nucleus, ppo::OldLogprobs::Rollout, "nucleus");
    let Err(e) = e else {
        panic!("top-p log-probs were taken as the policy's")
    };
    let e = e.to_string();
    assert!(e.contains("row 0, column `top_p`: 0.9"), "{e}");
    assert!(!out.exists());
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

/// With the variants' row filters and weights on (dynamic-sampling group
/// filter, overlong filter, sequence-mean loss, TIS), micro-batching still
/// gives the whole batch's update, for REINFORCE++ and its baseline form.
#[test]
fn micro_batching_with_filters_does_not_change_the_update() {
    let dir = tempfile::tempdir().unwrap();
    let (init, prompts) = common::toy_task(dir.path());
    let scored = common::rollout_and_score(&init, &prompts, &dir.path().join("it"), 1, 6);
    // A third of the responses marked as cut at the limit.
    let mut rows = artifacts::scored::read(&scored).unwrap();
    for (i, r) in rows.iter_mut().enumerate() {
        r.rollout.finish_reason = if i % 3 == 0 { "length" } else { "stop" }.into();
    }
    let scored = dir.path().join("marked.parquet");
    artifacts::scored::write(&scored, &rows).unwrap();
    let run = |micro: usize, algo: Algo| {
        let out = dir.path().join(format!("out-{micro}-{algo:?}"));
        let mut o = Options::new(algo, scored.clone(), init.clone(), out.clone());
        o.io.reference = Some(init.clone());
        o.config.actor_lr = 1e-3;
        o.config.micro_batch_size = micro;
        o.config.weight_decay = 0.0;
        o.config.filter_groups = true;
        o.config.overlong_filter = true;
        o.config.tis_cap = Some(2.0);
        o.config.loss_agg = rl::LossAgg::SeqMeanTokenMean;
        let s = ppo::run(&o, &mut |_| {}).unwrap();
        (weights(&out), s.metrics)
    };
    let init_w = weights(&init);
    for algo in [Algo::ReinforcePp, Algo::ReinforcePpBaseline] {
        let (whole, m) = run(200, algo);
        let (micro, _) = run(7, algo);
        assert!(
            max_diff(&whole, &init_w) > 1e-4,
            "the step changed nothing: {m:?}"
        );
        let d = max_diff(&whole, &micro);
        assert!(
            d < 2e-5,
            "{algo:?}: micro-batches of 7 moved weights {d} away from one batch"
        );
        let ratio = m.get(Metric::OverlongFilteredRatio).unwrap();
        assert!(
            ratio > 0.0 && ratio < 1.0,
            "overlong_filtered_ratio {ratio}"
        );
        // The rollout and the trainer are the same f32 model: ratios ~1.
        assert!((m.get(Metric::TisWeightMean).unwrap() - 1.0).abs() < 1e-3);
        assert_eq!(m.get(Metric::TisClipfrac), Some(0.0));
        assert!(m.get(Metric::FilteredGroupRatio).is_some());
    }
}

/// Groups are the rows of one prompt; uniform ones go, then the first
/// `train_groups` informative ones stay, and the rest count as extra.
#[test]
fn filter_rows_keeps_the_first_informative_groups() {
    let dir = tempfile::tempdir().unwrap();
    let (init, prompts) = common::toy_task(dir.path());
    let scored = common::rollout_and_score(&init, &prompts, &dir.path().join("it"), 1, 2);
    let mut rows = artifacts::scored::read(&scored).unwrap();
    rows.truncate(4);
    for (r, (id, reward)) in rows
        .iter_mut()
        .zip([("a", 1.0), ("b", -1.0), ("b", 1.0), ("c", 0.5)])
    {
        r.rollout.prompt_id = id.into();
        r.reward = reward;
    }
    rows.push(rows[0].clone()); // a: 1, 1 (uniform)
    rows.push(rows[3].clone());
    rows.last_mut().unwrap().reward = -0.5; // c: 0.5, -0.5
    let f = ppo::RowFilter {
        filter_groups: true,
        train_groups: Some(1),
        overlong_filter: false,
    };
    let (kept, stats) = ppo::filter_rows(rows.clone(), &f);
    let ids: Vec<&str> = kept.iter().map(|r| r.rollout.prompt_id.as_str()).collect();
    assert_eq!(ids, ["b", "b"]);
    assert_eq!(
        (stats.groups, stats.uniform_groups, stats.extra_prompts),
        (3, 1, 2)
    );
    let all = ppo::RowFilter {
        train_groups: None,
        ..f
    };
    let (kept, _) = ppo::filter_rows(rows.clone(), &all);
    assert_eq!(kept.len(), 4, "b, b, c, c");
    // Nothing informative: nothing is left out.
    let uniform: Vec<_> = rows
        .iter()
        .take(1)
        .cloned()
        .chain([rows[0].clone()])
        .collect();
    let (kept, stats) = ppo::filter_rows(uniform, &all);
    assert!(stats.nothing_informative && kept.len() == 2);
}

/// Every response cut at the limit and --overlong-filter: nothing counts
/// in the loss, so with no weight decay the policy does not move.
#[test]
fn the_overlong_filter_leaves_truncated_responses_out() {
    let dir = tempfile::tempdir().unwrap();
    let (init, prompts) = common::toy_task(dir.path());
    let scored = common::rollout_and_score(&init, &prompts, &dir.path().join("it"), 1, 2);
    let mut rows = artifacts::scored::read(&scored).unwrap();
    for r in &mut rows {
        r.rollout.finish_reason = "length".into();
    }
    let all_cut = dir.path().join("cut.parquet");
    artifacts::scored::write(&all_cut, &rows).unwrap();
    let mut o = Options::new(Algo::Grpo, all_cut, init.clone(), dir.path().join("out"));
    o.io.reference = Some(init.clone());
    o.config.actor_lr = 1e-2;
    o.config.weight_decay = 0.0;
    o.config.overlong_filter = true;
    let s = ppo::run(&o, &mut |_| {}).unwrap();
    assert_eq!(s.metrics.get(Metric::OverlongFilteredRatio), Some(1.0));
    assert_eq!(
        max_diff(&weights(&dir.path().join("out")), &weights(&init)),
        0.0
    );
}

/// --kl-target: each step's coefficient is the controller's update of the
/// last one, carried in the policy's optimizer state.
#[test]
fn the_adaptive_kl_coefficient_is_carried_across_steps() {
    let dir = tempfile::tempdir().unwrap();
    let (init, prompts) = common::toy_task(dir.path());
    let scored = common::rollout_and_score(&init, &prompts, &dir.path().join("it"), 1, 2);
    let step = |policy: &Path, out: &str| {
        let mut o = Options::new(
            Algo::Ppo,
            scored.clone(),
            policy.to_path_buf(),
            dir.path().join(out),
        );
        o.io.reference = Some(init.clone());
        o.io.critic_out = Some(dir.path().join(format!("critic-{out}")));
        o.config.actor_lr = 1e-2;
        o.config.kl_coef = Some(0.05);
        o.config.kl_target = Some(1e-6);
        o.config.kl_horizon = 1_000.0;
        ppo::run(&o, &mut |_| {}).unwrap().metrics
    };
    let m0 = step(&init, "p0");
    let m1 = step(&dir.path().join("p0"), "p1");
    let m2 = step(&dir.path().join("p1"), "p2");
    let ctl = rl::AdaptiveKl {
        target: 1e-6,
        horizon: 1_000.0,
    };
    assert_eq!(m0.get(Metric::KlCoef), Some(0.05));
    for (a, b) in [(&m0, &m1), (&m1, &m2)] {
        let want = ctl.update(
            a.get(Metric::KlCoef).unwrap(),
            a.get(Metric::KlToRef).unwrap(),
            200,
        );
        let got = b.get(Metric::KlCoef).unwrap();
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
    // It moved (which way depends on the KL of these stale rollouts; the
    // controller's direction is tested in crates/rl).
    assert_ne!(m1.get(Metric::KlCoef), m0.get(Metric::KlCoef));
}

/// Beside the metrics file, each step writes a TensorBoard event file:
/// every optimizer step's update metrics (`train/...`, against the run's
/// optimizer steps) and every value of the metrics row (`iteration/...`),
/// and a rerun of the step replaces its file.
#[test]
fn tensorboard_events_hold_every_metric() {
    let dir = tempfile::tempdir().unwrap();
    let (init, prompts) = common::toy_task(dir.path());
    let scored = common::rollout_and_score(&init, &prompts, &dir.path().join("it"), 1, 2);
    let metrics = dir.path().join("run/metrics.parquet");
    let step = |out: &str| {
        let mut o = Options::new(
            Algo::Ppo,
            scored.clone(),
            init.clone(),
            dir.path().join(out),
        );
        o.io.reference = Some(init.clone());
        o.io.critic_out = Some(dir.path().join(format!("critic-{out}")));
        o.io.metrics = Some(metrics.clone());
        o.io.step = Some(0);
        o.config.train_batch_size = Some(50); // 200 rows: 4 optimizer steps
        ppo::run(&o, &mut |_| {}).unwrap().metrics
    };
    let row = step("p0");
    let tb = dir.path().join("run/tensorboard");
    let files: Vec<_> = std::fs::read_dir(&tb)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].ends_with("events.out.tfevents.ppo-step.00000000"));
    let scalars = artifacts::tensorboard::read(&files[0]).unwrap();
    let steps_of = |tag: &str| -> Vec<i64> {
        scalars
            .iter()
            .filter(|s| s.tag == tag)
            .map(|s| s.step)
            .collect()
    };
    for tag in [
        "train/pg_loss",
        "train/grad_norm",
        "train/lr",
        "train/vf_loss",
        "train/critic_lr",
    ] {
        assert_eq!(steps_of(tag), [1, 2, 3, 4], "{tag}");
    }
    // Every metric of the row is a scalar but the timestamp: a Unix time
    // does not fit an f32, and each event has its wall time.
    for (m, v) in row.values.iter().filter(|(m, _)| **m != Metric::Timestamp) {
        let s = scalars
            .iter()
            .find(|s| s.tag == format!("iteration/{m}"))
            .unwrap_or_else(|| panic!("no iteration/{m}"));
        assert_eq!((s.step, s.value), (4, *v as f32), "{m}");
    }
    // The rerun of step 0 replaces its file.
    step("p0-again");
    assert_eq!(std::fs::read_dir(&tb).unwrap().count(), 1);
}
