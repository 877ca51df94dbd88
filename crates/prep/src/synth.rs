//! The built-in arithmetic set: problems a 135M model can partly solve, so
//! RL has signal from the first step. Exact answers; deterministic for a
//! seed; no problem twice (the id is the expression, so the train/holdout
//! split never puts the same sum on both sides).

use serde_json::{json, Map};

use crate::raw::Problem;
use rng::{fnv1a, SplitMix64};

/// How hard the generated problems are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Difficulty {
    /// Level 1: one digit with one digit (+, -, x).
    Easy,
    /// Level 2: two digits with one or two digits.
    Medium,
    /// Level 3: two-step expressions (a + b - c, a x b + c, (a + b) x c).
    Hard,
    /// Mostly easy: 60% level 1, 30% level 2, 10% level 3.
    Mixed,
    /// Mostly two steps: 20% level 1, 20% level 2, 60% level 3, so
    /// one-step problems are a minority.
    Steps,
    /// One-digit operands, mostly two steps: draws 30% level 1 (one step),
    /// 70% two-step expressions of one-digit numbers (a + b - c, a x b + c,
    /// (a + b) x c); level 1 has only 236 distinct problems, so 1,000
    /// problems are about 80% two-step and one-step sums under a tenth. What a 135M model
    /// can learn to compute step by step: it gets two-digit carries wrong
    /// (the default's base model writes "9 + 99 = 101").
    DigitSteps,
}

/// A problem's kind, as its metadata's `kind` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Kind {
    /// a + b
    Add,
    /// a - b
    Sub,
    /// a x b
    Mul,
    /// a + b - c
    AddSub,
    /// a x b + c
    MulAdd,
    /// (a + b) x c
    ParenMul,
}

impl Kind {
    /// The metadata's spelling: `add`, `sub`, `mul`, `add-sub`, `mul-add`, `paren-mul`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Add => "add",
            Kind::Sub => "sub",
            Kind::Mul => "mul",
            Kind::AddSub => "add-sub",
            Kind::MulAdd => "mul-add",
            Kind::ParenMul => "paren-mul",
        }
    }
}

/// One drawn problem: the expression (LaTeX `\\times`), its value, its
/// kind, how many operations it takes, and a worked solution.
struct Drawn {
    expr: String,
    value: i64,
    kind: Kind,
    ops: usize,
    /// the steps, one per line, each an equation a reader can check
    steps: Vec<String>,
}

/// `a + b = r`, through the tens when both have two digits
/// (`45 + 38 = 45 + 30 + 8 = 75 + 8 = 83`).
fn add_steps(a: i64, b: i64) -> String {
    if a >= 10 && b >= 10 && b % 10 != 0 {
        let (t, o) = (b - b % 10, b % 10);
        format!("{a} + {b} = {a} + {t} + {o} = {} + {o} = {}", a + t, a + b)
    } else {
        format!("{a} + {b} = {}", a + b)
    }
}

/// `a × b = r`, through the tens when b has two digits
/// (`7 × 23 = 7 × 20 + 7 × 3 = 140 + 21 = 161`).
fn mul_steps(a: i64, b: i64) -> String {
    if b >= 10 && b % 10 != 0 {
        let (t, o) = (b - b % 10, b % 10);
        format!(
            "{a} × {b} = {a} × {t} + {a} × {o} = {} + {} = {}",
            a * t,
            a * o,
            a * b
        )
    } else {
        format!("{a} × {b} = {}", a * b)
    }
}

