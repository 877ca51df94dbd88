//! The SFT step on a tiny model: the loss falls, only response tokens
//! count, and a resumed run ends where an uninterrupted one does.

use std::path::{Path, PathBuf};

use artifacts::metrics::Metric;
use artifacts::prompts::PromptRow;
use candle_core::{Device, Tensor};
use model::model::Batch;

fn sft_data(dir: &Path, n: usize) -> PathBuf {
    let rows: Vec<(PromptRow, String)> = (0..n)
        .map(|i| {
            let (a, b) = (i % 5, i / 5 % 5);
            (
                PromptRow {
                    id: format!("t{i}"),
                    source: "toy".into(),
                    question: format!("{a}+{b}"),
                    answer: (a + b).to_string(),
                    level: None,
                    subject: None,
                    prompt: format!("<|im_start|>{a}+{b}="),
                    metadata: None,
                },
                format!("{a}+{b}={}. \\boxed{{{}}}", a + b, a + b),
            )
        })
        .collect();
    let p = dir.join("sft.parquet");
    artifacts::sft::write(&p, &rows).unwrap();
    p
}

fn weights(dir: &Path) -> Vec<(String, Vec<f32>)> {
    let t = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    let mut v: Vec<_> = t
        .into_iter()
        .map(|(k, t)| (k, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn training_loss_falls() {
    let dir = tempfile::tempdir().unwrap();
    let init = dir.path().join("init");
    model::tiny::write_tiny(&init, 32, 2, 1).unwrap();
    let data = sft_data(dir.path(), 24);
    let mut o = sft::Options::new(data, init, dir.path().join("out"));
    o.io.metrics = Some(dir.path().join("metrics.parquet"));
    o.config.lr = 1e-2;
    o.config.epochs = 8;
    o.config.batch_size = 8;
    o.config.micro_batch_size = 3;
    o.config.warmup_steps = 2;
    let s = sft::run(&o, &mut |_| {}).unwrap();
    assert_eq!((s.steps_done, s.total_steps), (24, 24));
    let m = artifacts::metrics::read(dir.path().join("metrics.parquet")).unwrap();
    let loss: Vec<f64> = m.iter().map(|r| r.get(Metric::Loss).unwrap()).collect();
    assert_eq!(loss.len(), 24);
    let first = loss[..3].iter().sum::<f64>() / 3.0;
    let last = loss[21..].iter().sum::<f64>() / 3.0;
    assert!(last < 0.7 * first, "loss {first:.3} -> {last:.3}: {loss:?}");
    // Warmup, then cosine decay to 0.
    let lr: Vec<f64> = m.iter().map(|r| r.get(Metric::Lr).unwrap()).collect();
    assert!((lr[0] - 5e-3).abs() < 1e-12 && (lr[1] - 1e-2).abs() < 1e-12);
    assert!(lr[23] < lr[12] && lr[12] < lr[2]);
    // The TensorBoard file beside the metrics holds every step's loss.
    let tb =
        artifacts::tensorboard::read(&dir.path().join("tensorboard/events.out.tfevents.sft-step"))
            .unwrap();
    let tb_loss: Vec<(i64, f32)> = tb
        .iter()
        .filter(|s| s.tag == "sft/loss")
        .map(|s| (s.step, s.value))
        .collect();
    let want: Vec<(i64, f32)> = m
        .iter()
        .map(|r| (r.step, r.get(Metric::Loss).unwrap() as f32))
        .collect();
    assert_eq!(tb_loss, want);
}

/// The loss is the response tokens' negative log-likelihood, computed here
/// independently from the all-position forward by indexing each row's
/// response positions by hand; its gradients match, and differ from those
/// of a loss that also counts the prompt tokens.
#[test]
fn prompt_tokens_contribute_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ck = model::tiny::write_tiny(&dir.path().join("m"), 32, 2, 4).unwrap();
    let pairs: Vec<(Vec<u32>, Vec<u32>)> = vec![
        (vec![257, 51, 43, 52, 61], vec![55, 258]),
        (vec![257, 50], vec![49, 50, 51, 258]),
        (vec![257, 57, 42, 57, 61, 32, 32], vec![56, 49, 258]),
    ];
    let refs: Vec<(&[u32], &[u32])> = pairs
        .iter()
        .map(|(p, r)| (p.as_slice(), r.as_slice()))
        .collect();
    let grads_of = |loss: Tensor| {
        let g = loss.backward().unwrap();
        let v = ck.varmap.data().lock().unwrap();
        let mut names: Vec<&String> = v.keys().collect();
        names.sort();
        names
            .iter()
            .map(|n| {
                g.get(v[*n].as_tensor())
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
            })
            .collect::<Vec<_>>()
    };
    let (nll, tokens) = sft::response_nll(&ck.model, &refs, 0).unwrap();
    assert_eq!(tokens, 9);
    let value = nll.to_scalar::<f32>().unwrap();
    let g_sft = grads_of(nll);

    // Independent: every position's log-prob, response positions picked by hand.
    let seqs: Vec<Vec<u32>> = pairs
        .iter()
        .map(|(p, r)| [p.clone(), r.clone()].concat())
        .collect();
    let batch = Batch::right_padded(&seqs, 0, &Device::Cpu).unwrap();
    let out = ck.model.token_logprobs(&batch, 1.0).unwrap();
    let (b, t1) = out.logprobs.dims2().unwrap();
    let mut pick = vec![0f32; b * t1];
    let mut all = vec![0f32; b * t1];
    for (i, (p, r)) in pairs.iter().enumerate() {
        for j in 0..p.len() + r.len() - 1 {
            all[i * t1 + j] = 1.0;
            if j + 1 >= p.len() {
                pick[i * t1 + j] = 1.0; // predicts a response token
            }
        }
    }
    let sel = |m: Vec<f32>, n: f32| {
        let m = Tensor::from_vec(m, (b, t1), &Device::Cpu).unwrap();
        ((&out.logprobs * m).unwrap().sum_all().unwrap() * (-1.0 / n as f64)).unwrap()
    };
    let manual = sel(pick, 9.0);
    assert!((manual.to_scalar::<f32>().unwrap() - value).abs() < 1e-5);
    let g_manual = grads_of(manual);
    for (a, m) in g_sft.iter().zip(&g_manual) {
        for (x, y) in a.iter().zip(m) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }
    let out2 = ck.model.token_logprobs(&batch, 1.0).unwrap();
    let n_all = all.iter().sum::<f32>();
    let m = Tensor::from_vec(all, (b, t1), &Device::Cpu).unwrap();
    let with_prompt =
        ((&out2.logprobs * m).unwrap().sum_all().unwrap() * (-1.0 / n_all as f64)).unwrap();
    let g_all = grads_of(with_prompt);
    let differs = g_sft
        .iter()
        .zip(&g_all)
        .any(|(a, c)| a.iter().zip(c).any(|(x, y)| (x - y).abs() > 1e-4));
    assert!(differs, "counting prompt tokens should change the gradient");
}

#[test]
fn resumed_run_continues_the_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let init = dir.path().join("init");
    model::tiny::write_tiny(&init, 16, 1, 2).unwrap();
    let data = sft_data(dir.path(), 20);
    let opts = |out: &str, metrics: &str| {
        let mut o = sft::Options::new(data.clone(), init.clone(), dir.path().join(out));
        o.io.metrics = Some(dir.path().join(metrics));
        o.config.lr = 1e-2;
        o.config.epochs = 2;
        o.config.batch_size = 6; // 4 steps per epoch, the last one short
        o.config.micro_batch_size = 4;
        o.config.warmup_steps = 1;
        o
    };
    let whole = opts("whole", "whole.parquet");
    sft::run(&whole, &mut |_| {}).unwrap();
    let mut part = opts("part", "part.parquet");
    part.config.max_steps = Some(3);
    assert_eq!(sft::run(&part, &mut |_| {}).unwrap().steps_done, 3);
    part.config.max_steps = None;
    let mut lines = Vec::new();
    let s = sft::run(&part, &mut |l| lines.push(l.to_string())).unwrap();
    assert_eq!(s.steps_done, 8);
    assert!(lines[0].starts_with("memory plan: peak"), "{lines:?}");
    assert!(
        lines[1].contains("resuming") && lines[1].contains("step 3 of 8"),
        "{lines:?}"
    );
    assert_eq!(
        weights(&dir.path().join("whole")),
        weights(&dir.path().join("part"))
    );
    let lrs = |f: &str| -> Vec<(i64, f64)> {
        artifacts::metrics::read(dir.path().join(f))
            .unwrap()
            .iter()
            .map(|r| (r.step, r.get(Metric::Lr).unwrap()))
            .collect()
    };
    assert_eq!(lrs("whole.parquet"), lrs("part.parquet"));
}

/// A bf16 checkpoint (config.json's torch_dtype) trained with --dtype bf16
/// (f32 master weights) is written back in bf16, its config unchanged,
/// and the step learns: the loss falls.
#[test]
fn a_bf16_checkpoint_is_written_in_bf16() {
    let dir = tempfile::tempdir().unwrap();
    let f32_dir = dir.path().join("f32");
    let mut ck = model::tiny::write_tiny(&f32_dir, 16, 1, 3).unwrap();
    ck.raw_config["torch_dtype"] = serde_json::json!("bfloat16");
    let init = dir.path().join("init");
    ck.save(&init, None).unwrap();
    let dtypes = |d: &Path| -> Vec<candle_core::DType> {
        candle_core::safetensors::load(d.join("model.safetensors"), &Device::Cpu)
            .unwrap()
            .values()
            .map(|t| t.dtype())
            .collect()
    };
    assert!(dtypes(&init).iter().all(|d| *d == candle_core::DType::BF16));
    let data = sft_data(dir.path(), 12);
    let out = dir.path().join("out");
    let mut o = sft::Options::new(data, init, out.clone());
    o.config.lr = 1e-2;
    o.config.epochs = 3;
    o.config.batch_size = 4;
    o.config.memory.dtype = model::Precision::Bf16;
    o.io.metrics = Some(dir.path().join("m.parquet"));
    sft::run(&o, &mut |_| {}).unwrap();
    assert!(dtypes(&out).iter().all(|d| *d == candle_core::DType::BF16));
    let (cfg, _) = model::checkpoint::read_config(&out).unwrap();
    let raw: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(raw["torch_dtype"], "bfloat16");
    assert_eq!(cfg.hidden_size, 16);
    let losses: Vec<f64> = artifacts::metrics::read(dir.path().join("m.parquet"))
        .unwrap()
        .iter()
        .map(|r| r.get(Metric::Loss).unwrap())
        .collect();
    assert!(losses.last().unwrap() < &(losses[0] - 0.1), "{losses:?}");
}
