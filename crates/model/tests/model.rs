//! The model on tiny random configurations: gradients reach every
//! parameter and match finite differences; sampled log-probs equal the
//! training forward's; batched greedy equals one prompt at a time;
//! checkpoints round-trip; activation checkpointing and the CPU training
//! pass give the plain candle path's gradients.

use std::collections::HashMap;

use candle_core::{backprop::GradStore, DType, Device, IndexOp, Tensor};
use candle_nn::VarMap;
use model::checkpointing::{self, forward_backward, Head, Packing, Pass};
use model::cpu::train::Trunk;
use model::generate::{generate, Engine, SamplingParams};
use model::model::{Batch, ResponseBatch};
use model::{Checkpoint, Config, ModelError};

/// A checkpoint of `cfg` whose weights come from a fixed seed, on candle's
/// scales (embeddings N(0, 1); matrices and biases uniform within
/// 1/sqrt(fan-in); norms one), so that every run of a test, here and in
/// CI, sees the same numbers: candle's own initialisation is unseeded.
fn seeded(cfg: Config, device: &Device, dtype: DType) -> Result<Checkpoint, ModelError> {
    use rand::{Rng, SeedableRng};
    let hidden = cfg.hidden_size;
    let ck = Checkpoint::random(cfg, device, dtype)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20261125);
    let normal = rand_distr::Normal::new(0.0f32, 1.0).unwrap();
    {
        let vars = ck.varmap.data().lock().unwrap();
        let mut names: Vec<&String> = vars.keys().collect();
        names.sort();
        for name in names {
            let var = &vars[name];
            let dims = var.dims().to_vec();
            let n = var.elem_count();
            let values: Vec<f32> = if name.ends_with("norm.weight") {
                vec![1.0; n]
            } else if name.contains("embed_tokens") {
                (0..n)
                    .map(|_| rand_distr::Distribution::sample(&normal, &mut rng))
                    .collect()
            } else {
                let fan_in = if dims.len() == 2 { dims[1] } else { hidden };
                let b = 1.0 / (fan_in as f32).sqrt();
                (0..n).map(|_| rng.random_range(-b..b)).collect()
            };
            let t = Tensor::from_vec(values, dims, device)?.to_dtype(dtype)?;
            var.set(&t)?;
        }
    }
    Ok(ck)
}

/// The training forward's per-token log-probs at temperature 1.
fn logprobs(model: &model::Model, batch: &Batch) -> Vec<Vec<f32>> {
    model
        .token_logprobs(batch, 1.0)
        .unwrap()
        .logprobs
        .to_vec2::<f32>()
        .unwrap()
}

fn seqs() -> Vec<Vec<u32>> {
    vec![
        vec![5, 9, 13, 7, 21, 3],
        vec![11, 4, 60],
        vec![8, 8, 1, 30, 2],
    ]
}

#[test]
fn every_parameter_gets_a_gradient() {
    for (ty, tied) in [("llama", false), ("llama", true), ("qwen2", false)] {
        let ck = seeded(model::tiny::config(ty, tied), &Device::Cpu, DType::F32).unwrap();
        let batch = Batch::right_padded(&seqs(), 0, &Device::Cpu).unwrap();
        let out = ck.model.token_logprobs(&batch, 1.0).unwrap();
        let loss = (out.logprobs.sum_all().unwrap() + out.entropy.sum_all().unwrap()).unwrap();
        let grads = loss.backward().unwrap();
        let vars = ck.varmap.data().lock().unwrap();
        assert!(!vars.is_empty());
        for (name, var) in vars.iter() {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{ty}: no gradient for {name}"));
            let norm = g
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(
                norm > 0.0 && norm.is_finite(),
                "{ty}: zero or bad gradient for {name}: {norm}"
            );
        }
        if ty == "qwen2" {
            assert!(vars.contains_key("model.layers.0.self_attn.q_proj.bias"));
        }
        if tied {
            assert!(!vars.contains_key("lm_head.weight"));
        }
    }
}

