//! When two answers are the same answer. Every judgement call lives here.
//!
//! | question | decision |
//! |---|---|
//! | Exact vs exact (integers, fractions, decimals, mixed numbers) | equal as rationals: `0.5 = 1/2`, `1.8 = 1\frac45`, `0.3888 = 243/625` |
//! | An approximation of an exact gold (`0.333` or `0.3333333` for `1/3`, `6.283185` for `2\pi`) | **wrong**: the problem asked for the exact value. Irrational values compare with relative tolerance [`REL_TOL`] (1e-10), far below any written approximation. Only a computed decimal of [`LONG_DECIMAL_DIGITS`] (12) or more significant digits that agrees to its last place is accepted (`0.0833333333333333` for `1/12`) |
//! | A decimal gold (`4.67`, `0.33`) vs an exact prediction (`14/3`, `1/3`) | right when the prediction rounds to the gold at the gold's decimal places; a decimal prediction must equal it exactly (`27.04` is not `27.0`) |
//! | Percent | `25\%` equals `25` and `0.25`; with no `%` on either side `0.25` is not `25` (no ×100 tolerance) |
//! | Degrees, dollars, trailing units, `\text{}` | stripped before comparing (`48^\circ` = `48`, `\$10.00` = `10`, `9 \text{ cm}` = `9`) |
//! | `x = 3` vs `3` | equal when one side of the equation is a lone variable; chains `x = 5+5+1 = 11` take the last value |
//! | Equations vs equations | equal when `lhs - rhs` of each are proportional (`y = 2x+3` = `2x - y + 3 = 0`); inequalities need a positive factor |
//! | Expressions with variables | equal when they agree at several fixed random points and mention the same variables (`2t` is not `2s`); `\sum`s with the same index and bounds when their summands are equal expressions (a renamed index or a closed form of a symbolic sum is not recognised) |
//! | Bare lists `1, 2` and sets `\{1, 2\}` | unordered, repeats count (`16,3,1,1` is not `16,3,1`) |
//! | Tuples `(1, 2)` | ordered; `(a, b)` also reads as an open interval; `[a, b]` is a closed interval, never a tuple |
//! | Solutions as assignments `p=5, q=2; p=7, q=2` | the tuples `(5, 2), (7, 2)` when the same variables repeat in order |
//! | Intervals | bounds and closedness must match; unions are unordered; an inequality in one variable (or `f(x)`, or `\|x\|`) is its interval or union: `1 \le \|z\| \le 2` = `[-2,-1] \cup [1,2]` |
//! | `a \pm b` | the list `a + b, a - b` |
//! | Text | case-, space- and punctuation-insensitive, except operators that change a value (`/ % + * ^ = < > !`: unparsed `1/1/` is not `1%1%`); number words (`nine`) are numbers |
//! | Multiple choice | `(C)`, `C`, `\textbf{(C)} 12` are the letter C |
//! | Base subscripts | `1011_2` equals `1011_2` or `1011`, not its decimal value `11` |
//! | Unevaluated arithmetic (`65 + 21`, `5 \times 6`, `\sum_{k=1}^{10} k`) for a number gold (`86`) | **wrong**: sums and products of plain numbers are the question, not its answer (a policy rewarded for them learns to copy the question into the box). Fractions, mixed numbers, scientific notation, radicals and powers are final forms and still compare by value. Sums and products of number matrices are likewise not a matrix answer |
//! | An empty box (`\boxed{}`, `\boxed{{}}`, `\boxed{ \, }`) | **no answer** (reward -1, not -0.5): only braces and spacing is not a final answer, and rewarding it as a wrong answer pays a policy for copying the instruction's `\boxed{{}}` |

use num_complex::Complex64;
use num_traits::Signed;

use crate::eval::{exact, float, Fuel};
use crate::expr::{Const, Expr, Func, RelOp};
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
    let mut rest = extracted.to_string();
    for spacing in ["\\,", "\\;", "\\:", "\\!", "\\quad", "\\qquad", "\\ ", "~"] {
        rest = rest.replace(spacing, "");
    }
    rest.chars()
        .all(|c| c.is_whitespace() || c == '{' || c == '}')
}

/// Whether `pred` is the same answer as `gold`.
pub fn equivalent(gold: &Answer, pred: &Answer) -> bool {
    if pred.text.is_empty() || gold.text.is_empty() {
        return false;
    }
    if gold.text == pred.text && gold.percent == pred.percent {
        return true;
    }
    if is_number(&gold.expr) && is_unevaluated_arithmetic(&pred.expr) {
        return false;
    }
    let mut fuel = Fuel(FUEL);
    let fuel = &mut fuel;
    match (gold.percent, pred.percent) {
        (false, true) => {
            eq(&gold.expr, &pred.expr, fuel) || eq(&gold.expr, &hundredth(&pred.expr), fuel)
        }
        (true, false) => {
            eq(&gold.expr, &pred.expr, fuel) || eq(&hundredth(&gold.expr), &pred.expr, fuel)
        }
        _ => eq(&gold.expr, &pred.expr, fuel),
    }
}

