//! evaluate: benchmark a checkpoint.

use std::process::ExitCode;

use clap::Parser;
use cli::evaluate::Cli;
use indicatif::{ProgressBar, ProgressStyle};

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::warn_old_spellings("evaluate");
    artifacts::provenance::begin("evaluate", version::VERSION);
    // One process, or one rank of an MPI job (mpirun, srun).
    if let Err(e) = dist::init() {
        return dist::fail("evaluate", e);
    }
    let mut opts = cli.options();
    // A Hugging Face id (`org/name[@revision]`) names a cached snapshot.
    opts.policy = match model::hub::resolve(&opts.policy) {
        Ok(p) => p,
        Err(e) => return dist::fail("evaluate", e),
    };
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("evaluate {spinner} {msg} [{elapsed}]").expect("template"),
    );
    let (mut tokens, mut done, start) = (0u64, 0u64, std::time::Instant::now());
    let result = eval::run(&opts, &mut |name, t, d| {
        tokens += t;
        done += d;
        bar.set_message(format!(
            "{name}: {done} responses, {:.1} tokens/s",
            tokens as f64 / start.elapsed().as_secs_f64().max(1e-9)
        ));
        bar.tick();
    });
    bar.finish_and_clear();
    let out = &opts.output;
    match result {
        Ok((rows, _, md)) if artifacts::is_stdio(out) => {
            // The results are on stdout: the table goes to stderr.
            eprintln!("{md}\nevaluate: {} samples -> stdout", rows.len());
            dist::success()
        }
        // Under an MPI job rank 0 reports for all (every rank has all rows).
        Ok(_) if !dist::world().is_root() => dist::success(),
        Ok((rows, _, md)) => {
            println!("{md}");
            let summary = eval::summary_path(out);
            let (n, out, summary) = (rows.len(), out.display(), summary.display());
            eprintln!("evaluate: {n} samples -> {out} (summary: {summary})");
            dist::success()
        }
        Err(e) => dist::fail("evaluate", e),
    }
}