#[test]
fn gradients_match_finite_differences() {
    let ck = seeded(
        model::tiny::config("qwen2", false),
        &Device::Cpu,
        DType::F64,
    )
    .unwrap();
    let batch = Batch::right_padded(&seqs(), 0, &Device::Cpu).unwrap();
    let mask = batch.mask.to_dtype(DType::F64).unwrap();
    let valid = mask.narrow(1, 1, mask.dim(1).unwrap() - 1).unwrap();
    let loss_of = |m: &model::Model| -> Tensor {
        let out = m.token_logprobs_at(&batch, 1.0, None, true).unwrap();
        // A masked sum of both outputs, as a loss would use them.
        ((out.logprobs * &valid).unwrap().sum_all().unwrap()
            + (out.entropy * 0.3).unwrap().sum_all().unwrap())
        .unwrap()
    };
    let grads = loss_of(&ck.model).backward().unwrap();
    let vars = ck.varmap.data().lock().unwrap();
    let eps = 1e-5;
    for name in [
        "model.embed_tokens.weight",
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.0.self_attn.k_proj.bias",
        "model.layers.1.mlp.down_proj.weight",
        "model.layers.1.input_layernorm.weight",
        "model.norm.weight",
        "lm_head.weight",
    ] {
        let var = &vars[name];
        let g = grads
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let base = var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        for &idx in &[0usize, base.len() / 2, base.len() - 1] {
            let at = |delta: f64| {
                let mut v = base.clone();
                v[idx] += delta;
                var.set(&Tensor::from_vec(v, var.as_tensor().shape(), &Device::Cpu).unwrap())
                    .unwrap();
                loss_of(&ck.model).to_scalar::<f64>().unwrap()
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
            var.set(
                &Tensor::from_vec(base.clone(), var.as_tensor().shape(), &Device::Cpu).unwrap(),
            )
            .unwrap();
            let tol = 1e-6 + 1e-4 * numeric.abs().max(g[idx].abs());
            assert!(
                (numeric - g[idx]).abs() < tol,
                "{name}[{idx}]: backward {} vs finite difference {numeric}",
                g[idx]
            );
        }
    }
}

/// The fused log-prob op (f32 on CPU: only the logits kept for backward)
/// gives the values and gradients of the plain differentiable path, at
/// every position and at a chosen subset, at a temperature.
#[test]
fn fused_logprobs_match_the_plain_path() {
    let ck = seeded(
        model::tiny::config("llama", false),
        &Device::Cpu,
        DType::F32,
    )
    .unwrap();
    let batch = Batch::right_padded(&seqs(), 0, &Device::Cpu).unwrap();
    let index = Tensor::new(&[[0u32, 2, 3], [1, 1, 4], [2, 0, 0]], &Device::Cpu).unwrap();
    for ix in [None, Some(&index)] {
        let grads_of = |entropy_grad: bool| {
            let out = ck
                .model
                .token_logprobs_at(&batch, 0.7, ix, entropy_grad)
                .unwrap();
            let weights =
                Tensor::arange(1f32, 1.0 + out.logprobs.elem_count() as f32, &Device::Cpu)
                    .unwrap()
                    .reshape(out.logprobs.shape())
                    .unwrap();
            let loss = (&out.logprobs * &weights).unwrap().sum_all().unwrap();
            let g = loss.backward().unwrap();
            let v = ck.varmap.data().lock().unwrap();
            let mut names: Vec<&String> = v.keys().collect();
            names.sort();
            let gs: Vec<Vec<f32>> = names
                .iter()
                .map(|n| {
                    g.get(v[*n].as_tensor())
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1()
                        .unwrap()
                })
                .collect();
            (
                out.logprobs
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap(),
                out.entropy.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                gs,
            )
        };
        let (lp_f, ent_f, g_f) = grads_of(false);
        let (lp_p, ent_p, g_p) = grads_of(true);
        for (a, b) in lp_f.iter().zip(&lp_p).chain(ent_f.iter().zip(&ent_p)) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        for (ga, gb) in g_f.iter().zip(&g_p) {
            let scale = gb.iter().fold(1e-3f32, |m, x| m.max(x.abs()));
            for (a, b) in ga.iter().zip(gb) {
                assert!(
                    (a - b).abs() < 1e-3 * scale,
                    "gradient {a} vs {b} (scale {scale})"
                );
            }
        }
    }
}

/// Both engines (the packed CPU decoder and candle's forward, which CUDA
/// uses) on Llama tied / untied and Qwen2 (q/k/v biases), left-padded
/// prompts of different lengths, GQA, a prompt sampled twice.
#[test]
fn sampled_logprobs_equal_the_training_forward() {
    for (ty, tied) in [("llama", false), ("llama", true), ("qwen2", false)] {
        let ck = seeded(model::tiny::config(ty, tied), &Device::Cpu, DType::F32).unwrap();
        // Two samples of one prompt: they share its prefill.
        let mut prompts = seqs();
        prompts.push(prompts[1].clone());
        let params = SamplingParams {
            max_new_tokens: 12,
            temperature: 1.0,
            top_p: 1.0,
            top_k: None,
            stop_token_ids: vec![],
        };
        let engines = [Engine::new(&ck.model).unwrap(), Engine::Candle(&ck.model)];
        assert!(
            matches!(engines[0], Engine::Cpu(_)),
            "f32 on the CPU uses the packed decoder"
        );
        for (e, engine) in engines.iter().enumerate() {
            let gens = engine
                .generate(&prompts, &[1, 2, 3, 4], &params, &|_, _| false, |_| {})
                .unwrap();
            let full: Vec<Vec<u32>> = prompts
                .iter()
                .zip(&gens)
                .map(|(p, g)| [p.clone(), g.tokens.clone()].concat())
                .collect();
            let batch = Batch::right_padded(&full, 0, &Device::Cpu).unwrap();
            let lp = logprobs(&ck.model, &batch);
            let mut max_diff = 0f32;
            for (i, (p, g)) in prompts.iter().zip(&gens).enumerate() {
                assert_eq!(g.tokens.len(), 12);
                for (j, &l) in g.logprobs.iter().enumerate() {
                    max_diff = max_diff.max((lp[i][p.len() - 1 + j] - l).abs());
                }
            }
            assert!(
                max_diff < 1e-4,
                "{ty} tied={tied} engine {e}: max |sampled - forward| = {max_diff}"
            );
        }
    }
}

/// Rows that stop early leave the batch (the CPU engine drops them from its
/// cache); the rows still running give what they give alone.
#[test]
fn rows_that_stop_leave_the_others_unchanged() {
    let ck = seeded(
        model::tiny::config("llama", false),
        &Device::Cpu,
        DType::F32,
    )
    .unwrap();
    let prompts: Vec<Vec<u32>> = (0..8u32).map(|i| vec![5 + i, 9, 13 + i, 7]).collect();
    let seeds: Vec<u64> = (0..8).collect();
    let params = SamplingParams {
        max_new_tokens: 12,
        temperature: 1.0,
        ..Default::default()
    };
    // Row i stops after i + 1 tokens, so the batch shrinks step by step.
    let engine = Engine::new(&ck.model).unwrap();
    let batched = engine
        .generate(&prompts, &seeds, &params, &|i, t| t.len() > i, |_| {})
        .unwrap();
    for (i, p) in prompts.iter().enumerate() {
        assert_eq!(batched[i].tokens.len(), (i + 1).min(12), "row {i}");
        let alone = engine
            .generate(
                std::slice::from_ref(p),
                &seeds[i..=i],
                &params,
                &|_, t| t.len() > i,
                |_| {},
            )
            .unwrap();
        assert_eq!(alone[0].tokens, batched[i].tokens, "row {i}");
        for (a, b) in alone[0].logprobs.iter().zip(&batched[i].logprobs) {
            assert!((a - b).abs() < 1e-5, "row {i}: {a} vs {b}");
        }
    }
}

#[test]
fn batched_greedy_equals_each_prompt_alone() {
    let ck = seeded(model::tiny::config("qwen2", true), &Device::Cpu, DType::F32).unwrap();
    let prompts = seqs();
    let params = SamplingParams {
        max_new_tokens: 10,
        temperature: 0.0,
        ..Default::default()
    };
    let batched = generate(
        &ck.model,
        &prompts,
        &[0, 0, 0],
        &params,
        &|_, _| false,
        |_| {},
    )
    .unwrap();
    for (i, p) in prompts.iter().enumerate() {
        let alone = generate(
            &ck.model,
            std::slice::from_ref(p),
            &[0],
            &params,
            &|_, _| false,
            |_| {},
        )
        .unwrap();
        assert_eq!(alone[0].tokens, batched[i].tokens, "prompt {i}");
    }
}

#[test]
fn sampling_is_reproducible_per_row_and_stops() {
    let ck = seeded(
        model::tiny::config("llama", false),
        &Device::Cpu,
        DType::F32,
    )
    .unwrap();
    let prompts = seqs();
    let params = SamplingParams {
        max_new_tokens: 20,
        temperature: 0.8,
        top_p: 0.9,
        top_k: Some(20),
        stop_token_ids: vec![2, 7],
    };
    let a = generate(
        &ck.model,
        &prompts,
        &[10, 11, 12],
        &params,
        &|_, _| false,
        |_| {},
    )
    .unwrap();
    let b = generate(
        &ck.model,
        &prompts[1..2],
        &[11],
        &params,
        &|_, _| false,
        |_| {},
    )
    .unwrap();
    assert_eq!(
        a[1].tokens, b[0].tokens,
        "a row's sample does not depend on its batch"
    );
    for g in &a {
        match g.finish_reason {
            model::generate::FinishReason::Stop => {
                assert!([2, 7].contains(g.tokens.last().unwrap()))
            }
            model::generate::FinishReason::Length => assert_eq!(g.tokens.len(), 20),
        }
    }
    let stop_after_3 = generate(
        &ck.model,
        &prompts,
        &[1, 2, 3],
        &params,
        &|_, t| t.len() >= 3,
        |_| {},
    )
    .unwrap();
    assert!(stop_after_3.iter().all(|g| g.tokens.len() <= 3));
}

#[test]
fn checkpoints_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let ck = seeded(
        model::tiny::config("qwen2", false),
        &Device::Cpu,
        DType::F32,
    )
    .unwrap();
    let path = dir.path().join("ckpt");
    ck.save(&path, None).unwrap();
    let back = Checkpoint::load(&path, &Device::Cpu, DType::F32).unwrap();
    let batch = Batch::right_padded(&seqs(), 0, &Device::Cpu).unwrap();
    let a = logprobs(&ck.model, &batch);
    let b = logprobs(&back.model, &batch);
    assert_eq!(a, b);
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["model_type"], "qwen2");
    // The weights are as readable as the config (not owner-only).
    let mode = |f: &str| std::fs::metadata(path.join(f)).unwrap().permissions();
    assert_eq!(mode("model.safetensors"), mode("config.json"));
    // Saving again replaces it, leaving no temporaries.
    back.save(&path, None).unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    // A directory without weights is a clear error.
    std::fs::remove_file(path.join("model.safetensors")).unwrap();
    let e = Checkpoint::load(&path, &Device::Cpu, DType::F32)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no model.safetensors"), "{e}");
}

