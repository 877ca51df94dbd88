use artifacts::eval::EvalRow;
use eval::*;

fn row(id: &str, answer: Option<&str>, correct: bool, len: i64, finish: &str) -> EvalRow {
    EvalRow {
        benchmark: "b".into(),
        id: id.into(),
        sample_index: 0,
        answer: "4".into(),
        response: String::new(),
        extracted_answer: answer.map(str::to_string),
        correct,
        response_length: len,
        finish_reason: finish.into(),
    }
}

#[test]
fn unbiased_pass_at_k() {
    // n = 4, c = 1: pass@1 = 1/4, pass@2 = 1 - C(3,2)/C(4,2) = 1/2, pass@4 = 1.
    assert!((pass_at_k(4, 1, 1) - 0.25).abs() < 1e-12);
    assert!((pass_at_k(4, 1, 2) - 0.5).abs() < 1e-12);
    assert_eq!(pass_at_k(4, 1, 4), 1.0);
    assert_eq!(pass_at_k(4, 0, 2), 0.0);
    assert!(pass_at_k(1, 1, 2).is_nan());
}

#[test]
fn majority_vote_ignores_missing_answers() {
    let a = row("p", Some("5"), false, 1, "stop");
    let b = row("p", Some(" 5"), false, 1, "stop");
    let c = row("p", Some("4"), true, 1, "stop");
    let d = row("p", None, false, 1, "length");
    let e = row("p", None, false, 1, "length");
    assert!(!majority_correct(&[&a, &b, &c, &d, &e]));
    assert!(
        majority_correct(&[&c, &a, &d]),
        "ties go to the answer seen first"
    );
    assert!(!majority_correct(&[&d, &e]));
}

/// The Markdown table of one benchmark's summary over `k` samples.
fn table(s: artifacts::eval::BenchSummary, k: usize) -> String {
    let sampling = if k == 1 {
        "greedy".to_string()
    } else {
        format!("{k} samples")
    };
    markdown(
        &[s],
        std::path::Path::new("ckpt"),
        grader::Fallbacks::NONE,
        k,
        &sampling,
    )
}

#[test]
fn summary_figures() {
    let rows = vec![
        row("p", Some("4"), true, 10, "stop"),
        row("p", Some("5"), false, 20, "stop"),
        row("q", None, false, 30, "length"),
        row("q", Some("4"), true, 40, "stop"),
    ];
    let s = summarize("b", &rows, 2);
    assert_eq!((s.problems, s.samples), (2, 2));
    assert_eq!(s.accuracy, 0.5);
    assert_eq!(s.pass_at_k, 1.0);
    assert_eq!(s.maj_at_k, 1.0); // p: tie 4 vs 5 -> first (4, correct); q: only 4
    assert_eq!(s.boxed_rate, 0.75);
    assert_eq!(s.mean_response_length, 25.0);
    assert_eq!(s.truncation_rate, 0.25);
    // "4" is the answer of 2 of the 4 samples.
    assert_eq!(
        (s.top_answer.as_deref(), s.top_answer_share),
        (Some("4"), 0.5)
    );
    assert!(s.by_kind.is_empty() && s.by_level.is_empty());
    let md = table(s, 2);
    assert!(
        md.contains("| avg@2 | maj@2 | pass@2 |") && md.contains("no fallbacks"),
        "{md}"
    );
    // One sample: one accuracy column, named once, and rows as wide as the header.
    let md = table(summarize("b", &rows, 1), 1);
    assert_eq!(md.matches("pass@1").count(), 1, "{md}");
    assert!(!md.contains("maj@"), "{md}");
    let widths: Vec<usize> = md
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| l.matches('|').count())
        .collect();
    assert!(widths.windows(2).all(|w| w[0] == w[1]), "{md}");
}

