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
}

/// Problems of one level: (expression as text, value).
fn draw(level: i64, rng: &mut SplitMix64) -> (String, i64) {
    let mut r = |lo, hi| rng.range(lo, hi);
    match level {
        1 => match r(0, 2) {
            0 => {
                let (a, b) = (r(0, 9), r(0, 9));
                (format!("{a} + {b}"), a + b)
            }
            1 => {
                let (a, b) = (r(0, 9), r(0, 9));
                let (a, b) = (a.max(b), a.min(b));
                (format!("{a} - {b}"), a - b)
            }
            _ => {
                let (a, b) = (r(1, 9), r(1, 9));
                (format!("{a} \\times {b}"), a * b)
            }
        },
        2 => match r(0, 3) {
            0 => {
                let (a, b) = (r(10, 99), r(1, 9));
                (format!("{a} + {b}"), a + b)
            }
            1 => {
                let (a, b) = (r(10, 99), r(10, 99));
                (format!("{a} + {b}"), a + b)
            }
            2 => {
                let (a, b) = (r(10, 99), r(1, 9));
                (format!("{a} - {b}"), a - b)
            }
            _ => {
                let (a, b) = (r(2, 9), r(10, 99));
                (format!("{a} \\times {b}"), a * b)
            }
        },
        _ => match r(0, 2) {
            0 => {
                let (a, b, c) = (r(10, 99), r(10, 99), r(10, 99));
                (format!("{a} + {b} - {c}"), a + b - c)
            }
            1 => {
                let (a, b, c) = (r(2, 9), r(10, 99), r(1, 99));
                (format!("{a} \\times {b} + {c}"), a * b + c)
            }
            _ => {
                let (a, b, c) = (r(1, 9), r(1, 9), r(2, 9));
                (format!("({a} + {b}) \\times {c}"), (a + b) * c)
            }
        },
    }
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
        };
        // When a level is exhausted, repeated misses push draws up a level.
        let level = (level + (misses / 64) as i64).min(3);
        let (expr, value) = draw(level, &mut rng);
        if !seen.insert(expr.clone()) {
            misses += 1;
            assert!(misses < 1_000_000, "cannot find {count} distinct problems");
            continue;
        }
        misses = 0;
        let mut metadata = Map::new();
        metadata.insert("expression".into(), json!(expr));
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
    fn mixed_is_mostly_easy() {
        let ps = generate(200, Difficulty::Mixed, 3);
        let easy = ps.iter().filter(|p| p.level == Some(1)).count();
        assert!(easy > 100, "{easy}");
    }
}
