use std::collections::BTreeMap;

use artifacts::metrics::{Metric, MetricsRow};
use artifacts::rollouts::RolloutRow;
use artifacts::scored::ScoredRow;

fn words() -> Vec<String> {
    report::REFLECTION_WORDS
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[test]
fn reflection_words_are_whole_words_any_case() {
    let w = words();
    assert!(report::has_reflection(
        "3 + 4 = 7. Wait, let me redo it.",
        &w
    ));
    assert!(report::has_reflection("Let me check: 7 - 4 = 3", &w));
    assert!(report::has_reflection("we re-evaluate", &w));
    assert!(!report::has_reflection("the awaited answer is 7", &w));
    assert!(!report::has_reflection("verified", &w));
    assert!(!report::has_reflection("", &w));
}

fn scored(response: &str, len: usize, has_answer: bool, correct: bool) -> ScoredRow {
    ScoredRow {
        rollout: RolloutRow {
            prompt_id: "p".into(),
            sample_index: 0,
            prompt: "q".into(),
            answer: "7".into(),
            response: response.into(),
            prompt_token_ids: vec![1],
            response_token_ids: vec![5; len],
            response_logprobs: vec![-1.0; len],
            finish_reason: "stop".into(),
            policy: "x".into(),
            temperature: 1.0,
            top_p: 1.0,
            seed: 0,
        },
        extracted_answer: has_answer.then(|| "7".into()),
        has_answer,
        correct,
        reward: if correct {
            1.0
        } else if has_answer {
            -0.5
        } else {
            -1.0
        },
        verdict: if correct {
            "equal_exact"
        } else if has_answer {
            "wrong_value"
        } else {
            "no_answer"
        }
        .into(),
        verdict_detail: None,
    }
}

#[test]
fn iteration_stats() {
    let rows = vec![
        scored("\\boxed{7}", 10, true, true),
        scored("wait \\boxed{8}", 20, true, false),
        scored("no idea", 30, false, false),
        scored("\\boxed{7}", 40, true, true),
    ];
    let s = report::iter_stats(3, &rows, &words());
    assert_eq!((s.iteration, s.responses), (3, 4));
    assert_eq!(
        (s.accuracy, s.boxed_rate, s.reflection_share),
        (0.5, 0.75, 0.25)
    );
    assert_eq!(s.length_mean, 25.0);
    assert_eq!((s.length_p10, s.length_p90), (10.0, 40.0));
    let verdicts: Vec<(&str, usize)> = s.verdicts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        verdicts,
        [("equal_exact", 2), ("no_answer", 1), ("wrong_value", 1)]
    );
    let labels: Vec<&str> = s.samples.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(
        labels,
        ["correct (gold 7)", "wrong (gold 7)", "no answer (gold 7)"]
    );
}