#[test]
fn non_finite_weights_are_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt");
    let ck = seeded(model::tiny::config("llama", true), &Device::Cpu, DType::F32).unwrap();
    ck.save(&path, None).unwrap();
    let before = std::fs::read(path.join("model.safetensors")).unwrap();
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let vars = ck.varmap.data().lock().unwrap();
        let v = &vars["model.norm.weight"];
        let mut w = v.as_tensor().to_vec1::<f32>().unwrap();
        w[3] = bad;
        v.set(&Tensor::new(w, &Device::Cpu).unwrap()).unwrap();
        drop(vars);
        let e = ck.save(&path, None).unwrap_err().to_string();
        assert!(
            e.contains("model.norm.weight") && e.contains("NaN or infinite"),
            "{e}"
        );
        // The previous checkpoint is untouched, with no temporaries beside it.
        assert_eq!(
            std::fs::read(path.join("model.safetensors")).unwrap(),
            before
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

#[test]
fn configs_that_cannot_make_a_model_are_refused() {
    for (field, value, expect) in [
        ("num_attention_heads", 0, "`num_attention_heads` is 0"),
        ("num_hidden_layers", 0, "`num_hidden_layers` is 0"),
        (
            "num_key_value_heads",
            3,
            "not a multiple of `num_key_value_heads`",
        ),
        ("hidden_size", 30, "not a multiple of `num_attention_heads`"),
    ] {
        let mut cfg = serde_json::json!({
            "vocab_size": 61, "hidden_size": 32, "intermediate_size": 48,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        });
        cfg[field] = serde_json::json!(value);
        let cfg: Config = serde_json::from_value(cfg).unwrap();
        let e = Checkpoint::random(cfg, &Device::Cpu, DType::F32)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(expect), "{field} = {value}: {e}");
    }
}

