//! A nom parser from a normalised LaTeX answer to an [`Expr`].
//!
//! Precedence, loosest first: list (`,` `;`) < relation chain (`=` `<`
//! `\le` ...) < union (`\cup`) < sum (`+` `-` `\pm`) < product (`\cdot`
//! `\times` `/` juxtaposition) < sign < power (`^`) < postfix (`!`) < atom.
//! Recursion depth is bounded, so no input can overflow the stack.

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::{char, digit1, multispace0, one_of, satisfy};
use nom::combinator::{opt, recognize};
use nom::error::{Error, ErrorKind};
use nom::sequence::{pair, preceded};
use nom::{IResult, Parser};
use num_bigint::BigInt;
use num_traits::{Num as _, Zero};

use crate::expr::{Const, Expr, Func, Rat, RelOp};

type Res<'a, T> = IResult<&'a str, T>;

/// Deeper nesting than this is not an answer anyone writes: give up.
const MAX_DEPTH: u32 = 60;

fn fail(i: &str) -> nom::Err<Error<&str>> {
    nom::Err::Error(Error::new(i, ErrorKind::Verify))
}

fn too_deep(i: &str) -> nom::Err<Error<&str>> {
    nom::Err::Failure(Error::new(i, ErrorKind::TooLarge))
}

/// Pins the error type of a parser run whose result is only matched.
fn typed<T>(r: Res<'_, T>) -> Res<'_, T> {
    r
}

fn ws(i: &str) -> Res<'_, &str> {
    multispace0(i)
}

fn digit_char(i: &str) -> Res<'_, char> {
    preceded(ws, satisfy(|c| c.is_ascii_digit())).parse(i)
}

/// A single-letter or Greek variable, with its subscript.
fn variable(i: &str) -> Res<'_, Expr> {
    let i = ws(i)?.0;
    if let Ok((rest, name)) = command_name(i) {
        if GREEK.contains(&name) {
            return subscripted(rest, name.to_string());
        }
        return Err(fail(i));
    }
    let (rest, c) = satisfy(|c| c.is_ascii_alphabetic()).parse(i)?;
    subscripted(rest, c.to_string())
}

/// Skip whitespace, then `t`.
fn sym<'a>(t: &'static str) -> impl Parser<&'a str, Output = &'a str, Error = Error<&'a str>> {
    preceded(ws, tag(t))
}

/// `\name` not followed by another letter.
fn cmd<'a>(name: &'static str) -> impl FnMut(&'a str) -> Res<'a, &'a str> {
    move |i: &'a str| {
        let (rest, m) = preceded(ws, tag(name)).parse(i)?;
        if rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(fail(i));
        }
        Ok((rest, m))
    }
}

/// Parse a whole answer. `None` when it is not (all) an expression.
pub fn parse(s: &str) -> Option<Expr> {
    match top(s, 0) {
        Ok((rest, e)) if rest.trim().is_empty() => Some(e),
        _ => None,
    }
}

/// `x \in S` is S; otherwise a list.
fn top(i: &str, d: u32) -> Res<'_, Expr> {
    if d > MAX_DEPTH {
        return Err(too_deep(i));
    }
    if let Ok((rest, _)) = typed((variable, cmd("\\in")).parse(i)) {
        return list(rest, d + 1);
    }
    list(i, d + 1)
}

fn list(i: &str, d: u32) -> Res<'_, Expr> {
    let (mut i, first) = rel(i, d + 1)?;
    let mut items = vec![first];
    loop {
        let Ok((rest, _)) = typed(alt((sym(","), sym(";"))).parse(i)) else {
            break;
        };
        match rel(rest, d + 1) {
            Ok((rest, e)) => {
                items.push(e);
                i = rest;
            }
            Err(nom::Err::Failure(e)) => return Err(nom::Err::Failure(e)),
            // "1, 2, and" or a trailing comma: stop before it.
            Err(_) => break,
        }
    }
    Ok((
        i,
        if items.len() == 1 {
            items.pop().unwrap()
        } else {
            Expr::List(items)
        },
    ))
}

fn relop(i: &str) -> Res<'_, RelOp> {
    preceded(
        multispace0,
        alt((
            tag("=").map(|_| RelOp::Eq),
            cmd("\\approx").map(|_| RelOp::Eq),
            cmd("\\le").map(|_| RelOp::Le),
            cmd("\\ge").map(|_| RelOp::Ge),
            cmd("\\ne").map(|_| RelOp::Ne),
            tag("<").map(|_| RelOp::Lt),
            tag(">").map(|_| RelOp::Gt),
        )),
    )
    .parse(i)
}

