//! Why a response got its reward: one code per rule that decided, so a run
//! that learns to restate the question, or to stop answering, shows up in
//! its verdict counts.

/// The rule that decided a grade. [`Verdict::code`] is what verify writes
/// into scored.parquet's `verdict` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// The same answer: the same normalised text, or equal as exact
    /// numbers and exact structures (`0.5` = `\frac{1}{2}`).
    EqualExact,
    /// Equal in value where no exact arithmetic decides it: irrational
    /// constants within the float tolerance, expressions with variables at
    /// the test points, proportional equations.
    EqualSymbolic,
    /// Equal once a unit, degree sign, currency sign or percent sign was
    /// stripped from one side (`9 \text{ cm}` for `9`).
    EqualAfterUnits,
    /// An exact value that rounds to a decimal gold at the gold's places
    /// (`\frac{14}{3}` for `4.67`).
    EqualRounded,
    /// Text answers equal ignoring case, spacing and punctuation
    /// (`\text{Evelyn}` for `Evelyn`), or a multiple-choice letter.
    EqualText,
    /// A final answer, and not the gold's value.
    WrongValue,
    /// A numeric answer with arithmetic still to do (`8 \times 7`,
    /// `\frac{8\times7}{1}`, `\dbinom{8}{4}`): the question, not its answer.
    NotFinalForm,
    /// No final answer: no `\boxed{}`, or an empty one.
    NoAnswer,
    /// The comparison cannot be decided exactly (a value beyond what exact
    /// or float arithmetic resolves): never "equal".
    Undecidable,
    /// The gold answer is empty or cannot be graded against.
    InvalidGold,
}

impl Verdict {
    /// Every verdict, in the order docs and reports list them.
    pub const ALL: [Verdict; 10] = [
        Verdict::EqualExact,
        Verdict::EqualSymbolic,
        Verdict::EqualAfterUnits,
        Verdict::EqualRounded,
        Verdict::EqualText,
        Verdict::WrongValue,
        Verdict::NotFinalForm,
        Verdict::NoAnswer,
        Verdict::Undecidable,
        Verdict::InvalidGold,
    ];

    /// The short code written to the `verdict` column.
    pub fn code(self) -> &'static str {
        match self {
            Verdict::EqualExact => "equal_exact",
            Verdict::EqualSymbolic => "equal_symbolic",
            Verdict::EqualAfterUnits => "equal_after_units",
            Verdict::EqualRounded => "equal_rounded",
            Verdict::EqualText => "equal_text",
            Verdict::WrongValue => "wrong_value",
            Verdict::NotFinalForm => "not_final_form",
            Verdict::NoAnswer => "no_answer",
            Verdict::Undecidable => "undecidable",
            Verdict::InvalidGold => "invalid_gold",
        }
    }

    /// The verdict with this code.
    pub fn from_code(code: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.code() == code)
    }

    /// Whether the answer counts as correct (+1).
    pub fn is_correct(self) -> bool {
        matches!(
            self,
            Verdict::EqualExact
                | Verdict::EqualSymbolic
                | Verdict::EqualAfterUnits
                | Verdict::EqualRounded
                | Verdict::EqualText
        )
    }

    /// What the code means, in one line (docs/schemas.md).
    pub fn meaning(self) -> &'static str {
        match self {
            Verdict::EqualExact => "correct: the same text, or equal as exact numbers or structures (`0.5` for `\\frac{1}{2}`)",
            Verdict::EqualSymbolic => "correct: equal in value where exact arithmetic cannot decide (irrationals within 1e-10, variables at test points, proportional equations)",
            Verdict::EqualAfterUnits => "correct: equal once a unit, degree, currency or percent sign is stripped (`9 \\text{ cm}` for `9`)",
            Verdict::EqualRounded => "correct: an exact value that rounds to the decimal gold at its places (`\\frac{14}{3}` for `4.67`)",
            Verdict::EqualText => "correct: the same text ignoring case, spacing and punctuation, or the same choice letter",
            Verdict::WrongValue => "wrong (-0.5): a final answer with another value",
            Verdict::NotFinalForm => "wrong (-0.5): a numeric answer with arithmetic left to do (`8 \\times 7`, `\\dbinom{8}{4}`), the question restated",
            Verdict::NoAnswer => "no answer (-1): no `\\boxed{}`, or an empty one",
            Verdict::Undecidable => "wrong (-0.5): equality cannot be decided exactly (values past what exact or float arithmetic resolves)",
            Verdict::InvalidGold => "not graded as correct: the gold answer is empty or unusable (verify refuses such rows)",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// A verdict and, where it helps, one line saying why (`5/11 vs 1/2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub verdict: Verdict,
    pub detail: Option<String>,
}

impl Judgement {
    pub fn new(verdict: Verdict) -> Judgement {
        Judgement {
            verdict,
            detail: None,
        }
    }

    /// A gold with nothing to grade against.
    pub fn empty_gold() -> Judgement {
        Judgement::with(Verdict::InvalidGold, "the gold answer is empty")
    }

    pub fn with(verdict: Verdict, detail: impl Into<String>) -> Judgement {
        Judgement {
            verdict,
            detail: Some(one_line(detail.into())),
        }
    }
}

/// At most [`DETAIL_CHARS`] characters on one line.
fn one_line(s: String) -> String {
    let plain = |c: char| !c.is_whitespace() || c == ' ';
    if s.len() <= DETAIL_CHARS && s.chars().all(plain) && !s.contains("  ") {
        return s;
    }
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= DETAIL_CHARS {
        return flat;
    }
    let cut: String = flat.chars().take(DETAIL_CHARS - 3).collect();
    format!("{cut}...")
}

/// The longest detail line.
pub const DETAIL_CHARS: usize = 120;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_round_trip() {
        for v in Verdict::ALL {
            assert_eq!(Verdict::from_code(v.code()), Some(v));
            assert!(!v.meaning().is_empty());
        }
        let mut codes: Vec<_> = Verdict::ALL.iter().map(|v| v.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), Verdict::ALL.len());
        assert_eq!(
            Verdict::ALL.iter().filter(|v| v.is_correct()).count(),
            5,
            "five ways to be right"
        );
    }

    #[test]
    fn detail_is_one_short_line() {
        let j = Judgement::with(Verdict::WrongValue, format!("a\nb {}", "x".repeat(500)));
        let d = j.detail.unwrap();
        assert!(!d.contains('\n') && d.chars().count() == DETAIL_CHARS);
    }
}
