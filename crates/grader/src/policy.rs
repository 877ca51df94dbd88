//! When two answers are the same answer, and the [`Verdict`] that says
//! why. Every judgement call lives here.
//!
//! | question | decision |
//! |---|---|
//! | Exact vs exact (integers, fractions, decimals, mixed numbers) | equal as rationals: `0.5 = 1/2`, `1.8 = 1\frac45`, `0.3888 = 243/625` |
//! | An approximation of an exact gold (`0.333` or `0.3333333` for `1/3`, `6.283185` for `2\pi`) | **wrong**: the problem asked for the exact value. Irrational values compare with relative tolerance [`REL_TOL`] (1e-10), far below any written approximation. Only a computed decimal of [`LONG_DECIMAL_DIGITS`] (12) or more significant digits that agrees to its last place is accepted (`0.0833333333333333` for `1/12`) |
//! | A decimal gold (`4.67`, `0.33`) vs an exact prediction (`14/3`, `1/3`) | right when the prediction rounds to the gold at the gold's decimal places (`equal_rounded`); a decimal prediction must equal it exactly (`27.04` is not `27.0`). A gold of one significant digit (`0.5`) is exact, not rounded: `\frac{5}{11}` is not `0.5` ([`ROUNDED_GOLD_DIGITS`]); a whole number written with a point (`43.0`, as JSON floats are written) is that whole number |
//! | Percent | `25\%` equals `25` and `0.25`; with no `%` on either side `0.25` is not `25` (no ×100 tolerance) |
//! | Degrees, dollars, trailing units, `\text{}` | stripped before comparing (`48^\circ` = `48`, `\$10.00` = `10`, `9 \text{ cm}` = `9`; `equal_after_units`). Units are a closed list ([`crate::normalize::UNITS`], with [`crate::normalize::UNIT_QUALIFIERS`] such as `square`, `per`): a trailing word not on it stays, so `5 million`, `2 \text{ squared}` and `5 \text{ not}` are not `5`/`2` |
//! | `x = 3` vs `3` | equal when one side of the equation is a lone variable; a chain `x = 5+5+1 = 11` takes its last value only when it starts at a lone variable and every step has that value (`6 = 7 = 5` and `x = 2 = 3` have none) |
//! | Equations vs equations | equal when `lhs - rhs` of each are proportional (`y = 2x+3` = `2x - y + 3 = 0`); inequalities need a positive factor |
//! | Expressions with variables | equal when they agree at several fixed random points and mention the same variables (`2t` is not `2s`); `\sum`s with the same index and bounds when their summands are equal expressions (a renamed index or a closed form of a symbolic sum is not recognised) |
//! | Bare lists `1, 2` and sets `\{1, 2\}` | unordered, repeats count (`16,3,1,1` is not `16,3,1`) |
//! | Tuples `(1, 2)` | ordered; `(a, b)` also reads as an open interval; `[a, b]` is a closed interval, never a tuple |
//! | Solutions as assignments `p=5, q=2; p=7, q=2` | the tuples `(5, 2), (7, 2)` when the same variables repeat in order |
//! | Intervals | bounds and closedness must match; unions are unordered; an inequality in one variable (or `f(x)`, or `\|x\|`) is its interval or union: `1 \le \|z\| \le 2` = `[-2,-1] \cup [1,2]` |
//! | `a \pm b` | the list `a + b, a - b` |
//! | Text | case-, space- and punctuation-insensitive (`equal_text`), except what changes a value: the operators `/ % + * ^ = < > !` (unparsed `1/1/` is not `1%1%`), a minus before a digit and a decimal point beside one (`-0.\overline{36}` is not `0.\overline{36}`, also for numbers too long to parse); number words (`nine`) are numbers |
//! | Multiple choice | `(C)`, `C`, `\textbf{(C)} 12` are the letter C |
//! | Base subscripts | `1011_2` equals `1011_2` or `1011`, not its decimal value `11` |
//! | A number with arithmetic left to do, at any depth (`65 + 21`, `\frac{8\times7}{1}`, `1\times(8\times7)`, `(8\times7)^1`, `10^{100}+5-10^{100}`, `\dbinom{8}{4}`, `\sum_{k=1}^{10} k`, `\sqrt{50}+\sqrt{18}`, `(5-3i)(-4+3i)`), also inside a tuple, list, set, interval or matrix | **wrong** (`not_final_form`, -0.5, not "no answer"): it is the question, not its answer, and a policy rewarded for it learns to copy the question into the box. The final forms are in [`pending_arithmetic`]: integers, decimals, fractions of integers (unreduced too: `\frac{28}{6}`), mixed numbers, scientific notation, `\pi`, `e`, `i`, `a + bi`, irrational radicals (not necessarily simplest: `\sqrt{117}` = `3\sqrt{13}`, as the labelled cases count it), multiples and quotients of irrationals by one rational (`\frac{3\pi}{4}`), sums of unlike terms, functions of numbers (`\ln 2`). A gold that is itself unfinished (`2^{2005}`) is compared by value. Expressions with variables are compared by value, not form. Sums and products of number matrices are likewise not a matrix answer |
//! | An empty box (`\boxed{}`, `\boxed{{}}`, `\boxed{ \, }`) | **no answer** (reward -1, not -0.5): only braces and spacing is not a final answer, and rewarding it as a wrong answer pays a policy for copying the instruction's `\boxed{{}}` |
//! | A box in a box | the outermost last box is the answer: `\boxed{\boxed{56}}` is 56, `\boxed{57 \boxed{56}}` is `57 \boxed{56}` (wrong for 56) |
//! | The gold | trimmed, a boxed gold (`\boxed{5}`) unwrapped; an empty or null one is `invalid_gold`, never graded as right (verify and prep-math refuse it, naming the row) |
//! | Floats that cannot decide | `undecidable`, never equal: a sum whose addend is below [`crate::eval::ABSORBED`] (1e-7) of the largest (`x+10^{-9}` vs `x`), a decimal with more digits than the tolerance resolves (`2.00000000001\pi` vs `2\pi`), both values within [`ZERO_FLOOR`] of zero (`\sin(\pi)+10^{-17}` vs `0`) |

