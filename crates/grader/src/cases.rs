//! Scoring the grader on labelled cases (../shared/verifier-cases):
//! variants.jsonl (rewrites of real gold answers, each labelled with what
//! it was built to be) and math-verify's own test-suite cases.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::reward::{grade, RewardScheme};

/// One labelled variant: the gold, a response that states the variant in
/// `\boxed{}`, and what the variant was built to be.
#[derive(Debug, Clone)]
pub struct Variant {
    pub pair_id: String,
    pub gold: String,
    pub variant: String,
    pub model_output: String,
    pub intent: String,
    pub variant_type: String,
}

pub fn read_variants(text: &str) -> Result<Vec<Variant>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let v: Value = serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1))?;
            let s = |k: &str| {
                v[k].as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("line {}: missing `{k}`", i + 1))
            };
            Ok(Variant {
                pair_id: s("pair_id")?,
                gold: s("gold_answer")?,
                variant: s("variant")?,
                model_output: s("model_output")?,
                intent: s("construction_intent")?,
                variant_type: s("variant_type")?,
            })
        })
        .collect()
}

/// Per (intent, variant_type): (accepted, total).
#[derive(Debug, Default)]
pub struct VariantReport {
    pub by_type: BTreeMap<(String, String), (usize, usize)>,
    pub failures: Vec<(String, String, String)>,
}

impl VariantReport {
    /// (accepted, total) over every type of one intent.
    pub fn intent(&self, intent: &str) -> (usize, usize) {
        self.by_type
            .iter()
            .filter(|((i, _), _)| i == intent)
            .fold((0, 0), |(a, t), (_, (x, y))| (a + x, t + y))
    }
}

/// Grade every variant's full response against its gold.
pub fn score_variants(variants: &[Variant]) -> VariantReport {
    let mut r = VariantReport::default();
    let scheme = RewardScheme::default();
    for v in variants {
        let g = grade(&v.model_output, &v.gold, &scheme);
        let e = r
            .by_type
            .entry((v.intent.clone(), v.variant_type.clone()))
            .or_default();
        e.1 += 1;
        if g.correct {
            e.0 += 1;
        }
        let expected = match v.intent.as_str() {
            "same" | "equivalent" | "equivalent_with_unit" => Some(true),
            "wrong" => Some(false),
            _ => None,
        };
        if expected.is_some_and(|x| x != g.correct) {
            r.failures
                .push((v.pair_id.clone(), v.gold.clone(), v.variant.clone()));
        }
    }
    r
}

impl std::fmt::Display for VariantReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "| intent | variant_type | accepted | total | rate |")?;
        writeln!(f, "|---|---|---|---|---|")?;
        for ((intent, ty), (a, t)) in &self.by_type {
            writeln!(
                f,
                "| {intent} | {ty} | {a} | {t} | {:.2}% |",
                100.0 * *a as f64 / *t as f64
            )?;
        }
        writeln!(f)?;
        for intent in [
            "same",
            "equivalent",
            "equivalent_with_unit",
            "approx_numeric",
            "ambiguous",
            "wrong",
        ] {
            let (a, t) = self.intent(intent);
            if t > 0 {
                writeln!(
                    f,
                    "{intent}: accepted {a} of {t} ({:.2}%)",
                    100.0 * a as f64 / t as f64
                )?;
            }
        }
        Ok(())
    }
}

/// A math-verify test-suite case that compares a gold with a prediction.
#[derive(Debug, Clone)]
pub struct MathVerifyCase {
    pub test_id: String,
    pub gold: String,
    pub pred: String,
    pub expected: bool,
}

/// The cases whose expectation is a verdict (not the string-extraction
/// cases, which test math-verify's extraction API).
pub fn read_mathverify(text: &str) -> Result<Vec<MathVerifyCase>, String> {
    let mut out = Vec::new();
    for (i, l) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: Value = serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1))?;
        let expected = match &v["expected"] {
            Value::Number(n) => n.as_i64() == Some(1),
            _ => continue,
        };
        out.push(MathVerifyCase {
            test_id: v["test_id"].as_str().unwrap_or_default().to_string(),
            gold: v["gold"].as_str().unwrap_or_default().to_string(),
            pred: v["pred"].as_str().unwrap_or_default().to_string(),
            expected,
        });
    }
    Ok(out)
}

