//! Fuzzing the grader: no input makes it panic, overflow the stack or
//! run away. The case count is PROPTEST_CASES (CI runs a bounded number;
//! `FUZZ_SECONDS=600 cargo test -p grader --release --test fuzz -- --ignored`
//! runs for a fixed time).

use proptest::prelude::*;

/// LaTeX-ish fragments, so random strings reach deep into the parser.
const PIECES: &[&str] = &[
    r"\frac",
    r"\sqrt",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    r"\{",
    r"\}",
    "^",
    "_",
    "1",
    "0",
    "9",
    "10",
    ".",
    ",",
    "-",
    "+",
    r"\pm",
    r"\cdot",
    "/",
    "x",
    "y",
    "e",
    "i",
    r"\pi",
    r"\infty",
    "=",
    "<",
    r"\le",
    r"\cup",
    r"\in",
    "!",
    "|",
    r"\text{",
    " cm}",
    "%",
    r"^\circ",
    "$",
    r"\boxed{",
    r"\left(",
    r"\right)",
    r"\begin{pmatrix}",
    "&",
    r"\\",
    r"\end{pmatrix}",
    r"\sin",
    r"\log_",
    "2",
    " ",
    "and",
    r"\dfrac",
    r"\!",
    "1,000",
    "0.5",
    r"\binom",
    "_2",
    "{, }",
    r"\\frac",
    r"\\le",
    ";",
    "/3",
    "f(x)",
    r"\ge",
    r"\$",
    "Final Answer: The final answer is ",
    " papers and ",
    r"\sum_{k=",
    "}^{",
    "\"",
];

fn latexish() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..40).prop_map(|v| v.concat())
}

fn check(gold: &str, pred: &str) {
    let _ = grader::is_equivalent(gold, pred);
    let _ = grader::grade(pred, gold, &Default::default());
    let _ = grader::grade_with(pred, gold, &Default::default(), grader::Fallbacks::ALL);
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn latex_fragments_never_panic(gold in latexish(), pred in latexish()) {
        check(&gold, &pred);
    }

    #[test]
    fn arbitrary_unicode_never_panics(gold in ".{0,60}", pred in ".{0,200}") {
        check(&gold, &pred);
    }

    /// Huge and tiny magnitudes: a gold answer changed by an amount too
    /// small for floats to see (10^{-k}, k from 11 to 10^12) is never
    /// "equal", whether the exact evaluator can hold it or not.
    #[test]
    fn a_tiny_change_is_never_equal(
        gold in prop::sample::select(vec!["0", "1", "x", "2\\pi", "\\sqrt{2}", "\\frac{1}{3}", "e^{2}", "x^2+1"]),
        k in prop_oneof![11u64..400, 400u64..5_000, 5_000u64..1_000_000_000_000],
        form in 0usize..4,
    ) {
        let tiny = format!("10^{{-{k}}}");
        let pred = match form {
            0 => format!("{gold}+{tiny}"),
            1 => format!("{gold}-{tiny}"),
            // (0 times anything is 0: scale only nonzero golds)
            2 if gold != "0" => format!("({gold})\\cdot(1+{tiny})"),
            2 => format!("{gold}+{tiny}"),
            _ => format!("{gold}+\\frac{{1}}{{10^{{{k}}}}}"),
        };
        prop_assert!(!grader::is_equivalent(gold, &pred), "{} equals {}", gold, pred);
    }

    /// A huge number plus one is not the huge number (the float path
    /// would say it is).
    #[test]
    fn huge_plus_one_is_never_equal(k in 17u64..1_000_000_000_000) {
        let gold = format!("10^{{{k}}}");
        for pred in [format!("{gold}+1"), format!("{gold}-1")] {
            prop_assert!(!grader::is_equivalent(&gold, &pred), "{} equals {}", gold, pred);
        }
    }
}

/// Where exactness is lost, the verdict is "not provably equal": each of
/// these was rewarded +1 when the grader fell back to floats.
#[test]
fn lost_exactness_is_never_equal() {
    for (gold, pred) in [
        ("0", "10^{-100000}"),
        ("1", "1-10^{-10^{10}}"),
        ("x", "x+10^{-10^{10}}"),
        ("0", "10^{-400}"),
        (r"2\pi", r"2\pi+10^{-30}"),
        (r"\sqrt{2}", r"\sqrt{2}+10^{-300}"),
        ("1", "e^{-100000}+1"),
        ("0", "e^{-100000}"),
        ("0", r"\frac{1}{10^{10^{10}}}"),
    ] {
        assert!(!grader::is_equivalent(gold, pred), "{gold} equals {pred}");
    }
    // What floats decide faithfully still holds.
    for (gold, pred) in [
        (r"2\pi", r"\pi\cdot 2"),
        (r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}"),
        (r"\frac{\sqrt{3}}{2}", r"\sin(\pi/3)"),
        ("x^2+2x+1", "(x+1)^2"),
        ("e^{2}", r"e\cdot e"),
    ] {
        assert!(
            grader::is_equivalent(gold, pred),
            "{gold} does not equal {pred}"
        );
    }
}

