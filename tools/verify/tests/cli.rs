//! verify end to end: a rollouts file becomes a scored file; other
//! columns pass through; bad input fails cleanly.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use arrow::array::{Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use artifacts::rollouts::RolloutRow;

fn verify(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_verify"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn rollout(response: &str, answer: &str) -> RolloutRow {
    RolloutRow {
        prompt_id: "p".into(),
        sample_index: 0,
        prompt: "What is 2 + 2?".into(),
        answer: answer.into(),
        response: response.into(),
        prompt_token_ids: vec![1, 2],
        response_token_ids: vec![3],
        response_logprobs: vec![-0.1],
        finish_reason: "stop".into(),
        policy: "m".into(),
        temperature: 1.0,
        top_p: 1.0,
        seed: 0,
    }
}

#[test]
fn rollouts_become_scored() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("rollouts.parquet");
    let output = dir.path().join("scored.parquet");
    let rows = vec![
        rollout(r"2 + 2 = 4, so \boxed{4}.", "4"),
        rollout(r"\boxed{\dfrac{8}{2}}", "4"),
        rollout(r"\boxed{5}", "4"),
        rollout("the answer is 4", "4"),
    ];
    artifacts::rollouts::write(&input, &rows).unwrap();
    let (ok, log) = verify(&[s(&input), "-o", s(&output)]);
    assert!(ok, "{log}");
    assert!(
        log.contains("4 rows, accuracy 0.5000, no-answer rate 0.2500"),
        "{log}"
    );
    let scored = artifacts::scored::read(&output).unwrap();
    let rewards: Vec<f64> = scored.iter().map(|r| r.reward).collect();
    assert_eq!(rewards, vec![1.0, 1.0, -0.5, -1.0]);
    assert_eq!(scored[1].extracted_answer.as_deref(), Some(r"\dfrac{8}{2}"));
    assert_eq!(scored[0].rollout, rows[0]);

    // Rewards are flags; fallbacks are opt-in; re-verifying replaces the grade.
    let again = dir.path().join("again.parquet");
    let (ok, log) = verify(&[
        s(&output),
        "-o",
        s(&again),
        "--reward-wrong",
        "0",
        "--fallback",
        "answer-phrase",
    ]);
    assert!(ok, "{log}");
    let rewards: Vec<f64> = artifacts::scored::read(&again)
        .unwrap()
        .iter()
        .map(|r| r.reward)
        .collect();
    assert_eq!(rewards, vec![1.0, 1.0, 0.0, 1.0]);
}

#[test]
fn any_file_with_named_columns_and_pass_through() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("mine.parquet");
    let output = dir.path().join("out.parquet");
    let schema = Schema::new(vec![
        Field::new("completion", DataType::Utf8, false),
        Field::new("gold", DataType::Utf8, false),
        Field::new("my_id", DataType::Int64, false),
    ]);
    let b = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from(vec![r"\boxed{x = 3}", r"\boxed{(1, 2]}"])),
            Arc::new(StringArray::from(vec!["3", "(1, 2)"])),
            Arc::new(Int64Array::from(vec![7, 8])),
        ],
    )
    .unwrap();
    artifacts::write_table(&input, &b).unwrap();
    let (ok, log) = verify(&[
        s(&input),
        "-o",
        s(&output),
        "--response-column",
        "completion",
        "--answer-column",
        "gold",
    ]);
    assert!(ok, "{log}");
    let t = artifacts::read_table(&output).unwrap().batch;
    let names: Vec<String> = t
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        [
            "completion",
            "gold",
            "my_id",
            "extracted_answer",
            "has_answer",
            "correct",
            "reward",
            "verdict",
            "verdict_detail"
        ]
    );
    let reward = t
        .column_by_name("reward")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::Float64Array>()
        .unwrap();
    assert_eq!(reward.values().to_vec(), vec![1.0, -0.5]);
    // Why: the rule that decided each grade, and one line on it.
    let text = |name: &str| {
        let a = arrow::compute::cast(
            t.column_by_name(name).unwrap(),
            &arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        let a = a.as_any().downcast_ref::<StringArray>().unwrap().clone();
        (0..a.len())
            .map(|i| (!a.is_null(i)).then(|| a.value(i).to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        text("verdict"),
        [
            Some("equal_exact".to_string()),
            Some("wrong_value".to_string())
        ]
    );
    assert_eq!(
        text("verdict_detail"),
        [None, Some("(1, 2] vs (1, 2)".to_string())]
    );
}

#[test]
fn bad_input_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("rollouts.parquet");
    let output = dir.path().join("scored.parquet");
    artifacts::rollouts::write(&input, &[rollout(r"\boxed{4}", "4")]).unwrap();
    let (ok, log) = verify(&[s(&input), "-o", s(&output), "--answer-column", "gold"]);
    assert!(!ok);
    assert!(
        log.contains("rollouts.parquet: missing column `gold`") && log.contains("--answer-column"),
        "{log}"
    );
    assert_eq!(log.trim().lines().count(), 1, "{log}");
    assert!(!output.exists());
    std::fs::write(&input, b"garbage").unwrap();
    let (ok, log) = verify(&[s(&input), "-o", s(&output)]);
    assert!(!ok && log.contains("not a readable Parquet file"), "{log}");
    let (ok, log) = verify(&[s(&dir.path().join("missing.parquet")), "-o", s(&output)]);
    assert!(!ok && log.contains("missing.parquet"), "{log}");
    assert!(!output.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only the input is left"
    );
}

#[test]
fn a_box_after_the_end_of_the_turn_earns_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("rollouts.parquet");
    let output = dir.path().join("scored.parquet");
    let rows = vec![
        rollout("I think 5.<|im_end|>\n<|im_start|>user\n\\boxed{4}", "4"),
        rollout("\\boxed{4}</s> \\boxed{5}", "4"),
        rollout("\\boxed{3}<|endoftext|>\\boxed{4}", "4"),
    ];
    artifacts::rollouts::write(&input, &rows).unwrap();
    let graded = |extra: &[&str]| {
        let (ok, log) = verify(&[&[s(&input), "-o", s(&output)], extra].concat());
        assert!(ok, "{log}");
        artifacts::scored::read(&output).unwrap()
    };
    // The default: cut at </s>, <|im_end|>, <|endoftext|> first; the
    // responses themselves are kept whole.
    let scored = graded(&[]);
    let rewards: Vec<f64> = scored.iter().map(|r| r.reward).collect();
    assert_eq!(rewards, vec![-1.0, 1.0, -0.5]);
    assert_eq!(scored[0].rollout.response, rows[0].response);
    // --stop-words '' grades the whole text (the last box).
    let rewards: Vec<f64> = graded(&["--stop-words", ""])
        .iter()
        .map(|r| r.reward)
        .collect();
    assert_eq!(rewards, vec![1.0, -0.5, 1.0]);
}
