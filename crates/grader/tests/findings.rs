//! The grader's findings from hostile use (issue 41), each a case that
//! graded wrongly before: restating the question earned +1, words that
//! change a value were stripped as units, signs and points were lost in
//! text, unusable golds were graded, and float tolerance said "equal"
//! where the values differ.

use grader::{grade, judge, RewardScheme, Verdict};

fn reward(response: &str, gold: &str) -> f64 {
    grade(response, gold, &RewardScheme::default()).reward
}

fn verdict(gold: &str, pred: &str) -> Verdict {
    judge(gold, pred).verdict
}

#[test]
fn restating_the_question_is_not_its_answer_at_any_depth() {
    for (pred, gold) in [
        (r"\frac{8\times7}{1}", "56"),
        (r"1\times(8\times7)", "56"),
        (r"(8\times7)^1", "56"),
        (r"10^{100}+5-10^{100}", "5"),
        // The default set's two-step kinds, boxed as asked.
        (r"(7 + 3) \times 3", "30"),
        (r"4 \times 6 + 2", "26"),
        (r"8 + 1 - 3", "6"),
        (r"x = (7 + 3) \times 3", "30"),
        (r"\frac{(2+3)}{1}", "5"),
        (r"\dbinom{8}{4}", "70"),
        (r"2^{10}", "1024"),
        (r"\sqrt{16}", "4"),
        (r"5!", "120"),
        (r"\frac{56}{1}", "56"),
        (r"\frac{1.5}{3}", "0.5"),
        (r"\sqrt{2}\cdot\sqrt{2}", "2"),
        (r"\log_2 8", "3"),
        (r"\sin(\pi/6)", r"\frac{1}{2}"),
        // Values that floats read as simple fractions, and like terms.
        (r"\sqrt{6+4\sqrt2}+\sqrt{6-4\sqrt2}", "4"),
        (r"(5-3i)(-4+3i)", "-11 + 27i"),
        (r"i^{11} + i^{111}", "-2i"),
        (r"\left(\frac{i}{4}\right)^4", r"\frac{1}{256}"),
        (r"\sqrt{50} + \sqrt{18}", r"8\sqrt{2}"),
        (r"\pi + \pi", r"2\pi"),
        (r"\sqrt{15}\cdot\sqrt{35}", r"5\sqrt{21}"),
        (r"(1+\sqrt{2})^2", r"3+2\sqrt{2}"),
    ] {
        let g = grade(
            &format!(r"so \boxed{{{pred}}}"),
            gold,
            &RewardScheme::default(),
        );
        assert_eq!(
            (g.reward, g.verdict),
            (-0.5, Verdict::NotFinalForm),
            "{pred} for {gold}: {g:?}"
        );
    }
    // Inside structures too.
    assert_eq!(
        verdict("(56, 2)", r"(8 \times 7, 2)"),
        Verdict::NotFinalForm
    );
    assert_eq!(
        verdict(r"\{3, 56\}", r"\{3, 8 \times 7\}"),
        Verdict::NotFinalForm
    );
    assert_eq!(
        verdict("[1, 56]", r"[1, 8 \times 7]"),
        Verdict::NotFinalForm
    );
}

#[test]
fn final_forms_of_a_number_still_compare_by_value() {
    for (pred, gold) in [
        ("56", "56"),
        ("56.0", "56"),
        (r"\frac{172}{2}", "86"),
        (r"\frac{28}{6}", r"\frac{14}{3}"),
        (r"1\frac{4}{5}", "9/5"),
        (r"-\frac{35}{9}", r"\frac{-35}{9}"),
        (r"3 \times 10^{5}", "300000"),
        (r"10^{6}", "1000000"),
        (r"\sqrt{117}", r"3\sqrt{13}"),
        (r"51^{1/2}", r"\sqrt{51}"),
        (r"3 \cdot 13^{1/2}", r"3\sqrt{13}"),
        (r"1 \cdot \pi", r"\pi"),
        (r"\frac{3}{4}\sqrt{3}", r"\frac{3\sqrt{3}}{4}"),
        (r"9i + 6", "6+9i"),
        (r"-11 + 27i", "(5-3i)(-4+3i)"),
        (r"\frac{7}{5} + \frac{1}{5} i", r"\frac{7+i}{5}"),
        (r"-\frac{i}{2}", r"\frac{-i}{2}"),
        (r"12.5\%", "0.125"),
        ("0.3888", r"\frac{243}{625}"),
    ] {
        assert_eq!(
            reward(&format!(r"\boxed{{{pred}}}"), gold),
            1.0,
            "{pred} for {gold}"
        );
    }
    // A gold that is itself unevaluated is compared by value.
    assert!(grader::is_equivalent(r"2^{2005}", r"2^{2005}"));
    assert!(grader::is_equivalent(r"\dbinom{8}{4}", r"\binom{8}{4}"));
    // Expressions with variables are not judged by form.
    assert!(grader::is_equivalent("x + 5", "x + 2 + 3"));
}

#[test]
fn only_listed_units_are_stripped() {
    for (pred, gold) in [
        ("5 million", "5"),
        (r"5 \text{ not}", "5"),
        (r"2 \text{ squared}", "2"),
        (r"3 \text{ thousand}", "3"),
        (r"7 \text{ times as many}", "7"),
    ] {
        assert_eq!(
            reward(&format!(r"\boxed{{{pred}}}"), gold),
            -0.5,
            "{pred} for {gold}"
        );
    }
    for (pred, gold) in [
        (r"9 \text{ cm}", "9"),
        (r"100\text{ square units}", "100"),
        (r"40 \text{ miles per hour}", "40"),
        (r"12 \text{ ways}", "12"),
        ("5.4 cents", "5.4"),
        (r"864 \mbox{ inches}^2", "864"),
    ] {
        let g = grade(
            &format!(r"\boxed{{{pred}}}"),
            gold,
            &RewardScheme::default(),
        );
        assert_eq!(
            (g.reward, g.verdict),
            (1.0, Verdict::EqualAfterUnits),
            "{pred} for {gold}"
        );
    }
}

