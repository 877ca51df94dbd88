//! report: one HTML page for a run.

use std::process::ExitCode;

use clap::Parser;
use cli::report::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::warn_old_spellings("report");
    artifacts::provenance::begin("report", version::VERSION);
    let write = |path: &std::path::Path, text: &str| {
        artifacts::atomic::write_bytes(path, text.as_bytes()).map_err(report::ReportError::from)
    };
    let (out, result) = match &cli.run {
        Some(run) => {
            let out = cli
                .output
                .clone()
                .unwrap_or_else(|| run.join("report.html"));
            let result = report::check_output(&out, &[run])
                .and_then(|_| report::build(run, &cli.reflection_words))
                .and_then(|h| write(&out, &h));
            (out, result)
        }
        None => {
            let Some(out) = cli.output.clone() else {
                eprintln!("report: error: --compare needs --output (the page's path)");
                return ExitCode::FAILURE;
            };
            let arms: Vec<_> = cli
                .compare
                .iter()
                .map(|a| report::compare::Arm::parse(a))
                .collect();
            let runs: Vec<_> = arms.iter().map(|a| a.run.as_path()).collect();
            let outputs = std::iter::once(&out).chain(&cli.table);
            let result = outputs
                .map(|o| report::check_output(o, &runs))
                .collect::<Result<(), _>>()
                .and_then(|_| report::compare::build(&arms, &cli.reflection_words))
                .and_then(|(h, md)| {
                    if let Some(t) = &cli.table {
                        write(t, &md)?;
                    }
                    write(&out, &h)
                });
            (out, result)
        }
    };
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
