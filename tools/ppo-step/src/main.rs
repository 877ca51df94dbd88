//! ppo-step: one PPO or GRPO update (the `ppo` crate's [`ppo::run`]).

use std::process::ExitCode;

use clap::Parser;

/// One policy update from a scored rollouts file (verify's output): PPO
/// with a critic (GAE) or GRPO (group-normalised advantages, no critic).
///
/// Reads the `reward` of each row, recomputes the old log-probs under
/// --policy, and writes the updated policy to --policy-out (and the
/// critic to --critic-out), each an HF-layout checkpoint with its
/// optimizer state (optimizer.safetensors), so the next step resumes
/// exactly. Appends one row to --metrics. Prints one line per micro-batch.
///
/// Each flag's default is shown with it; --algo presets the advantage
/// estimator and the KL's placement, estimator and coefficient. Example,
/// one PPO iteration:
///
///   ppo-step --scored iter-0/scored.parquet --policy models/smollm2-135m-instruct
///     --reference models/smollm2-135m-instruct --policy-out iter-0/policy
///     --critic-out iter-0/critic --metrics metrics.parquet
///
/// and the next one continues from `--policy iter-0/policy --critic iter-0/critic`.
#[derive(Parser)]
#[command(
    allow_negative_numbers = true,
    version = version::VERSION,
    about,
    long_about,
    verbatim_doc_comment
)]
struct Cli {
    #[command(flatten)]
    io: ppo::Io,
    #[command(flatten)]
    config: ppo::Config,
    /// Print every setting as the step would use it (the --algo preset
    /// applied), one name=value per line, and exit without reading or
    /// writing anything.
    #[arg(long)]
    print_config: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.print_config {
        for (name, value) in cli.config.resolved() {
            println!("{name}={value}");
        }
        return ExitCode::SUCCESS;
    }
    // Hugging Face ids (`org/name[@revision]`) name cached snapshots.
    let mut io = cli.io;
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
        eprintln!("ppo-step: error: {e}");
        return ExitCode::FAILURE;
    }
    let opts = ppo::Options {
        io,
        config: cli.config,
    };
    match ppo::run(&opts, &mut |line| eprintln!("{line}")) {
        Ok(s) => {
            eprintln!("ppo-step: {s} -> {}", opts.io.policy_out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ppo-step: error: {e}");
            ExitCode::FAILURE
        }
    }
}
