//! init-model: a random-weight checkpoint from a config.json.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use model::{Checkpoint, Config, Precision};

/// Write an HF-layout checkpoint with random weights for the model shape
/// of a config.json (Llama or Qwen2 family, e.g. Qwen2.5-0.5B's published
/// config): HF's initialisation (normal with the config's
/// `initializer_range`, default 0.02; norms at one, biases at zero), the
/// config.json as given (with `torch_dtype` set to --dtype), and the
/// tokenizer files of --tokenizer. The output directory is written
/// atomically.
#[derive(Parser)]
#[command(version = version::VERSION, about, long_about)]
struct Cli {
    /// The config.json to build (HF layout, unchanged).
    #[arg(long)]
    config: PathBuf,
    /// A directory whose tokenizer.json and tokenizer_config.json are
    /// copied (its vocabulary must fit the config's vocab_size).
    #[arg(long)]
    tokenizer: PathBuf,
    /// Output directory.
    #[arg(short, long)]
    output: PathBuf,
    /// Seed of the weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The dtype the weights are written in (config.json's torch_dtype).
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    dtype: Precision,
}

fn run(cli: Cli) -> Result<()> {
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

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("init-model: {e:#}");
            ExitCode::FAILURE
        }
    }
}