/// A plain number: `7`, `-3`, `2.5`, `\frac{3}{4}`.
fn is_number(e: &Expr) -> bool {
    match e {
        Expr::Num { .. } => true,
        Expr::Neg(a) => matches!(**a, Expr::Num { .. }),
        Expr::Div(a, b) => matches!(**a, Expr::Num { .. }) && matches!(**b, Expr::Num { .. }),
        _ => false,
    }
}

/// A sum or product whose terms are all plain integers or decimals
/// (`65 + 21`, `15 - 8`, `5 \times 6`); not a mixed number or fraction
/// (whose parts are a fraction), nor scientific notation (a power). A
/// `\sum` with no free variable is one too (`\sum_{k=1}^{10} k` for 55).
fn is_unevaluated_arithmetic(e: &Expr) -> bool {
    let literal = |x: &Expr| match x {
        Expr::Num { .. } => true,
        Expr::Neg(a) => matches!(**a, Expr::Num { .. }),
        _ => false,
    };
    match e {
        Expr::Add(xs) | Expr::Mul(xs) => xs.len() >= 2 && xs.iter().all(literal),
        Expr::Sum { .. } => e.vars().is_empty(),
        _ => false,
    }
}

fn hundredth(e: &Expr) -> Expr {
    Expr::Div(Box::new(e.clone()), Box::new(Expr::int(100)))
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
    if parts.len() >= 3 {
        return parts.last();
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

fn eq(g: &Expr, p: &Expr, fuel: &mut Fuel) -> bool {
    if fuel.0 == 0 {
        return false;
    }
    // Lists and sets (and ±) compare as multisets, after each item's
    // `x = v` is read as v. A one-item list is its item.
    let gi = items(g);
    let pi = items(p);
    if gi.is_some() || pi.is_some() {
        let gi = gi.unwrap_or_else(|| vec![g.clone()]);
        let pi = pi.unwrap_or_else(|| vec![p.clone()]);
        return multiset_eq(&gi, &pi, fuel);
    }
    match (g, p) {
        (Expr::Text(a), Expr::Text(b)) => text_key(a) == text_key(b),
        (Expr::Letter(a), b) | (b, Expr::Letter(a)) => match b {
            Expr::Letter(c) => a == c,
            Expr::Var(v) | Expr::Text(v) => v.len() == 1 && v.eq_ignore_ascii_case(&a.to_string()),
            _ => false,
        },
        (Expr::Rel(..), Expr::Rel(..)) => rel_eq(g, p, fuel),
        (Expr::Rel(..), other) | (other, Expr::Rel(..)) => {
            let rel = if matches!(g, Expr::Rel(..)) { g } else { p };
            if let Some(v) = equation_value(rel) {
                return eq_oriented(g, v, other, fuel);
            }
            match (inequality_interval(rel), other) {
                (Some(iv), o) if is_interval_like(o) || matches!(o, Expr::Union(_)) => {
                    if matches!(g, Expr::Rel(..)) {
                        eq(&iv, o, fuel)
                    } else {
                        eq(o, &iv, fuel)
                    }
                }
                _ => false,
            }
        }
        (Expr::Tuple(a), Expr::Tuple(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| eq(x, y, fuel))
        }
        (Expr::Matrix(a), Expr::Matrix(b)) => {
            a.len() == b.len()
                && a.iter().zip(b).all(|(r, s)| {
                    r.len() == s.len() && r.iter().zip(s).all(|(x, y)| eq(x, y, fuel))
                })
        }
        (Expr::Union(a), Expr::Union(b)) => multiset_eq(a, b, fuel),
        (a, b) if is_interval_like(a) && is_interval_like(b) => {
            match (as_interval(a), as_interval(b)) {
                (Some(x), Some(y)) => {
                    x.2 == y.2 && x.3 == y.3 && eq(x.0, y.0, fuel) && eq(x.1, y.1, fuel)
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
                fuel,
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
        ) if v == w && eq(l1, l2, fuel) && eq(h1, h2, fuel) && scalar_eq(b1, b2, fuel) => true,
        (a, b) if a.is_scalar() && b.is_scalar() => scalar_eq(a, b, fuel),
        _ => false,
    }
}

/// Compare keeping gold on the left: `rel` was one of (g, p) and `v` its value.
fn eq_oriented(g: &Expr, v: &Expr, other: &Expr, fuel: &mut Fuel) -> bool {
    if matches!(g, Expr::Rel(..)) {
        eq(v, other, fuel)
    } else {
        eq(other, v, fuel)
    }
}

fn multiset_eq(a: &[Expr], b: &[Expr], fuel: &mut Fuel) -> bool {
    if a.len() != b.len() || a.len() > MAX_ITEMS {
        return false;
    }
    let read = |x: &Expr| equation_value(x).cloned().unwrap_or_else(|| x.clone());
    let a: Vec<Expr> = a.iter().map(read).collect();
    let b: Vec<Expr> = b.iter().map(read).collect();
    let mut used = vec![false; b.len()];
    'outer: for x in &a {
        for (j, y) in b.iter().enumerate() {
            if !used[j] && eq(x, y, fuel) {
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
fn rel_eq(g: &Expr, p: &Expr, fuel: &mut Fuel) -> bool {
    let (Expr::Rel(gp, gops), Expr::Rel(pp, pops)) = (g, p) else {
        return false;
    };
    // x = v vs x = w (same lone variable)
    if gops.iter().all(|o| *o == RelOp::Eq) && pops.iter().all(|o| *o == RelOp::Eq) {
        if let (Expr::Var(a), Expr::Var(b)) = (&gp[0], &pp[0]) {
            if a == b {
                if let (Some(x), Some(y)) = (gp.last(), pp.last()) {
                    if eq(x, y, fuel) {
                        return true;
                    }
                }
            }
        }
    }
    if let (Some(a), Some(b)) = (inequality_interval(g), inequality_interval(p)) {
        return eq(&a, &b, fuel);
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
    match proportional(&dg, &dp, fuel) {
        Some(k) => match og {
            RelOp::Eq | RelOp::Ne => true,
            _ => k > 0.0,
        },
        None => false,
    }
}

/// If a = k·b for a nonzero real constant k at every test point, k.
fn proportional(a: &Expr, b: &Expr, fuel: &mut Fuel) -> Option<f64> {
    let va = a.vars();
    if va != b.vars() {
        return None;
    }
    let mut k: Option<Complex64> = None;
    let mut seen = 0;
    for (s, _) in POINTS.iter().enumerate() {
        let env = bind(&va, s);
        let (Some(x), Some(y)) = (float(a, &env, fuel), float(b, &env, fuel)) else {
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
fn scalar_eq(g: &Expr, p: &Expr, fuel: &mut Fuel) -> bool {
    // A decimal gold is a rounded value: an exact prediction that rounds to
    // it is right; a decimal prediction must match exactly.
    let gold_places = g.decimal_places();
    let pred_is_decimal = p.decimal_places().is_some();
    if let (Some(a), Some(b)) = (exact(g, fuel), exact(p, fuel)) {
        if a == b {
            return true;
        }
        return match gold_places {
            Some(k) if !pred_is_decimal => round_rat(&b, k) == a,
            _ => long_decimal_matches(p, &a, &b),
        };
    }
    let vg = g.vars();
    if vg != p.vars() {
        return false;
    }
    if vg.is_empty() {
        let (Some(a), Some(b)) = (float(g, &[], fuel), float(p, &[], fuel)) else {
            // Infinity and other non-finite values compare by form.
            return inf_sign(g).is_some() && inf_sign(g) == inf_sign(p);
        };
        if let Some(k) = gold_places {
            if !pred_is_decimal && b.im == 0.0 && a.im == 0.0 {
                // Rounded to k places: within half a unit of the last place.
                return (a.re - b.re).abs() <= 0.5 * 10f64.powi(-(k as i32)) + 1e-12 * a.re.abs();
            }
        }
        if let Some(places) = p.decimal_places() {
            if significant_digits(p) >= LONG_DECIMAL_DIGITS && a.im == 0.0 && b.im == 0.0 {
                return (a.re - b.re).abs() <= 10f64.powi(-(places as i32)) + 1e-12 * a.re.abs();
            }
        }
        return close(a, b, REL_TOL);
    }
    let mut agreed = 0;
    for s in 0..POINTS.len() {
        let env = bind(&vg, s);
        match (float(g, &env, fuel), float(p, &env, fuel)) {
            (Some(a), Some(b)) => {
                if !close(a, b, POINT_TOL) {
                    return false;
                }
                agreed += 1;
            }
            (None, None) => {}
            _ => return false,
        }
    }
    agreed >= 2
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

fn close(a: Complex64, b: Complex64, tol: f64) -> bool {
    let scale = a.norm().max(b.norm()).max(1e-300);
    (a - b).norm() <= tol * scale || (a - b).norm() < 1e-13
}

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

/// Lower-case letters and digits only: "Evelyn." = "evelyn", "None of these" = "noneofthese".
/// Text compared case-, space- and punctuation-insensitively; operator
/// characters that change a value (`/ % + * ^ = < > !`) still count, so
/// unparsed arithmetic such as `1/1/` never equals `1%1%` or `11`.
fn text_key(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric() || "/%+*^=<>!".contains(*c))
        .flat_map(char::to_lowercase)
        .collect()
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