fn rel(i: &str, d: u32) -> Res<'_, Expr> {
    let (mut i, first) = union(i, d + 1)?;
    let mut parts = vec![first];
    let mut ops = Vec::new();
    while let Ok((rest, op)) = relop(i) {
        let (rest, e) = union(rest, d + 1)?;
        ops.push(op);
        parts.push(e);
        i = rest;
    }
    Ok((
        i,
        if ops.is_empty() {
            parts.pop().unwrap()
        } else {
            Expr::Rel(parts, ops)
        },
    ))
}

fn union(i: &str, d: u32) -> Res<'_, Expr> {
    let (mut i, first) = sum(i, d + 1)?;
    let mut parts = vec![first];
    while let Ok((rest, _)) = typed(cmd("\\cup").parse(i)) {
        let (rest, e) = sum(rest, d + 1)?;
        parts.push(e);
        i = rest;
    }
    Ok((
        i,
        if parts.len() == 1 {
            parts.pop().unwrap()
        } else {
            Expr::Union(parts)
        },
    ))
}

#[derive(Clone, Copy)]
enum AddOp {
    Plus,
    Minus,
    Pm,
}

fn addop(i: &str) -> Res<'_, AddOp> {
    alt((
        sym("+").map(|_| AddOp::Plus),
        sym("-").map(|_| AddOp::Minus),
        cmd("\\pm").map(|_| AddOp::Pm),
        cmd("\\mp").map(|_| AddOp::Pm),
    ))
    .parse(i)
}

fn sum(i: &str, d: u32) -> Res<'_, Expr> {
    if d > MAX_DEPTH {
        return Err(too_deep(i));
    }
    let (i, lead) = opt(addop).parse(i)?;
    let (mut i, first) = term(i, d + 1)?;
    let mut acc = match lead {
        Some(AddOp::Minus) => Expr::Neg(Box::new(first)),
        Some(AddOp::Pm) => Expr::Pm(Box::new(Expr::int(0)), Box::new(first)),
        _ => first,
    };
    while let Ok((rest, op)) = addop(i) {
        let (rest, t) = term(rest, d + 1)?;
        acc = match op {
            AddOp::Plus => push_add(acc, t),
            AddOp::Minus => push_add(acc, Expr::Neg(Box::new(t))),
            AddOp::Pm => Expr::Pm(Box::new(acc), Box::new(t)),
        };
        i = rest;
    }
    Ok((i, acc))
}

fn push_add(acc: Expr, t: Expr) -> Expr {
    match acc {
        Expr::Add(mut xs) => {
            xs.push(t);
            Expr::Add(xs)
        }
        a => Expr::Add(vec![a, t]),
    }
}

fn mulop(i: &str) -> Res<'_, bool> {
    // true: multiply, false: divide
    alt((
        cmd("\\cdot").map(|_| true),
        cmd("\\times").map(|_| true),
        sym("*").map(|_| true),
        cmd("\\div").map(|_| false),
        sym("/").map(|_| false),
        sym(":").map(|_| false),
    ))
    .parse(i)
}

fn term(i: &str, d: u32) -> Res<'_, Expr> {
    let (mut i, mut acc) = signed(i, d + 1)?;
    loop {
        if let Ok((rest, mul)) = mulop(i) {
            let (rest, f) = signed(rest, d + 1)?;
            acc = if mul {
                push_mul(acc, f)
            } else {
                Expr::Div(Box::new(acc), Box::new(f))
            };
            i = rest;
            continue;
        }
        // Juxtaposition: 2x, 3\sqrt{2}, (a+5)(b+2), 1\frac{4}{5} (mixed number).
        match power(i, d + 1) {
            Ok((rest, f)) => {
                acc = implicit_product(acc, f);
                i = rest;
            }
            Err(nom::Err::Failure(e)) => return Err(nom::Err::Failure(e)),
            Err(_) => break,
        }
    }
    Ok((i, acc))
}

