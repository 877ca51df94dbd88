//! What ppo-step (and rollout before it) refuses, and what a refused or
//! failed step leaves behind: no checkpoint it did not finish, no metrics
//! row for a step whose policy was not written, and nothing of the user's
//! deleted.

mod common;

use std::path::{Path, PathBuf};

use ppo::{Algo, Options};
use stages::rollout;

/// The toy task, one scored file, and GRPO options writing under `dir`.
fn setup(dir: &Path) -> (PathBuf, PathBuf, Options) {
    let (init, prompts) = common::toy_task(dir);
    let scored = common::rollout_and_score(&init, &prompts, &dir.join("it"), 1, 2);
    let mut o = Options::new(Algo::Grpo, scored, init.clone(), dir.join("out"));
    o.io.reference = Some(init.clone());
    o.io.metrics = Some(dir.join("metrics.parquet"));
    (init, prompts, o)
}

fn metrics_rows(dir: &Path) -> usize {
    let m = dir.join("metrics.parquet");
    if m.exists() {
        artifacts::metrics::read(m).unwrap().len()
    } else {
        0
    }
}

/// A copy of checkpoint `from` at `to` whose final norm is all NaN.
fn poisoned(from: &Path, to: &Path) -> PathBuf {
    std::fs::create_dir_all(to).unwrap();
    for f in std::fs::read_dir(from).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
    }
    let file = to.join("model.safetensors");
    let mut t = candle_core::safetensors::load(&file, &candle_core::Device::Cpu).unwrap();
    let w = t["model.norm.weight"].clone();
    let nan = (w.ones_like().unwrap() * f64::NAN).unwrap();
    t.insert("model.norm.weight".into(), nan);
    candle_core::safetensors::save(&t, &file).unwrap();
    to.to_path_buf()
}

#[test]
fn a_non_finite_reward_is_refused_naming_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, o) = setup(dir.path());
    let mut rows = artifacts::scored::read(&o.io.scored).unwrap();
    rows[3].reward = f64::NAN;
    artifacts::scored::write(&o.io.scored, &rows).unwrap();
    let e = ppo::run(&o, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("row 3, column `reward`"), "{e}");
    assert!(!dir.path().join("out").exists());
    assert_eq!(metrics_rows(dir.path()), 0);
}

#[test]
fn bad_tokens_and_log_probs_are_refused_naming_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, o) = setup(dir.path());
    let rows = artifacts::scored::read(&o.io.scored).unwrap();
    let vocab = model::checkpoint::read_config(&o.io.policy)
        .unwrap()
        .0
        .vocab_size;
    type Edit = Box<dyn Fn(&mut artifacts::scored::ScoredRow)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(move |r| r.rollout.response_token_ids[0] = vocab as u32),
            "row 5, column `response_token_ids`: token id",
        ),
        (
            Box::new(|r| r.rollout.prompt_token_ids[0] = -3i32 as u32),
            "row 5, column `prompt_token_ids`: token id -3 is negative",
        ),
        (
            Box::new(|r| r.rollout.response_logprobs[0] = f32::NAN),
            "row 5, column `response_logprobs`",
        ),
        (
            Box::new(|r| r.rollout.response_logprobs[0] = f32::INFINITY),
            "row 5, column `response_logprobs`",
        ),
        (
            Box::new(|r| r.rollout.response_logprobs[0] = 0.5),
            "row 5, column `response_logprobs`",
        ),
        (
            Box::new(|r| {
                r.rollout.response_logprobs.pop();
            }),
            "row 5, column `response_logprobs`",
        ),
    ];
    for (edit, expect) in cases {
        let mut bad = rows.clone();
        edit(&mut bad[5]);
        artifacts::scored::write(&o.io.scored, &bad).unwrap();
        let e = ppo::run(&o, &mut |_| {}).unwrap_err().to_string();
        assert!(e.contains(expect), "expected `{expect}` in: {e}");
        assert!(!e.contains('\n'), "not one line: {e}");
        assert!(!dir.path().join("out").exists());
    }
    assert_eq!(metrics_rows(dir.path()), 0);
}

