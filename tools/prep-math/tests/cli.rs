//! prep-math end to end: every raw shape in ../shared/data/raw, the
//! simplerl-zero preset, the simplerl-zoo template against the published
//! prompts, and bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::AsArray;

/// ../shared/data/raw beside the checkout (or $SIMPLERL_RAW_DATA), for
/// the tests over the full public sets. Absent, those tests are skipped
/// with a message, unless SIMPLERL_REQUIRE_DATA=1 (CI sets it), which
/// makes the data required, so the tests cannot silently stop running.
fn full_data() -> Option<PathBuf> {
    let p = std::env::var_os("SIMPLERL_RAW_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/raw"));
    if p.join("math").is_dir() {
        return Some(p);
    }
    let required = std::env::var("SIMPLERL_REQUIRE_DATA").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "raw data not found at {} (set SIMPLERL_RAW_DATA); SIMPLERL_REQUIRE_DATA=1 requires it",
        p.display()
    );
    eprintln!(
        "skipped: the public data sets are not at {} (set SIMPLERL_RAW_DATA to run this test)",
        p.display()
    );
    None
}

/// A few rows of every raw shape, written by the test (not copied from
/// the data sets): (folder, file, lines).
fn fixtures() -> Vec<(&'static str, &'static str, Vec<serde_json::Value>)> {
    use serde_json::json;
    vec![
        (
            "math",
            "algebra_train.jsonl",
            vec![
                json!({"problem": "What is $1+1$?", "level": "Level 3", "type": "Algebra", "solution": "It is $\\boxed{2}$."}),
                json!({"problem": "Solve $2x=6$.", "level": "Level 5", "type": "Algebra", "solution": "So $x=\\boxed{3}$."}),
            ],
        ),
        (
            "math",
            "geometry_test.jsonl",
            vec![
                json!({"problem": "A square has side 2. Its area?", "level": "Level 1", "type": "Geometry", "solution": "$\\boxed{4}$"}),
            ],
        ),
        (
            "gsm8k",
            "train.jsonl",
            vec![
                json!({"question": "Ann has 3 apples and buys 4. How many?", "answer": "3+4=7\n#### 7"}),
                json!({"question": "A box holds 1,200 pens; 200 are sold. How many remain?", "answer": "#### 1,000"}),
            ],
        ),
        (
            "eval/math500",
            "test.jsonl",
            vec![
                json!({"problem": "Solve $2x=6$.", "answer": "3", "subject": "Algebra", "level": 2, "unique_id": "test/algebra/1.json"}),
            ],
        ),
        (
            "eval/aime24",
            "test.jsonl",
            vec![json!({"id": 60, "problem": "Find 2+2.", "answer": "4"})],
        ),
        (
            "eval/amc23",
            "test.jsonl",
            vec![json!({"id": 0, "question": "Find 3*3.", "answer": 9.0})],
        ),
        (
            "eval/minerva_math",
            "test.jsonl",
            vec![
                json!({"problem": "Compute 1.5+0.1.", "solution": "The sum is $\\boxed{1.6}$.", "type": "Physics"}),
            ],
        ),
        (
            "eval/olympiadbench",
            "test.jsonl",
            vec![
                json!({"id": 7, "question": "Find $x$.", "context": "Let $x+1=3$.", "final_answer": ["$2$"], "subfield": "Algebra"}),
            ],
        ),
        (
            "eval/college_math",
            "test.jsonl",
            vec![
                json!({"question": "Simplify 10-4n.", "answer": "$10-4 n$", "data_topic": "algebra"}),
            ],
        ),
        (
            "eval/gaokao2023en",
            "test.jsonl",
            vec![json!({"question": "Find the set.", "answer": "$\\{1, 2\\}$"})],
        ),
        (
            "eval/svamp",
            "test.jsonl",
            vec![
                json!({"ID": "chal-1", "Body": "Tom had 5 cars.", "Question": "He lost 2. How many now?", "Answer": 3.0, "Type": "Subtraction"}),
            ],
        ),
        (
            "eval/asdiv",
            "test.jsonl",
            vec![
                json!({"body": "Sam has 4 apples.", "question": "He eats 1. How many?", "answer": "3 (apples)", "solution_type": "Subtraction"}),
            ],
        ),
        (
            "eval/mawps",
            "test.jsonl",
            vec![json!({"input": "What is 6 times 7?", "target": 42.0})],
        ),
        (
            "eval/sat_math",
            "test.jsonl",
            vec![
                json!({"id": 0, "question": "Which is 2+2?", "options": "(A) 4 (B) 5", "Answer": "A"}),
            ],
        ),
    ]
}

