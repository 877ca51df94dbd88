//! A tiny model directory with random weights and a byte-level tokenizer,
//! for tests and canaries: the same files a real checkpoint has.

use std::path::Path;

use candle_core::{DType, Device};

use crate::{Checkpoint, Config, Result};

/// The 256 characters GPT-2's byte-level BPE uses for the bytes 0..=255.
pub fn byte_chars() -> Vec<char> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + n);
            n += 1;
        }
    }
    let mut by_byte = vec!['\0'; 256];
    for (b, c) in printable.iter().zip(chars) {
        by_byte[*b as usize] = char::from_u32(c).expect("valid char");
    }
    by_byte
}

/// The tests' smallest decoder config with no checkpoint behind it: 61
/// tokens, width 32, 2 layers, 4 heads over 2 KV heads; `model_type`
/// `llama` or `qwen2` (q/k/v biases), `tied` embeddings or not.
pub fn config(model_type: &str, tied: bool) -> Config {
    serde_json::from_value(serde_json::json!({
        "model_type": model_type,
        "vocab_size": 61,
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "max_position_embeddings": 128,
        "tie_word_embeddings": tied,
        "eos_token_id": 2,
    }))
    .expect("a valid config")
}

/// Special tokens of the tiny vocabulary, after the 256 bytes.
pub const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// Write a tiny Llama checkpoint (random weights from `seed`) with a
/// byte-level tokenizer (256 bytes + [`SPECIALS`]; `<|im_end|>` is eos).
pub fn write_tiny(dir: &Path, hidden: usize, layers: usize, seed: u64) -> Result<Checkpoint> {
    write_tiny_with_words(dir, hidden, layers, seed, &[])
}

/// [`write_tiny`] with `words` added to the vocabulary as whole tokens
/// after the specials (toy tasks whose answers are single tokens).
pub fn write_tiny_with_words(
    dir: &Path,
    hidden: usize,
    layers: usize,
    seed: u64,
    words: &[&str],
) -> Result<Checkpoint> {
    let mut tokens: Vec<String> = byte_chars().into_iter().map(String::from).collect();
    tokens.extend(SPECIALS.iter().map(|s| s.to_string()));
    tokens.extend(words.iter().map(|w| w.to_string()));
    let mut types = vec![1i64; 256];
    types.extend([3, 3, 3]);
    types.extend(std::iter::repeat_n(4, words.len()));
    let eos = 256 + 2;
    let cfg: Config = serde_json::from_value(serde_json::json!({
        "model_type": "llama",
        "vocab_size": tokens.len(),
        "hidden_size": hidden,
        "intermediate_size": hidden * 2,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-5,
        "max_position_embeddings": 512,
        "tie_word_embeddings": true,
        "eos_token_id": eos,
    }))
    .expect("tiny config");
    let device = Device::Cpu;
    let ck = Checkpoint::random(cfg, &device, DType::F32)?;
    ck.init_weights(seed, 0.02)?;
    let side = durable::parent_of(dir).join(format!(
        ".{}.side-{}",
        dir.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    std::fs::create_dir_all(&side).map_err(|e| crate::ModelError::Invalid(e.to_string()))?;
    let write = |name: &str, v: serde_json::Value| {
        std::fs::write(side.join(name), serde_json::to_string(&v).expect("json"))
            .map_err(|e| crate::ModelError::Invalid(e.to_string()))
    };
    write(
        "tokenizer.json",
        crate::gguf::tokenizer_json(&tokens, &[], &types),
    )?;
    write(
        "tokenizer_config.json",
        serde_json::json!({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "bos_token": "<|im_start|>"}),
    )?;
    ck.save(dir, Some(&side))?;
    let _ = std::fs::remove_dir_all(&side);
    Checkpoint::load(dir, &device, DType::F32)
}
