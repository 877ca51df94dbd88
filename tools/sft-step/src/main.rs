//! sft-step: supervised fine-tuning.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use train::LrSchedule;

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
#[command(version, about, long_about)]
struct Cli {
    /// SFT Parquet: id, prompt (templated), response.
    #[arg(long)]
    data: PathBuf,
    /// The checkpoint to start from (HF layout).
    #[arg(long)]
    policy: PathBuf,
    /// Output checkpoint directory (resumed from when it holds a run's state).
    #[arg(short, long)]
    output: PathBuf,
    /// Metrics Parquet, one row per step.
    #[arg(long)]
    metrics: Option<PathBuf>,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-5)]
    lr: f64,
    /// Decay after warmup.
    #[arg(long, value_enum, default_value_t = LrSchedule::Cosine)]
    schedule: LrSchedule,
    /// Linear warmup steps.
    #[arg(long, default_value_t = 0)]
    warmup_steps: u64,
    /// The rate decays to this share of --lr.
    #[arg(long, default_value_t = 0.0)]
    min_lr_ratio: f64,
    /// Passes over the data.
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Examples per optimizer step.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Examples per forward/backward (memory is bounded by this).
    #[arg(long, default_value_t = 4)]
    micro_batch_size: usize,
    /// Global gradient-norm clip (0: off).
    #[arg(long, default_value_t = 1.0)]
    grad_clip: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Seed of the per-epoch shuffle.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also save every N steps.
    #[arg(long)]
    save_every: Option<u64>,
    /// Stop after N steps in total (the schedule still spans every epoch).
    #[arg(long)]
    max_steps: Option<u64>,
    /// cpu or cuda:N (needs the `cuda` cargo feature).
    #[arg(long, default_value = "cpu")]
    device: String,
}

fn main() -> ExitCode {
    let c = Cli::parse();
    let mut o = sft_step::Options::new(c.data, c.policy, c.output);
    o.metrics = c.metrics;
    o.lr = c.lr;
    o.schedule = c.schedule;
    o.warmup_steps = c.warmup_steps;
    o.min_lr_ratio = c.min_lr_ratio;
    o.epochs = c.epochs;
    o.batch_size = c.batch_size;
    o.micro_batch_size = c.micro_batch_size;
    o.grad_clip = c.grad_clip;
    o.weight_decay = c.weight_decay;
    o.seed = c.seed;
    o.save_every = c.save_every;
    o.max_steps = c.max_steps;
    o.device = c.device;
    match sft_step::run(&o, &mut |line| eprintln!("{line}")) {
        Ok(s) => {
            eprintln!(
                "sft-step: {} of {} steps done, loss {:.4}, {:.1}s -> {}",
                s.steps_done,
                s.total_steps,
                s.last_loss,
                s.seconds,
                o.output.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sft-step: error: {e}");
            ExitCode::FAILURE
        }
    }
}