/// Problems of one level; `one_digit`: level 3's operands have one digit.
fn draw(level: i64, one_digit: bool, rng: &mut SplitMix64) -> Drawn {
    let mut r = |lo, hi| rng.range(lo, hi);
    let one = |expr: String, value, kind, step: String| Drawn {
        expr,
        value,
        kind,
        ops: 1,
        steps: vec![step],
    };
    let add = |a: i64, b: i64| one(format!("{a} + {b}"), a + b, Kind::Add, add_steps(a, b));
    let sub = |a: i64, b: i64| {
        one(
            format!("{a} - {b}"),
            a - b,
            Kind::Sub,
            format!("{a} - {b} = {}", a - b),
        )
    };
    let mul = |a: i64, b: i64| {
        one(
            format!("{a} \\times {b}"),
            a * b,
            Kind::Mul,
            mul_steps(a, b),
        )
    };
    match level {
        1 => match r(0, 2) {
            0 => add(r(0, 9), r(0, 9)),
            1 => {
                let (a, b) = (r(0, 9), r(0, 9));
                sub(a.max(b), a.min(b))
            }
            _ => mul(r(1, 9), r(1, 9)),
        },
        2 => match r(0, 3) {
            0 => add(r(10, 99), r(1, 9)),
            1 => add(r(10, 99), r(10, 99)),
            2 => sub(r(10, 99), r(1, 9)),
            _ => mul(r(2, 9), r(10, 99)),
        },
        _ => match r(0, 2) {
            0 => {
                let (a, b, c) = if one_digit {
                    (r(1, 9), r(1, 9), r(1, 9))
                } else {
                    (r(10, 99), r(10, 99), r(10, 99))
                };
                Drawn {
                    expr: format!("{a} + {b} - {c}"),
                    value: a + b - c,
                    kind: Kind::AddSub,
                    ops: 2,
                    steps: vec![
                        format!("First, {}.", add_steps(a, b)),
                        format!("Then, {} - {c} = {}.", a + b, a + b - c),
                    ],
                }
            }
            1 => {
                let (a, b, c) = if one_digit {
                    (r(2, 9), r(2, 9), r(1, 9))
                } else {
                    (r(2, 9), r(10, 99), r(1, 99))
                };
                Drawn {
                    expr: format!("{a} \\times {b} + {c}"),
                    value: a * b + c,
                    kind: Kind::MulAdd,
                    ops: 2,
                    steps: vec![
                        format!("First, the product: {}.", mul_steps(a, b)),
                        format!("Then, {}.", add_steps(a * b, c)),
                    ],
                }
            }
            _ => {
                let (a, b, c) = (r(1, 9), r(1, 9), r(2, 9));
                Drawn {
                    expr: format!("({a} + {b}) \\times {c}"),
                    value: (a + b) * c,
                    kind: Kind::ParenMul,
                    ops: 2,
                    steps: vec![
                        format!("First, the parentheses: {}.", add_steps(a, b)),
                        format!("Then, {}.", mul_steps(a + b, c)),
                    ],
                }
            }
        },
    }
}

/// A worked solution: the steps, then the answer in `\\boxed{}` (the
/// `solution` field: `prep-math synth --response-field solution` writes
/// them as an SFT set).
fn solution(d: &Drawn) -> String {
    format!(
        "{}\n\nThe answer is \\boxed{{{}}}.",
        d.steps.join("\n"),
        d.value
    )
}

/// How the question is asked: chosen by the expression, so one
/// expression always reads the same.
fn phrase(expr: &str) -> String {
    let plain = expr.replace("\\times", "×");
    match fnv1a(expr) % 3 {
        0 => format!("What is {plain}?"),
        1 => format!("Compute {plain}."),
        _ => format!("Calculate the value of {plain}."),
    }
}