#[test]
fn tiny_directory_has_a_working_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny");
    let ck = model::tiny::write_tiny(&path, 32, 2, 7).unwrap();
    let tok = model::tokenizer::Tokenizer::load(&path).unwrap();
    let text = "<|im_start|>user\nWhat is 3 + 4? \\boxed{7}<|im_end|>";
    let ids = tok.encode(text).unwrap();
    assert_eq!(ids[0], 257);
    assert_eq!(*ids.last().unwrap(), 258);
    assert_eq!(
        tok.decode(&ids[1..ids.len() - 1]).unwrap(),
        "user\nWhat is 3 + 4? \\boxed{7}"
    );
    assert_eq!(tok.eos_ids, vec![258]);
    assert_eq!(ck.config.vocab_size, 259);
}

fn responses() -> ResponseBatch {
    let pairs: Vec<(&[u32], &[u32])> = vec![
        (&[5, 9, 13], &[7, 21, 3, 40]),
        (&[11], &[4, 60]),
        (&[8, 8, 1, 30], &[2]),
    ];
    ResponseBatch::new(&pairs, 0, &Device::Cpu).unwrap()
}

/// Every variable's gradient after one pass, summed over the stores.
fn grads_of(
    varmap: &VarMap,
    run: impl FnOnce(&mut dyn FnMut(&GradStore) -> Result<(), ModelError>) -> f32,
) -> (f32, HashMap<String, Vec<f32>>) {
    let vars = varmap.data().lock().unwrap().clone();
    let mut sums: HashMap<String, Vec<f32>> = HashMap::new();
    let loss = run(&mut |store: &GradStore| {
        for (name, var) in &vars {
            if let Some(g) = store.get(var.as_tensor()) {
                let g = g.flatten_all()?.to_vec1::<f32>()?;
                let e = sums
                    .entry(name.clone())
                    .or_insert_with(|| vec![0.0; g.len()]);
                e.iter_mut().zip(&g).for_each(|(a, b)| *a += b);
            }
        }
        Ok(())
    });
    (loss, sums)
}