/// The fixtures under a fresh folder: its path.
fn write_fixtures(dir: &Path) -> PathBuf {
    let raw = dir.join("raw");
    for (folder, file, lines) in fixtures() {
        let d = raw.join(folder);
        std::fs::create_dir_all(&d).unwrap();
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(d.join(file), text).unwrap();
    }
    raw
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

/// Every raw shape's loader on the fixtures: the rows, their ids and
/// answers (the last box of a solution, the number after `####` without
/// its commas, dollars stripped, a list's first element, a unit dropped).
#[test]
fn every_raw_shape_converts_from_fixtures() {
    let dir = tempfile::tempdir().unwrap();
    let raw = write_fixtures(dir.path());
    let cases: &[(&str, usize, &str, &str)] = &[
        ("math", 3, "math/algebra_train/2", "3"),
        ("gsm8k/train.jsonl", 2, "gsm8k/train/2", "1000"),
        ("eval/math500", 1, "math500/test/algebra/1.json", "3"),
        ("eval/aime24", 1, "aime24/60", "4"),
        // A JSON number gold is kept as written (`9.0`), never through a float.
        ("eval/amc23", 1, "amc23/0", "9.0"),
        ("eval/minerva_math", 1, "minerva_math/test/1", "1.6"),
        ("eval/olympiadbench", 1, "olympiadbench/7", "2"),
        ("eval/college_math", 1, "college_math/test/1", "10-4 n"),
        ("eval/gaokao2023en", 1, "gaokao2023en/test/1", r"\{1, 2\}"),
        ("eval/svamp", 1, "svamp/chal-1", "3.0"),
        ("eval/asdiv", 1, "asdiv/test/1", "3"),
        ("eval/mawps", 1, "mawps/test/1", "42.0"),
        ("eval/sat_math", 1, "sat_math/0", "A"),
    ];
    for (i, (input, n, id, answer)) in cases.iter().enumerate() {
        let out = dir.path().join(format!("{i}.parquet"));
        ok(&["convert", s(&raw.join(input)), "-o", s(&out)]);
        let rows = artifacts::prompts::read(&out).unwrap();
        assert_eq!(rows.len(), *n, "{input}");
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let row = rows
            .iter()
            .find(|r| r.id == *id)
            .unwrap_or_else(|| panic!("{input}: no id {id} in {ids:?}"));
        assert_eq!(row.answer, *answer, "{input}");
        assert!(
            rows.iter().all(|r| r.prompt.contains(&r.question)),
            "{input}"
        );
    }
    // The preset on the fixtures: levels 3-5 of MATH minus MATH-500's
    // problems ("Solve $2x=6$." is in both).
    let out = dir.path().join("preset.parquet");
    let log = ok(&["simplerl-zero", "--raw", s(&raw), "-o", s(&out)]);
    let rows = artifacts::prompts::read(&out).unwrap();
    let questions: Vec<&str> = rows.iter().map(|r| r.question.as_str()).collect();
    assert_eq!(questions, ["What is $1+1$?"], "{log}");
}

#[test]
fn every_raw_shape_converts() {
    let dir = tempfile::tempdir().unwrap();
    let Some(raw) = full_data() else { return };
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
        ("eval/amc23", &[], 40, "amc23/0", "27.0"),
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
        ("eval/svamp", &[], 1000, "svamp/chal-777", "145.0"),
        ("eval/asdiv", &[], 2215, "asdiv/0", "9"),
        ("eval/mawps", &[], 2065, "mawps/0", "43.0"),
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
    let Some(raw) = full_data() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.parquet");
    let log = ok(&[
        "convert",
        s(&raw.join("math")),
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
    let Some(raw) = full_data() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.parquet");
    let log = ok(&["simplerl-zero", "--raw", s(&raw), "-o", s(&out)]);
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
    let Some(raw) = full_data() else { return };
    let src = raw.join("simplerl/train.parquet");
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

/// `synth --response-field solution`: an SFT set of the same problems,
/// each response a worked solution ending in the problem's answer, boxed
/// (the grader gives it full reward).
#[test]
fn synth_writes_worked_solutions_as_an_sft_set() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sft.parquet");
    let args = ["synth", "--count", "50", "--seed", "4", "--split", "train"];
    ok(&[&args[..], &["--response-field", "solution", "-o", s(&out)]].concat());
    let prompts_out = dir.path().join("p.parquet");
    ok(&[&args[..], &["-o", s(&prompts_out)]].concat());
    let rows = artifacts::sft::read(&out).unwrap();
    let prompts = artifacts::prompts::read(&prompts_out).unwrap();
    assert_eq!(rows.len(), prompts.len());
    for (r, p) in rows.iter().zip(&prompts) {
        assert_eq!((&r.id, &r.prompt), (&p.id, &p.prompt));
        let g = grader::grade(&r.response, &p.answer, &grader::RewardScheme::default());
        assert_eq!(g.reward, 1.0, "{} -> {}", p.answer, r.response);
    }
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
