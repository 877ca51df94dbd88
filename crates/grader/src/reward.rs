//! The recipe's rule reward: the one place it is defined.

use crate::extract::{extract_answer, Fallbacks};
use crate::verdict::{Judgement, Verdict};

/// The reward values; the recipe's are the default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RewardScheme {
    /// A final answer that is correct.
    pub correct: f64,
    /// A final answer that is wrong.
    pub wrong: f64,
    /// No final answer.
    pub no_answer: f64,
}

impl Default for RewardScheme {
    fn default() -> Self {
        Self {
            correct: 1.0,
            wrong: -0.5,
            no_answer: -1.0,
        }
    }
}

impl RewardScheme {
    pub fn reward(&self, has_answer: bool, correct: bool) -> f64 {
        match (has_answer, correct) {
            (false, _) => self.no_answer,
            (true, true) => self.correct,
            (true, false) => self.wrong,
        }
    }
}

/// Where the recipe's reward cuts a response before looking for its
/// answer: the end-of-turn and end-of-text markers of the templates it
/// uses. A `\boxed{}` written after the end of the turn earns nothing.
pub const STOP_WORDS: [&str; 3] = ["</s>", "<|im_end|>", "<|endoftext|>"];

/// The reflection phrases of the recipe's analysis (the words whose share
/// of responses `report` charts).
pub const REFLECTION_WORDS: &[&str] = &[
    "wait",
    "let me check",
    "re-evaluate",
    "verify",
    "however",
    "alternatively",
];

/// `response` up to the first occurrence of any of `stop_words` (empty
/// stop words are ignored).
pub fn cut_at_stop<'a, S: AsRef<str>>(response: &'a str, stop_words: &[S]) -> &'a str {
    let end = stop_words
        .iter()
        .map(AsRef::as_ref)
        .filter(|w| !w.is_empty())
        .filter_map(|w| response.find(w))
        .min()
        .unwrap_or(response.len());
    &response[..end]
}

/// The grade of one response.
#[derive(Debug, Clone, PartialEq)]
pub struct Grade {
    pub extracted_answer: Option<String>,
    pub has_answer: bool,
    pub correct: bool,
    pub reward: f64,
    /// The rule that decided it.
    pub verdict: Verdict,
    /// One line on why, where it helps (`5/11 vs 1/2`).
    pub detail: Option<String>,
}

/// Grade a response the way the recipe's reward does: the last `\boxed{}`
/// is the answer; none means no answer.
pub fn grade(response: &str, gold: &str, scheme: &RewardScheme) -> Grade {
    grade_with(response, gold, scheme, Fallbacks::NONE)
}

/// [`grade`] with opt-in extraction fallbacks (for evaluation).
pub fn grade_with(
    response: &str,
    gold: &str,
    scheme: &RewardScheme,
    fallbacks: Fallbacks,
) -> Grade {
    let extracted = extract_answer(response, fallbacks).map(|(a, _)| a);
    let has_answer = extracted
        .as_deref()
        .is_some_and(|a| !crate::policy::is_empty_answer(a));
    let judgement = match (has_answer, &extracted) {
        (true, Some(answer)) => crate::judge(gold, answer),
        _ if crate::gold_answer(gold).is_none() => Judgement::empty_gold(),
        _ => Judgement::new(Verdict::NoAnswer),
    };
    let correct = has_answer && judgement.verdict.is_correct();
    Grade {
        reward: scheme.reward(has_answer, correct),
        extracted_answer: extracted,
        has_answer,
        correct,
        verdict: judgement.verdict,
        detail: judgement.detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_cut_at_its_first_stop_word() {
        let r = "so \\boxed{3}<|im_end|>\n<|im_start|>user: \\boxed{4}</s>";
        assert_eq!(cut_at_stop(r, &STOP_WORDS), "so \\boxed{3}");
        assert_eq!(cut_at_stop("no stop", &STOP_WORDS), "no stop");
        assert_eq!(cut_at_stop("a</s>b", &["", "</s>"]), "a");
        let none: [&str; 0] = [];
        assert_eq!(cut_at_stop(r, &none), r);
        let s = RewardScheme::default();
        assert_eq!(grade(cut_at_stop(r, &STOP_WORDS), "4", &s).reward, -0.5);
    }

    #[test]
    fn the_three_rewards() {
        let s = RewardScheme::default();
        assert_eq!(grade(r"\boxed{4}", "4", &s).reward, 1.0);
        assert_eq!(grade(r"\boxed{5}", "4", &s).reward, -0.5);
        assert_eq!(grade("the answer is 4", "4", &s).reward, -1.0);
        assert_eq!(grade(r"\boxed{}", "4", &s).reward, -1.0);
        // Empty boxes are no answer, however they are braced or spaced.
        for empty in [
            r"\boxed{{}}",
            r"put it in \boxed{{}}.",
            r"\boxed{ \, }",
            r"\boxed{\quad}",
        ] {
            let g = grade(empty, "4", &s);
            assert!(!g.has_answer && g.reward == -1.0, "{empty}: {g:?}");
        }
        assert_eq!(grade(r"\boxed{{4}}", "4", &s).reward, 1.0);
        // The question copied into the box is not its answer; final forms are.
        assert_eq!(grade(r"\boxed{65 + 21}", "86", &s).reward, -0.5);
        assert_eq!(grade(r"\boxed{5 \times 6}", "30", &s).reward, -0.5);
        for ok in [r"\boxed{86}", r"\boxed{86.0}", r"\boxed{\frac{172}{2}}"] {
            assert_eq!(grade(ok, "86", &s).reward, 1.0, "{ok}");
        }
        assert_eq!(grade(r"\boxed{1\frac{4}{5}}", "9/5", &s).reward, 1.0);
        assert_eq!(grade(r"\boxed{3 \times 10^{5}}", "300000", &s).reward, 1.0);
        let custom = RewardScheme {
            correct: 2.0,
            wrong: 0.0,
            no_answer: -3.0,
        };
        assert_eq!(grade(r"\boxed{5}", "4", &custom).reward, 0.0);
    }
}