/// `1\frac{4}{5}` is the mixed number 9/5; any other juxtaposition is a product.
fn implicit_product(acc: Expr, f: Expr) -> Expr {
    if let (
        Expr::Num {
            value: w,
            decimals: None,
        },
        Expr::Div(n, dd),
    ) = (&acc, &f)
    {
        if let (
            Expr::Num {
                value: a,
                decimals: None,
            },
            Expr::Num {
                value: b,
                decimals: None,
            },
        ) = (n.as_ref(), dd.as_ref())
        {
            if w.is_integer() && a.is_integer() && b.is_integer() && !b.is_zero() && a < b {
                return Expr::Num {
                    value: w + a / b,
                    decimals: None,
                };
            }
        }
    }
    push_mul(acc, f)
}

fn push_mul(acc: Expr, t: Expr) -> Expr {
    match acc {
        Expr::Mul(mut xs) => {
            xs.push(t);
            Expr::Mul(xs)
        }
        a => Expr::Mul(vec![a, t]),
    }
}

fn signed(i: &str, d: u32) -> Res<'_, Expr> {
    if d > MAX_DEPTH {
        return Err(too_deep(i));
    }
    if let Ok((rest, _)) = typed(sym("-").parse(i)) {
        let (rest, e) = signed(rest, d + 1)?;
        return Ok((rest, Expr::Neg(Box::new(e))));
    }
    if let Ok((rest, _)) = typed(sym("+").parse(i)) {
        return signed(rest, d + 1);
    }
    power(i, d + 1)
}

fn power(i: &str, d: u32) -> Res<'_, Expr> {
    if d > MAX_DEPTH {
        return Err(too_deep(i));
    }
    let (i, base) = postfix(i, d + 1)?;
    if let Ok((rest, _)) = typed(sym("^").parse(i)) {
        let (rest, exp) = exponent(rest, d + 1)?;
        // Right-associative: a^b^c = a^(b^c).
        let (rest, exp) = match sym("^").parse(rest) {
            Ok((r2, _)) => {
                let (r3, e2) = exponent(r2, d + 1)?;
                (r3, Expr::Pow(Box::new(exp), Box::new(e2)))
            }
            Err(_) => (rest, exp),
        };
        return Ok((rest, Expr::Pow(Box::new(base), Box::new(exp))));
    }
    Ok((i, base))
}

/// `{...}`, a single digit, `-1`-style signed digit, or an atom.
fn exponent(i: &str, d: u32) -> Res<'_, Expr> {
    if let Ok((rest, _)) = typed(sym("{").parse(i)) {
        let (rest, e) = top(rest, d + 1)?;
        let (rest, _) = sym("}").parse(rest)?;
        return Ok((rest, e));
    }
    if let Ok((rest, c)) = digit_char(i) {
        return Ok((rest, Expr::int(c.to_digit(10).unwrap() as i64)));
    }
    if let Ok((rest, _)) = typed(sym("-").parse(i)) {
        let (rest, e) = exponent(rest, d + 1)?;
        return Ok((rest, Expr::Neg(Box::new(e))));
    }
    atom(i, d + 1)
}

fn postfix(i: &str, d: u32) -> Res<'_, Expr> {
    let (mut i, mut e) = atom(i, d + 1)?;
    while let Ok((rest, _)) = typed(sym("!").parse(i)) {
        e = Expr::Factorial(Box::new(e));
        i = rest;
    }
    // Primes on a function name (f'(x)) are part of its name; ignore here.
    Ok((i, e))
}

/// A braced argument `{...}`, or a single digit / letter / command (as in
/// `\frac12`, `\sqrt3`, `\frac\pi2`).
fn arg(i: &str, d: u32) -> Res<'_, Expr> {
    if d > MAX_DEPTH {
        return Err(too_deep(i));
    }
    if let Ok((rest, _)) = typed(sym("{").parse(i)) {
        let (rest, e) = top(rest, d + 1)?;
        let (rest, _) = sym("}").parse(rest)?;
        return Ok((rest, e));
    }
    if let Ok((rest, c)) = digit_char(i) {
        return Ok((rest, Expr::int(c.to_digit(10).unwrap() as i64)));
    }
    atom(i, d + 1)
}

fn atom(i: &str, d: u32) -> Res<'_, Expr> {
    if d > MAX_DEPTH {
        return Err(too_deep(i));
    }
    let i = ws(i)?.0;
    let Some(c) = i.chars().next() else {
        return Err(fail(i));
    };
    match c {
        '0'..='9' | '.' => number(i),
        '(' | '[' => bracketed(i, d + 1),
        '{' => {
            let (rest, e) = top(&i[1..], d + 1)?;
            let (rest, _) = sym("}").parse(rest)?;
            Ok((rest, e))
        }
        '|' => {
            let (rest, e) = sum(&i[1..], d + 1)?;
            let (rest, _) = sym("|").parse(rest)?;
            Ok((rest, Expr::Func(Func::Abs, Box::new(e))))
        }
        '\\' => command(i, d + 1),
        c if c.is_ascii_alphabetic() => word(i, d + 1),
        _ => Err(fail(i)),
    }
}

