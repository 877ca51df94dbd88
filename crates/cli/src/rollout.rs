//! `rollout`'s command line.

use std::path::PathBuf;

use clap::Parser;
use stages::rollout::Options;

/// Sample responses from a policy checkpoint (HF layout) for every prompt
/// of a prompts.parquet, and write rollouts.parquet: one row per sample
/// with the response, its token ids, and the log-prob of each token under
/// the sampling distribution. Stops a response at the model's end-of-turn
/// token, a --stop-words string, or --max-new-tokens.
#[derive(Parser)]
#[command(name = "rollout", allow_negative_numbers = true, version = version::VERSION, about, long_about)]
pub struct Cli {
    /// prompts.parquet (prep-math's output); `-` reads standard input.
    #[arg(value_name = "PROMPTS", required_unless_present = "prompts")]
    pub input: Option<PathBuf>,
    /// Old spelling of PROMPTS.
    #[arg(long, hide = true, conflicts_with = "input")]
    pub prompts: Option<PathBuf>,
    #[command(flatten)]
    pub opts: Options,
}

impl Cli {
    /// The options with the input in place, whichever spelling named it.
    pub fn options(self) -> Options {
        let mut o = self.opts;
        o.prompts = self.input.or(self.prompts).expect("clap requires PROMPTS");
        o
    }
}
