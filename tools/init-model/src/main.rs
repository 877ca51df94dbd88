//! init-model: a random-weight checkpoint from a config.json.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use cli::init_model::Cli;
use model::{Checkpoint, Config, Precision};

fn run(cli: Cli) -> Result<()> {
    durable::check_not_input(&cli.output, &[&cli.config, &cli.tokenizer])?;
    let text = std::fs::read_to_string(&cli.config)
        .with_context(|| format!("{}", cli.config.display()))?;
    let mut raw: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}", cli.config.display()))?;
    let cfg: Config = serde_json::from_value(raw.clone())
        .with_context(|| format!("{}: not a Llama/Qwen2 config", cli.config.display()))?;
    cfg.validate()
        .map_err(|e| anyhow::anyhow!("{}: {e}", cli.config.display()))?;
    let tok = model::tokenizer::Tokenizer::load(&cli.tokenizer)?;
    if tok.vocab_size() > cfg.vocab_size {
        anyhow::bail!(
            "{}: the tokenizer has {} tokens, more than the config's vocab_size {}",
            cli.tokenizer.display(),
            tok.vocab_size(),
            cfg.vocab_size
        );
    }
    let std = raw["initializer_range"].as_f64().unwrap_or(0.02) as f32;
    raw["torch_dtype"] = serde_json::json!(match cli.dtype {
        Precision::F32 => "float32",
        Precision::Bf16 => "bfloat16",
    });
    let mut ck = Checkpoint::random(cfg, &model::Device::Cpu, model::DType::F32)?;
    ck.init_weights(cli.seed, std)?;
    ck.raw_config = raw;
    ck.save(&cli.output, Some(&cli.tokenizer))?;
    let params: usize = ck.varmap.all_vars().iter().map(|v| v.elem_count()).sum();
    eprintln!(
        "init-model: {:.1}M parameters ({}), seed {} -> {}",
        params as f64 / 1e6,
        cli.dtype,
        cli.seed,
        cli.output.display()
    );
    Ok(())
}

pub fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("init-model: {e:#}");
            ExitCode::FAILURE
        }
    }
}
