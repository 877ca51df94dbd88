//! cargo run --release -p model --example greedy -- MODEL_DIR "prompt text"
use model::generate::{generate, SamplingParams};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::Path::new(&args[1]);
    let ck = model::Checkpoint::load(dir, &model::Device::Cpu, model::DType::F32).unwrap();
    let tok = model::tokenizer::Tokenizer::load(dir).unwrap();
    let ids = tok.encode(&args[2]).unwrap();
    println!(
        "prompt ids ({}): {:?}",
        ids.len(),
        &ids[..ids.len().min(40)]
    );
    let params = SamplingParams {
        max_new_tokens: 48,
        temperature: 0.0,
        stop_token_ids: tok.eos_ids.clone(),
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let g = generate(&ck.model, &[ids], &[0], &params, &|_, _| false, |_| {}).unwrap();
    println!(
        "{:?} in {:.2}s",
        tok.decode(&g[0].tokens).unwrap(),
        t.elapsed().as_secs_f64()
    );
}