/// Our verdict on a math-verify case: both sides are texts from which
/// the answer is extracted with the evaluation fallbacks.
pub fn mathverify_verdict(c: &MathVerifyCase) -> bool {
    crate::is_equivalent(&answer_of(&c.gold), &answer_of(&c.pred))
}

/// Words outside LaTeX commands: "so the number is 10".
fn is_prose(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphabetic() {
            let start = i;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            let command = start > 0 && b[start - 1] == b'\\';
            if !command && i - start >= 3 {
                return true;
            }
        } else {
            i += 1;
        }
    }
    false
}

/// A short plain answer as it is; otherwise what the evaluation
/// extraction finds in it.
fn answer_of(text: &str) -> String {
    let plain =
        text.len() <= 100 && !text.contains('$') && !text.contains("\\boxed") && !is_prose(text);
    if plain {
        return text.to_string();
    }
    crate::extract::extract_answer(text, crate::Fallbacks::ALL)
        .map(|a| a.0)
        .unwrap_or_else(|| text.to_string())
}

/// The answer a policy that computes nothing would box (the copy bench,
/// `make bench-copy`): the problem's own expression where the set records
/// it (the arithmetic sets' `expression`), else the question's last math
/// span (`\dbinom{8}{4}` for "Compute $\dbinom{8}{4}$."). `None` when the
/// question has neither.
pub fn copied_answer(question: &str, expression: Option<&str>) -> Option<String> {
    expression
        .map(str::to_string)
        .or_else(|| crate::extract::last_math_span(question).map(|(_, s)| s))
        .filter(|s| !s.trim().is_empty())
}

/// What boxing the question earned on one set.
#[derive(Debug, Clone, Default)]
pub struct CopyReport {
    pub problems: usize,
    /// Problems with something to copy.
    pub copied: usize,
    /// Copies rewarded as correct.
    pub rewarded: usize,
    pub by_verdict: BTreeMap<crate::Verdict, usize>,
    /// Each rewarded copy: (copy, gold, verdict).
    pub rewarded_copies: Vec<(String, String, crate::Verdict)>,
}

impl CopyReport {
    /// The share of all problems on which copying earns +1.
    pub fn rewarded_share(&self) -> f64 {
        self.rewarded as f64 / self.problems.max(1) as f64
    }
}

/// Box each problem's [`copied_answer`] and grade it with the recipe's
/// reward: (question, gold, expression) per problem.
pub fn score_copies<'a>(
    problems: impl IntoIterator<Item = (&'a str, &'a str, Option<&'a str>)>,
) -> CopyReport {
    let scheme = RewardScheme::default();
    let mut r = CopyReport::default();
    for (question, gold, expression) in problems {
        r.problems += 1;
        let Some(copy) = copied_answer(question, expression) else {
            continue;
        };
        r.copied += 1;
        let g = grade(
            &format!("The answer is $\\boxed{{{copy}}}$."),
            gold,
            &scheme,
        );
        *r.by_verdict.entry(g.verdict).or_default() += 1;
        if g.correct {
            r.rewarded += 1;
            r.rewarded_copies.push((copy, gold.to_string(), g.verdict));
        }
    }
    r
}

impl std::fmt::Display for CopyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} problems, {} with something to copy, {} earn +1 ({:.2}%); verdicts:",
            self.problems,
            self.copied,
            self.rewarded,
            100.0 * self.rewarded_share()
        )?;
        for (v, n) in &self.by_verdict {
            write!(f, " {v} {n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod copy_tests {
    use super::*;

    #[test]
    fn the_copy_policy_boxes_the_expression_or_the_last_span() {
        assert_eq!(
            copied_answer("What is 7 + 3?", Some("7 + 3")).as_deref(),
            Some("7 + 3")
        );
        assert_eq!(
            copied_answer(r"Compute $\dbinom{8}{4}$.", None).as_deref(),
            Some(r"\dbinom{8}{4}")
        );
        assert_eq!(copied_answer("How many apples?", None), None);
        let r = score_copies([
            ("Compute (7 + 3) × 3.", "30", Some(r"(7 + 3) \times 3")),
            (r"Compute $\dbinom{8}{4}$.", "70", None),
            (
                r"What is $\sqrt{53}$ in simplest radical form?",
                r"\sqrt{53}",
                None,
            ),
            ("How many?", "3", None),
        ]);
        assert_eq!((r.problems, r.copied, r.rewarded), (4, 3, 1));
        assert_eq!(r.by_verdict[&crate::Verdict::NotFinalForm], 2);
    }
}
