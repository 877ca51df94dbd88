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
            let result = report::build(run, &cli.reflection_words).and_then(|h| write(&out, &h));
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
            let result =
                report::compare::build(&arms, &cli.reflection_words).and_then(|(h, md)| {
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