use num_complex::Complex64;
use num_traits::{One, Signed, Zero};

use crate::eval::{exact, float, Fuel};
use crate::expr::{Const, Expr, Func, RelOp};
use crate::verdict::{Judgement, Verdict};
use crate::{Answer, Rat};

/// Relative tolerance for comparing irrational constants.
pub const REL_TOL: f64 = 1e-10;
/// Relative tolerance for comparing expressions at random points.
pub const POINT_TOL: f64 = 1e-8;
/// Points at which expressions with variables are compared.
const POINTS: [f64; 5] = [
    0.5772156649,
    1.3247179572,
    2.2360679775,
    0.6180339887,
    1.7320508076,
];
/// Work allowed for one comparison (evaluation steps).
pub const FUEL: u64 = 200_000;
/// Longest list compared element by element.
const MAX_ITEMS: usize = 256;

/// Whether an extracted answer has no content: only braces, whitespace
/// and spacing commands.
pub fn is_empty_answer(extracted: &str) -> bool {
    // Any digit, or a letter no spacing command has, is content.
    if extracted
        .bytes()
        .any(|b| b.is_ascii_digit() || (b.is_ascii_alphabetic() && !b"quad".contains(&b)))
    {
        return false;
    }
    let mut rest = extracted.to_string();
    for spacing in ["\\,", "\\;", "\\:", "\\!", "\\quad", "\\qquad", "\\ ", "~"] {
        rest = rest.replace(spacing, "");
    }
    rest.chars()
        .all(|c| c.is_whitespace() || c == '{' || c == '}')
}

/// What one comparison found on its way, for the verdict: how equality
/// was decided, or why it was refused.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub fuel: Fuel,
    /// Equality was decided in floats or at test points, not exactly.
    symbolic: bool,
    /// An exact value was accepted as rounding to a decimal gold.
    rounded: bool,
    /// Text or a choice letter decided it.
    text: bool,
    /// The first prediction part with arithmetic left to do.
    not_final: Option<String>,
    /// Why a comparison could not be decided.
    undecidable: Option<&'static str>,
}

impl Ctx {
    fn new() -> Ctx {
        Ctx {
            fuel: Fuel(FUEL),
            symbolic: false,
            rounded: false,
            text: false,
            not_final: None,
            undecidable: None,
        }
    }

    fn undecided(&mut self, why: &'static str) -> bool {
        self.undecidable.get_or_insert(why);
        false
    }

    /// `same`, noting how it was decided when it holds.
    fn note(&mut self, how: Note, same: bool) -> bool {
        if same {
            match how {
                Note::Symbolic => self.symbolic = true,
                Note::Rounded => self.rounded = true,
                Note::Text => self.text = true,
            }
        }
        same
    }
}

/// How an equality was decided, when not by exact arithmetic.
#[derive(Debug, Clone, Copy)]
enum Note {
    Symbolic,
    Rounded,
    Text,
}

/// Whether `pred` is the same answer as `gold`.
pub fn equivalent(gold: &Answer, pred: &Answer) -> bool {
    judge(gold, pred).verdict.is_correct()
}

/// The verdict on `pred` against `gold` (both bare answers), with one line
/// of detail where it helps.
pub fn judge(gold: &Answer, pred: &Answer) -> Judgement {
    if gold.text.is_empty() {
        return Judgement::empty_gold();
    }
    if pred.text.is_empty() {
        return Judgement::new(Verdict::NoAnswer);
    }
    let units = gold.units != pred.units || gold.percent != pred.percent;
    if gold.text == pred.text && !units {
        return Judgement::new(Verdict::EqualExact);
    }
    let mut cx = Ctx::new();
    let cx = &mut cx;
    let equal = match (gold.percent, pred.percent) {
        (false, true) => {
            eq(&gold.expr, &pred.expr, cx) || eq(&gold.expr, &hundredth(&pred.expr), cx)
        }
        (true, false) => {
            eq(&gold.expr, &pred.expr, cx) || eq(&hundredth(&gold.expr), &pred.expr, cx)
        }
        _ => eq(&gold.expr, &pred.expr, cx),
    };
    let versus = || format!("{} vs {}", pred.text, gold.text);
    if equal {
        let verdict = if units {
            Verdict::EqualAfterUnits
        } else if cx.text {
            Verdict::EqualText
        } else if cx.rounded {
            Verdict::EqualRounded
        } else if cx.symbolic {
            Verdict::EqualSymbolic
        } else {
            Verdict::EqualExact
        };
        return match verdict {
            Verdict::EqualAfterUnits => {
                let stripped = [&pred.units, &gold.units]
                    .into_iter()
                    .flatten()
                    .cloned()
                    .chain((gold.percent != pred.percent).then(|| "%".to_string()))
                    .collect::<Vec<_>>();
                Judgement::with(verdict, format!("stripped {}", stripped.join(", ")))
            }
            Verdict::EqualRounded | Verdict::EqualSymbolic => Judgement::with(verdict, versus()),
            _ => Judgement::new(verdict),
        };
    }
    if let Some(part) = cx.not_final.take() {
        return Judgement::with(
            Verdict::NotFinalForm,
            format!("{part} has arithmetic left to do"),
        );
    }
    if let Some(why) = cx.undecidable {
        return Judgement::with(Verdict::Undecidable, format!("{}: {why}", versus()));
    }
    Judgement::with(Verdict::WrongValue, versus())
}