fn assert_close(
    what: &str,
    a: &HashMap<String, Vec<f32>>,
    b: &HashMap<String, Vec<f32>>,
    tol: f32,
) {
    assert_eq!(
        a.len(),
        b.len(),
        "{what}: the same parameters get gradients"
    );
    for (name, ga) in a {
        let gb = &b[name];
        let worst = ga
            .iter()
            .zip(gb)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        let scale = ga.iter().fold(0f32, |m, x| m.max(x.abs()));
        assert!(
            worst <= tol * scale.max(1.0),
            "{what}: {name} differs by {worst} (largest gradient {scale})"
        );
        assert!(
            ga.iter().any(|&x| x != 0.0),
            "{what}: {name} has a zero gradient"
        );
    }
}

/// A loss that is not linear in the outputs: a weighted sum, the
/// probabilities and an entropy term (gradients of order 1).
fn policy_loss(outs: &[Tensor], mask: &Tensor) -> Result<(Tensor, f32), ModelError> {
    let (lp, ent) = (&outs[0], &outs[1]);
    let w = Tensor::new(&[[1.0f32, -0.5, 2.0, 0.3]], lp.device())?.broadcast_as(lp.shape())?;
    let a = (lp * &w)?.mul(mask)?.sum_all()?;
    let b = (lp.exp()? * mask)?.sum_all()?;
    let c = ((ent * mask)?.sum_all()? * 0.1)?;
    let loss = ((a + b)? - c)?;
    let v = loss.to_scalar::<f32>()?;
    Ok((loss, v))
}

/// A pass's loss and every parameter's gradient.
type PassResult = (f32, HashMap<String, Vec<f32>>);
/// A loss over the head's outputs, with its value.
type LossFn<'a> = dyn Fn(&[Tensor]) -> Result<(Tensor, f32), ModelError> + 'a;

/// The CPU pass's packings of a loss that reads padded positions, and of
/// one that reads real positions only.
const PADDED: &[Packing] = &[Packing::Padded, Packing::SharedPrefixes];
const ALL: &[Packing] = &[Packing::Padded, Packing::SharedPrefixes, Packing::Packed];

/// One pass over `batch` for each engine (candle's autograd, the CPU
/// training pass in each of `packings`), plain and checkpointed (the head
/// a row at a time): candle's plain pass first, the reference.
fn every_pass(
    varmap: &VarMap,
    model: &model::Model,
    batch: &Batch,
    head: &dyn Head,
    loss: &LossFn,
    packings: &[Packing],
) -> Vec<(String, PassResult)> {
    let mut out = Vec::new();
    let engines = std::iter::once((checkpointing::Engine::Candle, Packing::Padded))
        .chain(packings.iter().map(|&p| (checkpointing::Engine::Auto, p)));
    for (engine, packing) in engines {
        for checkpointing in [false, true] {
            let r = grads_of(varmap, |sink| {
                let p = Pass {
                    checkpointing,
                    head_rows: 1,
                    engine,
                    packing,
                };
                forward_backward(model, batch, head, p, loss, sink).unwrap()
            });
            out.push((
                format!("{engine:?} checkpointing={checkpointing} {packing:?}"),
                r,
            ));
        }
    }
    out
}

