//! `report`'s command line.

use std::path::PathBuf;

use clap::Parser;

/// Turn a run folder (runs/<RUN>: metrics.parquet, iter-NNNN/scored.parquet,
/// eval/*.summary.json) into one self-contained HTML page with charts:
/// reward, accuracy and no-answer rate; response length (mean and spread);
/// KL to the reference, entropy, clip fractions; the share of responses
/// with reflection words per iteration; sample responses; evaluations.
#[derive(Parser)]
#[command(name = "report", version = version::VERSION, about, long_about)]
pub struct Cli {
    /// The run folder.
    pub run: PathBuf,
    /// Output HTML [default: RUN/report.html] (written atomically).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Reflection words and phrases to count (comma-separated,
    /// case-insensitive, whole words).
    #[arg(long, value_delimiter = ',', default_values = grader::REFLECTION_WORDS)]
    pub reflection_words: Vec<String>,
}