/// `count` distinct problems of `difficulty`, deterministic for `seed`.
/// Level 1 has 236 distinct problems; past that, draws move up a level.
pub fn generate(count: usize, difficulty: Difficulty, seed: u64) -> Vec<Problem> {
    let mut rng = SplitMix64::new(seed);
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(count);
    let mut misses = 0usize;
    while out.len() < count {
        let level = match difficulty {
            Difficulty::Easy => 1,
            Difficulty::Medium => 2,
            Difficulty::Hard => 3,
            Difficulty::Mixed => match rng.unit() {
                u if u < 0.6 => 1,
                u if u < 0.9 => 2,
                _ => 3,
            },
            Difficulty::Steps => match rng.unit() {
                u if u < 0.2 => 1,
                u if u < 0.4 => 2,
                _ => 3,
            },
            Difficulty::DigitSteps => match rng.unit() {
                u if u < 0.3 => 1,
                _ => 3,
            },
        };
        // When a level is exhausted, repeated misses push draws up a level
        // (DigitSteps has no level 2: its level 1 moves to 3).
        let one_digit = difficulty == Difficulty::DigitSteps;
        let mut level = (level + (misses / 64) as i64).min(3);
        if one_digit && level == 2 {
            level = 3;
        }
        let d = draw(level, one_digit, &mut rng);
        let (expr, value) = (d.expr.clone(), d.value);
        if !seen.insert(expr.clone()) {
            misses += 1;
            assert!(misses < 1_000_000, "cannot find {count} distinct problems");
            continue;
        }
        misses = 0;
        let mut metadata = Map::new();
        metadata.insert("expression".into(), json!(expr));
        metadata.insert("kind".into(), json!(d.kind.as_str()));
        metadata.insert("operations".into(), json!(d.ops));
        metadata.insert("solution".into(), json!(solution(&d)));
        out.push(Problem {
            id: format!("synth/{}", expr.replace(' ', "").replace("\\times", "*")),
            source: "synth".into(),
            question: phrase(&expr),
            answer: value.to_string(),
            level: Some(level),
            subject: Some("arithmetic".into()),
            metadata,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_for_a_seed_and_distinct() {
        let a = generate(300, Difficulty::Mixed, 7);
        let b = generate(300, Difficulty::Mixed, 7);
        assert_eq!(a, b);
        assert_ne!(a, generate(300, Difficulty::Mixed, 8));
        let ids: std::collections::HashSet<_> = a.iter().map(|p| &p.id).collect();
        assert_eq!(ids.len(), 300);
    }

    #[test]
    fn answers_are_exact() {
        for p in generate(500, Difficulty::Mixed, 1) {
            let expr = p.metadata["expression"]
                .as_str()
                .unwrap()
                .replace("\\times", "*");
            assert_eq!(eval(&expr), p.answer.parse::<i64>().unwrap(), "{expr}");
        }
    }

    /// Every worked solution checks: each line's equation chain holds
    /// (every side evaluates to the same number), its last step reaches
    /// the answer, and it ends in `\\boxed{answer}`; the kind and the
    /// number of operations match the expression.
    #[test]
    fn worked_solutions_check_and_end_in_the_boxed_answer() {
        let mut kinds = std::collections::BTreeSet::new();
        for p in generate(600, Difficulty::Mixed, 5) {
            let m = &p.metadata;
            let sol = m["solution"].as_str().unwrap();
            let (steps, last) = sol.split_once("\n\n").unwrap();
            assert_eq!(
                last,
                format!("The answer is \\boxed{{{}}}.", p.answer),
                "{sol}"
            );
            let mut reached = None;
            for line in steps.lines() {
                let eq = line
                    .trim_start_matches("First, the parentheses: ")
                    .trim_start_matches("First, the product: ")
                    .trim_start_matches("First, ")
                    .trim_start_matches("Then, ")
                    .trim_end_matches('.')
                    .replace('×', "*");
                let sides: Vec<i64> = eq.split(" = ").map(eval).collect();
                assert!(
                    sides.len() >= 2 && sides.iter().all(|&v| v == sides[0]),
                    "{line}"
                );
                reached = sides.last().copied();
            }
            assert_eq!(reached, Some(p.answer.parse().unwrap()), "{sol}");
            let expr = m["expression"].as_str().unwrap();
            let ops = expr.matches(['+', '-']).count() + expr.matches("\\times").count();
            assert_eq!(m["operations"].as_u64(), Some(ops as u64), "{expr}");
            assert_eq!(steps.lines().count(), ops, "{sol}");
            kinds.insert(m["kind"].as_str().unwrap().to_string());
        }
        let want = ["add", "add-sub", "mul", "mul-add", "paren-mul", "sub"];
        assert_eq!(kinds.into_iter().collect::<Vec<_>>(), want);
    }

    /// `--kinds` takes the names the metadata writes.
    #[cfg(feature = "clap")]
    #[test]
    fn kind_flag_names_are_the_metadata_names() {
        use clap::ValueEnum;
        for k in Kind::value_variants() {
            assert_eq!(k.to_possible_value().unwrap().get_name(), k.as_str());
        }
    }

    /// A tiny independent evaluator for + - * and parentheses.
    fn eval(s: &str) -> i64 {
        fn expr(t: &[char], i: &mut usize) -> i64 {
            let mut v = term(t, i);
            while *i < t.len() && (t[*i] == '+' || t[*i] == '-') {
                let op = t[*i];
                *i += 1;
                let r = term(t, i);
                v = if op == '+' { v + r } else { v - r };
            }
            v
        }
        fn term(t: &[char], i: &mut usize) -> i64 {
            let mut v = atom(t, i);
            while *i < t.len() && t[*i] == '*' {
                *i += 1;
                v *= atom(t, i);
            }
            v
        }
        fn atom(t: &[char], i: &mut usize) -> i64 {
            if t[*i] == '-' {
                *i += 1;
                return -atom(t, i);
            }
            if t[*i] == '(' {
                *i += 1;
                let v = expr(t, i);
                *i += 1;
                return v;
            }
            let start = *i;
            while *i < t.len() && t[*i].is_ascii_digit() {
                *i += 1;
            }
            t[start..*i].iter().collect::<String>().parse().unwrap()
        }
        let t: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
        expr(&t, &mut 0)
    }

    #[test]
    fn steps_is_mostly_two_step_with_every_kind() {
        let ps = generate(1000, Difficulty::Steps, 0);
        let two = ps.iter().filter(|p| p.metadata["operations"] == 2).count();
        assert!((550..=650).contains(&two), "{two} of 1000 two-step");
        let mut kinds: std::collections::BTreeMap<&str, usize> = Default::default();
        for p in &ps {
            *kinds
                .entry(p.metadata["kind"].as_str().unwrap())
                .or_default() += 1;
        }
        assert_eq!(kinds.len(), 6, "{kinds:?}");
        assert!(kinds.values().all(|&n| n >= 60), "{kinds:?}");
    }

    /// DigitSteps: every operand one digit, about 80% two-step, one-step sums
    /// under a tenth, every kind present, answers exact.
    #[test]
    fn digit_steps_are_one_digit_and_mostly_two_step() {
        let ps = generate(1000, Difficulty::DigitSteps, 0);
        let two = ps.iter().filter(|p| p.metadata["operations"] == 2).count();
        assert!((700..=850).contains(&two), "{two} of 1000 two-step");
        let sums = ps.iter().filter(|p| p.metadata["kind"] == "add").count();
        assert!(sums < 100, "{sums} one-step sums of 1000");
        let mut kinds = std::collections::BTreeSet::new();
        for p in &ps {
            let expr = p.metadata["expression"].as_str().unwrap();
            for n in expr
                .split(|c: char| !c.is_ascii_digit())
                .filter(|n| !n.is_empty())
            {
                assert_eq!(n.len(), 1, "{expr}");
            }
            assert_eq!(
                eval(&expr.replace("\\times", "*")),
                p.answer.parse::<i64>().unwrap()
            );
            kinds.insert(p.metadata["kind"].as_str().unwrap());
        }
        assert_eq!(kinds.len(), 6, "{kinds:?}");
    }

    #[test]
    fn mixed_is_mostly_easy() {
        let ps = generate(200, Difficulty::Mixed, 3);
        let easy = ps.iter().filter(|p| p.level == Some(1)).count();
        assert!(easy > 100, "{easy}");
    }
}
