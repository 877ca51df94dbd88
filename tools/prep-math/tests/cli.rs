//! prep-math end to end: every raw shape in ../shared/data/raw, the
//! simplerl-zero preset, the simplerl-zoo template against the published
//! prompts, and bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::AsArray;

/// ../shared/data/raw beside the checkout (or $SIMPLERL_RAW_DATA).
fn raw() -> PathBuf {
    let p = std::env::var_os("SIMPLERL_RAW_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/raw"));
    assert!(
        p.join("math").is_dir(),
        "raw data not found at {} (set SIMPLERL_RAW_DATA)",
        p.display()
    );
    p
}

fn prep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prep-math"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = prep(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "prep-math {args:?} failed: {stderr}");
    stderr
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn every_raw_shape_converts() {
    let dir = tempfile::tempdir().unwrap();
    let raw = raw();
    // (input, extra args, rows, (id, answer) of one row)
    let cases: &[(&str, &[&str], usize, &str, &str)] = &[
        // Two MATH solutions box an empty answer.
        ("math", &["--skip-bad"], 12498, "math/algebra_train/1", "0"),
        ("gsm8k/train.jsonl", &[], 7473, "gsm8k/train/1", "72"),
        ("eval/gsm8k", &[], 1319, "gsm8k/0", "18"),
        (
            "eval/math500",
            &[],
            500,
            "math500/test/precalculus/807.json",
            r"\left( 3, \frac{\pi}{2} \right)",
        ),
        ("eval/aime24", &[], 30, "aime24/60", "204"),
        ("eval/amc23", &[], 40, "amc23/0", "27"),
        ("eval/minerva_math", &[], 272, "minerva_math/0", "1.6"),
        ("eval/olympiadbench", &[], 675, "olympiadbench/1606", "2"),
        (
            "eval/college_math",
            &[],
            2818,
            "college_math/test/1",
            "10-4 n",
        ),
        (
            "eval/gaokao2023en",
            &["--skip-bad"],
            383,
            "gaokao2023en/test/1",
            r"\{x|-2\leq x < 1\}",
        ),
        ("eval/svamp", &[], 1000, "svamp/chal-777", "145"),
        ("eval/asdiv", &[], 2215, "asdiv/0", "9"),
        ("eval/mawps", &[], 2065, "mawps/0", "43"),
        ("eval/sat_math", &[], 32, "sat_math/0", "A"),
        (
            "simplerl/train.parquet",
            &["--skip-bad"],
            8521,
            "simplerl/0",
            "118",
        ),
        (
            "simplerl/test.parquet",
            &["--skip-bad"],
            500,
            "simplerl/test/precalculus/779.json",
            "-2 + 7i",
        ),
    ];
    for (i, (input, extra, n, id, answer)) in cases.iter().enumerate() {
        let out = dir.path().join(format!("{i}.parquet"));
        let mut args = vec![
            "convert".to_string(),
            s(&raw.join(input)).to_owned(),
            "-o".into(),
            s(&out).to_owned(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
        ok(&args);
        let rows = artifacts::prompts::read(&out).unwrap();
        assert_eq!(rows.len(), *n, "{input}");
        let row = rows.iter().find(|r| r.id.ends_with(id)).unwrap_or_else(|| {
            panic!(
                "{input}: no id ending {id}; first ids {:?}",
                rows.iter().take(3).map(|r| &r.id).collect::<Vec<_>>()
            )
        });
        assert_eq!(row.answer, *answer, "{input}");
        assert!(
            rows.iter().all(|r| !r.question.is_empty()
                && !r.answer.is_empty()
                && r.prompt.contains(&r.question)),
            "{input}"
        );
    }
}

#[test]
fn math_fields_are_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.parquet");
    let log = ok(&[
        "convert",
        s(&raw().join("math")),
        "--levels",
        "3-5",
        "--skip-bad",
        "-o",
        s(&out),
    ]);
    assert!(log.contains("2 empty answer"), "{log}");
    let rows = artifacts::prompts::read(&out).unwrap();
    assert_eq!(rows.len(), 9253);
    assert!(rows
        .iter()
        .all(|r| matches!(r.level, Some(3..=5)) && r.subject.is_some()));
    let meta: serde_json::Value =
        serde_json::from_str(rows[0].metadata.as_deref().unwrap()).unwrap();
    assert!(meta["solution"].as_str().unwrap().contains(r"\boxed"));
}

#[test]
fn simplerl_zero_preset_counts_and_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.parquet");
    let log = ok(&["simplerl-zero", "--raw", s(&raw()), "-o", s(&out)]);
    eprintln!("{log}");
    let rows = artifacts::prompts::read(&out).unwrap();
    // 9,255 MATH problems at levels 3-5, minus 367 in MATH-500, 2 with an
    // empty gold, 2 duplicate texts.
    assert_eq!(rows.len(), 8884, "{log}");
    assert!(log.contains("dropped 367 in MATH-500"), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains("questions of"))
        .expect("overlap line");
    let found: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(found as f64 >= 0.95 * 8523.0, "{line}");
    assert!(rows.iter().all(|r| r
        .prompt
        .starts_with("<|im_start|>system\nPlease reason step by step")));
}

