//! `verify`'s command line.

use std::path::PathBuf;

use clap::Parser;
use grader::RewardScheme;
use stages::verify::{self, Fallback};

/// Grade every row of a Parquet file: extract the final answer from the
/// response (the last \boxed{}), decide whether it equals the gold answer,
/// and add the columns extracted_answer, has_answer, correct and reward.
/// Every other column is passed through, so a rollouts.parquet becomes a
/// scored.parquet.
///
/// The input may be a Parquet dataset directory (part-*.parquet, as an MPI
/// job writes). Under `mpirun -np N` each rank grades every N-th row and
/// --output is a dataset directory of one part per rank.
#[derive(Parser)]
#[command(name = "verify", allow_negative_numbers = true, version = version::VERSION, about, long_about)]
pub struct Cli {
    /// Input Parquet (e.g. rollouts.parquet); `-` reads standard input.
    pub input: PathBuf,
    /// Output Parquet (e.g. scored.parquet), written atomically; `-`
    /// writes standard output.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Column with the model's response.
    #[arg(long, default_value_t = verify::Options::default().response_column)]
    pub response_column: String,
    /// Column with the gold answer.
    #[arg(long, default_value_t = verify::Options::default().answer_column)]
    pub answer_column: String,
    /// Reward for a correct final answer. [range: any finite number]
    #[arg(long, default_value_t = RewardScheme::default().correct, allow_hyphen_values = true, value_parser = flags::finite)]
    pub reward_correct: f64,
    /// Reward for a wrong final answer. [range: any finite number]
    #[arg(long, default_value_t = RewardScheme::default().wrong, allow_hyphen_values = true, value_parser = flags::finite)]
    pub reward_wrong: f64,
    /// Reward for no final answer. [range: any finite number]
    #[arg(long, default_value_t = RewardScheme::default().no_answer, allow_hyphen_values = true, value_parser = flags::finite)]
    pub reward_no_answer: f64,
    /// Extraction fallbacks when there is no \boxed{} (for evaluation only;
    /// the recipe's reward uses none). Comma-separated.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub fallback: Vec<Fallback>,
    /// Cut each response at the first of these strings before looking for
    /// its answer (comma-separated; `--stop-words ''` for none), so a box
    /// written after the end of the turn earns nothing.
    #[arg(long, value_delimiter = ',', default_values_t = grader::STOP_WORDS.map(String::from))]
    pub stop_words: Vec<String>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}