/// Where a numeric answer still has arithmetic to do: the outermost such
/// part (`1 \times 8 \times 7`), or `None` when it is in a final form.
/// Expressions with variables are not judged by form. For a number
/// (variable-free), at every depth:
///
/// - **final literals**: integers, decimals, mixed numbers, base
///   numerals, a fraction of two integers (`\frac{28}{6}` too: unreduced
///   is still one fraction), scientific notation `a \times 10^{k}` and
///   `10^{k}`, `\pi`, `e`, `i`, `\infty`, negations of these, and complex
///   numbers `a + bi` of such parts;
/// - **arithmetic left**: any other form whose value is rational, or a
///   Gaussian rational with a denominator up to [`SIMPLE_DENOMINATOR`]
///   (`8 \times 7`, `\frac{8\times7}{1}`, `(56)^1`, `2^{10}`, `\sqrt{16}`,
///   `5!`, `\dbinom{8}{4}`, `10^{100}+5-10^{100}`, `\log_2 8`,
///   `\sin\frac{\pi}{6}`, `(5-3i)(-4+3i)`, `i^{11}`); a sum with like
///   terms (two addends in a rational ratio: `\sqrt{50}+\sqrt{18}`,
///   `2\pi - \pi`); a product with two rational factors or two radicals
///   (`\sqrt{15}\cdot\sqrt{35}`); a sum to a whole power
///   (`(-1 + i\sqrt{3})^8`); a quotient over 1; a power of 1 or 0;
/// - every other irrational form is final: radicals need not be in
///   simplest form (`\sqrt{117}` for `3\sqrt{13}`), products and quotients
///   of one rational with irrationals (`3\sqrt{13}`, `1 \cdot \pi`,
///   `\frac{\pi}{2}`), sums of unlike terms (`1 + \sqrt{2}`), functions of
///   numbers (`\ln 2`, `\arctan 2`).
pub fn pending_arithmetic(e: &Expr) -> Option<&Expr> {
    if is_literal(e) || !e.vars().is_empty() {
        return None;
    }
    pending(e, &mut Fuel(FUEL))
}

/// The largest denominator of a value read from floats as a fraction.
pub const SIMPLE_DENOMINATOR: u64 = 1000;

fn pending<'a>(e: &'a Expr, fuel: &mut Fuel) -> Option<&'a Expr> {
    if is_literal(e) {
        return None;
    }
    let rational = |x: &Expr, fuel: &mut Fuel| exact(x, fuel).is_some();
    let own = rational(e, fuel)
        || float(e, &[], fuel).is_some_and(is_simple)
        || match e {
            Expr::Neg(a) => matches!(**a, Expr::Neg(_)),
            Expr::Add(xs) => like_terms(xs, fuel),
            // two rational factors, or two radicals to combine
            Expr::Mul(xs) => {
                xs.iter().filter(|x| rational(x, fuel)).count() >= 2
                    || xs.iter().filter(|x| matches!(x, Expr::Root(..))).count() >= 2
            }
            Expr::Div(_, b) => matches!(&**b, Expr::Num { value, .. } if value.is_one()),
            // x^1, x^0, and a sum to a whole power: to expand
            Expr::Pow(a, b) => match &**b {
                Expr::Num {
                    value,
                    decimals: None,
                } => {
                    value.is_one()
                        || value.is_zero()
                        || (value.is_integer() && matches!(**a, Expr::Add(_)))
                }
                _ => false,
            },
            Expr::Factorial(_) | Expr::Binom(..) | Expr::Sum { .. } => true,
            _ => false,
        };
    if own {
        return Some(e);
    }
    match e {
        Expr::Neg(a) | Expr::Func(_, a) => pending(a, fuel),
        Expr::Add(xs) | Expr::Mul(xs) => xs.iter().find_map(|x| pending(x, fuel)),
        Expr::Pm(a, b) | Expr::Div(a, b) | Expr::Pow(a, b) | Expr::Root(a, b) => {
            pending(a, fuel).or_else(|| pending(b, fuel))
        }
        // Structures are judged item by item where they are compared.
        _ => None,
    }
}

/// A final literal (see [`pending_arithmetic`]).
fn is_literal(e: &Expr) -> bool {
    let int = |x: &Expr| match x {
        Expr::Num {
            value,
            decimals: None,
        } => value.is_integer(),
        Expr::Neg(a) => matches!(&**a, Expr::Num { value, decimals: None } if value.is_integer()),
        _ => false,
    };
    let real = |x: &Expr| match x {
        Expr::Num { .. } | Expr::Based { .. } => true,
        Expr::Neg(a) => matches!(**a, Expr::Num { .. }),
        // a fraction of integers, not over 1
        Expr::Div(a, b) => {
            int(a) && int(b) && !matches!(&**b, Expr::Num { value, .. } if value.is_one())
        }
        _ => false,
    };
    let real_or_neg = |x: &Expr| real(x) || matches!(x, Expr::Neg(a) if real(a));
    let unit = |x: &Expr| *x == Expr::Const(Const::I);
    // bi, ib, i, \frac{i}{b}, \frac{bi}{c}
    let imaginary = |x: &Expr| {
        let plain = |x: &Expr| match x {
            Expr::Mul(xs) => {
                matches!(xs.as_slice(), [a, b] if (real(a) && unit(b)) || (unit(a) && real(b)))
            }
            x => unit(x),
        };
        match x {
            Expr::Neg(a) => plain(a),
            Expr::Div(a, b) => plain(a) && int(b),
            x => plain(x),
        }
    };
    match e {
        Expr::Const(_) => true,
        Expr::Neg(a) if matches!(**a, Expr::Const(_)) => true,
        // a x 10^k, 10^k
        Expr::Mul(xs) => {
            matches!(xs.as_slice(), [a, t] if real_or_neg(a) && is_ten_power(t)) || imaginary(e)
        }
        Expr::Pow(..) => is_ten_power(e),
        Expr::Neg(a) if matches!(**a, Expr::Mul(_) | Expr::Pow(..)) => is_literal(a),
        // a + bi
        Expr::Add(xs) => matches!(xs.as_slice(),
            [a, b] if (real_or_neg(a) && imaginary(b)) || (imaginary(a) && real_or_neg(b))),
        e => real_or_neg(e) || imaginary(e),
    }
}

fn is_ten_power(e: &Expr) -> bool {
    matches!(e, Expr::Pow(b, k) if **b == Expr::int(10) && match &**k {
        Expr::Num { value, decimals: None } => value.is_integer(),
        Expr::Neg(a) => matches!(&**a, Expr::Num { value, decimals: None } if value.is_integer()),
        _ => false,
    })
}