thread_local! {
    /// How many brackets enclose the parser's position: inside `(12,102)`
    /// a comma separates items, it is not a thousands separator.
    static IN_BRACKETS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// 12, 1,234,567 (outside brackets), 3.14, .5, 1.5e-3, and base subscripts 1011_2.
fn number(i: &str) -> Res<'_, Expr> {
    let thousands = recognize(pair(
        take_while_m_n_digits,
        nom::multi::many1(pair(char(','), three_digits)),
    ));
    let grouped = IN_BRACKETS.with(|d| d.get()) == 0;
    let (rest, int_part) = if grouped {
        alt((thousands, digit1, tag(""))).parse(i)?
    } else {
        alt((digit1, tag(""))).parse(i)?
    };
    let (rest, frac_part) = opt(preceded(char('.'), digit1)).parse(rest)?;
    if int_part.is_empty() && frac_part.is_none() {
        return Err(fail(i));
    }
    let mut rest = rest;
    let mut exp10: i64 = 0;
    if frac_part.is_some() {
        if let Ok((r, (_, sign, digits))) =
            typed((one_of("eE"), opt(one_of("+-")), digit1).parse(rest))
        {
            if digits.len() <= 4 {
                let e: i64 = digits.parse().unwrap();
                exp10 = if sign == Some('-') { -e } else { e };
                rest = r;
            }
        }
    }
    let int_digits: String = int_part.chars().filter(|c| *c != ',').collect();
    // Base subscript: digits_base or digits_{base}.
    if frac_part.is_none() && !int_digits.is_empty() {
        if let Ok((r, base)) = typed(
            preceded(
                char('_'),
                alt((digit1, (char('{'), digit1, char('}')).map(|(_, b, _)| b))),
            )
            .parse(rest),
        ) {
            let base: u32 = base.parse().unwrap_or(0);
            if (2..=36).contains(&base) {
                return Ok((
                    r,
                    Expr::Based {
                        digits: int_digits,
                        base,
                    },
                ));
            }
        }
    }
    let frac = frac_part.unwrap_or("");
    let digits = format!("{int_digits}{frac}");
    let numer = BigInt::from_str_radix(if digits.is_empty() { "0" } else { &digits }, 10)
        .map_err(|_| fail(i))?;
    let scale = frac.len() as i64 - exp10;
    let ten = BigInt::from(10);
    let value = if scale >= 0 {
        Rat::new(numer, num_traits::pow(ten, scale as usize))
    } else {
        Rat::from_integer(numer * num_traits::pow(ten, (-scale) as usize))
    };
    Ok((
        rest,
        Expr::Num {
            value,
            decimals: frac_part.map(|f| f.len() as u32),
        },
    ))
}

fn take_while_m_n_digits(i: &str) -> Res<'_, &str> {
    nom::bytes::complete::take_while_m_n(1, 3, |c: char| c.is_ascii_digit()).parse(i)
}

fn three_digits(i: &str) -> Res<'_, &str> {
    let (rest, d) =
        nom::bytes::complete::take_while_m_n(3, 3, |c: char| c.is_ascii_digit()).parse(i)?;
    if rest.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(fail(i));
    }
    Ok((rest, d))
}

/// `( ... )`, `[ ... ]` and their mixtures: a group, a tuple, or an interval.
fn bracketed(i: &str, d: u32) -> Res<'_, Expr> {
    let (rest, open) = one_of("([").parse(i)?;
    IN_BRACKETS.with(|b| b.set(b.get() + 1));
    let inner = list(rest, d + 1);
    IN_BRACKETS.with(|b| b.set(b.get() - 1));
    let (rest, inner) = inner?;
    let (rest, close) = preceded(ws, one_of(")]")).parse(rest)?;
    let items = match inner {
        Expr::List(items) => items,
        e => {
            // (x) or [x]: a group.
            return Ok((rest, e));
        }
    };
    let e = match (open, close, items.len()) {
        ('(', ')', _) => Expr::Tuple(items),
        ('[', ']', n) if n != 2 => Expr::Tuple(items),
        (_, _, 2) => {
            let mut it = items.into_iter();
            Expr::Interval {
                lo: Box::new(it.next().unwrap()),
                hi: Box::new(it.next().unwrap()),
                lo_closed: open == '[',
                hi_closed: close == ']',
            }
        }
        _ => return Err(fail(i)),
    };
    Ok((rest, e))
}

