//! sft-step: supervised fine-tuning (the `sft` crate's [`sft::run`]).

use std::process::ExitCode;

use clap::Parser;
use cli::sft_step::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::warn_old_spellings("sft-step");
    artifacts::provenance::begin("sft-step", version::VERSION);
    let mut o = cli.options();
    // A Hugging Face id (`org/name[@revision]`) names a cached snapshot.
    o.io.policy = match model::hub::resolve(&o.io.policy) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("sft-step: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match sft::run(&o, &mut |line| eprintln!("{line}")) {
        Ok(s) => {
            eprintln!(
                "sft-step: {} of {} steps done, loss {:.4}, {:.1}s -> {}",
                s.steps_done,
                s.total_steps,
                s.last_loss,
                s.seconds,
                o.io.output.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sft-step: error: {e}");
            ExitCode::FAILURE
        }
    }
}
