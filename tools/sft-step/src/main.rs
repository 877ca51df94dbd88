//! sft-step: supervised fine-tuning (the `sft` crate's [`sft::run`]).

use std::process::ExitCode;

use clap::Parser;

/// Supervised fine-tuning on an SFT Parquet (columns id, prompt, response;
/// e.g. `prep-math simplerl-zero --response-field solution`, MATH solutions
/// ending in \boxed{}): cross-entropy on the response tokens only (plus the
/// end-of-turn token), micro-batches with gradient accumulation, AdamW,
/// warmup then cosine or linear decay, epochs.
///
/// Writes --output as an HF-layout checkpoint with its optimizer state
/// (atomically, every --save-every steps and at the end) and one metrics
/// row per step (loss, lr, grad_norm, tokens_per_s). Running the same
/// command again after an interruption resumes at the last saved step,
/// with the schedule and data order where they were.
#[derive(Parser)]
#[command(allow_negative_numbers = true, version = version::VERSION, about, long_about)]
struct Cli {
    #[command(flatten)]
    io: sft::Io,
    #[command(flatten)]
    config: sft::Config,
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    // A Hugging Face id (`org/name[@revision]`) names a cached snapshot.
    cli.io.policy = match model::hub::resolve(&cli.io.policy) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("sft-step: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let o = sft::Options {
        io: cli.io,
        config: cli.config,
    };
    match sft::run(&o, &mut |line| eprintln!("{line}")) {
        Ok(s) => {
            eprintln!(
                "sft-step: {} of {} steps done, loss {:.4}, {:.1}s -> {}",
                s.steps_done,
                s.total_steps,
                s.last_loss,
                s.seconds,
                o.io.output.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sft-step: error: {e}");
            ExitCode::FAILURE
        }
    }
}