fn command_name(i: &str) -> Res<'_, &str> {
    preceded(char('\\'), take_while1(|c: char| c.is_ascii_alphabetic())).parse(i)
}

const GREEK: [&str; 30] = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "varepsilon",
    "zeta",
    "eta",
    "theta",
    "vartheta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "rho",
    "sigma",
    "tau",
    "upsilon",
    "phi",
    "varphi",
    "chi",
    "psi",
    "omega",
    "Gamma",
    "Delta",
    "Theta",
    "Lambda",
    "Omega",
];

fn command(i: &str, d: u32) -> Res<'_, Expr> {
    // \{ ... \}: a set.
    if let Some(rest) = i.strip_prefix("\\{") {
        if let Ok((r, _)) = typed(sym("\\}").parse(rest)) {
            return Ok((r, Expr::Set(vec![])));
        }
        let (rest, inner) = list(rest, d + 1)?;
        let (rest, _) = sym("\\}").parse(rest)?;
        let items = match inner {
            Expr::List(items) => items,
            e => vec![e],
        };
        return Ok((rest, Expr::Set(items)));
    }
    let (rest, name) = command_name(i)?;
    match name {
        "frac" => {
            let (rest, a) = arg(rest, d + 1)?;
            let (rest, b) = arg(rest, d + 1)?;
            Ok((rest, Expr::Div(Box::new(a), Box::new(b))))
        }
        "binom" => {
            let (rest, a) = arg(rest, d + 1)?;
            let (rest, b) = arg(rest, d + 1)?;
            Ok((rest, Expr::Binom(Box::new(a), Box::new(b))))
        }
        "sqrt" => {
            let (rest, index) = opt(|i| {
                let (r, _) = sym("[").parse(i)?;
                let (r, e) = sum(r, d + 1)?;
                let (r, _) = sym("]").parse(r)?;
                Ok((r, e))
            })
            .parse(rest)?;
            let (rest, x) = arg(rest, d + 1)?;
            Ok((
                rest,
                Expr::Root(Box::new(index.unwrap_or_else(|| Expr::int(2))), Box::new(x)),
            ))
        }
        "sum" => {
            // \sum_{k=a}^{b} body: the body is the product that follows.
            let (rest, _) = sym("_").parse(rest)?;
            let (rest, _) = sym("{").parse(rest)?;
            let (rest, var) =
                preceded(ws, take_while1(|c: char| c.is_ascii_alphabetic())).parse(rest)?;
            let (rest, _) = sym("=").parse(rest)?;
            let (rest, lo) = sum(rest, d + 1)?;
            let (rest, _) = sym("}").parse(rest)?;
            let (rest, _) = sym("^").parse(rest)?;
            let (rest, hi) = arg(rest, d + 1)?;
            let (rest, body) = term(rest, d + 1)?;
            Ok((
                rest,
                Expr::Sum {
                    var: var.to_string(),
                    lo: Box::new(lo),
                    hi: Box::new(hi),
                    body: Box::new(body),
                },
            ))
        }
        "pi" => Ok((rest, Expr::Const(Const::Pi))),
        "infty" | "inf" => Ok((rest, Expr::Const(Const::Infinity))),
        "e" => Ok((rest, Expr::Const(Const::E))),
        "lfloor" | "lceil" => {
            let (rest, e) = sum(rest, d + 1)?;
            let (rest, _) = alt((cmd("\\rfloor"), cmd("\\rceil"))).parse(rest)?;
            let f = if name == "lfloor" {
                Func::Floor
            } else {
                Func::Ceil
            };
            Ok((rest, Expr::Func(f, Box::new(e))))
        }
        "langle" => {
            let (rest, inner) = list(rest, d + 1)?;
            let (rest, _) = cmd("\\rangle").parse(rest)?;
            Ok((
                rest,
                match inner {
                    Expr::List(items) => Expr::Tuple(items),
                    e => e,
                },
            ))
        }
        "begin" => matrix(i, d + 1),
        "text" | "mathrm" => {
            // A \text{} left inside an expression (normalisation unwraps the rest).
            let (rest, _) = char('{').parse(rest)?;
            let (rest, content) = take_while(|c: char| c != '}').parse(rest)?;
            let (rest, _) = char('}').parse(rest)?;
            Ok((rest, Expr::Var(content.trim().to_string())))
        }
        "log" => {
            // \log_b x = ln x / ln b
            let (rest, base) = opt(preceded(sym("_"), |i| arg(i, d + 1))).parse(rest)?;
            let (rest, x) = func_argument(rest, d + 1)?;
            let ln = Expr::Func(Func::Ln, Box::new(x));
            Ok((
                rest,
                match base {
                    Some(b) => Expr::Div(Box::new(ln), Box::new(Expr::Func(Func::Ln, Box::new(b)))),
                    None => ln,
                },
            ))
        }
        n => {
            if let Some(f) = Func::from_name(n) {
                return function(rest, f, d + 1);
            }
            if GREEK.contains(&n) || n == "ell" {
                return subscripted(rest, n.to_string());
            }
            // Anything else (\cdot, \le, \cup, \end, \rfloor, ...) is not an atom.
            Err(fail(i))
        }
    }
}

