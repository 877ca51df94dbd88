//! `ppo-step`'s command line.

use std::path::PathBuf;

use clap::Parser;

/// One policy update from a scored rollouts file (verify's output): PPO
/// with a critic (GAE), GRPO, REINFORCE++ and the other estimators of
/// --advantage.
///
/// Reads the `reward` of each row, recomputes the old log-probs under
/// --policy, and writes the updated policy to --output (and the critic to
/// --critic-out), each an HF-layout checkpoint with its optimizer state
/// (optimizer.safetensors), so the next step resumes exactly. Appends one
/// row to --metrics. Prints one line per micro-batch.
///
/// Each flag's default is shown with it; --algo presets the advantage
/// estimator and the KL's placement, estimator and coefficient. Example,
/// one PPO iteration:
///
///   ppo-step iter-0/scored.parquet --policy models/smollm2-135m-instruct
///     --reference models/smollm2-135m-instruct -o iter-0/policy
///     --critic-out iter-0/critic --metrics metrics.parquet
///
/// and the next one continues from `--policy iter-0/policy --critic iter-0/critic`.
///
/// Under `mpirun -np N` (or srun) the step is data-parallel: each rank
/// scores and trains every N-th micro-batch, the gradients are summed over
/// the ranks before clipping, every rank takes the same step, and rank 0
/// writes the checkpoints and the metrics row (reduced over the ranks).
/// --shard-optimizer keeps 1/N of the AdamW state on each rank.
#[derive(Parser)]
#[command(
    name = "ppo-step",
    allow_negative_numbers = true,
    version = version::VERSION,
    about,
    long_about,
    verbatim_doc_comment
)]
pub struct Cli {
    /// Scored rollouts (verify's output): token ids, log-probs and
    /// `reward`; `-` reads standard input.
    #[arg(value_name = "SCORED", required_unless_present_any = ["scored", "print_config"])]
    pub input: Option<PathBuf>,
    /// Old spelling of SCORED.
    #[arg(long, hide = true, conflicts_with = "input")]
    pub scored: Option<PathBuf>,
    #[command(flatten)]
    pub io: ppo::Io,
    #[command(flatten)]
    pub config: ppo::Config,
    /// Print every setting as the step would use it (the --algo preset
    /// applied), one name=value per line, and exit without reading or
    /// writing anything.
    #[arg(long)]
    pub print_config: bool,
}

impl Cli {
    /// The options with the input in place, whichever spelling named it.
    pub fn options(self) -> ppo::Options {
        let mut io = self.io;
        io.scored = self.input.or(self.scored).unwrap_or_default();
        ppo::Options {
            io,
            config: self.config,
        }
    }
}
