//! import-gguf: a llama.cpp GGUF -> an HF-layout checkpoint.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

/// Dequantise a llama.cpp GGUF (Llama family, e.g. SmolLM2) into an
/// HF-layout directory: model.safetensors (f32, HF tensor names, Q/K rows
/// un-permuted), config.json, tokenizer.json (rebuilt from the GGUF
/// vocabulary and merges) and tokenizer_config.json (with the chat
/// template). The output directory is written atomically.
#[derive(Parser)]
#[command(version = version::VERSION, about, long_about)]
struct Cli {
    /// The .gguf file.
    gguf: PathBuf,
    /// Output directory (replaced if it holds a checkpoint; any other
    /// non-empty folder is refused).
    #[arg(short, long)]
    output: PathBuf,
}

fn run(cli: Cli) -> Result<()> {
    // Written beside the output, checked, then swapped in: an existing
    // checkpoint there stays until the new one is complete, and a folder
    // that is not a checkpoint is never replaced.
    let writer = durable::DirWriter::begin(&cli.output, model::checkpoint::replaceable)?;
    let tmp = writer.path().to_path_buf();
    let report = model::gguf::import(&cli.gguf, &tmp)?;
    // Check what was written loads: the tokenizer and the weights.
    model::tokenizer::Tokenizer::load(&tmp)?;
    model::Checkpoint::load(&tmp, &model::Device::Cpu, model::DType::F32)?;
    writer.commit()?;
    eprintln!(
        "import-gguf: {} tensors, {:.1}M parameters, vocab {}, {} embeddings -> {}",
        report.tensors,
        report.parameters as f64 / 1e6,
        report.vocab,
        if report.tied { "tied" } else { "untied" },
        cli.output.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("import-gguf: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
