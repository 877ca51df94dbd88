//! Answer grading: find the final answer in a response, decide whether it
//! equals the gold answer, and turn that into the rule reward.
//!
//! - [`extract`]: the last `\boxed{}` (and opt-in fallbacks for evaluation);
//! - [`normalize`]: string clean-up that never changes a value;
//! - [`parse`]: a nom parser into an [`expr::Expr`] tree;
//! - [`eval`]: exact (big rational) and complex-float evaluation, bounded;
//! - [`policy`]: when two answers are the same (every judgement call);
//! - [`reward`]: the recipe's reward, in one function.
//!
//! ```
//! assert!(grader::is_equivalent(r"\frac{1}{2}", "0.5"));
//! assert!(grader::is_equivalent(r"48^\circ", "48"));
//! assert!(!grader::is_equivalent(r"(1, 2]", "[1, 2]"));
//! let g = grader::grade(r"so the answer is $\boxed{\dfrac{14}{3}}$", r"\frac{14}{3}", &Default::default());
//! assert_eq!(g.reward, 1.0);
//! ```

pub mod cases;
pub mod eval;
pub mod expr;
pub mod extract;
pub mod normalize;
pub mod parse;
pub mod policy;
pub mod reward;
pub mod verdict;

pub use expr::Rat;
pub use extract::Fallbacks;
pub use reward::{
    cut_at_stop, grade, grade_with, Grade, RewardScheme, REFLECTION_WORDS, STOP_WORDS,
};
pub use verdict::{Judgement, Verdict};

use expr::Expr;

/// Answers longer than this are compared as normalised text only.
pub const MAX_PARSE_LEN: usize = 2_000;

/// A parsed answer: its normalised text, whether it was a percentage, and
/// its expression tree (text when it does not parse).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub text: String,
    pub percent: bool,
    /// Units, degree and currency signs stripped from it (see
    /// [`normalize::Normalized::units`]).
    pub units: Option<String>,
    pub expr: Expr,
}

impl Answer {
    pub fn parse(answer: &str) -> Answer {
        let n = normalize::normalize(answer);
        let expr = if n.text.len() > MAX_PARSE_LEN || looks_like_text(&n.text) {
            Expr::Text(n.text.clone())
        } else if let Some(c) = choice(&n.text) {
            Expr::Letter(c)
        } else {
            parse::parse(&n.text).unwrap_or_else(|| Expr::Text(n.text.clone()))
        };
        Answer {
            text: n.text,
            percent: n.percent,
            units: n.units,
            expr,
        }
    }
}

/// "(C)" after normalisation.
fn choice(s: &str) -> Option<char> {
    let b = s.as_bytes();
    (b.len() == 3 && b[0] == b'(' && b[2] == b')' && b[1].is_ascii_uppercase())
        .then(|| b[1] as char)
}

/// Words, not math: no digits, no commands, and a run of three or more
/// letters that is not a function name ("Evelyn", "odd", "None of these").
fn looks_like_text(s: &str) -> bool {
    if s.contains(|c: char| c.is_ascii_digit() || c == '\\' || c == '^' || c == '=') {
        return false;
    }
    s.split(|c: char| !c.is_ascii_alphabetic())
        .any(|w| w.len() >= 3 && expr::Func::from_name(w).is_none() && w != "sqrt" && w != "pi")
}

/// Whether `pred` is the same answer as `gold` (both bare answers, not
/// responses). See [`policy`] for what "the same" means.
pub fn is_equivalent(gold: &str, pred: &str) -> bool {
    judge(gold, pred).verdict.is_correct()
}

/// The verdict on `pred` (a bare answer) against `gold`, with why.
pub fn judge(gold: &str, pred: &str) -> Judgement {
    match gold_answer(gold) {
        Some(g) => policy::judge(&Answer::parse(&g), &Answer::parse(pred)),
        None => Judgement::empty_gold(),
    }
}

/// The gold answer as it is graded: trimmed, and a boxed gold
/// (`\boxed{5}`, `$\boxed{5}$`) unwrapped to its last box. `None` when
/// nothing is left to grade against (an empty or blank gold, an empty
/// box).
pub fn gold_answer(gold: &str) -> Option<String> {
    let g = gold.trim();
    let boxed = (g.contains("\\boxed") || g.contains("\\fbox"))
        .then(|| extract::last_boxed(g))
        .flatten();
    let g = boxed.as_deref().unwrap_or(g).trim();
    (!policy::is_empty_answer(g)).then(|| g.to_string())
}
