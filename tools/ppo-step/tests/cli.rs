//! ppo-step's command line: its help names the flags, a typo fails at
//! parse time, and a bad input is one line naming the file.

use std::process::Command;

#[test]
fn cli_help_and_typos() {
    let bin = env!("CARGO_BIN_EXE_ppo-step");
    let help = Command::new(bin).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "[SCORED]",
        "--output",
        "--critic-out",
        "--algo",
        "--kl-placement",
        "--loss-agg",
        "--micro-batch-size",
        "seq-mean-token-sum-norm",
    ] {
        assert!(text.contains(flag), "--help lacks {flag}");
    }
    let bad = Command::new(bin)
        .args(["x", "--policy", "p", "-o", "o", "--algo", "ppoo"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid value 'ppoo'"));
    let missing = Command::new(bin)
        .args([
            "/nonexistent.parquet",
            "--policy",
            "p",
            "-o",
            "o",
            "--kl-coef",
            "0",
            "--critic-out",
            "c",
        ])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("/nonexistent.parquet") && err.lines().count() == 1,
        "{err}"
    );
}

/// --print-config shows the settings the step would use, presets applied,
/// and touches nothing.
#[test]
fn print_config_resolves_the_preset() {
    let bin = env!("CARGO_BIN_EXE_ppo-step");
    let out = Command::new(bin)
        .args([
            "nowhere.parquet",
            "--policy",
            "nowhere",
            "-o",
            "nowhere-out",
            "--algo",
            "grpo",
            "--lam",
            "0.95",
            "--print-config",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "algo=grpo",
        "advantage=grpo",
        "kl-placement=loss",
        "kl-estimator=k3",
        "kl-coef=0.001",
        "lam=0.95",
        "reward-clip=10",
        "adam-betas=0.9,0.999",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
    }
    assert!(!std::path::Path::new("nowhere-out").exists());
}