#[test]
fn page_of_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("myrun");
    for it in 0..3 {
        let d = run.join(format!("iter-{it:04}"));
        std::fs::create_dir_all(&d).unwrap();
        let rows = vec![
            scored("<b>\\boxed{7}</b>", 10 + it, true, true),
            scored("however \\boxed{8}", 20, true, it > 0),
        ];
        artifacts::scored::write(d.join("scored.parquet"), &rows).unwrap();
        let mut values = BTreeMap::new();
        for (k, v) in [
            (Metric::RewardMean, 0.1 * it as f64),
            (Metric::Accuracy, 0.5),
            (Metric::NoAnswerRate, 0.0),
            (Metric::KlToRef, 0.01),
            (Metric::Entropy, 1.0),
            (Metric::PgClipfrac, 0.1),
            (Metric::VfLoss, 0.3),
        ] {
            values.insert(k, v);
        }
        artifacts::metrics::append(
            run.join("metrics.parquet"),
            MetricsRow {
                step: it as i64,
                values,
            },
        )
        .unwrap();
    }
    std::fs::create_dir_all(run.join("eval")).unwrap();
    let summary = artifacts::eval::EvalSummary {
        policy: "m".into(),
        extraction: r"last \boxed{} only".into(),
        sampling: "greedy".into(),
        max_new_tokens: 64,
        benchmarks: vec![artifacts::eval::BenchSummary {
            benchmark: "holdout".into(),
            problems: 10,
            samples: 1,
            accuracy: 0.25,
            maj_at_k: 0.25,
            pass_at_k: 0.25,
            boxed_rate: 0.5,
            mean_response_length: 12.5,
            truncation_rate: 0.1,
            top_answer: Some("12".into()),
            top_answer_share: 0.4,
            by_kind: [(
                "add".to_string(),
                artifacts::eval::Breakdown {
                    problems: 6,
                    accuracy: 0.5,
                    ..Default::default()
                },
            )]
            .into(),
            ..Default::default()
        }],
    };
    artifacts::eval::write_summary(run.join("eval/base.summary.json"), &summary).unwrap();
    // A file there that is not a summary is left out, not an error.
    std::fs::write(run.join("eval/junk.summary.json"), "{").unwrap();
    let html = report::build(&run, &words()).unwrap();
    assert!(html.matches("<svg").count() >= 7, "charts missing");
    assert!(
        !html.contains("Evaluation accuracy by iterations"),
        "one evaluation is no curve"
    );
    // A periodic evaluation after iteration 1 (two done) makes the curve.
    let later = artifacts::eval::EvalSummary {
        benchmarks: vec![artifacts::eval::BenchSummary {
            accuracy: 0.5,
            ..summary.benchmarks[0].clone()
        }],
        ..summary.clone()
    };
    artifacts::eval::write_summary(run.join("eval/iter-0001.summary.json"), &later).unwrap();
    let html = report::build(&run, &words()).unwrap();
    assert!(html.contains("Evaluation accuracy by iterations done"));
    assert!(!html.contains("KL coefficient (adaptive)") && !html.contains("Filtered and capped"));
    // A run with the variants' metrics and an adaptive KL coefficient.
    for (step, coef) in [(3, 0.01), (4, 0.0102)] {
        let mut values = BTreeMap::new();
        for (k, v) in [
            (Metric::RewardMean, 0.2),
            (Metric::KlCoef, coef),
            (Metric::FilteredGroupRatio, 0.4),
            (Metric::ExtraPrompts, 3.0),
        ] {
            values.insert(k, v);
        }
        artifacts::metrics::append(run.join("metrics.parquet"), MetricsRow { step, values })
            .unwrap();
    }
    let html = report::build(&run, &words()).unwrap();
    for title in [
        "KL coefficient (adaptive)",
        "Filtered and capped",
        "extra_prompts",
    ] {
        assert!(html.contains(title), "no {title} chart");
    }
    assert!(html.contains("Run myrun") && html.contains("3 iterations with responses"));
    // Each iteration's verdicts: iteration 0 has one right, one wrong.
    assert!(html.contains("Verdicts per iteration"));
    assert!(html.contains("<tr><td>0</td><td>50.0%</td><td>50.0%</td></tr>"));
    assert!(html.contains("<tr><td>2</td><td>100.0%</td><td>0.0%</td></tr>"));
    assert!(html.contains("<td>holdout</td><td>10</td><td>25.0</td>"));
    // The most frequent answer, and the accuracy per kind.
    assert!(html.contains("<td>12 (40.0%)</td></tr>"), "no top answer");
    assert!(
        html.contains("holdout accuracy by kind: add 50.0% (6)"),
        "no kinds"
    );
    assert!(
        !html.contains("accuracy by level"),
        "a breakdown the summary lacks"
    );
    // Responses are escaped, not rendered.
    assert!(html.contains("&lt;b&gt;\\boxed{7}&lt;/b&gt;") && !html.contains("<b>\\boxed"));
    assert!(html
        .contains("<td>0</td><td>2</td><td>0.500</td><td>1.000</td><td>15.0</td><td>0.500</td>"));
}

/// The evaluation curve: base at 0, iter-NNNN at NNNN + 1, in order, one
/// series per benchmark; evaluations of other names are left out.
#[test]
fn eval_curves_by_iterations_done() {
    let summary = |accs: &[(&str, f64)]| artifacts::eval::EvalSummary {
        policy: "m".into(),
        extraction: String::new(),
        sampling: String::new(),
        max_new_tokens: 8,
        benchmarks: accs
            .iter()
            .map(|&(b, a)| artifacts::eval::BenchSummary {
                benchmark: b.into(),
                problems: 4,
                samples: 1,
                accuracy: a,
                maj_at_k: a,
                pass_at_k: a,
                boxed_rate: 1.0,
                mean_response_length: 3.0,
                truncation_rate: 0.0,
                ..Default::default()
            })
            .collect(),
    };
    let evals = vec![
        ("base".to_string(), summary(&[("a", 0.1), ("b", 0.2)])),
        ("iter-0009".to_string(), summary(&[("a", 0.5)])),
        ("iter-0004".to_string(), summary(&[("a", 0.3), ("b", 0.4)])),
        ("other".to_string(), summary(&[("a", 0.9)])),
    ];
    assert_eq!(
        report::eval_curves(&evals),
        vec![
            ("a".to_string(), vec![(0.0, 0.1), (5.0, 0.3), (10.0, 0.5)]),
            ("b".to_string(), vec![(0.0, 0.2), (5.0, 0.4)]),
        ]
    );
}

#[test]
fn a_missing_run_folder_is_named() {
    let e = report::build(std::path::Path::new("/nonexistent/run"), &words()).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/run"), "{e}");
}

