//! Decode throughput: `decode_bench MODEL_DIR PROMPT BATCH...` generates
//! 128 new tokens greedily (no stop token) for BATCH copies of PROMPT and
//! prints one line per batch size: `ours batch=B new_tokens=N seconds=S
//! tok_per_s=R`. tok/s counts generated tokens over the whole generate
//! call, prompt included, as bench/decode.py does for transformers.
//! Candle's forward instead of the packed CPU decoder: `--candle`.

use std::time::Instant;

use model::generate::{Engine, SamplingParams};
use model::tokenizer::Tokenizer;
use model::{Checkpoint, DType, Device};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let candle = args.iter().any(|a| a == "--candle");
    let args: Vec<&String> = args.iter().filter(|a| *a != "--candle").collect();
    let [dir, prompt, batches @ ..] = args.as_slice() else {
        return Err("usage: decode_bench MODEL_DIR PROMPT BATCH... [--candle]".into());
    };
    let new_tokens: usize = std::env::var("NEW_TOKENS").map_or(Ok(128), |v| v.parse())?;
    let ck = Checkpoint::load(dir, &Device::Cpu, DType::F32)?;
    let ids = Tokenizer::load(std::path::Path::new(dir))?.encode(prompt)?;
    let engine = if candle {
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
            "{} batch={b} prompt_tokens={} new_tokens={n} seconds={secs:.2} tok_per_s={:.1} first_ids={}",
            if candle { "ours-candle" } else { "ours" },
            ids.len(),
            n as f64 / secs,
            gens[0].tokens.iter().take(16).map(u32::to_string).collect::<Vec<_>>().join(",")
        );
    }
    Ok(())
}
