//! `evaluate`'s command line.

use std::path::PathBuf;

use clap::Parser;
use stages::verify::Fallback;

/// Evaluate a checkpoint on benchmark prompt files (prep-math's output,
/// e.g. `make data-eval` writes data/eval/<benchmark>.parquet).
///
/// Writes one row per sample to --output (benchmark, id, response,
/// extracted_answer, correct, response_length, finish_reason), the summary
/// as JSON beside it (<output>.summary.json), and prints the summary as a
/// Markdown table: pass@1 with greedy decoding by default; with --samples k,
/// avg@k, maj@k and unbiased pass@k; the boxed-answer rate, mean response
/// length and truncation rate. The table's header says how answers were
/// extracted.
///
/// Under `mpirun -np N` each rank samples every N-th prompt, --output is a
/// dataset directory of one part per rank, and rank 0 writes the summary
/// of all of them.
#[derive(Parser)]
#[command(name = "evaluate", allow_negative_numbers = true, version = version::VERSION, about, long_about)]
pub struct Cli {
    /// Checkpoint directory (HF layout) or Hugging Face id
    /// (`org/name[@revision]`).
    #[arg(long)]
    pub policy: PathBuf,
    /// Benchmark prompt files; the benchmark is named by the file stem, or
    /// NAME=PATH.
    #[arg(required = true)]
    pub benchmarks: Vec<String>,
    /// Per-sample results Parquet (written atomically).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Samples per problem (k). [range: >= 1]
    #[arg(long, default_value_t = 1, value_parser = flags::at_least_one)]
    pub samples: usize,
    /// Sampling temperature [default: 0 (greedy) for one sample, 0.6 for k > 1]. [range: 0, or >= 1e-4]
    #[arg(long, value_parser = flags::temperature)]
    pub temperature: Option<f64>,
    /// Nucleus sampling threshold. [range: > 0 and <= 1]
    #[arg(long, default_value_t = 1.0, value_parser = flags::probability)]
    pub top_p: f64,
    /// Keep only the k most likely tokens (absent or 0: off).
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Stop each response at the first of these strings and grade it only
    /// up to there (comma-separated; `--stop-words ''` for none).
    #[arg(long, visible_alias = "stop", value_delimiter = ',', default_values_t = grader::STOP_WORDS.map(String::from))]
    pub stop_words: Vec<String>,
    /// Evaluate only rows i % n == k of each benchmark, as k/n (the parts'
    /// results files concatenate; each summary covers its part).
    #[arg(long, default_value = "0/1")]
    pub shard: stages::rollout::Shard,
    /// Longest response, in tokens. [range: >= 1]
    #[arg(long, default_value_t = 1024, value_parser = flags::at_least_one)]
    pub max_new_tokens: usize,
    /// Only the first N problems of each benchmark (quick looks). [range: >= 1]
    #[arg(long, value_parser = flags::at_least_one)]
    pub limit: Option<usize>,
    /// Sequences decoded together. [range: >= 1]
    #[arg(long = "decode-batch-size", alias = "batch-size", value_name = "N", default_value_t = 16, value_parser = flags::at_least_one)]
    pub batch_size: usize,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Extraction fallbacks when there is no \boxed{} (comma-separated);
    /// the table's header names them.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub fallback: Vec<Fallback>,
    /// cpu, cuda:N, or cuda (GPU 0; under mpirun each rank's own, by local
    /// rank): the CUDA build, make build-cuda.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// The dtype the weights are loaded and decoded in (on the CPU f32 is
    /// the fast path).
    #[arg(long, value_enum, default_value_t = model::Precision::F32)]
    pub dtype: model::Precision,
}

impl Cli {
    /// The evaluation these flags ask for. A benchmark is `NAME=PATH`, or a
    /// path named by its file stem.
    pub fn options(self) -> eval::Options {
        let benchmarks = self
            .benchmarks
            .iter()
            .map(|b| match b.split_once('=') {
                Some((name, path)) => (name.to_string(), PathBuf::from(path)),
                None => {
                    let p = PathBuf::from(b);
                    let name = p
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_else(|| b.clone());
                    (name, p)
                }
            })
            .collect();
        eval::Options {
            policy: self.policy,
            benchmarks,
            output: self.output,
            samples: self.samples.max(1),
            temperature: self.temperature,
            top_p: self.top_p,
            max_new_tokens: self.max_new_tokens,
            limit: self.limit,
            batch_size: self.batch_size,
            seed: self.seed,
            fallbacks: stages::verify::fallbacks(&self.fallback),
            top_k: self.top_k.filter(|&k| k > 0),
            stop_words: self.stop_words,
            shard: self.shard,
            device: self.device,
            dtype: self.dtype,
        }
    }
}