#[test]
fn a_model_with_nan_weights_is_neither_sampled_nor_trained() {
    let dir = tempfile::tempdir().unwrap();
    let (init, prompts, mut o) = setup(dir.path());
    let nan = poisoned(&init, &dir.path().join("nan"));
    // rollout refuses to sample from it.
    let out = dir.path().join("nan-rollouts.parquet");
    let ro = rollout::Options {
        prompts,
        policy: nan.clone(),
        output: out.clone(),
        samples_per_prompt: 2,
        max_new_tokens: 2,
        temperature: 1.0,
        top_p: 1.0,
        top_k: None,
        seed: 0,
        batch_size: 8,
        shard: rollout::Shard { k: 0, n: 1 },
        prompt_batch: None,
        shuffle_seed: 0,
        max_prompt_tokens: None,
        filter_groups: false,
        max_extra_prompts: 0,
        device: "cpu".into(),
        dtype: model::Precision::F32,
        stop_words: vec![],
        limit: None,
    };
    let e = rollout::run(&ro, &mut |_, _| {}).unwrap_err().to_string();
    assert!(e.contains("not finite"), "{e}");
    assert!(!out.exists());
    // ppo-step stops at the non-finite loss, before writing anything.
    o.io.policy = nan;
    let e = ppo::run(&o, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("NaN") || e.contains("not finite"), "{e}");
    assert!(!dir.path().join("out").exists());
    assert_eq!(metrics_rows(dir.path()), 0);
}

#[test]
fn a_folder_that_is_not_a_checkpoint_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, mut o) = setup(dir.path());
    // A run folder given as --policy-out by mistake.
    let run = dir.path().join("runs/default");
    std::fs::create_dir_all(run.join("iter-0000")).unwrap();
    std::fs::write(run.join("iter-0000/rollouts.parquet"), b"precious").unwrap();
    o.io.policy_out = run.clone();
    let e = ppo::run(&o, &mut |_| {}).unwrap_err().to_string();
    assert!(
        e.contains("not a checkpoint folder") && e.contains("iter-0000"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(run.join("iter-0000/rollouts.parquet")).unwrap(),
        b"precious"
    );
    // The failed policy write left no metrics row behind.
    assert_eq!(metrics_rows(dir.path()), 0);
    // The same for the critic.
    o.config.algo = Algo::Ppo;
    o.io.policy_out = dir.path().join("out");
    o.io.critic_out = Some(run.clone());
    let e = ppo::run(&o, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("not a checkpoint folder"), "{e}");
    assert!(run.join("iter-0000/rollouts.parquet").exists());
    assert_eq!(metrics_rows(dir.path()), 0);
}

#[test]
fn a_policy_write_that_fails_leaves_no_metrics_row() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, mut o) = setup(dir.path());
    // The output path is taken by a file: the write fails.
    let taken = dir.path().join("taken");
    std::fs::write(&taken, b"a file").unwrap();
    o.io.policy_out = taken.clone();
    assert!(ppo::run(&o, &mut |_| {}).is_err());
    assert_eq!(std::fs::read(&taken).unwrap(), b"a file");
    assert_eq!(metrics_rows(dir.path()), 0);
}

#[test]
fn a_missing_critic_is_an_error_not_a_new_critic() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, mut o) = setup(dir.path());
    o.config.algo = Algo::Ppo;
    o.io.critic = Some(dir.path().join("iter-0003/critic"));
    o.io.critic_out = Some(dir.path().join("critic-out"));
    let e = ppo::run(&o, &mut |_| {}).unwrap_err().to_string();
    assert!(
        e.contains("iter-0003/critic") && e.contains("no critic checkpoint"),
        "{e}"
    );
    assert!(!dir.path().join("out").exists());
}

#[test]
fn replacing_a_checkpoint_keeps_no_temporaries_and_cleans_stale_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, mut o) = setup(dir.path());
    o.io.step = Some(0); // as make passes --step: a retried step is the same step
                         // What a writer killed earlier left: its temporary (pid 2^23 never runs).
    let stale = dir.path().join(format!(".out.tmp-{}", 1u32 << 23));
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("model.safetensors"), b"partial").unwrap();
    ppo::run(&o, &mut |_| {}).unwrap();
    ppo::run(&o, &mut |_| {}).unwrap(); // replaces out/
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "temporaries left: {left:?}");
    assert!(dir.path().join("out/model.safetensors").exists());
    assert_eq!(metrics_rows(dir.path()), 1, "a rerun step replaces its row");
}
