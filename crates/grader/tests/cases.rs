//! The grader on ../shared/verifier-cases: the issue's thresholds, the
//! policy decisions on the probe cases, and math-verify's own suite.

use std::path::PathBuf;

use grader::cases;

/// ../shared/verifier-cases beside the checkout (or
/// $SIMPLERL_VERIFIER_CASES). Absent, the tests over them are skipped
/// with a message, unless SIMPLERL_REQUIRE_DATA=1 (CI sets it).
fn cases_dir() -> Option<PathBuf> {
    let p = std::env::var_os("SIMPLERL_VERIFIER_CASES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/verifier-cases")
        });
    if p.join("variants.jsonl").exists() {
        return Some(p);
    }
    let required = std::env::var("SIMPLERL_REQUIRE_DATA").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "verifier cases not found at {} (set SIMPLERL_VERIFIER_CASES); SIMPLERL_REQUIRE_DATA=1 requires them",
        p.display()
    );
    eprintln!(
        "skipped: the labelled cases are not at {} (set SIMPLERL_VERIFIER_CASES to run this test)",
        p.display()
    );
    None
}

#[test]
fn variants_meet_the_thresholds() {
    let Some(dir) = cases_dir() else { return };
    let text = std::fs::read_to_string(dir.join("variants.jsonl")).unwrap();
    let variants = cases::read_variants(&text).unwrap();
    let report = cases::score_variants(&variants);
    eprintln!("{report}");
    let rate = |intent: &str| {
        let (a, t) = report.intent(intent);
        assert!(t > 0, "no {intent} cases");
        a as f64 / t as f64
    };
    let (same_ok, same_total) = report.intent("same");
    assert_eq!(same_ok, same_total, "every `same` pair must be correct");
    assert!(
        rate("equivalent") >= 0.99,
        "equivalent {:.4}",
        rate("equivalent")
    );
    assert!(
        rate("equivalent_with_unit") >= 0.95,
        "equivalent_with_unit {:.4}",
        rate("equivalent_with_unit")
    );
    assert!(
        1.0 - rate("wrong") >= 0.999,
        "wrong rejected {:.4}",
        1.0 - rate("wrong")
    );
}

