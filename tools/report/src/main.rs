//! report: one HTML page for a run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Turn a run folder (runs/<RUN>: metrics.parquet, iter-NNNN/scored.parquet,
/// eval/*.summary.json) into one self-contained HTML page with charts:
/// reward, accuracy and no-answer rate; response length (mean and spread);
/// KL to the reference, entropy, clip fractions; the share of responses
/// with reflection words per iteration; sample responses; evaluations.
#[derive(Parser)]
#[command(version = version::VERSION, about, long_about)]
struct Cli {
    /// The run folder.
    run: PathBuf,
    /// Output HTML [default: RUN/report.html] (written atomically).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Reflection words and phrases to count (comma-separated,
    /// case-insensitive, whole words).
    #[arg(long, value_delimiter = ',', default_values = report::REFLECTION_WORDS)]
    reflection_words: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
