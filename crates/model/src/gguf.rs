//! Import a llama.cpp GGUF (Llama family) into an HF-layout directory:
//! dequantised f32 safetensors with HF names, the Q/K rows un-permuted,
//! config.json from the GGUF metadata, and tokenizer.json +
//! tokenizer_config.json rebuilt from the GGUF's tokenizer metadata.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{Device, Tensor};

use crate::{ModelError, Result};

fn err(path: &Path, message: impl Into<String>) -> ModelError {
    ModelError::Checkpoint {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// What an import wrote.
#[derive(Debug, Clone)]
pub struct ImportReport {
    pub tensors: usize,
    pub parameters: usize,
    pub vocab: usize,
    pub tied: bool,
}

/// Undo llama.cpp's RoPE row permutation of a Q or K projection
/// [n_head * d, cols]: reshape (n_head, d/2, 2, cols), swap the middle
/// axes, reshape back.
pub fn unpermute(w: &Tensor, n_head: usize) -> Result<Tensor> {
    let (rows, cols) = w.dims2()?;
    let d = rows / n_head;
    Ok(w.reshape((n_head, d / 2, 2, cols))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((rows, cols))?)
}

fn hf_name(gguf: &str) -> Option<String> {
    if let Some(rest) = gguf.strip_prefix("blk.") {
        let (i, part) = rest.split_once('.')?;
        let m = match part {
            "attn_norm.weight" => "input_layernorm.weight",
            "ffn_norm.weight" => "post_attention_layernorm.weight",
            "attn_q.weight" => "self_attn.q_proj.weight",
            "attn_k.weight" => "self_attn.k_proj.weight",
            "attn_v.weight" => "self_attn.v_proj.weight",
            "attn_output.weight" => "self_attn.o_proj.weight",
            "attn_q.bias" => "self_attn.q_proj.bias",
            "attn_k.bias" => "self_attn.k_proj.bias",
            "attn_v.bias" => "self_attn.v_proj.bias",
            "ffn_gate.weight" => "mlp.gate_proj.weight",
            "ffn_up.weight" => "mlp.up_proj.weight",
            "ffn_down.weight" => "mlp.down_proj.weight",
            _ => return None,
        };
        return Some(format!("model.layers.{i}.{m}"));
    }
    Some(
        match gguf {
            "token_embd.weight" => "model.embed_tokens.weight",
            "output_norm.weight" => "model.norm.weight",
            "output.weight" => "lm_head.weight",
            _ => return None,
        }
        .to_string(),
    )
}

/// Import `gguf` into the directory `out` (created; files written there).
pub fn import(gguf: &Path, out: &Path) -> Result<ImportReport> {
    let mut file = File::open(gguf).map_err(|e| err(gguf, e.to_string()))?;
    let content =
        Content::read(&mut file).map_err(|e| err(gguf, format!("not a GGUF file: {e}")))?;
    let md = &content.metadata;
    let arch = md
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .unwrap_or_default();
    if arch != "llama" {
        return Err(err(
            gguf,
            format!("architecture `{arch}` is not supported (llama only)"),
        ));
    }
    let u = |k: &str| -> Result<u32> {
        md.get(k)
            .and_then(|v| v.to_u32().ok())
            .ok_or_else(|| err(gguf, format!("metadata `{k}` missing")))
    };
    let f = |k: &str, default: f32| md.get(k).and_then(|v| v.to_f32().ok()).unwrap_or(default);
    let n_head = u("llama.attention.head_count")? as usize;
    let n_kv = md
        .get("llama.attention.head_count_kv")
        .and_then(|v| v.to_u32().ok())
        .map(|x| x as usize)
        .unwrap_or(n_head);
    let hidden = u("llama.embedding_length")? as usize;
    let layers = u("llama.block_count")? as usize;
    let ffn = u("llama.feed_forward_length")? as usize;
    let ctx = u("llama.context_length")? as usize;

    let tokens: Vec<String> = md
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.to_vec().ok())
        .ok_or_else(|| err(gguf, "metadata `tokenizer.ggml.tokens` missing"))?
        .iter()
        .map(|t| t.to_string().cloned().unwrap_or_default())
        .collect();
    let merges: Vec<String> = md
        .get("tokenizer.ggml.merges")
        .and_then(|v| v.to_vec().ok())
        .map(|m| {
            m.iter()
                .map(|t| t.to_string().cloned().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    let types: Vec<i64> = md
        .get("tokenizer.ggml.token_type")
        .and_then(|v| v.to_vec().ok())
        .map(|m| m.iter().map(value_i64).collect())
        .unwrap_or_default();
    let id = |k: &str| md.get(k).and_then(|v| v.to_u32().ok());
    let bos = id("tokenizer.ggml.bos_token_id");
    let eos = id("tokenizer.ggml.eos_token_id");
    let pad = id("tokenizer.ggml.padding_token_id").or(eos);
    let chat_template = md
        .get("tokenizer.chat_template")
        .and_then(|v| v.to_string().ok())
        .cloned();

    let device = Device::Cpu;
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    let names: Vec<String> = content.tensor_infos.keys().cloned().collect();
    for name in names {
        let Some(hf) = hf_name(&name) else { continue };
        let q = content
            .tensor(&mut file, &name, &device)
            .map_err(|e| err(gguf, format!("tensor `{name}`: {e}")))?;
        let mut t = q.dequantize(&device)?;
        if name.ends_with("attn_q.weight") {
            t = unpermute(&t, n_head)?;
        } else if name.ends_with("attn_k.weight") {
            t = unpermute(&t, n_kv)?;
        }
        tensors.insert(hf, t);
    }
    let tied = !tensors.contains_key("lm_head.weight");
    let parameters = tensors.values().map(|t| t.elem_count()).sum();
    let vocab = tensors
        .get("model.embed_tokens.weight")
        .ok_or_else(|| err(gguf, "no token_embd.weight"))?
        .dim(0)?;

    std::fs::create_dir_all(out).map_err(|e| err(out, e.to_string()))?;
    let path = out.join("model.safetensors");
    safetensors::tensor::serialize_to_file(tensors.iter(), crate::checkpoint::pt_metadata(), &path)
        .map_err(|e| err(&path, e.to_string()))?;
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": ffn,
        "num_hidden_layers": layers,
        "num_attention_heads": n_head,
        "num_key_value_heads": n_kv,
        "head_dim": hidden / n_head,
        "rms_norm_eps": f("llama.attention.layer_norm_rms_epsilon", 1e-5),
        "rope_theta": f("llama.rope.freq_base", 10000.0),
        "max_position_embeddings": ctx,
        "tie_word_embeddings": tied,
        "attention_bias": false,
        "mlp_bias": false,
        "hidden_act": "silu",
        "bos_token_id": bos,
        "eos_token_id": eos,
        "pad_token_id": pad,
        "torch_dtype": "float32",
    });
    write_json(&out.join("config.json"), &config)?;
    write_json(
        &out.join("tokenizer.json"),
        &tokenizer_json(&tokens, &merges, &types),
    )?;
    let tok = |i: Option<u32>| i.and_then(|i| tokens.get(i as usize).cloned());
    let mut tc = serde_json::json!({
        "tokenizer_class": "GPT2Tokenizer",
        "add_bos_token": false,
        "add_prefix_space": false,
        "clean_up_tokenization_spaces": false,
        "model_max_length": ctx,
        "bos_token": tok(bos),
        "eos_token": tok(eos),
        "pad_token": tok(pad),
        "unk_token": tok(bos),
    });
    if let Some(t) = chat_template {
        tc["chat_template"] = serde_json::Value::String(t);
    }
    write_json(&out.join("tokenizer_config.json"), &tc)?;
    write_json(
        &out.join("generation_config.json"),
        &serde_json::json!({"bos_token_id": bos, "eos_token_id": eos, "pad_token_id": pad}),
    )?;
    Ok(ImportReport {
        tensors: tensors.len(),
        parameters,
        vocab,
        tied,
    })
}

fn value_i64(v: &Value) -> i64 {
    v.to_i32()
        .map(i64::from)
        .or_else(|_| v.to_u32().map(i64::from))
        .or_else(|_| v.to_i64())
        .unwrap_or(1)
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(v).expect("json"))
        .map_err(|e| err(path, e.to_string()))
}

/// tokenizer.json for a GGUF "gpt2" BPE vocabulary: byte-level BPE with
/// the merges split on the space, type-3 tokens as special added tokens
/// and type-4 (user-defined) ones as plain added tokens, digits
/// pre-tokenised one by one (SmolLM2's reference tokenizer).
pub fn tokenizer_json(tokens: &[String], merges: &[String], types: &[i64]) -> serde_json::Value {
    let vocab: serde_json::Map<String, serde_json::Value> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), serde_json::json!(i)))
        .collect();
    let merges: Vec<serde_json::Value> = merges
        .iter()
        .filter_map(|m| m.split_once(' ').map(|(a, b)| serde_json::json!([a, b])))
        .collect();
    let added: Vec<serde_json::Value> = types
        .iter()
        .enumerate()
        .filter(|(_, t)| **t == 3 || **t == 4)
        .map(|(i, t)| {
            serde_json::json!({
                "id": i, "content": tokens[i], "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": *t == 3
            })
        })
        .collect();
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Digits", "individual_digits": true},
                {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
            ]
        },
        "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": merges
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpermute_inverts_the_llama_cpp_permutation() {
        // llama.cpp: reshape (n_head, 2, d/2, cols) -> swap axes 1, 2.
        let (n_head, d, cols) = (3usize, 4usize, 5usize);
        let hf = Tensor::arange(0f32, (n_head * d * cols) as f32, &Device::Cpu)
            .unwrap()
            .reshape((n_head * d, cols))
            .unwrap();
        let permuted = hf
            .reshape((n_head, 2, d / 2, cols))
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
            .reshape((n_head * d, cols))
            .unwrap();
        let back = unpermute(&permuted, n_head).unwrap();
        assert_eq!(back.to_vec2::<f32>().unwrap(), hf.to_vec2::<f32>().unwrap());
    }
}