/// Two addends in a real rational ratio: terms to collect. (Sums longer
/// than [`MAX_ITEMS`] are not searched.)
fn like_terms(xs: &[Expr], fuel: &mut Fuel) -> bool {
    if xs.len() > MAX_ITEMS {
        return false;
    }
    let values: Vec<Option<Complex64>> = xs.iter().map(|x| float(x, &[], fuel)).collect();
    values.iter().enumerate().any(|(i, a)| {
        values[i + 1..].iter().any(|b| match (a, b) {
            (Some(a), Some(b)) if b.norm() > ZERO_FLOOR => {
                let r = a / b;
                r.im.abs() <= 1e-12 * r.norm() && is_simple(Complex64::new(r.re, 0.0))
            }
            _ => false,
        })
    })
}

/// Whether a float value is, to 1e-11, a Gaussian rational whose parts
/// have denominators up to [`SIMPLE_DENOMINATOR`].
fn is_simple(v: Complex64) -> bool {
    let part = |x: f64| {
        if x.abs() > 1e12 {
            return false;
        }
        // Continued fractions: the best approximations with small denominators.
        let (mut h0, mut h1, mut k0, mut k1) = (0f64, 1f64, 1f64, 0f64);
        let mut y = x.abs();
        for _ in 0..32 {
            let a = y.floor();
            let (h2, k2) = (a * h1 + h0, a * k1 + k0);
            if k2 > SIMPLE_DENOMINATOR as f64 {
                return false;
            }
            if (h2 / k2 - x.abs()).abs() <= 1e-11 * x.abs().max(1.0) {
                return true;
            }
            (h0, h1, k0, k1) = (h1, h2, k1, k2);
            let f = y - a;
            if f < 1e-15 {
                return false;
            }
            y = 1.0 / f;
        }
        false
    };
    part(v.re) && part(v.im)
}

/// `e` / 100: a number literal stays one (so `12.5\%` is the final form
/// 0.125, not the quotient `12.5 / 100`).
fn hundredth(e: &Expr) -> Expr {
    match e {
        Expr::Num { value, .. } => Expr::Num {
            value: value / Rat::from_integer(100.into()),
            decimals: None,
        },
        Expr::Neg(a) if matches!(**a, Expr::Num { .. }) => Expr::Neg(Box::new(hundredth(a))),
        _ => Expr::Div(Box::new(e.clone()), Box::new(Expr::int(100))),
    }
}

/// `a ± b` -> [a + b, a - b], recursively through lists; other
/// expressions as themselves.
fn expand(e: &Expr) -> Vec<Expr> {
    match e {
        Expr::Pm(a, b) => {
            let mut out = Vec::new();
            for a in expand(a) {
                out.push(Expr::Add(vec![a.clone(), (**b).clone()]));
                out.push(Expr::Add(vec![a, Expr::Neg(b.clone())]));
            }
            out
        }
        Expr::List(items) | Expr::Set(items) => items.iter().flat_map(expand).collect(),
        e => vec![e.clone()],
    }
}

/// The value an equation gives, when it is `x = value` (or `value = x`),
/// or a chain `x = ... = value`.
fn equation_value(e: &Expr) -> Option<&Expr> {
    let Expr::Rel(parts, ops) = e else {
        return None;
    };
    if !ops.iter().all(|o| *o == RelOp::Eq) {
        return None;
    }
    let lone = |x: &Expr| {
        matches!(x, Expr::Var(_))
            || is_function_call(x)
            || matches!(x, Expr::Tuple(xs) if xs.iter().all(|v| matches!(v, Expr::Var(_))))
    };
    // A chain `x = 5 + 5 + 1 = 11` gives its last value, when it starts
    // at a lone variable and every step has that value (`6 = 7 = 5` and
    // `x = 2 = 3` give none).
    if parts.len() >= 3 {
        let last = parts.last()?;
        let fuel = &mut Fuel(FUEL);
        let value = exact(last, fuel);
        let consistent = parts[1..parts.len() - 1]
            .iter()
            .all(|x| !x.vars().is_empty() || value.is_none() || exact(x, fuel) == value);
        return (lone(&parts[0]) && consistent).then_some(last);
    }
    match (lone(&parts[0]), lone(&parts[1])) {
        (true, false) => Some(&parts[1]),
        (false, true) => Some(&parts[0]),
        _ => None,
    }
}

/// `f(x)`, parsed as a product of a variable and a group.
fn is_function_call(e: &Expr) -> bool {
    matches!(e, Expr::Mul(xs) if xs.len() == 2 && matches!(&xs[0], Expr::Var(v) if v.len() == 1) && matches!(&xs[1], Expr::Var(_)))
}

fn items(e: &Expr) -> Option<Vec<Expr>> {
    match e {
        Expr::List(_) | Expr::Set(_) | Expr::Pm(_, _) => {
            let xs = expand(e);
            Some(solutions_as_tuples(&xs).unwrap_or(xs))
        }
        _ => None,
    }
}

/// Several solutions written as assignments, `p=5, q=2; p=7, q=2`: the
/// tuples (5, 2), (7, 2). Only when the same variables repeat in the same
/// order at least twice (one group `x=1, y=2` stays the list 1, 2).
fn solutions_as_tuples(xs: &[Expr]) -> Option<Vec<Expr>> {
    let assignment = |x: &Expr| match x {
        Expr::Rel(parts, ops) if ops == &[RelOp::Eq] => match &parts[0] {
            Expr::Var(v) => Some((v.clone(), parts[1].clone())),
            _ => None,
        },
        _ => None,
    };
    let pairs: Vec<(String, Expr)> = xs.iter().map(assignment).collect::<Option<_>>()?;
    let first = &pairs.first()?.0;
    let k = pairs.iter().skip(1).position(|(v, _)| v == first)? + 1;
    if k < 2 || !pairs.len().is_multiple_of(k) {
        return None;
    }
    let names: Vec<&String> = pairs[..k].iter().map(|(v, _)| v).collect();
    let mut tuples = Vec::with_capacity(pairs.len() / k);
    for group in pairs.chunks(k) {
        if group.iter().map(|(v, _)| v).ne(names.iter().copied()) {
            return None;
        }
        tuples.push(Expr::Tuple(group.iter().map(|(_, x)| x.clone()).collect()));
    }
    Some(tuples)
}

