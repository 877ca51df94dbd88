//! rollout: sample responses for every prompt.

use std::process::ExitCode;

use clap::Parser;
use cli::rollout::Cli;
use indicatif::{ProgressBar, ProgressStyle};
use stages::rollout;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::warn_old_spellings("rollout");
    artifacts::provenance::begin("rollout", version::VERSION);
    // One process, or one rank of an MPI job (mpirun, srun).
    if let Err(e) = dist::init() {
        return dist::fail("rollout", e);
    }
    let mut opts = cli.options();
    // A Hugging Face id (`org/name[@revision]`) names a cached snapshot.
    opts.policy = match model::hub::resolve(&opts.policy) {
        Ok(p) => p,
        Err(e) => {
            return dist::fail("rollout", e);
        }
    };
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("rollout {spinner} {msg} [{elapsed}]")
            .expect("valid template"),
    );
    let (mut tokens, mut done, start) = (0u64, 0u64, std::time::Instant::now());
    let result = rollout::run(&opts, &mut |active, finished| {
        tokens += active;
        done += finished;
        bar.set_message(format!(
            "{done} responses, {tokens} tokens, {:.1} tokens/s",
            tokens as f64 / start.elapsed().as_secs_f64().max(1e-9)
        ));
        bar.tick();
    });
    bar.finish_and_clear();
    match result {
        Ok(s) => {
            eprintln!(
                "rollout{}: {s} -> {}",
                dist::world().tag(),
                opts.output.display()
            );
            dist::success()
        }
        Err(e) => dist::fail("rollout", e),
    }
}
