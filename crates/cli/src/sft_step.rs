//! `sft-step`'s command line.

use std::path::PathBuf;

use clap::Parser;

/// Supervised fine-tuning on an SFT Parquet (columns id, prompt, response;
/// e.g. `prep-math simplerl-zero --response-field solution`, MATH solutions
/// ending in \boxed{}): cross-entropy on the response tokens only (plus the
/// end-of-turn token), micro-batches with gradient accumulation, AdamW,
/// warmup then cosine or linear decay, epochs.
///
/// Writes --output as an HF-layout checkpoint with its optimizer state
/// (atomically, every --save-every steps and at the end) and one metrics
/// row per step (loss, lr, grad_norm, tokens_per_s). Running the same
/// command again after an interruption resumes at the last saved step,
/// with the schedule and data order where they were.
///
/// Under `mpirun -np N` (or srun) each rank trains every N-th micro-batch,
/// the gradients are summed over the ranks before clipping, and rank 0
/// writes the checkpoints and metrics; --shard-optimizer keeps 1/N of the
/// AdamW state on each rank.
#[derive(Parser)]
#[command(name = "sft-step", allow_negative_numbers = true, version = version::VERSION, about, long_about)]
pub struct Cli {
    /// SFT Parquet: id, prompt (templated), response; `-` reads standard
    /// input.
    #[arg(value_name = "DATA", required_unless_present = "data")]
    pub input: Option<PathBuf>,
    /// Old spelling of DATA.
    #[arg(long, hide = true, conflicts_with = "input")]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub io: sft::Io,
    #[command(flatten)]
    pub config: sft::Config,
}

impl Cli {
    /// The options with the input in place, whichever spelling named it.
    pub fn options(self) -> sft::Options {
        let mut io = self.io;
        io.data = self.input.or(self.data).expect("clap requires DATA");
        sft::Options {
            io,
            config: self.config,
        }
    }
}
