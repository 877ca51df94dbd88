//! import-gguf: a llama.cpp GGUF -> an HF-layout checkpoint.

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use cli::import_gguf::Cli;

fn run(cli: Cli) -> Result<()> {
    // Written beside the output, checked, then swapped in: an existing
    // checkpoint there stays until the new one is complete, and a folder
    // that is not a checkpoint is never replaced.
    durable::check_not_input(&cli.output, &[&cli.gguf])?;
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
