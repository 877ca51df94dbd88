//! The toy task and one rollout -> verify pass, shared by the tests.

use std::path::{Path, PathBuf};

use artifacts::prompts::PromptRow;
use stages::{rollout, verify};

/// The toy task's answers, each one token: `\boxed{0}` .. `\boxed{8}`.
pub fn answers() -> Vec<String> {
    (0..=8).map(|s| format!("\\boxed{{{s}}}")).collect()
}

/// A tiny random policy whose vocabulary has the toy answers, and the toy
/// prompts (a+b= for digits 0..4) under `dir`: (policy, prompts).
pub fn toy_task(dir: &Path) -> (PathBuf, PathBuf) {
    let words: Vec<String> = answers();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let init = dir.join("init");
    model::tiny::write_tiny_with_words(&init, 32, 2, 7, &words).unwrap();
    let mut rows = Vec::new();
    for a in 0..5 {
        for b in 0..5 {
            rows.push(PromptRow {
                id: format!("toy/{a}+{b}"),
                source: "toy".into(),
                question: format!("{a}+{b}"),
                answer: (a + b).to_string(),
                level: None,
                subject: None,
                prompt: format!("<|im_start|>{a}+{b}="),
                metadata: None,
            });
        }
    }
    let prompts = dir.join("prompts.parquet");
    artifacts::prompts::write(&prompts, &rows).unwrap();
    (init, prompts)
}

/// Sample 8 responses of up to `max_new_tokens` per prompt from `policy`
/// with `seed`, and grade them: the scored file under `dir`.
#[allow(dead_code)] // the canary decodes in its own dtype
pub fn rollout_and_score(
    policy: &Path,
    prompts: &Path,
    dir: &Path,
    seed: u64,
    max_new_tokens: usize,
) -> PathBuf {
    rollout_and_score_in(
        policy,
        prompts,
        dir,
        seed,
        max_new_tokens,
        model::Precision::F32,
    )
}

/// [`rollout_and_score`] with the rollout decoding in `dtype`.
#[allow(dead_code)]
pub fn rollout_and_score_in(
    policy: &Path,
    prompts: &Path,
    dir: &Path,
    seed: u64,
    max_new_tokens: usize,
    dtype: model::Precision,
) -> PathBuf {
    rollout_and_score_with(policy, prompts, dir, seed, max_new_tokens, dtype, &|_| {})
}

/// [`rollout_and_score_in`] with the rollout's options changed by `tweak`.
pub fn rollout_and_score_with(
    policy: &Path,
    prompts: &Path,
    dir: &Path,
    seed: u64,
    max_new_tokens: usize,
    dtype: model::Precision,
    tweak: &dyn Fn(&mut rollout::Options),
) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let rollouts = dir.join("rollouts.parquet");
    let scored = dir.join("scored.parquet");
    let opts = rollout::Options {
        prompts: prompts.to_path_buf(),
        policy: policy.to_path_buf(),
        output: rollouts.clone(),
        samples_per_prompt: 8,
        max_new_tokens,
        temperature: 1.0,
        top_p: 1.0,
        top_k: None,
        seed,
        batch_size: 64,
        shard: rollout::Shard { k: 0, n: 1 },
        prompt_batch: None,
        shuffle_seed: 0,
        max_prompt_tokens: None,
        filter_groups: false,
        max_extra_prompts: 0,
        device: "cpu".into(),
        dtype,
        stop_words: vec![],
        limit: None,
    };
    let mut opts = opts;
    tweak(&mut opts);
    rollout::run(&opts, &mut |_, _| {}).unwrap();
    verify::verify_file(&rollouts, &scored, &verify::Options::default(), &|_| {}).unwrap();
    scored
}

/// A checkpoint's weights by name, as f32.
#[allow(dead_code)] // not every test binary compares weights
pub fn weights(dir: &Path) -> Vec<(String, Vec<f32>)> {
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

/// The largest difference between two checkpoints' weights.
#[allow(dead_code)]
pub fn max_diff(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.1.iter().zip(&y.1).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f32::max)
}
