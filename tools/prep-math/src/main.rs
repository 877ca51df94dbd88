//! prep-math: raw math data sets -> prompts.parquet.

use std::process::ExitCode;

use clap::Parser;
use cli::prep_math::Cli;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    artifacts::provenance::begin("prep-math", version::VERSION);
    match prep::job::run(cli.job(), &mut |line| eprintln!("{line}")) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("prep-math: error: {e}");
            ExitCode::FAILURE
        }
    }
}