/// Per kind and per level: each group's problems, accuracy, boxed rate
/// and length, from the prompts' metadata `kind` and `level`; problems
/// without a label are left out of that breakdown only.
#[test]
fn figures_by_kind_and_level() {
    let rows = vec![
        row("p", Some("4"), true, 10, "stop"),
        row("p", Some("5"), false, 20, "stop"),
        row("q", None, false, 30, "length"),
        row("q", Some("4"), true, 40, "stop"),
        row("r", Some("7"), false, 50, "stop"),
    ];
    let prompt = |id: &str, level: Option<i64>, meta: Option<&str>| artifacts::prompts::PromptRow {
        id: id.into(),
        source: "synth".into(),
        question: String::new(),
        answer: "4".into(),
        level,
        subject: None,
        prompt: String::new(),
        metadata: meta.map(str::to_string),
    };
    let labels = Labels::of(&[
        prompt("p", Some(1), Some(r#"{"kind":"add"}"#)),
        prompt("q", Some(3), Some(r#"{"kind":"paren-mul","operations":2}"#)),
        prompt("r", None, Some("not json")),
    ]);
    // Read leniently, the unboxed response of q is right too.
    let lenient = |r: &EvalRow| r.correct || r.extracted_answer.is_none();
    let s = summarize_labelled("b", &rows, 2, &labels, Some(&lenient));
    assert_eq!(s.lenient_accuracy, Some(0.6));
    assert_eq!(s.by_kind["paren-mul"].lenient_accuracy, Some(1.0));
    assert_eq!(s.by_kind["add"].lenient_accuracy, Some(0.5));
    assert!(
        table(s.clone(), 2)
            .contains("Read leniently (every fallback) from the same responses: b 60.0"),
        "{}",
        table(s.clone(), 2)
    );
    assert_eq!(s.by_kind.keys().collect::<Vec<_>>(), ["add", "paren-mul"]);
    let add = &s.by_kind["add"];
    assert_eq!(
        (
            add.problems,
            add.accuracy,
            add.boxed_rate,
            add.mean_response_length
        ),
        (1, 0.5, 1.0, 15.0)
    );
    let pm = &s.by_kind["paren-mul"];
    assert_eq!(
        (
            pm.problems,
            pm.accuracy,
            pm.boxed_rate,
            pm.mean_response_length
        ),
        (1, 0.5, 0.5, 35.0)
    );
    assert_eq!(s.by_level.keys().collect::<Vec<_>>(), ["1", "3"]);
    assert_eq!(s.by_level["3"], *pm);
    // The overall figures count every row, labelled or not.
    assert_eq!((s.problems, s.accuracy), (3, 0.4));
    let md = table(s, 2);
    assert!(
        md.contains("`b` by kind:") && md.contains("| paren-mul | 1 | 50.0 | 50.0 | 35.0 |"),
        "{md}"
    );
    assert!(
        md.contains("`b` by level:") && md.contains("| 1 | 1 | 50.0 | 100.0 | 15.0 |"),
        "{md}"
    );
    assert!(md.contains("| `4` (40.0%) |"), "{md}");
}

#[test]
fn end_to_end_on_a_tiny_model() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("tiny");
    model::tiny::write_tiny(&ck, 16, 1, 3).unwrap();
    let prompts = dir.path().join("sums.parquet");
    let rows: Vec<artifacts::prompts::PromptRow> = (0..5)
        .map(|i| artifacts::prompts::PromptRow {
            id: format!("s{i}"),
            source: "t".into(),
            question: format!("{i}+{i}"),
            answer: (2 * i).to_string(),
            level: None,
            subject: None,
            prompt: format!("{i}+{i}="),
            metadata: None,
        })
        .collect();
    artifacts::prompts::write(&prompts, &rows).unwrap();
    let out = dir.path().join("results.parquet");
    let opts = Options {
        policy: ck,
        benchmarks: vec![("sums".into(), prompts)],
        output: out.clone(),
        samples: 3,
        temperature: Some(1.0),
        top_p: 1.0,
        top_k: None,
        stop_words: grader::STOP_WORDS.map(String::from).to_vec(),
        shard: stages::rollout::Shard { k: 0, n: 1 },
        max_new_tokens: 4,
        limit: Some(4),
        batch_size: 8,
        seed: 0,
        fallbacks: grader::Fallbacks::ALL,
        device: "cpu".into(),
        dtype: model::Precision::F32,
    };
    let (rows, summaries, md) = run(&opts, &mut |_, _, _| {}).unwrap();
    assert_eq!(rows.len(), 12);
    assert_eq!(summaries[0].problems, 4);
    assert_eq!(artifacts::eval::read(&out).unwrap(), rows);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(summary_path(&out)).unwrap()).unwrap();
    assert_eq!(json["benchmarks"][0]["problems"], 4);
    assert!(
        md.contains("| sums | 4 |") && md.contains("last number"),
        "{md}"
    );
    assert!(!out.with_extension("rollouts.tmp").exists());
    // Greedy with several samples is refused.
    // --shard 0/2: half the problems.
    let half = Options {
        shard: stages::rollout::Shard { k: 0, n: 2 },
        output: dir.path().join("half.parquet"),
        ..opts.clone()
    };
    let (_, summaries, _) = run(&half, &mut |_, _, _| {}).unwrap();
    assert_eq!(summaries[0].problems, 2);
    let bad = Options {
        temperature: Some(0.0),
        ..opts
    };
    assert!(run(&bad, &mut |_, _, _| {})
        .unwrap_err()
        .to_string()
        .contains("--temperature"));
}

#[test]
fn a_benchmark_without_rows_is_an_error_not_a_score() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("tiny");
    model::tiny::write_tiny(&ck, 16, 1, 3).unwrap();
    let empty = dir.path().join("empty.parquet");
    artifacts::prompts::write(&empty, &[]).unwrap();
    let out = dir.path().join("results.parquet");
    let opts = Options {
        policy: ck,
        benchmarks: vec![("empty".into(), empty)],
        output: out.clone(),
        samples: 1,
        temperature: None,
        top_p: 1.0,
        top_k: None,
        stop_words: vec![],
        shard: stages::rollout::Shard { k: 0, n: 1 },
        max_new_tokens: 4,
        limit: None,
        batch_size: 8,
        seed: 0,
        fallbacks: grader::Fallbacks::NONE,
        device: "cpu".into(),
        dtype: model::Precision::F32,
    };
    let e = run(&opts, &mut |_, _, _| {}).unwrap_err().to_string();
    assert!(e.contains("empty.parquet: no prompts"), "{e}");
    assert!(!out.exists());
}
