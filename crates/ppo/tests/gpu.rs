//! The GPU tests, one test binary (the GPU bundle ships it: `make
//! gpu-bundle`): the training forward's log-probs and gradients, greedy
//! and sampled generation, one ppo-step and sft-steps, each on the GPU
//! against the CPU. Ignored in `cargo test` (they need a GPU and the
//! cuda build); `-- --ignored gpu` runs them.
//!
//! `SIMPLERL_GPU_TESTS_DEVICE` names the device (default `cuda:0`); the
//! bundle's dry run (`run.sh --cpu`) sets `cpu`, which checks the tests
//! and the script, not a GPU.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use artifacts::prompts::PromptRow;
use candle_core::{DType, Device};
use model::generate::{generate, SamplingParams};
use model::model::Batch;
use model::Checkpoint;
use ppo::{Algo, Options};

fn device_name() -> String {
    std::env::var("SIMPLERL_GPU_TESTS_DEVICE").unwrap_or_else(|_| "cuda:0".into())
}

fn gpu() -> Device {
    model::device(&device_name()).unwrap_or_else(|e| {
        panic!("no CUDA device ({e}): the gpu tests need a GPU and the cuda build (make gpu-check)")
    })
}

/// A tiny model on the CPU with seeded weights, and the same weights on
/// the device under test (saved, then loaded there).
fn pair(ty: &str, tied: bool, dir: &Path) -> (Checkpoint, Checkpoint) {
    let cpu = Checkpoint::random(model::tiny::config(ty, tied), &Device::Cpu, DType::F32).unwrap();
    cpu.init_weights(20261125, 0.2).unwrap();
    cpu.save(dir, None).unwrap();
    let dev = Checkpoint::load(dir, &gpu(), DType::F32).unwrap();
    (cpu, dev)
}

fn seqs() -> Vec<Vec<u32>> {
    vec![
        vec![5, 9, 13, 7, 21, 3],
        vec![11, 4, 60],
        vec![8, 8, 1, 30, 2],
    ]
}

fn max_abs_diff<'a>(
    a: impl IntoIterator<Item = &'a f32>,
    b: impl IntoIterator<Item = &'a f32>,
) -> f32 {
    a.into_iter()
        .zip(b)
        .map(|(p, q)| (p - q).abs())
        .fold(0f32, f32::max)
}

#[test]
#[ignore = "needs a GPU and the cuda build: make gpu-check, or the GPU bundle"]
fn gpu_training_logprobs_and_gradients_equal_the_cpus() {
    for (ty, tied) in [("llama", false), ("llama", true), ("qwen2", false)] {
        let tmp = tempfile::tempdir().unwrap();
        let (cpu, dev) = pair(ty, tied, tmp.path());
        let logprobs = |ck: &Checkpoint, d: &Device| {
            let batch = Batch::right_padded(&seqs(), 0, d).unwrap();
            let out = ck.model.token_logprobs(&batch, 1.0).unwrap();
            out.logprobs.to_vec2::<f32>().unwrap()
        };
        let (a, b) = (logprobs(&cpu, &Device::Cpu), logprobs(&dev, &gpu()));
        let diff = max_abs_diff(a.iter().flatten(), b.iter().flatten());
        assert!(
            diff < 1e-4,
            "{ty} tied={tied}: max |cpu - gpu| log-prob {diff}"
        );
        // Every parameter's gradient, as on the CPU.
        let grad_of = |ck: &Checkpoint, d: &Device| -> HashMap<String, Vec<f32>> {
            let b = Batch::right_padded(&seqs(), 0, d).unwrap();
            let loss = ck
                .model
                .token_logprobs(&b, 1.0)
                .unwrap()
                .logprobs
                .sum_all()
                .unwrap();
            let grads = loss.backward().unwrap();
            let vars = ck.varmap.data().lock().unwrap();
            vars.iter()
                .map(|(n, v)| {
                    let g = grads.get(v.as_tensor()).unwrap();
                    (
                        n.clone(),
                        g.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                    )
                })
                .collect()
        };
        let (gc, gg) = (grad_of(&cpu, &Device::Cpu), grad_of(&dev, &gpu()));
        for (name, g) in &gc {
            let d = max_abs_diff(g, &gg[name]);
            assert!(d < 1e-4, "{ty}: gradient of {name} differs by {d}");
        }
    }
}