#[test]
fn text_keeps_signs_and_decimal_points() {
    assert!(!grader::is_equivalent(
        r"0.\overline{36}",
        r"-0.\overline{36}"
    ));
    assert!(grader::is_equivalent(
        r"0.\overline{36}",
        r"0.\overline{36}"
    ));
    // Too long to parse: compared as text, sign and point kept.
    let long = "7".repeat(2_100);
    assert!(!grader::is_equivalent(&long, &format!("-{long}")));
    assert!(!grader::is_equivalent(
        &long,
        &format!("{}.{}", &long[..1000], &long[1000..])
    ));
    assert!(grader::is_equivalent(&long, &long.clone()));
    // Words keep their punctuation-insensitive match.
    assert!(grader::is_equivalent("north east", "North-East"));
    assert!(grader::is_equivalent("Monday", "monday."));
}

#[test]
fn unusable_golds_are_not_graded_and_boxed_golds_are_unwrapped() {
    for gold in ["", "   ", r"\boxed{}", r"\boxed{ }"] {
        let g = grade(r"\boxed{5}", gold, &RewardScheme::default());
        assert_eq!(g.verdict, Verdict::InvalidGold, "{gold:?}");
        assert!(!g.correct);
    }
    assert_eq!(reward(r"\boxed{5}", r"\boxed{5}"), 1.0);
    assert_eq!(reward(r"\boxed{5}", r"$\boxed{5}$"), 1.0);
    assert_eq!(reward(r"\boxed{6}", r"\boxed{5}"), -0.5);
    assert_eq!(
        grader::gold_answer(r" \boxed{\frac{1}{2}} "),
        Some(r"\frac{1}{2}".into())
    );
}

#[test]
fn no_false_equal_from_rounding_chains_nesting_or_float_tolerance() {
    // A one-digit decimal gold is exact, not a rounded value.
    assert_eq!(verdict("0.5", r"\frac{5}{11}"), Verdict::WrongValue);
    // Two digits or more: a rounded gold, as before.
    assert_eq!(verdict("4.67", r"\frac{14}{3}"), Verdict::EqualRounded);
    // A whole number written with a point (a JSON float's `43.0`) is whole.
    assert_eq!(verdict("43.0", "43"), Verdict::EqualExact);
    assert_eq!(verdict("43.0", r"\frac{859}{20}"), Verdict::WrongValue);
    // A chain of false equalities has no value.
    assert_eq!(verdict("5", "6 = 7 = 5"), Verdict::WrongValue);
    assert_eq!(verdict("3", "x = 2 = 3"), Verdict::WrongValue);
    assert!(grader::is_equivalent("11", "x = 5+5+1 = 11"));
    // A box inside other content is part of it.
    assert_eq!(reward(r"\boxed{57 \boxed{56}}", "56"), -0.5);
    assert_eq!(reward(r"\boxed{\boxed{56}}", "56"), 1.0);
    // Values floats cannot tell apart are undecided, never equal.
    assert_eq!(verdict(r"2\pi", r"2.00000000001\pi"), Verdict::Undecidable);
    assert_eq!(verdict("x", "x+10^{-9}"), Verdict::Undecidable);
    assert!(!grader::is_equivalent("0", r"\sin(\pi)+10^{-17}"));
    // What the tolerances are for still holds.
    assert_eq!(verdict(r"2\pi", r"\pi \cdot 2"), Verdict::EqualSymbolic);
    assert_eq!(verdict("x^2+2x+1", "(x+1)^2"), Verdict::EqualSymbolic);
    assert_eq!(verdict(r"2\pi", r"3\pi"), Verdict::WrongValue);
}

#[test]
fn every_grade_says_why() {
    let s = RewardScheme::default();
    let cases = [
        (r"\boxed{\frac{1}{2}}", "0.5", Verdict::EqualExact),
        (r"\boxed{48^\circ}", "48", Verdict::EqualAfterUnits),
        (r"\boxed{\text{Evelyn}}", "evelyn", Verdict::EqualText),
        (r"\boxed{\sqrt{8}}", r"2\sqrt{2}", Verdict::EqualSymbolic),
        (r"\boxed{7}", "8", Verdict::WrongValue),
        (r"\boxed{5 \times 6}", "30", Verdict::NotFinalForm),
        ("the answer is 30", "30", Verdict::NoAnswer),
        (r"\boxed{}", "30", Verdict::NoAnswer),
        (r"\boxed{30}", "", Verdict::InvalidGold),
    ];
    for (response, gold, want) in cases {
        let g = grade(response, gold, &s);
        assert_eq!(g.verdict, want, "{response} for {gold:?}: {g:?}");
        assert_eq!(g.correct, want.is_correct());
    }
    let g = grade(r"\boxed{\frac{5}{11}}", "0.5", &s);
    assert_eq!(g.detail.as_deref(), Some(r"\frac{5}{11} vs 0.5"));
    let g = grade(r"\boxed{(7 + 3) \times 3}", "30", &s);
    assert_eq!(
        g.detail.as_deref(),
        Some(r"(7 + 3) \times 3 has arithmetic left to do")
    );
}