/// `\sin x`, `\sin(x)`, `\sin^2 x` = (\sin x)^2, `\sin^{-1} x` = \arcsin x.
fn function(i: &str, f: Func, d: u32) -> Res<'_, Expr> {
    let (i, pow) = opt(preceded(sym("^"), |i| exponent(i, d + 1))).parse(i)?;
    let (i, x) = func_argument(i, d + 1)?;
    let inverse = matches!(&pow, Some(Expr::Neg(a)) if **a == Expr::int(1));
    let f = match (inverse, f) {
        (true, Func::Sin) => Func::Asin,
        (true, Func::Cos) => Func::Acos,
        (true, Func::Tan) => Func::Atan,
        _ => f,
    };
    let e = Expr::Func(f, Box::new(x));
    Ok((
        i,
        match pow {
            Some(p) if !inverse => Expr::Pow(Box::new(e), Box::new(p)),
            _ => e,
        },
    ))
}

/// A function's argument: `(x)` or the next power (`\sin x`, `\ln 2`).
fn func_argument(i: &str, d: u32) -> Res<'_, Expr> {
    if let Ok((rest, _)) = typed(sym("(").parse(i)) {
        let (rest, e) = top(rest, d + 1)?;
        let (rest, _) = sym(")").parse(rest)?;
        return Ok((rest, e));
    }
    power(i, d + 1)
}

/// A name with an optional subscript: `a_3`, `x_{12}`, `\alpha_1`.
fn subscripted(i: &str, name: String) -> Res<'_, Expr> {
    let sub = alt((
        preceded(
            char('_'),
            (
                char('{'),
                take_while(|c: char| c != '}' && c != '{'),
                char('}'),
            )
                .map(|(_, s, _)| s),
        ),
        preceded(char('_'), recognize(satisfy(|c| c.is_ascii_alphanumeric()))),
    ));
    let (rest, s) = opt(sub).parse(i)?;
    Ok((
        rest,
        Expr::Var(match s {
            Some(s) => format!("{name}_{}", s.trim()),
            None => name,
        }),
    ))
}

/// Letters: a function name written without a backslash (`sin(x)`), the
/// constants `e` and `i`, or one variable (multi-letter runs are products
/// of single-letter variables: `ab` = a·b).
fn word(i: &str, d: u32) -> Res<'_, Expr> {
    let (after, w) = take_while1(|c: char| c.is_ascii_alphabetic()).parse(i)?;
    if let Some(f) = Func::from_name(w) {
        if after.trim_start().starts_with('(') {
            return function(after, f, d + 1);
        }
    }
    if w == "sqrt" && after.trim_start().starts_with('(') {
        let (rest, x) = func_argument(after, d + 1)?;
        return Ok((rest, Expr::Root(Box::new(Expr::int(2)), Box::new(x))));
    }
    if w == "pi" {
        return Ok((after, Expr::Const(Const::Pi)));
    }
    let c = &i[..1];
    let rest = &i[1..];
    match c {
        "e" if !rest.starts_with('_') => Ok((rest, Expr::Const(Const::E))),
        "i" if !rest.starts_with('_') => Ok((rest, Expr::Const(Const::I))),
        _ => subscripted(rest, c.to_string()),
    }
}