/// Every pass gives the gradients of candle's plain pass: the loss and
/// every parameter's gradient, f32, within `tol` (relative to the
/// parameter's largest gradient when that exceeds 1: f32 rounding of sums
/// taken in another order).
fn assert_every_pass_agrees(what: &str, passes: &[(String, PassResult)], n_vars: usize, tol: f32) {
    let (_, (l_ref, g_ref)) = &passes[0];
    assert_eq!(
        g_ref.len(),
        n_vars,
        "{what}: every parameter has a gradient"
    );
    for (name, (l, g)) in &passes[1..] {
        assert!(
            (l_ref - l).abs() <= tol * l_ref.abs().max(1.0),
            "{what}, {name}: loss {l_ref} vs {l}"
        );
        assert_close(&format!("{what}, {name}"), g_ref, g, tol);
    }
}

/// Activation checkpointing and the CPU training pass give the gradients
/// of candle's plain path within 1e-5, on Llama (untied, tied) and Qwen2
/// (q/k/v biases) with grouped-query attention, for the log-prob head
/// with the entropy in the loss.
#[test]
fn every_pass_gives_the_policy_gradients_of_the_plain_path() {
    for (ty, tied) in [("llama", false), ("llama", true), ("qwen2", false)] {
        let ck = seeded(model::tiny::config(ty, tied), &Device::Cpu, DType::F32).unwrap();
        let rb = responses();
        let head = ck
            .model
            .logprob_head_of(&rb.batch, Some(&rb.index), 0.7, true);
        let loss = |o: &[Tensor]| policy_loss(o, &rb.mask);
        let passes = every_pass(&ck.varmap, &ck.model, &rb.batch, &head, &loss, ALL);
        let n = ck.varmap.all_vars().len();
        assert_every_pass_agrees(&format!("{ty} tied={tied}"), &passes, n, 1e-5);
    }
}

/// The same on sequences longer than attention's query blocks (64), with
/// padding, one query head per key head and four per key head, within the
/// issue's 1e-4: a key bias's gradient is a sum over 200 positions and four
/// query heads of terms that mostly cancel, so f32 sums taken in another
/// order differ by about 1e-5 of the largest gradient (up to 1.5e-5 over 31
/// unseeded runs), which 1e-5 flagged now and then.
#[test]
fn every_pass_agrees_on_long_padded_sequences() {
    for kv in [4, 1] {
        let mut cfg = model::tiny::config("qwen2", false);
        cfg.num_key_value_heads = Some(kv);
        cfg.max_position_embeddings = 512;
        let ck = seeded(cfg, &Device::Cpu, DType::F32).unwrap();
        let seq =
            |n: usize, s: u32| -> Vec<u32> { (0..n as u32).map(|i| (i * 7 + s) % 61).collect() };
        let (p1, r1, p2, r2) = (seq(30, 1), seq(170, 2), seq(5, 3), seq(60, 4));
        let pairs: Vec<(&[u32], &[u32])> = vec![(&p1, &r1), (&p2, &r2)];
        let rb = ResponseBatch::new(&pairs, 0, &Device::Cpu).unwrap();
        let head = ck.model.logprob_head_of(&rb.batch, None, 1.0, false);
        let loss = |o: &[Tensor]| {
            let lp = o[0].i((.., ..150))?;
            let loss = (lp.exp()? - lp)?.sum_all()?;
            let v = loss.to_scalar::<f32>()?;
            Ok((loss, v))
        };
        let passes = every_pass(&ck.varmap, &ck.model, &rb.batch, &head, &loss, PADDED);
        let n = ck.varmap.all_vars().len();
        assert_every_pass_agrees(&format!("{kv} kv heads"), &passes, n, 1e-4);
        // Packed (no padding computed): the response tokens' log-probs.
        let head = ck
            .model
            .logprob_head_of(&rb.batch, Some(&rb.index), 1.0, false);
        let loss = |o: &[Tensor]| {
            let lp = (&o[0] * &rb.mask)?;
            let loss = (lp.exp()? - lp)?.sum_all()?;
            let v = loss.to_scalar::<f32>()?;
            Ok((loss, v))
        };
        let passes = every_pass(&ck.varmap, &ck.model, &rb.batch, &head, &loss, ALL);
        assert_every_pass_agrees(&format!("{kv} kv heads, responses"), &passes, n, 1e-4);
    }
}

