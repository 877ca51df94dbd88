//! verify: grade responses and add the rule reward.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use grader::RewardScheme;
use indicatif::{ProgressBar, ProgressStyle};
use stages::verify::{self, Fallback};

/// Grade every row of a Parquet file: extract the final answer from the
/// response (the last \boxed{}), decide whether it equals the gold answer,
/// and add the columns extracted_answer, has_answer, correct and reward.
/// Every other column is passed through, so a rollouts.parquet becomes a
/// scored.parquet.
#[derive(Parser)]
#[command(allow_negative_numbers = true, version = version::VERSION, about, long_about)]
struct Cli {
    /// Input Parquet (e.g. rollouts.parquet).
    input: PathBuf,
    /// Output Parquet (e.g. scored.parquet), written atomically.
    #[arg(short, long)]
    output: PathBuf,
    /// Column with the model's response.
    #[arg(long, default_value_t = verify::Options::default().response_column)]
    response_column: String,
    /// Column with the gold answer.
    #[arg(long, default_value_t = verify::Options::default().answer_column)]
    answer_column: String,
    /// Reward for a correct final answer. [range: any finite number]
    #[arg(long, default_value_t = RewardScheme::default().correct, allow_hyphen_values = true, value_parser = flags::finite)]
    reward_correct: f64,
    /// Reward for a wrong final answer. [range: any finite number]
    #[arg(long, default_value_t = RewardScheme::default().wrong, allow_hyphen_values = true, value_parser = flags::finite)]
    reward_wrong: f64,
    /// Reward for no final answer. [range: any finite number]
    #[arg(long, default_value_t = RewardScheme::default().no_answer, allow_hyphen_values = true, value_parser = flags::finite)]
    reward_no_answer: f64,
    /// Extraction fallbacks when there is no \boxed{} (for evaluation only;
    /// the recipe's reward uses none). Comma-separated.
    #[arg(long, value_enum, value_delimiter = ',')]
    fallback: Vec<Fallback>,
    /// Cut each response at the first of these strings before looking for
    /// its answer (comma-separated; `--stop-words ''` for none), so a box
    /// written after the end of the turn earns nothing.
    #[arg(long, value_delimiter = ',', default_values_t = grader::STOP_WORDS.map(String::from))]
    stop_words: Vec<String>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global();
    }
    let fallbacks = verify::fallbacks(&cli.fallback);
    let opts = verify::Options {
        response_column: cli.response_column,
        answer_column: cli.answer_column,
        scheme: RewardScheme {
            correct: cli.reward_correct,
            wrong: cli.reward_wrong,
            no_answer: cli.reward_no_answer,
        },
        fallbacks,
        stop_words: cli.stop_words,
    };
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("verify {spinner} {pos} rows graded ({per_sec})")
            .expect("valid template"),
    );
    let result = verify::verify_file(&cli.input, &cli.output, &opts, &|n| bar.set_position(n));
    bar.finish_and_clear();
    match result {
        Ok(summary) => {
            eprintln!("verify: {summary} -> {}", cli.output.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("verify: error: {e}");
            ExitCode::FAILURE
        }
    }
}
