//! docs/recipe.md against what `CONFIG=simplerl-zero` runs: every row's
//! "ours" is what the configuration gives (the make variables, and the
//! settings ppo-step resolves from the pipeline's own command line), and
//! every difference from the published value is explained.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn make(args: &[&str]) -> String {
    let out = Command::new("make")
        .arg("--no-print-directory")
        .arg("-C")
        .arg(root())
        .args(args)
        .output()
        .expect("make runs");
    assert!(
        out.status.success(),
        "make {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn pairs(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The stage commands `make -n` prints for one iteration, continuation
/// lines joined: (stage binary name, its arguments).
fn pipeline_commands() -> Vec<(String, Vec<String>)> {
    let text = make(&["-n", "CONFIG=simplerl-zero", "ITER=1", "iter-step"]).replace("\\\n", " ");
    text.lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let bin = words.first()?.strip_prefix("target/release/")?;
            let args = words[1..]
                .iter()
                .take_while(|w| **w != "2>&1")
                .map(|w| w.to_string())
                .collect();
            Some((bin.to_string(), args))
        })
        .collect()
}

/// A cell's value: backticks and markdown escapes gone, up to the first " (".
fn value(cell: &str) -> String {
    let c = cell.replace('`', "");
    c.split(" (").next().unwrap_or("").trim().to_string()
}

/// Equal as numbers when both are numbers, else as text.
fn same(a: &str, b: &str) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

struct Row {
    setting: String,
    published: String,
    ours: String,
    check: String,
    why: String,
}

fn table() -> Vec<Row> {
    let doc = std::fs::read_to_string(root().join("docs/recipe.md")).unwrap();
    doc.lines()
        .skip_while(|l| !l.starts_with("| setting |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let l = l.replace("\\|", "\u{1}");
            let cells: Vec<String> = l
                .trim_matches('|')
                .split('|')
                .map(|c| c.replace('\u{1}', "|").trim().to_string())
                .collect();
            assert_eq!(cells.len(), 5, "row {l:?} has {} cells", cells.len());
            Row {
                setting: cells[0].clone(),
                published: cells[1].clone(),
                ours: cells[2].clone(),
                check: cells[3].clone(),
                why: cells[4].clone(),
            }
        })
        .collect()
}

#[test]
fn docs_recipe_matches_the_simplerl_zero_config() {
    let rows = table();
    assert!(rows.len() >= 40, "the table has {} rows", rows.len());
    let config = pairs(&make(&["-s", "config", "CONFIG=simplerl-zero"]));
    let commands = pipeline_commands();
    let args_of = |bin: &str| {
        commands
            .iter()
            .find(|(b, _)| b == bin)
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| panic!("no {bin} in the pipeline's commands: {commands:?}"))
    };
    let ppo_args = args_of("ppo-step");
    let out = Command::new(env!("CARGO_BIN_EXE_ppo-step"))
        .args(&ppo_args)
        .arg("--print-config")
        .output()
        .unwrap();
    assert!(out.status.success(), "{ppo_args:?}: {out:?}");
    let resolved = pairs(&String::from_utf8(out.stdout).unwrap());
    let stop_words = grader::STOP_WORDS.join(",");
    let scheme = grader::RewardScheme::default();
    let reward = format!("{},{},{}", scheme.correct, scheme.wrong, scheme.no_answer);

    let mut problems = Vec::new();
    for r in &rows {
        let ours = value(&r.ours);
        let actual =
            if let Some(var) = r.check.strip_prefix("make ") {
                Some(
                    config
                        .get(var)
                        .cloned()
                        .unwrap_or_else(|| panic!("{}: make config has no {var}", r.setting)),
                )
            } else if let Some(key) = r.check.strip_prefix("ppo-step ") {
                Some(resolved.get(key).cloned().unwrap_or_else(|| {
                    panic!("{}: ppo-step --print-config has no {key}", r.setting)
                }))
            } else if r.check == "stop words" {
                for bin in ["rollout", "verify"] {
                    let a = args_of(bin);
                    assert!(
                        !a.iter().any(|w| w.starts_with("--stop")),
                        "the pipeline's {bin} overrides the stop words: {a:?}"
                    );
                }
                Some(stop_words.clone())
            } else if r.check == "reward" {
                Some(reward.clone())
            } else {
                assert!(
                    r.check == "—" || r.check.is_empty(),
                    "{}: unknown check `{}`",
                    r.setting,
                    r.check
                );
                None
            };
        if let Some(actual) = actual {
            if !same(&ours, &actual) {
                problems.push(format!(
                    "{}: the table says {ours}, the configuration gives {actual}",
                    r.setting
                ));
            }
        }
        if !same(&value(&r.published), &ours) && r.why.is_empty() {
            problems.push(format!(
                "{}: published {} differs from ours {ours} without a reason",
                r.setting,
                value(&r.published)
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "docs/recipe.md:\n{}",
        problems.join("\n")
    );
}

/// The LR schedule's horizon is the run's plan: ITERS rollouts of
/// PROMPTS_PER_ROLLOUT x SAMPLES responses in TRAIN_BATCH-sized steps.
#[test]
fn total_steps_follow_the_run_plan() {
    let c = pairs(&make(&["-s", "config", "CONFIG=simplerl-zero", "ITERS=3"]));
    assert_eq!(c["TOTAL_STEPS"], "192", "3 x 1024 x 8 / 128");
    let c = pairs(&make(&[
        "-s",
        "config",
        "CONFIG=simplerl-zero",
        "ITERS=2",
        "PROMPTS_PER_ROLLOUT=10",
        "TRAIN_BATCH=16",
    ]));
    assert_eq!(c["TOTAL_STEPS"], "10", "2 x ceil(80 / 16)");
}