/// Rows that share prefixes, as a PPO batch's do (a prompt's samples, a
/// system turn every prompt begins with): the CPU pass computes each
/// shared token once, and its log-probs, values, loss and every
/// gradient are candle's, which computes every row in full. The rows: a
/// prompt's samples, one whose response begins like another's, a
/// duplicate, one that is another's prefix (so padded), another prompt
/// after the same system turn, and a response that runs over two query
/// blocks after its shared prompt.
#[test]
fn every_pass_agrees_when_rows_share_prefixes() {
    let mut cfg = model::tiny::config("qwen2", false);
    cfg.max_position_embeddings = 512;
    let ck = seeded(cfg, &Device::Cpu, DType::F32).unwrap();
    let seq = |n: usize, s: u32| -> Vec<u32> { (0..n as u32).map(|i| (i * 7 + s) % 61).collect() };
    let system = seq(12, 5);
    let p1 = [system.clone(), seq(18, 1)].concat();
    let p2 = [system.clone(), seq(9, 2)].concat();
    let (r1, r2, r3, long) = (seq(20, 3), seq(25, 4), seq(14, 6), seq(100, 8));
    let r1b = [r1[..5].to_vec(), seq(11, 9)].concat();
    let pairs: Vec<(&[u32], &[u32])> = vec![
        (&p1, &r1),
        (&p1, &r2),
        (&p1, &r1b),
        (&p2, &r3),
        (&p1, &r1),
        (&p1, &r1[..3]),
        (&p2, &long),
    ];
    let rb = ResponseBatch::new(&pairs, 0, &Device::Cpu).unwrap();
    let (b, t) = rb.batch.ids.dims2().unwrap();
    let tokens = |p| Trunk::new(&ck.model, &rb.batch, p).unwrap().tokens();
    assert_eq!(tokens(Packing::Padded), b * t);
    // Each row computes what follows the longest prefix it shares with an
    // earlier row: p1 + r1 in full; r2; r1b after r1's 5; p2 after the
    // system turn, + r3; nothing of the duplicate or the prefix row; long
    // after p2. Padding is computed per row, as the model's mask defines
    // it, unless packed.
    let real: usize = pairs.iter().map(|(p, r)| p.len() + r.len()).sum();
    let padding = b * t - real;
    let own = (30 + 20) + 25 + 11 + (9 + 14) + 0 + 0 + 100;
    assert_eq!(tokens(Packing::SharedPrefixes), own + padding);
    assert_eq!(tokens(Packing::Packed), own);
    let head = ck
        .model
        .logprob_head_of(&rb.batch, Some(&rb.index), 0.7, true);
    // policy_loss's terms, with a weight per response token.
    let w: Vec<f32> = (0..b * rb.width)
        .map(|k| (k * 3 % 5) as f32 / 2.0 - 1.0)
        .collect();
    let w = Tensor::from_vec(w, (b, rb.width), &Device::Cpu).unwrap();
    let loss = |o: &[Tensor]| {
        let (lp, ent) = (&o[0], &o[1]);
        let a = (lp * &w)?.mul(&rb.mask)?.sum_all()?;
        let c = ((ent * &rb.mask)?.sum_all()? * 0.1)?;
        let loss = (((lp.exp()? * &rb.mask)?.sum_all()? + a)? - c)?;
        let v = loss.to_scalar::<f32>()?;
        Ok((loss, v))
    };
    let passes = every_pass(&ck.varmap, &ck.model, &rb.batch, &head, &loss, ALL);
    let n = ck.varmap.all_vars().len();
    assert_every_pass_agrees("policy", &passes, n, 1e-5);

    let dir = tempfile::tempdir().unwrap();
    ck.save(dir.path(), None).unwrap();
    let critic = model::Critic::from_policy(dir.path(), &Device::Cpu, DType::F32).unwrap();
    for v in critic.varmap.all_vars() {
        if v.rank() == 2 && v.dims()[0] == 1 {
            v.set(&Tensor::ones(v.dims(), DType::F32, &Device::Cpu).unwrap())
                .unwrap();
        }
    }
    // Weights on the values of real positions (a packed pass computes no
    // other).
    let weights: Vec<f32> = (0..b * (t - 1))
        .map(|k| {
            let (r, j) = (k / (t - 1), k % (t - 1));
            if j < pairs[r].0.len() + pairs[r].1.len() {
                (k % 7) as f32 / 7.0 - 0.4
            } else {
                0.0
            }
        })
        .collect();
    let loss = |o: &[Tensor]| {
        let w = Tensor::from_vec(weights.clone(), o[0].shape(), &Device::Cpu)?;
        let loss = (&o[0] * w)?.sqr()?.sum_all()?;
        let v = loss.to_scalar::<f32>()?;
        Ok((loss, v))
    };
    let head = critic.head();
    let passes = every_pass(&critic.varmap, &critic.model, &rb.batch, &head, &loss, ALL);
    let n = critic.varmap.all_vars().len();
    assert_every_pass_agrees("critic", &passes, n, 1e-5);
}

