//! `import-gguf`'s command line.

use std::path::PathBuf;

use clap::Parser;

/// Dequantise a llama.cpp GGUF (Llama family, e.g. SmolLM2) into an
/// HF-layout directory: model.safetensors (f32, HF tensor names, Q/K rows
/// un-permuted), config.json, tokenizer.json (rebuilt from the GGUF
/// vocabulary and merges) and tokenizer_config.json (with the chat
/// template). The output directory is written atomically.
#[derive(Parser)]
#[command(name = "import-gguf", version = version::VERSION, about, long_about)]
pub struct Cli {
    /// The .gguf file.
    pub gguf: PathBuf,
    /// Output directory (replaced if it holds a checkpoint; any other
    /// non-empty folder is refused).
    #[arg(short, long)]
    pub output: PathBuf,
}
