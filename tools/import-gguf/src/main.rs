//! import-gguf: a llama.cpp GGUF -> an HF-layout checkpoint.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

/// Dequantise a llama.cpp GGUF (Llama family, e.g. SmolLM2) into an
/// HF-layout directory: model.safetensors (f32, HF tensor names, Q/K rows
/// un-permuted), config.json, tokenizer.json (rebuilt from the GGUF
/// vocabulary and merges) and tokenizer_config.json (with the chat
/// template). The output directory is written atomically.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// The .gguf file.
    gguf: PathBuf,
    /// Output directory (replaced if it exists).
    #[arg(short, long)]
    output: PathBuf,
}

fn run(cli: Cli) -> Result<()> {
    let parent = cli
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("{}", parent.display()))?;
    let name = cli
        .output
        .file_name()
        .context("output must name a directory")?
        .to_string_lossy()
        .into_owned();
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let report = match model::gguf::import(&cli.gguf, &tmp) {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e.into());
        }
    };
    // Check what was written loads: the tokenizer and the weights.
    let check = model::tokenizer::Tokenizer::load(&tmp).and_then(|_| {
        model::Checkpoint::load(&tmp, &model::Device::Cpu, model::DType::F32).map(|_| ())
    });
    if let Err(e) = check {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e.into());
    }
    if cli.output.exists() {
        std::fs::remove_dir_all(&cli.output)
            .with_context(|| format!("{}", cli.output.display()))?;
    }
    std::fs::rename(&tmp, &cli.output).with_context(|| format!("{}", cli.output.display()))?;
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