/// The same for the critic's value head.
#[test]
fn every_pass_gives_the_critic_gradients_of_the_plain_path() {
    let dir = tempfile::tempdir().unwrap();
    model::tiny::write_tiny(dir.path(), 32, 3, 7).unwrap();
    let critic = model::Critic::from_policy(dir.path(), &Device::Cpu, DType::F32).unwrap();
    // A value head away from zero, so the trunk gets gradients.
    for v in critic.varmap.all_vars() {
        if v.dims() == [1, 32] {
            v.set(&Tensor::ones((1, 32), DType::F32, &Device::Cpu).unwrap())
                .unwrap();
        }
    }
    let batch = Batch::right_padded(&[vec![5, 9, 13, 7], vec![11, 4]], 0, &Device::Cpu).unwrap();
    let loss = |o: &[Tensor]| {
        let target = Tensor::new(&[[1f32, -1.0, 0.5], [0.2, 0.0, 0.0]], &Device::Cpu)?;
        let loss = (&o[0] - target)?.sqr()?.sum_all()?;
        let v = loss.to_scalar::<f32>()?;
        Ok((loss, v))
    };
    let head = critic.head();
    let passes = every_pass(&critic.varmap, &critic.model, &batch, &head, &loss, PADDED);
    let n = critic.varmap.all_vars().len();
    assert_every_pass_agrees("critic", &passes, n, 1e-5);
}

/// The sampler that runs where the logits are (a GPU) draws the tokens
/// the host sampler draws, from the same generators, and their log-probs:
/// greedy, the two-stage temperature draw (a vocabulary that is not a
/// whole number of chunks), and the top-p fallback; rows that are done
/// take no draw.
#[test]
fn the_device_sampler_draws_what_the_host_sampler_draws() {
    use model::generate::{sample, sample_on_device, SAMPLE_CHUNK};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    let (b, v) = (6, 3 * SAMPLE_CHUNK + 77);
    // Peaked rows (a few likely tokens) and flat ones.
    let logits: Vec<f32> = (0..b * v)
        .map(|k| {
            let (i, j) = (k / v, k % v);
            let x = ((j * 7919 + i * 104729) % 1000) as f32 / 100.0;
            if i % 2 == 0 {
                x
            } else {
                x / 10.0
            }
        })
        .collect();
    let t = Tensor::from_vec(logits.clone(), (b, v), &Device::Cpu).unwrap();
    let done: Vec<bool> = (0..b).map(|i| i == 3).collect();
    for (temperature, top_p) in [(0.0, 1.0), (0.6, 1.0), (1.0, 1.0), (1.0, 0.9)] {
        let params = SamplingParams {
            temperature,
            top_p,
            ..Default::default()
        };
        let mut host_rngs: Vec<ChaCha8Rng> = (0..b as u64).map(ChaCha8Rng::seed_from_u64).collect();
        let mut dev_rngs = host_rngs.clone();
        for step in 0..20 {
            let got = sample_on_device(&t, &params, &mut dev_rngs, &done).unwrap();
            for i in 0..b {
                if done[i] {
                    assert!(got[i].is_none());
                    continue;
                }
                let want = sample(&logits[i * v..(i + 1) * v], &params, &mut host_rngs[i]);
                let (tok, lp) = got[i].unwrap();
                assert_eq!(
                    tok, want.0,
                    "T={temperature} top_p={top_p} row {i} step {step}"
                );
                assert!(
                    (lp - want.1).abs() < 1e-4,
                    "T={temperature}: log-prob {lp} vs {}",
                    want.1
                );
            }
        }
        // The done row's generator was not drawn from.
        assert_eq!(dev_rngs[3], ChaCha8Rng::seed_from_u64(3));
    }
}