/// The published prompts, byte for byte, for the first 100 rows.
#[test]
fn simplerl_zoo_template_matches_the_published_prompts() {
    let src = raw().join("simplerl/train.parquet");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("zoo.parquet");
    ok(&[
        "convert",
        s(&src),
        "--template",
        "simplerl-zoo",
        "--limit",
        "100",
        "--skip-bad",
        "-o",
        s(&out),
    ]);
    let ours = artifacts::prompts::read(&out).unwrap();
    let published = artifacts::read_table(&src).unwrap().batch;
    let prompt = published.column_by_name("prompt").unwrap().as_list::<i32>();
    assert_eq!(ours.len(), 100);
    for (i, row) in ours.iter().enumerate() {
        let turns = prompt.value(i);
        let content = turns
            .as_struct()
            .column_by_name("content")
            .unwrap()
            .as_string::<i32>()
            .value(0)
            .to_string();
        assert_eq!(row.prompt, content, "row {i}");
    }
}

#[test]
fn synth_is_deterministic_and_splits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    ok(&[
        "synth",
        "--count",
        "400",
        "--seed",
        "3",
        "-o",
        s(&p("a.parquet")),
    ]);
    ok(&[
        "synth",
        "--count",
        "400",
        "--seed",
        "3",
        "-o",
        s(&p("b.parquet")),
    ]);
    ok(&[
        "synth",
        "--count",
        "400",
        "--seed",
        "3",
        "--split",
        "train",
        "-o",
        s(&p("train.parquet")),
    ]);
    ok(&[
        "synth",
        "--count",
        "400",
        "--seed",
        "3",
        "--split",
        "holdout",
        "-o",
        s(&p("hold.parquet")),
    ]);
    let a = artifacts::prompts::read(p("a.parquet")).unwrap();
    assert_eq!(a, artifacts::prompts::read(p("b.parquet")).unwrap());
    assert_eq!(a.len(), 400);
    let train = artifacts::prompts::read(p("train.parquet")).unwrap();
    let hold = artifacts::prompts::read(p("hold.parquet")).unwrap();
    assert_eq!(train.len() + hold.len(), 400);
    let train_q: std::collections::HashSet<_> = train.iter().map(|r| &r.question).collect();
    assert!(hold.iter().all(|r| !train_q.contains(&r.question)));
}

/// Bad input: a one-line error naming path:line, non-zero exit, and no
/// output left behind; --skip-bad skips and counts instead.
#[test]
fn bad_input_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let good = r#"{"question": "1+1?", "answer": "2"}"#;
    let cases = [
        (
            "malformed.jsonl",
            format!("{good}\n{good}\n{{\"question\": \"x\", \n"),
            ":3: malformed JSON",
            "malformed JSON",
        ),
        (
            "missing.jsonl",
            format!("{good}\n{{\"question\": \"x\"}}\n"),
            ":2: missing field `answer",
            "missing field",
        ),
        (
            "empty.jsonl",
            format!("{good}\n{{\"question\": \"x\", \"answer\": \" \"}}\n"),
            ":2: empty answer",
            "empty answer",
        ),
    ];
    for (name, text, expect, reason) in cases {
        let input = write(name, &text);
        let out = dir.path().join(format!("{name}.parquet"));
        let r = prep(&["convert", s(&input), "--format", "fields", "-o", s(&out)]);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success(), "{name} should fail");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(
            err.contains(&format!("{}{expect}", input.display())),
            "{name}: {err}"
        );
        assert!(!out.exists(), "{name}: output left behind");
        let r = prep(&[
            "convert",
            s(&input),
            "--format",
            "fields",
            "--skip-bad",
            "-o",
            s(&out),
        ]);
        let log = String::from_utf8_lossy(&r.stderr);
        assert!(r.status.success(), "{log}");
        assert!(log.contains(&format!("1 {reason}")), "{log}");
        assert!(out.exists());
    }
    // A missing file.
    let out = dir.path().join("none.parquet");
    let r = prep(&["convert", s(&dir.path().join("nope.jsonl")), "-o", s(&out)]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success() && err.contains("nope.jsonl") && err.contains("no such file"),
        "{err}"
    );
    assert!(!out.exists());
    // No temporary files anywhere.
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp-"), "left {name}");
    }
}

#[test]
fn typo_in_a_choice_fails_at_parse_time() {
    let r = prep(&["synth", "--difficulty", "eazy", "-o", "/tmp/never.parquet"]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("eazy"));
}
