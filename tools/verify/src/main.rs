//! verify: grade responses and add the rule reward.

use std::process::ExitCode;

use clap::Parser;
use cli::verify::Cli;
use grader::RewardScheme;
use indicatif::{ProgressBar, ProgressStyle};
use stages::verify;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::warn_old_spellings("verify");
    artifacts::provenance::begin("verify", version::VERSION);
    // One process, or one rank of an MPI job (mpirun, srun).
    if let Err(e) = dist::init() {
        return dist::fail("verify", e);
    }
    if let Some(Err(e)) = cli.threads.map(verify::set_threads) {
        return dist::fail("verify", e);
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
            eprintln!(
                "verify{}: {summary} -> {}",
                dist::world().tag(),
                cli.output.display()
            );
            dist::success()
        }
        Err(e) => dist::fail("verify", e),
    }
}
