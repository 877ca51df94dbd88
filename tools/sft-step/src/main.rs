//! sft-step: supervised fine-tuning (the `sft` crate's [`sft::run`]).

use std::process::ExitCode;

use clap::Parser;
use cli::sft_step::Cli;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::warn_old_spellings("sft-step");
    artifacts::provenance::begin("sft-step", version::VERSION);
    // One process, or one rank of an MPI job (mpirun, srun).
    if let Err(e) = dist::init() {
        return dist::fail("sft-step", e);
    }
    let mut o = cli.options();
    // A Hugging Face id (`org/name[@revision]`) names a cached snapshot.
    o.io.policy = match model::hub::resolve(&o.io.policy) {
        Ok(p) => p,
        Err(e) => {
            return dist::fail("sft-step", e);
        }
    };
    match sft::run(&o, &mut |line| {
        // Under an MPI job rank 0 speaks for the step.
        if dist::world().is_root() {
            eprintln!("{line}")
        }
    }) {
        Ok(s) => {
            if dist::world().is_root() {
                eprintln!(
                    "sft-step: {} of {} steps done, loss {:.4}, {:.1}s -> {}",
                    s.steps_done,
                    s.total_steps,
                    s.last_loss,
                    s.seconds,
                    o.io.output.display()
                );
            }
            dist::success()
        }
        Err(e) => dist::fail("sft-step", e),
    }
}
