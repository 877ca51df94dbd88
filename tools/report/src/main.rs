//! report: one HTML page for a run.

use std::process::ExitCode;

use clap::Parser;
use cli::report::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::warn_old_spellings("report");
    artifacts::provenance::begin("report", version::VERSION);
    let out = cli.output.unwrap_or_else(|| cli.run.join("report.html"));
    let result = report::build(&cli.run, &cli.reflection_words).and_then(|html| {
        artifacts::atomic::write_bytes(&out, html.as_bytes()).map_err(report::ReportError::from)
    });
    match result {
        Ok(()) => {
            eprintln!("report: {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("report: error: {e}");
            ExitCode::FAILURE
        }
    }
}