fn eq(g: &Expr, p: &Expr, cx: &mut Ctx) -> bool {
    if cx.fuel.0 == 0 {
        return false;
    }
    // Lists and sets (and ±) compare as multisets, after each item's
    // `x = v` is read as v. A one-item list is its item.
    let gi = items(g);
    let pi = items(p);
    if gi.is_some() || pi.is_some() {
        let gi = gi.unwrap_or_else(|| vec![g.clone()]);
        let pi = pi.unwrap_or_else(|| vec![p.clone()]);
        return multiset_eq(&gi, &pi, cx);
    }
    match (g, p) {
        (Expr::Text(a), Expr::Text(b)) => cx.note(Note::Text, text_key(a) == text_key(b)),
        (Expr::Letter(a), b) | (b, Expr::Letter(a)) => {
            let same = match b {
                Expr::Letter(c) => a == c,
                Expr::Var(v) | Expr::Text(v) => {
                    v.len() == 1 && v.eq_ignore_ascii_case(&a.to_string())
                }
                _ => false,
            };
            cx.note(Note::Text, same)
        }
        (Expr::Rel(..), Expr::Rel(..)) => rel_eq(g, p, cx),
        (Expr::Rel(..), other) | (other, Expr::Rel(..)) => {
            let rel = if matches!(g, Expr::Rel(..)) { g } else { p };
            if let Some(v) = equation_value(rel) {
                return eq_oriented(g, v, other, cx);
            }
            match (inequality_interval(rel), other) {
                (Some(iv), o) if is_interval_like(o) || matches!(o, Expr::Union(_)) => {
                    if matches!(g, Expr::Rel(..)) {
                        eq(&iv, o, cx)
                    } else {
                        eq(o, &iv, cx)
                    }
                }
                _ => false,
            }
        }
        (Expr::Tuple(a), Expr::Tuple(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| eq(x, y, cx))
        }
        (Expr::Matrix(a), Expr::Matrix(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(r, s)| r.len() == s.len() && r.iter().zip(s).all(|(x, y)| eq(x, y, cx)))
        }
        (Expr::Union(a), Expr::Union(b)) => multiset_eq(a, b, cx),
        (a, b) if is_interval_like(a) && is_interval_like(b) => {
            match (as_interval(a), as_interval(b)) {
                (Some(x), Some(y)) => {
                    x.2 == y.2 && x.3 == y.3 && eq(x.0, y.0, cx) && eq(x.1, y.1, cx)
                }
                _ => false,
            }
        }
        (Expr::Based { digits: a, base: x }, Expr::Based { digits: b, base: y }) => {
            x == y
                && a.trim_start_matches('0')
                    .eq_ignore_ascii_case(b.trim_start_matches('0'))
        }
        (
            Expr::Based { digits, .. },
            Expr::Num {
                value,
                decimals: None,
            },
        )
        | (
            Expr::Num {
                value,
                decimals: None,
            },
            Expr::Based { digits, .. },
        ) => value.is_integer() && value.to_integer().to_string() == digits.trim_start_matches('0'),
        (Expr::Text(t), e) | (e, Expr::Text(t)) => match number_word(t) {
            Some(n) => scalar_eq(
                if matches!(g, Expr::Text(_)) { &n } else { e },
                if matches!(g, Expr::Text(_)) { e } else { &n },
                cx,
            ),
            None => false,
        },
        // The same bounds and summands equal as expressions (in the index
        // and any free variable): `\sum_{k=0}^{n-1} F_k F_{n-k-1}` either way round.
        (
            Expr::Sum {
                var: v,
                lo: l1,
                hi: h1,
                body: b1,
            },
            Expr::Sum {
                var: w,
                lo: l2,
                hi: h2,
                body: b2,
            },
        ) if v == w && eq(l1, l2, cx) && eq(h1, h2, cx) && scalar_eq(b1, b2, cx) => true,
        (a, b) if a.is_scalar() && b.is_scalar() => scalar_eq(a, b, cx),
        _ => false,
    }
}

/// Compare keeping gold on the left: `rel` was one of (g, p) and `v` its value.
fn eq_oriented(g: &Expr, v: &Expr, other: &Expr, cx: &mut Ctx) -> bool {
    if matches!(g, Expr::Rel(..)) {
        eq(v, other, cx)
    } else {
        eq(other, v, cx)
    }
}

fn multiset_eq(a: &[Expr], b: &[Expr], cx: &mut Ctx) -> bool {
    if a.len() != b.len() || a.len() > MAX_ITEMS {
        return false;
    }
    let read = |x: &Expr| equation_value(x).cloned().unwrap_or_else(|| x.clone());
    let a: Vec<Expr> = a.iter().map(read).collect();
    let b: Vec<Expr> = b.iter().map(read).collect();
    let mut used = vec![false; b.len()];
    'outer: for x in &a {
        for (j, y) in b.iter().enumerate() {
            if !used[j] && eq(x, y, cx) {
                used[j] = true;
                continue 'outer;
            }
        }
        return false;
    }
    true
}

fn is_interval_like(e: &Expr) -> bool {
    matches!(e, Expr::Interval { .. }) || matches!(e, Expr::Tuple(xs) if xs.len() == 2)
}

/// (lo, hi, lo_closed, hi_closed); a pair `(a, b)` is the open interval.
fn as_interval(e: &Expr) -> Option<(&Expr, &Expr, bool, bool)> {
    match e {
        Expr::Interval {
            lo,
            hi,
            lo_closed,
            hi_closed,
        } => Some((lo, hi, *lo_closed, *hi_closed)),
        Expr::Tuple(xs) if xs.len() == 2 => Some((&xs[0], &xs[1], false, false)),
        _ => None,
    }
}

