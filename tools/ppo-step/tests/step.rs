//! ppo-step's contract on a tiny model: the recomputed log-probs line up
//! with the rollout's, micro-batching does not change the update, the
//! optimizer state resumes, a non-finite loss leaves nothing behind, and
//! the command line rejects typos.

mod common;

use std::path::Path;
use std::process::Command;

use ppo_step::{Algo, Options};

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
    o.reference = Some(init.clone());
    o.critic_out = Some(dir.path().join("critic"));
    o.micro_batch_size = 16;
    let s = ppo_step::run(&o, &mut |_| {}).unwrap();
    let gap = s.metrics.values["logprob_gap"];
    assert!(gap < 1e-4, "logprob_gap {gap}");
    // The reference is the policy itself: no KL yet.
    assert!(s.metrics.values["kl_to_ref"].abs() < 1e-6);
    for k in [
        "pg_loss",
        "pg_clipfrac",
        "ppo_kl",
        "entropy",
        "vf_loss",
        "vf_clipfrac",
        "vf_explained_var",
        "grad_norm",
        "reward_mean",
        "reward_std",
        "accuracy",
        "no_answer_rate",
        "response_length_mean",
        "response_length_max",
        "response_clip_ratio",
        "advantage_mean",
        "advantage_std",
        "lr",
        "elapsed_s",
        "tokens_per_s",
    ] {
        assert!(
            s.metrics.values.get(k).is_some_and(|v| v.is_finite()),
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
        o.reference = Some(init.clone());
        o.critic_out = Some(dir.path().join(format!("critic-{micro}-{algo:?}")));
        o.actor_lr = 1e-3;
        o.micro_batch_size = micro;
        o.weight_decay = 0.0;
        ppo_step::run(&o, &mut |_| {}).unwrap();
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
        o.reference = Some(init.clone());
        o.critic = critic.map(Path::to_path_buf);
        o.critic_out = Some(dir.path().join(format!("{out}-critic")));
        o.metrics = Some(dir.path().join("metrics.parquet"));
        o.train_batch_size = Some(50);
        ppo_step::run(&o, &mut |_| {}).unwrap()
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
fn non_finite_loss_aborts_and_leaves_no_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (init, prompts) = common::toy_task(dir.path());
    let scored = common::rollout_and_score(&init, &prompts, &dir.path().join("it"), 1, 2);
    let mut rows = artifacts::scored::read(&scored).unwrap();
    rows[3].reward = f64::NAN;
    artifacts::scored::write(&scored, &rows).unwrap();
    let mut o = Options::new(Algo::Grpo, scored, init.clone(), dir.path().join("out"));
    o.reference = Some(init.clone());
    o.metrics = Some(dir.path().join("metrics.parquet"));
    let e = ppo_step::run(&o, &mut |_| {}).unwrap_err().to_string();
    assert!(
        e.contains("NaN") && e.contains("previous checkpoint"),
        "{e}"
    );
    assert!(!dir.path().join("out").exists());
    assert!(!dir.path().join("metrics.parquet").exists());
}

#[test]
fn cli_help_and_typos() {
    let bin = env!("CARGO_BIN_EXE_ppo-step");
    let help = Command::new(bin).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--scored",
        "--policy-out",
        "--critic-out",
        "--algo",
        "--kl-placement",
        "--loss-agg",
        "--micro-batch-size",
        "seq-mean-token-sum-norm",
    ] {
        assert!(text.contains(flag), "--help lacks {flag}");
    }
    let bad = Command::new(bin)
        .args([
            "--scored",
            "x",
            "--policy",
            "p",
            "--policy-out",
            "o",
            "--algo",
            "ppoo",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid value 'ppoo'"));
    let missing = Command::new(bin)
        .args([
            "--scored",
            "/nonexistent.parquet",
            "--policy",
            "p",
            "--policy-out",
            "o",
            "--kl-coef",
            "0",
            "--critic-out",
            "c",
        ])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("/nonexistent.parquet") && err.lines().count() == 1,
        "{err}"
    );
}