/// `report --compare`: each arm's last evaluation (the latest iteration's,
/// else base) in one table with its wall time, strict and lenient
/// accuracy, most frequent answer and accuracy per kind; every trained
/// arm's curves on the same charts; a missing arm folder is named.
#[test]
fn comparison_of_arms() {
    let dir = tempfile::tempdir().unwrap();
    let summary = |policy: &str, acc: f64, lenient: f64, gsm: f64| artifacts::eval::EvalSummary {
        policy: policy.into(),
        extraction: String::new(),
        sampling: "greedy".into(),
        max_new_tokens: 64,
        benchmarks: vec![
            artifacts::eval::BenchSummary {
                benchmark: "holdout".into(),
                problems: 10,
                samples: 1,
                accuracy: acc,
                lenient_accuracy: Some(lenient),
                boxed_rate: 1.0,
                mean_response_length: 20.0,
                top_answer: Some("3.5".into()),
                top_answer_share: 0.1,
                by_kind: [(
                    "mul-add".to_string(),
                    artifacts::eval::Breakdown {
                        problems: 4,
                        accuracy: acc / 2.0,
                        ..Default::default()
                    },
                )]
                .into(),
                ..Default::default()
            },
            artifacts::eval::BenchSummary {
                benchmark: "gsm8k".into(),
                problems: 5,
                accuracy: gsm,
                lenient_accuracy: Some(gsm * 2.0),
                ..Default::default()
            },
        ],
    };
    let base = dir.path().join("base");
    std::fs::create_dir_all(base.join("eval")).unwrap();
    artifacts::eval::write_summary(
        base.join("eval/base.summary.json"),
        &summary("m", 0.0, 0.05, 0.01),
    )
    .unwrap();
    std::fs::write(base.join("wall-seconds"), "95\n").unwrap();
    let rl = dir.path().join("rl");
    std::fs::create_dir_all(rl.join("eval")).unwrap();
    artifacts::eval::write_summary(
        rl.join("eval/base.summary.json"),
        &summary("m", 0.0, 0.05, 0.01),
    )
    .unwrap();
    artifacts::eval::write_summary(
        rl.join("eval/iter-0001.summary.json"),
        &summary("rl/iter-0001/policy", 0.3, 0.32, 0.02),
    )
    .unwrap();
    artifacts::eval::write_summary(
        rl.join("eval/iter-0009.summary.json"),
        &summary("rl/iter-0009/policy", 0.45, 0.5, 0.03),
    )
    .unwrap();
    std::fs::write(rl.join("wall-seconds"), "1234").unwrap();
    for it in 0..2 {
        let d = rl.join(format!("iter-{it:04}"));
        std::fs::create_dir_all(&d).unwrap();
        let rows = vec![
            scored("wait \\boxed{7}", 10 + it, true, true),
            scored("\\boxed{8}", 20, true, false),
        ];
        artifacts::scored::write(d.join("scored.parquet"), &rows).unwrap();
        artifacts::metrics::append(
            rl.join("metrics.parquet"),
            MetricsRow {
                step: it as i64,
                values: [(Metric::RewardMean, 0.25 * it as f64)].into(),
            },
        )
        .unwrap();
    }
    let arms: Vec<_> = [
        format!("base={}", base.display()),
        format!("rl-s0={}", rl.display()),
    ]
    .iter()
    .map(|a| report::compare::Arm::parse(a))
    .collect();
    assert_eq!(arms[1].name, "rl-s0");
    let (html, md) = report::compare::build(&arms, &words()).unwrap();
    let lines: Vec<&str> = md.lines().collect();
    assert_eq!(
        lines[0],
        "| arm | wall time | holdout strict | holdout lenient | boxed | mean length | top answer | gsm8k strict | gsm8k lenient |"
    );
    assert_eq!(
        lines[2],
        "| base | 1:35 | 0.0 | 5.0 | 100.0 | 20.0 | `3.5` (10.0%) | 1.0 | 2.0 |"
    );
    // The latest iteration's evaluation stands for the arm.
    assert_eq!(
        lines[3],
        "| rl-s0 | 20:34 | 45.0 | 50.0 | 100.0 | 20.0 | `3.5` (10.0%) | 3.0 | 6.0 |"
    );
    assert!(
        md.contains("| arm | mul-add (4) |") && md.contains("| rl-s0 | 22.5 |"),
        "{md}"
    );
    // Reward, training accuracy, length and reflection charts, the trained
    // arm's line in each; the table and the evaluated checkpoints.
    assert_eq!(html.matches("<svg").count(), 4);
    assert!(
        html.contains("rl/iter-0009/policy")
            && html.contains("<td>rl-s0</td><td>20:34</td><td>45.0</td>"),
        "{html}"
    );
    let missing = report::compare::Arm::parse(dir.path().join("nope").to_str().unwrap());
    assert_eq!(missing.name, "nope");
    let err = report::compare::build(&[missing], &words())
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope"), "{err}");
}