/// `a < x \le b` -> (a, b]; `x \le 3` -> (-\infty, 3]; `x > 5` -> (5, \infty);
/// `0 < f(x) < 1` -> (0, 1) (the variable may be a function value);
/// `1 \le |z| \le 2` -> [-2, -1] \cup [1, 2], `|x| < 3` -> (-3, 3).
fn inequality_interval(e: &Expr) -> Option<Expr> {
    let Expr::Rel(parts, ops) = e else {
        return None;
    };
    let abs_of_var =
        |x: &Expr| matches!(x, Expr::Func(Func::Abs, v) if matches!(**v, Expr::Var(_)));
    if parts.len() <= 3 && parts.iter().any(abs_of_var) {
        let t = Expr::Var("|t|".into());
        let plain: Vec<Expr> = parts
            .iter()
            .map(|x| if abs_of_var(x) { t.clone() } else { x.clone() })
            .collect();
        return abs_interval(inequality_interval(&Expr::Rel(plain, ops.clone()))?);
    }
    let inf = || Box::new(Expr::Const(Const::Infinity));
    let neg_inf = || Box::new(Expr::Neg(Box::new(Expr::Const(Const::Infinity))));
    let var = |x: &Expr| matches!(x, Expr::Var(_)) || is_function_call(x);
    let iv = |lo: Box<Expr>, hi: Box<Expr>, lo_closed, hi_closed| Expr::Interval {
        lo,
        hi,
        lo_closed,
        hi_closed,
    };
    match (parts.as_slice(), ops.as_slice()) {
        ([a, x, b], [o1, o2]) if var(x) => {
            let lt = |o: &RelOp| matches!(o, RelOp::Lt | RelOp::Le);
            let gt = |o: &RelOp| matches!(o, RelOp::Gt | RelOp::Ge);
            if lt(o1) && lt(o2) {
                Some(iv(
                    Box::new(a.clone()),
                    Box::new(b.clone()),
                    *o1 == RelOp::Le,
                    *o2 == RelOp::Le,
                ))
            } else if gt(o1) && gt(o2) {
                Some(iv(
                    Box::new(b.clone()),
                    Box::new(a.clone()),
                    *o2 == RelOp::Ge,
                    *o1 == RelOp::Ge,
                ))
            } else {
                None
            }
        }
        ([x, c], [o]) if var(x) => match o {
            RelOp::Lt | RelOp::Le => {
                Some(iv(neg_inf(), Box::new(c.clone()), false, *o == RelOp::Le))
            }
            RelOp::Gt | RelOp::Ge => Some(iv(Box::new(c.clone()), inf(), *o == RelOp::Ge, false)),
            _ => None,
        },
        ([c, x], [o]) if var(x) => match o {
            RelOp::Gt | RelOp::Ge => {
                Some(iv(neg_inf(), Box::new(c.clone()), false, *o == RelOp::Ge))
            }
            RelOp::Lt | RelOp::Le => Some(iv(Box::new(c.clone()), inf(), *o == RelOp::Le, false)),
            _ => None,
        },
        _ => None,
    }
}

/// The values of x whose |x| lies in `iv`: [a, b] with a > 0 is
/// [-b, -a] \cup [a, b]; a lower bound at or below 0 (`|x| \le b`,
/// `0 \le |x| < b`) gives the one interval (-b, b) with b's closedness.
fn abs_interval(iv: Expr) -> Option<Expr> {
    let Expr::Interval {
        lo,
        hi,
        lo_closed,
        hi_closed,
    } = iv
    else {
        return None;
    };
    let neg = |x: &Expr| match x {
        Expr::Neg(inner) => (**inner).clone(),
        other => Expr::Neg(Box::new(other.clone())),
    };
    let lo_value = match inf_sign(&lo) {
        Some(s) if s < 0 => None,
        Some(_) => return None,
        None => Some(exact(&lo, &mut Fuel(FUEL))?),
    };
    let zero = Rat::from_integer(0.into());
    let spans_zero = lo_value.is_none_or(|a| a < zero || (a == zero && lo_closed));
    if spans_zero {
        return Some(Expr::Interval {
            lo: Box::new(neg(&hi)),
            hi,
            lo_closed: hi_closed,
            hi_closed,
        });
    }
    Some(Expr::Union(vec![
        Expr::Interval {
            lo: Box::new(neg(&hi)),
            hi: Box::new(neg(&lo)),
            lo_closed: hi_closed,
            hi_closed: lo_closed,
        },
        Expr::Interval {
            lo,
            hi,
            lo_closed,
            hi_closed,
        },
    ]))
}

/// Two relations: `x = 5` vs `5 = x`, `y = 2x + 3` vs `2x - y + 3 = 0`,
/// `x < 1` vs `-x > -1`, `a < x \le b` chains.
fn rel_eq(g: &Expr, p: &Expr, cx: &mut Ctx) -> bool {
    let (Expr::Rel(gp, gops), Expr::Rel(pp, pops)) = (g, p) else {
        return false;
    };
    // x = v vs x = w (same lone variable)
    if gops.iter().all(|o| *o == RelOp::Eq) && pops.iter().all(|o| *o == RelOp::Eq) {
        if let (Expr::Var(a), Expr::Var(b)) = (&gp[0], &pp[0]) {
            if a == b {
                if let (Some(x), Some(y)) = (gp.last(), pp.last()) {
                    if eq(x, y, cx) {
                        return true;
                    }
                }
            }
        }
    }
    if let (Some(a), Some(b)) = (inequality_interval(g), inequality_interval(p)) {
        return eq(&a, &b, cx);
    }
    if gops.len() != 1 || pops.len() != 1 {
        return false;
    }
    // Normal form: d op 0 with op in {=, <, <=, !=}.
    let norm = |parts: &[Expr], op: RelOp| -> (Expr, RelOp) {
        let diff = |a: &Expr, b: &Expr| Expr::Add(vec![a.clone(), Expr::Neg(Box::new(b.clone()))]);
        match op {
            RelOp::Gt => (diff(&parts[1], &parts[0]), RelOp::Lt),
            RelOp::Ge => (diff(&parts[1], &parts[0]), RelOp::Le),
            o => (diff(&parts[0], &parts[1]), o),
        }
    };
    let (dg, og) = norm(gp, gops[0]);
    let (dp, op) = norm(pp, pops[0]);
    if og != op {
        return false;
    }
    let same = match proportional(&dg, &dp, cx) {
        Some(k) => match og {
            RelOp::Eq | RelOp::Ne => true,
            _ => k > 0.0,
        },
        None => false,
    };
    cx.note(Note::Symbolic, same)
}

