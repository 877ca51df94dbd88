//! ppo-step: one PPO or GRPO update (the `ppo` crate's [`ppo::run`]).

use std::process::ExitCode;

use clap::Parser;
use cli::ppo_step::Cli;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::warn_old_spellings("ppo-step");
    artifacts::provenance::begin("ppo-step", version::VERSION);
    // One process, or one rank of an MPI job (mpirun, srun).
    if let Err(e) = dist::init() {
        return dist::fail("ppo-step", e);
    }
    if cli.print_config {
        for (name, value) in cli.config.resolved() {
            println!("{name}={value}");
        }
        return dist::success();
    }
    // Hugging Face ids (`org/name[@revision]`) name cached snapshots.
    let ppo::Options { mut io, config } = cli.options();
    let resolved = (|| -> Result<(), model::ModelError> {
        io.policy = model::hub::resolve(&io.policy)?;
        if let Some(r) = &io.reference {
            io.reference = Some(model::hub::resolve(r)?);
        }
        if let Some(c) = &io.critic {
            io.critic = Some(model::hub::resolve(c)?);
        }
        Ok(())
    })();
    if let Err(e) = resolved {
        return dist::fail("ppo-step", e);
    }
    let opts = ppo::Options { io, config };
    match ppo::run(&opts, &mut |line| {
        // Under an MPI job rank 0 speaks for the step.
        if dist::world().is_root() {
            eprintln!("{line}")
        }
    }) {
        Ok(s) => {
            if dist::world().is_root() {
                eprintln!("ppo-step: {s} -> {}", opts.io.policy_out.display());
            }
            dist::success()
        }
        Err(e) => dist::fail("ppo-step", e),
    }
}