/// The named hard inputs: each returns (the grader bounds its work by
/// input size and an evaluation budget; no timing is asserted here, the
/// fuzz run and `make bench` measure speed), and each verdict is the one
/// decided by hand: `Some(false)` where the values differ (a wrong answer
/// must never earn the reward, however hard it is to evaluate),
/// `Some(true)` where both sides are the same expression, `None` where
/// either verdict is acceptable (a true equality past the exact-size
/// limits may be judged "not provably equal").
#[test]
fn adversarial_inputs_get_the_right_verdict() {
    let nested = format!("{}1{}", "{".repeat(100_000), "}".repeat(100_000));
    let boxed_nested = format!(r"\boxed{{{nested}}}");
    let many_boxed = r"\boxed{".repeat(20_000);
    let parens = format!("{}x{}", "(".repeat(50_000), ")".repeat(50_000));
    let long_list = (0..5_000)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let mut wrong = Vec::new();
    let cases: [(&str, &str, Option<bool>); 22] = [
        ("10^{10^{10}}", "10^{10^{10}}", Some(true)),
        ("10^{10^{10}}", "10^{10^{11}}", Some(false)),
        ("100000!", "100000!", Some(true)),
        ("(10^{100})!", "2", Some(false)),
        (r"\sqrt[1000000]{2}^{1000000}", "2", None),
        ("2^{2^{2^{2^{2^{2}}}}}", "3", Some(false)),
        (&nested, "1", None),
        ("1", &boxed_nested, None),
        ("1", &many_boxed, Some(false)),
        (&parens, "x", None),
        (&long_list, &long_list, Some(true)),
        (
            r"\frac{\frac{\frac{1}{2}}{",
            r"}}}\left(\right",
            Some(false),
        ),
        (r"\begin{pmatrix}", r"\end{pmatrix}", Some(false)),
        (
            &"\\".repeat(100_000),
            &r"\\frac".repeat(20_000),
            Some(false),
        ),
        (&"1{, }".repeat(30_000), &"{,".repeat(50_000), Some(false)),
        (&"1/".repeat(50_000), &"1%".repeat(50_000), Some(false)),
        (
            &"p=5,q=2;".repeat(5_000),
            &r"|x|\le".repeat(10_000),
            Some(false),
        ),
        ("1", &r"\boxed{1} papers and ".repeat(10_000), None),
        (
            "1",
            &"Final Answer: The final answer is $".repeat(10_000),
            Some(false),
        ),
        (
            r"\sum_{k=1}^{999} \sum_{j=1}^{999} \sum_{i=1}^{999} ijk",
            "1",
            Some(false),
        ),
        (&r"\sum_{k=1}^{9}".repeat(2_000), "1", Some(false)),
        ("", "", None),
    ];
    for (gold, pred, expect) in cases {
        check(gold, pred);
        let got = grader::is_equivalent(gold, pred);
        if expect.is_some_and(|e| e != got) {
            let cut = |s: &str| s.chars().take(40).collect::<String>();
            wrong.push(format!("{} vs {}: {got}", cut(gold), cut(pred)));
        }
    }
    assert!(
        wrong.is_empty(),
        "verdicts differ from the decided ones: {wrong:#?}"
    );
}

/// Runs the two properties for FUZZ_SECONDS (default 600) of wall time,
/// with a fresh random seed each round, and counts the cases it ran.
#[test]
#[ignore]
fn fuzz_for_a_fixed_time() {
    use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
    let secs: u64 = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let start = std::time::Instant::now();
    let cases = std::cell::Cell::new(0u64);
    let mut round = 0u64;
    while start.elapsed().as_secs() < secs {
        round += 1;
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&round.to_le_bytes());
        seed[8..16].copy_from_slice(&(start.elapsed().as_nanos() as u64).to_le_bytes());
        let config = ProptestConfig {
            cases: 2_000,
            failure_persistence: None,
            ..ProptestConfig::default()
        };
        let mut runner = TestRunner::new_with_rng(
            config.clone(),
            TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
        );
        runner
            .run(&(latexish(), latexish()), |(g, p)| {
                check(&g, &p);
                cases.set(cases.get() + 1);
                Ok(())
            })
            .unwrap();
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
        runner
            .run(&(".{0,60}", ".{0,200}"), |(g, p)| {
                check(&g, &p);
                cases.set(cases.get() + 1);
                Ok(())
            })
            .unwrap();
    }
    eprintln!(
        "fuzz: {} cases in {:.0}s ({round} seeds) without a finding",
        cases.get(),
        start.elapsed().as_secs_f64()
    );
}