/// If a = k·b for a nonzero real constant k at every test point, k.
fn proportional(a: &Expr, b: &Expr, cx: &mut Ctx) -> Option<f64> {
    let va = a.vars();
    if va != b.vars() {
        return None;
    }
    let mut k: Option<Complex64> = None;
    let mut seen = 0;
    for (s, _) in POINTS.iter().enumerate() {
        let env = bind(&va, s);
        let (Some(x), Some(y)) = (float(a, &env, &mut cx.fuel), float(b, &env, &mut cx.fuel))
        else {
            continue;
        };
        if y.norm() < 1e-12 {
            if x.norm() < 1e-12 {
                continue;
            }
            return None;
        }
        let r = x / y;
        match k {
            None => k = Some(r),
            Some(k0) => {
                if (r - k0).norm() > POINT_TOL * k0.norm().max(1.0) {
                    return None;
                }
            }
        }
        seen += 1;
    }
    let k = k?;
    (seen >= 2 && k.im.abs() < 1e-9 && k.re.abs() > 1e-12).then_some(k.re)
}

/// Variable values for test point `s`: each variable gets a different one.
fn bind(vars: &[String], s: usize) -> Vec<(String, Complex64)> {
    vars.iter()
        .enumerate()
        .map(|(j, v)| {
            (
                v.clone(),
                Complex64::new(POINTS[(s + 2 * j) % POINTS.len()] + 0.1 * j as f64, 0.0),
            )
        })
        .collect()
}

/// Two numbers or expressions.
fn scalar_eq(g: &Expr, p: &Expr, cx: &mut Ctx) -> bool {
    // The question restated (`8 \times 7` for 56) is not its answer, at
    // any depth; a gold that is itself unevaluated is compared by value.
    if let Some(part) = pending_arithmetic(p) {
        if pending_arithmetic(g).is_none() {
            cx.not_final.get_or_insert_with(|| part.to_string());
            return false;
        }
    }
    // A decimal gold of two or more significant digits is a rounded
    // value: an exact prediction that rounds to it is right; a decimal
    // prediction must match exactly. A one-digit decimal (`0.5`) is exact.
    // A whole number written with a point (`43.0`, as JSON floats are
    // written) is that whole number, not a rounded value.
    let gold_places = g.decimal_places().filter(|_| {
        significant_digits(g) >= ROUNDED_GOLD_DIGITS
            && !matches!(exact(g, &mut cx.fuel), Some(v) if v.is_integer())
    });
    let pred_is_decimal = p.decimal_places().is_some();
    if let (Some(a), Some(b)) = (exact(g, &mut cx.fuel), exact(p, &mut cx.fuel)) {
        if a == b {
            return true;
        }
        return match gold_places {
            Some(k) if !pred_is_decimal => cx.note(Note::Rounded, round_rat(&b, k) == a),
            _ => cx.note(Note::Symbolic, long_decimal_matches(p, &a, &b)),
        };
    }
    let vg = g.vars();
    if vg != p.vars() {
        return false;
    }
    // Digits past what the float tolerance resolves (`2.00000000001\pi`)
    // cannot be told apart from their neighbours.
    let digits = longest_decimal(g).max(longest_decimal(p));
    if vg.is_empty() {
        let (Some(a), Some(b)) = (float(g, &[], &mut cx.fuel), float(p, &[], &mut cx.fuel)) else {
            // Infinity and other non-finite values compare by form.
            if inf_sign(g).is_some() || inf_sign(p).is_some() {
                return inf_sign(g) == inf_sign(p);
            }
            return cx.undecided("no exact value and no faithful float value");
        };
        if let Some(k) = gold_places {
            if !pred_is_decimal && b.im == 0.0 && a.im == 0.0 {
                // Rounded to k places: within half a unit of the last place.
                let within =
                    (a.re - b.re).abs() <= 0.5 * 10f64.powi(-(k as i32)) + 1e-12 * a.re.abs();
                return cx.note(Note::Rounded, within);
            }
        }
        if let Some(places) = p.decimal_places() {
            if significant_digits(p) >= LONG_DECIMAL_DIGITS && a.im == 0.0 && b.im == 0.0 {
                let within =
                    (a.re - b.re).abs() <= 10f64.powi(-(places as i32)) + 1e-12 * a.re.abs();
                return cx.note(Note::Symbolic, within);
            }
        }
        return match close(a, b, REL_TOL) {
            Some(true) if digits > resolved_digits(REL_TOL) => {
                cx.undecided("more decimal digits than a float comparison resolves")
            }
            Some(same) => cx.note(Note::Symbolic, same),
            None => cx.undecided("both values are within rounding error of zero"),
        };
    }
    let mut agreed = 0;
    for s in 0..POINTS.len() {
        let env = bind(&vg, s);
        match (float(g, &env, &mut cx.fuel), float(p, &env, &mut cx.fuel)) {
            (Some(a), Some(b)) => match close(a, b, POINT_TOL) {
                Some(true) => agreed += 1,
                Some(false) => return false,
                // Both zero at this point: it tells nothing.
                None => {}
            },
            (None, None) => {}
            _ => return cx.undecided("one side has no faithful value at a test point"),
        }
    }
    if agreed >= 2 && digits > resolved_digits(POINT_TOL) {
        return cx.undecided("more decimal digits than the test points resolve");
    }
    cx.note(Note::Symbolic, agreed >= 2)
}

/// A decimal gold with fewer significant digits than this is exact, not
/// rounded: `0.5` is not `\frac{5}{11}`.
pub const ROUNDED_GOLD_DIGITS: usize = 2;

/// Significant digits a float comparison at relative tolerance `tol` can
/// tell apart (9 at 1e-10).
fn resolved_digits(tol: f64) -> usize {
    (-tol.log10()).floor() as usize - 1
}

