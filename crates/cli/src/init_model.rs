//! `init-model`'s command line.

use std::path::PathBuf;

use clap::Parser;
use model::Precision;

/// Write an HF-layout checkpoint with random weights for the model shape
/// of a config.json (Llama or Qwen2 family, e.g. Qwen2.5-0.5B's published
/// config): HF's initialisation (normal with the config's
/// `initializer_range`, default 0.02; norms at one, biases at zero), the
/// config.json as given (with `torch_dtype` set to --dtype), and the
/// tokenizer files of --tokenizer. The output directory is written
/// atomically.
#[derive(Parser)]
#[command(name = "init-model", version = version::VERSION, about, long_about)]
pub struct Cli {
    /// The config.json to build (HF layout, unchanged).
    #[arg(long)]
    pub config: PathBuf,
    /// A directory whose tokenizer.json and tokenizer_config.json are
    /// copied (its vocabulary must fit the config's vocab_size).
    #[arg(long)]
    pub tokenizer: PathBuf,
    /// Output directory.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Seed of the weights.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The dtype the weights are written in (config.json's torch_dtype).
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub dtype: Precision,
}
