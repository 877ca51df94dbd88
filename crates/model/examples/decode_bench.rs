//! Decode throughput: `decode_bench MODEL_DIR PROMPT BATCH...` generates
//! 128 new tokens greedily (no stop token) for BATCH copies of PROMPT and
//! prints one line per batch size: `ours batch=B new_tokens=N seconds=S
//! tok_per_s=R`. tok/s counts generated tokens over the whole generate
//! call, prompt included, as bench/decode.py does for transformers.
//! Candle's forward instead of the packed CPU decoder: `--candle`; on a
//! GPU: `--device cuda:0` (and `--dtype bf16`). `--config CONFIG.json`:
//! a model of that shape with random weights made on the device (no
//! checkpoint file; MODEL_DIR gives the tokenizer), as the GPU bundle
//! measures the Qwen2.5 shapes.

use std::time::Instant;

use model::generate::{Engine, SamplingParams};
use model::tokenizer::Tokenizer;
use model::{Checkpoint, DType, Device};

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let candle = args.iter().any(|a| a == "--candle");
    args.retain(|a| a != "--candle");
    let mut take = |flag: &str, default: &str| -> String {
        match args.iter().position(|a| a == flag) {
            Some(i) if i + 1 < args.len() => {
                let v = args.remove(i + 1);
                args.remove(i);
                v
            }
            _ => default.to_string(),
        }
    };
    let device = take("--device", "cpu");
    let config = take("--config", "");
    let dtype = match take("--dtype", "f32").as_str() {
        "f32" => DType::F32,
        "bf16" => DType::BF16,
        d => return Err(format!("--dtype {d}: use f32 or bf16").into()),
    };
    let [dir, prompt, batches @ ..] = args.as_slice() else {
        return Err(
            "usage: decode_bench MODEL_DIR PROMPT BATCH... [--candle] [--device cuda:0] [--dtype bf16] [--config CONFIG.json]"
                .into(),
        );
    };
    let new_tokens: usize = std::env::var("NEW_TOKENS").map_or(Ok(128), |v| v.parse())?;
    let device: Device = model::device(&device)?;
    let ck = if config.is_empty() {
        Checkpoint::load(dir, &device, dtype)?
    } else {
        let text = std::fs::read_to_string(&config).map_err(|e| format!("{config}: {e}"))?;
        let cfg = serde_json::from_str(&text).map_err(|e| format!("{config}: {e}"))?;
        Checkpoint::random(cfg, &device, dtype)?
    };
    let ids = Tokenizer::load(std::path::Path::new(dir))?.encode(prompt)?;
    let engine = if candle || !device.is_cpu() {
        Engine::Candle(&ck.model)
    } else {
        Engine::new(&ck.model)?
    };
    let params = SamplingParams {
        max_new_tokens: new_tokens,
        temperature: 0.0,
        ..Default::default()
    };
    // Warm-up: page the weights in, start the thread pool.
    engine.generate(
        std::slice::from_ref(&ids),
        &[0],
        &SamplingParams {
            max_new_tokens: 4,
            ..params.clone()
        },
        &|_, _| false,
        |_| {},
    )?;
    for b in batches {
        let b: usize = b.parse()?;
        let prompts = vec![ids.clone(); b];
        let seeds = vec![0; b];
        let t0 = Instant::now();
        let gens = engine.generate(&prompts, &seeds, &params, &|_, _| false, |_| {})?;
        let secs = t0.elapsed().as_secs_f64();
        let n: usize = gens.iter().map(|g| g.tokens.len()).sum();
        println!(
            "{} batch={b} prompt_tokens={} new_tokens={n} seconds={secs:.2} tok_per_s={:.1} params={} first_ids={}",
            match (&engine, ck.model.device().is_cpu()) {
                (_, false) => "ours-gpu",
                (Engine::Candle(_), _) => "ours-candle",
                _ => "ours",
            },
            ids.len(),
            n as f64 / secs,
            ck.varmap.all_vars().iter().map(|v| v.elem_count()).sum::<usize>(),
            gens[0].tokens.iter().take(16).map(u32::to_string).collect::<Vec<_>>().join(",")
        );
    }
    Ok(())
}