/// The most significant digits of any decimal literal in `e`.
fn longest_decimal(e: &Expr) -> usize {
    match e {
        Expr::Num {
            decimals: Some(_), ..
        } => significant_digits(e),
        Expr::Num { .. } | Expr::Based { .. } | Expr::Const(_) | Expr::Var(_) => 0,
        Expr::Text(_) | Expr::Letter(_) => 0,
        Expr::Add(xs)
        | Expr::Mul(xs)
        | Expr::Tuple(xs)
        | Expr::Union(xs)
        | Expr::Set(xs)
        | Expr::List(xs)
        | Expr::Rel(xs, _) => xs.iter().map(longest_decimal).max().unwrap_or(0),
        Expr::Neg(a) | Expr::Func(_, a) | Expr::Factorial(a) => longest_decimal(a),
        Expr::Div(a, b)
        | Expr::Pow(a, b)
        | Expr::Root(a, b)
        | Expr::Binom(a, b)
        | Expr::Pm(a, b) => longest_decimal(a).max(longest_decimal(b)),
        Expr::Interval { lo, hi, .. } => longest_decimal(lo).max(longest_decimal(hi)),
        Expr::Matrix(rows) => rows
            .iter()
            .flatten()
            .map(longest_decimal)
            .max()
            .unwrap_or(0),
        Expr::Sum { lo, hi, body, .. } => longest_decimal(lo)
            .max(longest_decimal(hi))
            .max(longest_decimal(body)),
    }
}

/// A decimal this long is a computed value, not a rounded answer: it is
/// right when it agrees with the exact value to its last place
/// (`0.0833333333333333` for `1/12`; but `0.3333333` is not `1/3`).
pub const LONG_DECIMAL_DIGITS: usize = 12;

fn significant_digits(e: &Expr) -> usize {
    match e {
        Expr::Num {
            value,
            decimals: Some(k),
        } => {
            let scaled = value
                * Rat::from_integer(num_traits::pow(num_bigint::BigInt::from(10), *k as usize));
            scaled
                .to_integer()
                .abs()
                .to_string()
                .trim_start_matches('0')
                .len()
        }
        Expr::Neg(a) => significant_digits(a),
        _ => 0,
    }
}

fn long_decimal_matches(p: &Expr, exact_gold: &Rat, exact_pred: &Rat) -> bool {
    let Some(places) = p.decimal_places() else {
        return false;
    };
    if significant_digits(p) < LONG_DECIMAL_DIGITS {
        return false;
    }
    let unit = Rat::new(
        1.into(),
        num_traits::pow(num_bigint::BigInt::from(10), places as usize),
    );
    (exact_gold - exact_pred).abs() <= unit
}

fn inf_sign(e: &Expr) -> Option<i8> {
    match e {
        Expr::Const(Const::Infinity) => Some(1),
        Expr::Neg(a) => inf_sign(a).map(|s| -s),
        _ => None,
    }
}

/// Whether two float values agree to `tol` (relative). `None` when both
/// are within rounding error of zero ([`ZERO_FLOOR`]) without being the
/// same: floats cannot tell `\sin\pi` from `10^{-17}` or from 0.
fn close(a: Complex64, b: Complex64, tol: f64) -> Option<bool> {
    if a == b {
        return Some(true);
    }
    let scale = a.norm().max(b.norm());
    if scale < ZERO_FLOOR {
        return None;
    }
    Some((a - b).norm() <= tol * scale)
}

/// Below this magnitude a float value is rounding error, not a value.
pub const ZERO_FLOOR: f64 = 1e-13;

/// Round to k decimal places (half away from zero).
fn round_rat(x: &Rat, k: u32) -> Rat {
    let scale = Rat::from_integer(num_traits::pow(num_bigint::BigInt::from(10), k as usize));
    let y = x * &scale;
    let r = if y.is_negative() {
        -((-y) + Rat::new(1.into(), 2.into())).floor()
    } else {
        (y + Rat::new(1.into(), 2.into())).floor()
    };
    r / scale
}

/// Lower-case letters and digits: "Evelyn." = "evelyn", "None of these" =
/// "noneofthese". Text compared case-, space- and punctuation-insensitively;
/// what changes a value still counts: the operators `/ % + * ^ = < > !`
/// (unparsed `1/1/` never equals `1%1%` or `11`), a minus sign before a
/// digit or a point, and a decimal point beside a digit
/// (`-0.\overline{36}` is not `0.\overline{36}`; `North-East` is
/// `north east`).
fn text_key(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let digit_at = |j: usize| chars.get(j).is_some_and(char::is_ascii_digit);
    let next_visible = |i: usize| chars[i + 1..].iter().find(|c| !c.is_whitespace()).copied();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        let keep = c.is_alphanumeric()
            || "/%+*^=<>!".contains(c)
            || (c == '-' && next_visible(i).is_some_and(|n| n.is_ascii_digit() || n == '.'))
            || (c == '.' && ((i > 0 && digit_at(i - 1)) || digit_at(i + 1)));
        if keep {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// "nine" -> 9, "twenty-one" -> 21, "one hundred five" -> 105.
fn number_word(s: &str) -> Option<Expr> {
    const ONES: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 8] = [
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    let lower = s.to_ascii_lowercase().replace('-', " ");
    let mut total: i64 = 0;
    let mut current: i64 = 0;
    let mut any = false;
    for w in lower.split_whitespace() {
        if w == "and" {
            continue;
        }
        if let Some(n) = ONES.iter().position(|x| *x == w) {
            current += n as i64;
        } else if let Some(n) = TENS.iter().position(|x| *x == w) {
            current += 20 + 10 * n as i64;
        } else if w == "hundred" {
            current = current.max(1) * 100;
        } else if w == "thousand" {
            total += current.max(1) * 1000;
            current = 0;
        } else {
            return None;
        }
        any = true;
    }
    any.then(|| Expr::int(total + current))
}

#[cfg(test)]
mod tests {
    use crate::is_equivalent;

    #[test]
    fn text_ignores_case_and_punctuation_but_not_operators() {
        assert!(is_equivalent("Monday", "monday."));
        assert!(is_equivalent("north east", "North-East"));
        // Unparsed arithmetic: stripping its operators would make these
        // equal (both were the key `11` / `ab`).
        assert!(!is_equivalent("1/1/", "1%1%"));
        assert!(!is_equivalent("a/b/", "a%b%"));
        assert!(!is_equivalent("x+y=", "x*y="));
    }
}
