//! simplerl: the stages and the bench programs in one binary, so that the
//! GPU bundle carries candle's kernels and the CUDA libraries once.
//! `simplerl COMMAND ARGS...` runs COMMAND as its own binary would (so
//! does a link named COMMAND); `simplerl` alone lists the commands.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitCode, Termination};

#[path = "../../../crates/model/examples/decode_bench.rs"]
mod decode_bench;
#[path = "../../evaluate/src/main.rs"]
mod evaluate;
#[path = "../../init-model/src/main.rs"]
mod init_model;
#[path = "../../../crates/artifacts/examples/metrics_dump.rs"]
mod metrics_dump;
#[path = "../../ppo-step/src/main.rs"]
mod ppo_step;
#[path = "../../prep-math/src/main.rs"]
mod prep_math;
#[path = "../../rollout/src/main.rs"]
mod rollout;
#[path = "../../sft-step/src/main.rs"]
mod sft_step;
#[path = "../../../crates/ppo/examples/synthetic_scored.rs"]
mod synthetic_scored;
#[path = "../../../crates/sft/examples/train_bench.rs"]
mod train_bench;
#[path = "../../verify/src/main.rs"]
mod verify;
#[path = "../../../crates/model/examples/weights_diff.rs"]
mod weights_diff;
#[path = "../../../crates/model/examples/write_tiny.rs"]
mod write_tiny;

type Main = fn() -> ExitCode;
const COMMANDS: [(&str, Main); 13] = [
    ("rollout", || rollout::main()),
    ("verify", || verify::main()),
    ("ppo-step", || ppo_step::main()),
    ("sft-step", || sft_step::main()),
    ("evaluate", || evaluate::main()),
    ("init-model", || init_model::main()),
    ("prep-math", || prep_math::main()),
    ("decode_bench", || decode_bench::main().report()),
    ("train_bench", || train_bench::main().report()),
    ("write_tiny", || write_tiny::main().report()),
    ("synthetic_scored", || synthetic_scored::main().report()),
    ("metrics_dump", || metrics_dump::main().report()),
    ("weights_diff", || weights_diff::main()),
];

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let base = |a: &OsString| Path::new(a).file_name().map(|f| f.to_string_lossy().into());
    let find = |n: Option<String>| COMMANDS.iter().find(|(c, _)| Some(*c) == n.as_deref());
    // Called through a link named after a command.
    if let Some((_, run)) = args.first().and_then(|a| find(base(a))) {
        return run();
    }
    // `simplerl COMMAND ARGS...`: run again with COMMAND as argv[0], so the
    // command parses its arguments as its own binary does.
    if let Some((cmd, _)) = args.get(1).and_then(|a| find(a.to_str().map(Into::into))) {
        let exe = std::env::current_exe().unwrap_or_else(|_| args[0].clone().into());
        let err = Command::new(exe).arg0(cmd).args(&args[2..]).exec();
        eprintln!("simplerl: cannot run {cmd}: {err}");
        return ExitCode::FAILURE;
    }
    let names: Vec<&str> = COMMANDS.iter().map(|(c, _)| *c).collect();
    eprintln!("usage: simplerl COMMAND ARGS... ({})", names.join(", "));
    ExitCode::from(2)
}