/// `\begin{pmatrix} a & b \\ c & d \end{pmatrix}` (pmatrix, bmatrix,
/// matrix, vmatrix, array with a column spec).
fn matrix(i: &str, d: u32) -> Res<'_, Expr> {
    let (rest, _) = sym("\\begin{").parse(i)?;
    let (rest, env) = take_while1(|c: char| c.is_ascii_alphabetic() || c == '*').parse(rest)?;
    let (mut rest, _) = char('}').parse(rest)?;
    if !matches!(
        env,
        "pmatrix" | "bmatrix" | "Bmatrix" | "vmatrix" | "matrix" | "smallmatrix" | "array"
    ) {
        return Err(fail(i));
    }
    if env == "array" {
        let (r, _) = (sym("{"), take_while(|c: char| c != '}'), char('}')).parse(rest)?;
        rest = r;
    }
    let mut rows: Vec<Vec<Expr>> = vec![];
    let mut row: Vec<Expr> = vec![];
    loop {
        if let Ok((r, _)) = typed(sym("\\end{").parse(rest)) {
            let (r, _) = (take_while(|c: char| c != '}'), char('}')).parse(r)?;
            if !row.is_empty() {
                rows.push(row);
            }
            if rows.is_empty() || rows.iter().any(|r| r.len() != rows[0].len()) {
                return Err(fail(i));
            }
            return Ok((r, Expr::Matrix(rows)));
        }
        let (r, cell) = top(rest, d + 1)?;
        row.push(cell);
        rest = r;
        if let Ok((r, _)) = typed(sym("&").parse(rest)) {
            rest = r;
        } else if let Ok((r, _)) = typed(sym("\\\\").parse(rest)) {
            rows.push(std::mem::take(&mut row));
            rest = r;
        } else if sym("\\end{").parse(rest).is_err() {
            return Err(fail(rest));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Expr {
        parse(s).unwrap_or_else(|| panic!("no parse: {s}"))
    }

    #[test]
    fn numbers() {
        assert_eq!(p("1,234,567"), Expr::int(1234567));
        assert!(matches!(
            p("3.14"),
            Expr::Num {
                decimals: Some(2),
                ..
            }
        ));
        assert!(matches!(
            p(".5"),
            Expr::Num {
                decimals: Some(1),
                ..
            }
        ));
        assert_eq!(
            p("1011_2"),
            Expr::Based {
                digits: "1011".into(),
                base: 2
            }
        );
        assert!(matches!(p("1,2"), Expr::List(_)));
    }

    #[test]
    fn structures() {
        assert!(matches!(p("(1, 2)"), Expr::Tuple(_)));
        assert!(matches!(
            p("(1, 2]"),
            Expr::Interval {
                lo_closed: false,
                hi_closed: true,
                ..
            }
        ));
        assert!(matches!(p(r"\{1, 2\}"), Expr::Set(_)));
        assert!(matches!(p(r"(-\infty, 3] \cup (4, 5)"), Expr::Union(_)));
        assert!(matches!(
            p(r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}"),
            Expr::Matrix(_)
        ));
        assert!(matches!(p(r"x \in [0, 1)"), Expr::Interval { .. }));
        assert!(matches!(p(r"y = 2x + 3"), Expr::Rel(_, _)));
        assert!(matches!(p(r"1 \pm \sqrt{19}"), Expr::Pm(_, _)));
    }

    #[test]
    fn latex_forms() {
        for s in [
            r"\frac{1}{2}",
            r"\frac12",
            r"\sqrt[3]{x}",
            r"\sqrt 5",
            r"2\sqrt{2}",
            r"\sin^2 x + \cos^2 x",
            r"\log_2 8",
            r"3 \cdot 13^{1/2}",
            r"(a+5)(b+2)",
            r"5!",
            r"\binom{5}{2}",
            r"|x-1|",
            r"\lfloor 2.5 \rfloor",
            r"e^{-a t}",
            r"10^10^10",
            r"\alpha_1 + x_{12}",
        ] {
            p(s);
        }
        assert_eq!(
            p(r"1\frac{4}{5}"),
            Expr::Num {
                value: Rat::new(9.into(), 5.into()),
                decimals: None
            }
        );
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let s = format!("{}1{}", "{".repeat(100_000), "}".repeat(100_000));
        assert_eq!(parse(&s), None);
        let s = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert_eq!(parse(&s), None);
    }
}