#[test]
#[ignore = "needs a GPU and the cuda build: make gpu-check, or the GPU bundle"]
fn gpu_greedy_and_sampled_generation_equal_the_cpus() {
    let tmp = tempfile::tempdir().unwrap();
    let (cpu, dev) = pair("qwen2", false, tmp.path());
    // Greedy: the same tokens and log-probs; sampled (temperature 1, on
    // the device): the host's tokens from the same seeds.
    for (what, temperature) in [("greedy", 0.0), ("sampled", 1.0)] {
        let params = SamplingParams {
            max_new_tokens: 16,
            temperature,
            ..Default::default()
        };
        let run = |m: &model::Model| {
            generate(m, &seqs(), &[0, 1, 2], &params, &|_, _| false, |_| {}).unwrap()
        };
        let (a, b) = (run(&cpu.model), run(&dev.model));
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_eq!(
                x.tokens, y.tokens,
                "row {i}: {what} tokens differ on the GPU"
            );
            let d = max_abs_diff(&x.logprobs, &y.logprobs);
            assert!(d < 1e-4, "row {i}: {what} log-probs differ by {d}");
        }
    }
}

/// One PPO step on the GPU writes the weights the same step writes on
/// the CPU.
#[test]
#[ignore = "needs a GPU and the cuda build: make gpu-check, or the GPU bundle"]
fn gpu_ppo_step_equals_the_cpus() {
    let device = device_name();
    gpu();
    let dir = tempfile::tempdir().unwrap();
    let (init, prompts) = common::toy_task(dir.path());
    let scored = common::rollout_and_score(&init, &prompts, &dir.path().join("it"), 3, 8);
    let step = |device: &str, name: &str| {
        let out = dir.path().join(format!("out-{name}"));
        let mut o = Options::new(Algo::Ppo, scored.clone(), init.clone(), out.clone());
        o.io.reference = Some(init.clone());
        o.io.critic_out = Some(dir.path().join(format!("critic-{name}")));
        o.config.device = device.into();
        ppo::run(&o, &mut |_| {}).unwrap();
        common::weights(&out)
    };
    let d = common::max_diff(&step("cpu", "cpu"), &step(&device, "dev"));
    assert!(
        d < 1e-4,
        "the GPU step's weights differ from the CPU's by {d}"
    );
}

fn sft_data(dir: &Path, n: usize) -> PathBuf {
    let rows: Vec<(PromptRow, String)> = (0..n)
        .map(|i| {
            let (a, b) = (i % 5, i / 5 % 5);
            let row = PromptRow {
                id: format!("t{i}"),
                source: "toy".into(),
                question: format!("{a}+{b}"),
                answer: (a + b).to_string(),
                level: None,
                subject: None,
                prompt: format!("<|im_start|>{a}+{b}="),
                metadata: None,
            };
            (row, format!("{a}+{b}={}. \\boxed{{{}}}", a + b, a + b))
        })
        .collect();
    let p = dir.join("sft.parquet");
    artifacts::sft::write(&p, &rows).unwrap();
    p
}

/// sft-step on the GPU writes the weights the same steps write on the CPU.
#[test]
#[ignore = "needs a GPU and the cuda build: make gpu-check, or the GPU bundle"]
fn gpu_sft_steps_equal_the_cpus() {
    let device = device_name();
    gpu();
    let dir = tempfile::tempdir().unwrap();
    let init = dir.path().join("init");
    model::tiny::write_tiny(&init, 32, 2, 1).unwrap();
    let data = sft_data(dir.path(), 8);
    let run = |device: &str, name: &str| {
        let out = dir.path().join(format!("out-{name}"));
        let mut o = sft::Options::new(data.clone(), init.clone(), out.clone());
        o.config.lr = 1e-2;
        o.config.batch_size = 4;
        o.config.micro_batch_size = 2;
        o.config.device = device.into();
        sft::run(&o, &mut |_| {}).unwrap();
        common::weights(&out)
    };
    let d = common::max_diff(&run("cpu", "cpu"), &run(&device, "dev"));
    assert!(
        d < 1e-4,
        "the GPU's sft weights differ from the CPU's by {d}"
    );
}
