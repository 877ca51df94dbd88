//! init-model writes a checkpoint that loads, has the config's shape and
//! dtype, is reproducible from its seed, and refuses a tokenizer larger
//! than the vocabulary.

use std::path::Path;
use std::process::Command;

fn init_model(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_init-model"))
        .args(args)
        .output()
        .unwrap()
}

fn qwen_like(dir: &Path, vocab: usize) -> std::path::PathBuf {
    let p = dir.join("config.json");
    let cfg = serde_json::json!({
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
        "vocab_size": vocab, "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "max_position_embeddings": 256,
        "tie_word_embeddings": true, "initializer_range": 0.02, "use_sliding_window": false
    });
    std::fs::write(&p, cfg.to_string()).unwrap();
    p
}

#[test]
fn writes_a_loadable_checkpoint_of_the_configs_shape() {
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("tok");
    model::tiny::write_tiny(&tok, 16, 1, 0).unwrap();
    let cfg = qwen_like(dir.path(), 300);
    let out = |name: &str, seed: &str, dtype: &str| {
        let o = dir.path().join(name);
        let r = init_model(&[
            "--config",
            cfg.to_str().unwrap(),
            "--tokenizer",
            tok.to_str().unwrap(),
            "-o",
            o.to_str().unwrap(),
            "--seed",
            seed,
            "--dtype",
            dtype,
        ]);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        o
    };
    let a = out("a", "1", "f32");
    let ck = model::Checkpoint::load(&a, &model::Device::Cpu, model::DType::F32).unwrap();
    assert_eq!(ck.config.vocab_size, 300);
    assert!(ck.config.qkv_bias(), "qwen2 has q/k/v biases");
    // The config as given (unknown keys kept), with the dtype written.
    assert_eq!(ck.raw_config["use_sliding_window"], false);
    assert_eq!(ck.raw_config["torch_dtype"], "float32");
    assert!(a.join("tokenizer.json").exists());
    let w = |d: &Path| std::fs::read(d.join("model.safetensors")).unwrap();
    assert_eq!(w(&a), w(&out("a2", "1", "f32")), "same seed, same weights");
    assert_ne!(
        w(&a),
        w(&out("b", "2", "f32")),
        "another seed, other weights"
    );
    // bf16: half the bytes, loads as bf16.
    let h = out("h", "1", "bf16");
    let tensors =
        candle_core::safetensors::load(h.join("model.safetensors"), &model::Device::Cpu).unwrap();
    assert!(tensors.values().all(|t| t.dtype() == model::DType::BF16));
}

#[test]
fn refuses_a_tokenizer_larger_than_the_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("tok");
    model::tiny::write_tiny(&tok, 16, 1, 0).unwrap();
    let cfg = qwen_like(dir.path(), 100);
    let r = init_model(&[
        "--config",
        cfg.to_str().unwrap(),
        "--tokenizer",
        tok.to_str().unwrap(),
        "-o",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert!(!r.status.success());
    let e = String::from_utf8_lossy(&r.stderr);
    assert!(e.contains("more than the config's vocab_size 100"), "{e}");
    assert!(!dir.path().join("x").exists());
}
