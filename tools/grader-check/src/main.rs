//! grader-check: the grader's acceptance rates on labelled cases.

use std::process::ExitCode;

use clap::Parser;
use cli::grader_check::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = if cli.copy_question.is_empty() {
        eval::grader_check::check_cases(&cli.cases, cli.show_failures)
    } else {
        eval::grader_check::check_copies(&cli.copy_question, cli.show_failures)
    };
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("grader-check: error: {e}");
            ExitCode::FAILURE
        }
    }
}
