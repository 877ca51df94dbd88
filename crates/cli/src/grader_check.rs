//! `grader-check`'s command line.

use std::path::PathBuf;

use clap::Parser;

/// Grade every case of ../shared/verifier-cases and print the acceptance
/// rate per construction intent and variant type, the math-verify
/// test-suite cases we disagree with, and the throughput.
#[derive(Parser)]
#[command(name = "grader-check", version = version::VERSION, about)]
pub struct Cli {
    /// Folder with variants.jsonl and mathverify_cases.jsonl.
    #[arg(long, default_value = "../shared/verifier-cases")]
    pub cases: PathBuf,
    /// Also list every variant graded against its label (with
    /// --copy-question: every copy that earned +1).
    #[arg(long)]
    pub show_failures: bool,
    /// Instead, the copy-the-question bench: for each prompts Parquet
    /// file, box each problem's own expression (metadata `expression`) or
    /// its question's last math span, grade it, and print the share that
    /// earns +1 (`make bench-copy`).
    #[arg(long, value_name = "PROMPTS", num_args = 1..)]
    pub copy_question: Vec<PathBuf>,
}
