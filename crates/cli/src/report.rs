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
    #[arg(required_unless_present = "compare")]
    pub run: Option<PathBuf>,
    /// Compare runs instead (what `make compare` writes): NAME=RUN for
    /// each arm. One page: a table of each arm's last evaluation (strict
    /// and lenient accuracy, boxed rate, length, most frequent answer,
    /// accuracy per kind, wall time) and every arm's reward, length and
    /// reflection-word curves on the same charts.
    #[arg(long, num_args = 1.., value_name = "NAME=RUN", conflicts_with = "run")]
    pub compare: Vec<String>,
    /// With --compare: also write the table as Markdown here (atomically).
    #[arg(long, requires = "compare")]
    pub table: Option<PathBuf>,
    /// Output HTML [default: RUN/report.html; with --compare, required]
    /// (written atomically).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Reflection words and phrases to count (comma-separated,
    /// case-insensitive, whole words).
    #[arg(long, value_delimiter = ',', default_values = grader::REFLECTION_WORDS)]
    pub reflection_words: Vec<String>,
}