/// The policy decisions (crate::policy) on the hand-written probes.
#[test]
fn probe_cases_follow_the_policy() {
    let expect: &[(&str, &str, bool)] = &[
        (r"\frac{1}{2}", "0.5", true),
        (r"\dfrac{1}{2}", r"\frac12", true),
        (r"\frac{1}{3}", "0.333", false),
        (r"\frac{1}{3}", "0.3333333", false),
        (r"1\frac{4}{5}", r"\frac{9}{5}", true),
        (r"1\frac{4}{5}", r"\frac{4}{5}", false),
        (r"2\sqrt{2}", r"\sqrt{8}", true),
        (r"\sqrt{2}", "1.41421356", false),
        (r"1 \pm \sqrt{19}", r"1 + \sqrt{19}, 1 - \sqrt{19}", true),
        (r"1 \pm \sqrt{19}", r"1 + \sqrt{19}", false),
        (r"2\pi", "6.283185", false),
        (r"\frac{\pi}{2}", r"90^\circ", false),
        (r"4\pi", r"4 \pi \text{ cm}^2", true),
        (r"(-\infty, 3]", r"x \le 3", true),
        (
            r"(-\infty,-2)\cup(2,\infty)",
            r"(2,\infty)\cup(-\infty,-2)",
            true,
        ),
        ("[2,5)", "(2,5]", false),
        (r"\{1,2,3\}", r"\{3,2,1\}", true),
        ("-2,-2", "-2", false),
        ("(1,2)", "(2,1)", false),
        ("(1,2)", "[1,2]", false),
        (r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", "(1,2)", false),
        (r"\text{Evelyn}", "Evelyn", true),
        (r"\text{east}", r"\text{west}", false),
        (r"\text{(C)}", "C", true),
        ("C", r"\textbf{(C)}\ 12", true),
        ("C", "D", false),
        (r"5", r"5 \mathrm{~m}", true),
        (r"25\%", "0.25", true),
        ("25", "0.25", false),
        ("3400", "34", false),
        (r"48^\circ", "48", true),
        ("y=2x+3", "2x - y + 3 = 0", true),
        ("N=n", "N = n + 1", false),
        ("(a+5)(b+2)", "(c+5)(b+2)", false),
        ("2t", "2s", false),
        ("10{,}000", "10000", true),
        ("025", "25", true),
        ("224000", "224001", false),
        ("5", "five", true),
        ("52_8", "52_8 + 1", false),
        ("1011_2", "11", false),
        ("1011_2", "1011", true),
        ("6+9i", "9i+6", true),
        ("x^2+2x+1", "(x+1)^2", true),
        (r"\cot x", r"\frac{\cos x}{\sin x}", true),
        ("", "", false),
        ("2", "", false),
        (r"0<f(x)<1", "(0,1)", true),
        (r"0<f(x)\le 1", "(0,1)", false),
        (
            r"1\leq|z|\leq \frac{3}{2}",
            r"z \in \left[-\frac{3}{2}, -1\right] \cup \left[1, \frac{3}{2}\right]",
            true,
        ),
        (r"1\leq|z|\leq 2", r"[1, 2]", false),
        (r"|x| < 3", "(-3, 3)", true),
        (r"|x| \ge 2", r"(-\infty,-2] \cup [2, \infty)", true),
        (r"|x| \le 2", "(-2, 2)", false),
        ("p=5,q=2;p=7,q=2", "(5,2),(7,2)", true),
        ("p=5,q=2;p=7,q=2", "(7,2),(5,2)", true),
        ("p=5,q=2;p=7,q=2", "(2,5),(7,2)", false),
        ("x=1, y=2", "1, 2", true),
        (
            r"F_n = \sum_{k=0}^{n-1} F_k F_{n-k-1}",
            r"F_n = \sum_{k=0}^{n-1} F_{n-k-1} F_k",
            true,
        ),
        (
            r"F_n = \sum_{k=0}^{n-1} F_k F_{n-k-1}",
            r"F_n = \sum_{k=0}^{n} F_k F_{n-k-1}",
            false,
        ),
        // A sum left unevaluated is the question, not its answer.
        ("55", r"\sum_{k=1}^{10} k", false),
        (r"\sum_{k=1}^{10} k", r"\sum_{k=1}^{10} k", true),
    ];
    let mut wrong = Vec::new();
    for (g, p, want) in expect {
        if grader::is_equivalent(g, p) != *want {
            wrong.push(format!("{g:?} vs {p:?}: want {want}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// math-verify's own test-suite cases: every one we decide differently is
/// listed, with the reason, in tests/mathverify_exceptions.tsv, and every
/// listed one still differs (so the list stays true).
#[test]
fn mathverify_suite_except_documented() {
    let Some(dir) = cases_dir() else { return };
    let text = std::fs::read_to_string(dir.join("mathverify_cases.jsonl")).unwrap();
    let mv = cases::read_mathverify(&text).unwrap();
    let listed: Vec<(String, String)> = include_str!("mathverify_exceptions.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (id, why) = l.split_once('\t').expect("test_id<TAB>reason");
            assert!(!why.trim().is_empty(), "{id}: no reason given");
            (id.to_string(), why.to_string())
        })
        .collect();
    let mut undocumented = Vec::new();
    let mut stale = Vec::new();
    let mut agree = 0;
    for c in &mv {
        let differs = cases::mathverify_verdict(c) != c.expected;
        let is_listed = listed.iter().any(|(id, _)| *id == c.test_id);
        match (differs, is_listed) {
            (true, false) => undocumented.push(c.test_id.clone()),
            (false, true) => stale.push(c.test_id.clone()),
            (false, false) => agree += 1,
            _ => {}
        }
    }
    eprintln!(
        "math-verify suite: {agree} of {} as expected, {} documented exceptions",
        mv.len(),
        listed.len()
    );
    assert!(
        undocumented.is_empty(),
        "undocumented disagreements: {undocumented:#?}"
    );
    assert!(
        stale.is_empty(),
        "listed but now agree (remove them): {stale:#?}"
    );
}
