//! evaluate: benchmark a checkpoint.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use cli::evaluate::Cli;
use indicatif::{ProgressBar, ProgressStyle};
use stages::verify;

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::warn_old_spellings("evaluate");
    artifacts::provenance::begin("evaluate", version::VERSION);
    // One process, or one rank of an MPI job (mpirun, srun).
    if let Err(e) = dist::init() {
        return dist::fail("evaluate", e);
    }
    let benchmarks: Vec<(String, PathBuf)> = cli
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
    // A Hugging Face id (`org/name[@revision]`) names a cached snapshot.
    let policy = match model::hub::resolve(&cli.policy) {
        Ok(p) => p,
        Err(e) => {
            return dist::fail("evaluate", e);
        }
    };
    let opts = evaluate::Options {
        policy,
        benchmarks,
        output: cli.output.clone(),
        samples: cli.samples.max(1),
        temperature: cli.temperature,
        top_p: cli.top_p,
        max_new_tokens: cli.max_new_tokens,
        limit: cli.limit,
        batch_size: cli.batch_size,
        seed: cli.seed,
        fallbacks: verify::fallbacks(&cli.fallback),
        top_k: cli.top_k.filter(|&k| k > 0),
        stop_words: cli.stop_words,
        shard: cli.shard,
        device: cli.device,
        dtype: cli.dtype,
    };
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("evaluate {spinner} {msg} [{elapsed}]").expect("template"),
    );
    let (mut tokens, mut done, start) = (0u64, 0u64, std::time::Instant::now());
    let result = evaluate::run(&opts, &mut |name, t, d| {
        tokens += t;
        done += d;
        bar.set_message(format!(
            "{name}: {done} responses, {:.1} tokens/s",
            tokens as f64 / start.elapsed().as_secs_f64().max(1e-9)
        ));
        bar.tick();
    });
    bar.finish_and_clear();
    match result {
        Ok((rows, _, md)) if artifacts::is_stdio(&cli.output) => {
            // The results are on stdout: the table goes to stderr.
            eprintln!("{md}");
            eprintln!("evaluate: {} samples -> stdout", rows.len());
            dist::success()
        }
        // Under an MPI job rank 0 reports for all (every rank has all rows).
        Ok(_) if !dist::world().is_root() => dist::success(),
        Ok((rows, _, md)) => {
            println!("{md}");
            eprintln!(
                "evaluate: {} samples -> {} (summary: {})",
                rows.len(),
                cli.output.display(),
                evaluate::summary_path(&cli.output).display()
            );
            dist::success()
        }
        Err(e) => dist::fail("evaluate", e),
    }
}
