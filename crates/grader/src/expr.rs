//! The expression tree answers are parsed into.

use num_bigint::BigInt;
use num_rational::BigRational;

pub type Rat = BigRational;

/// Named constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Const {
    Pi,
    E,
    I,
    Infinity,
}

/// Functions of one argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Sin,
    Cos,
    Tan,
    Cot,
    Sec,
    Csc,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Ln,
    Exp,
    Abs,
    Floor,
    Ceil,
}

impl Func {
    pub fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "sin" => Func::Sin,
            "cos" => Func::Cos,
            "tan" => Func::Tan,
            "cot" => Func::Cot,
            "sec" => Func::Sec,
            "csc" => Func::Csc,
            "arcsin" | "asin" => Func::Asin,
            "arccos" | "acos" => Func::Acos,
            "arctan" | "atan" => Func::Atan,
            "sinh" => Func::Sinh,
            "cosh" => Func::Cosh,
            "tanh" => Func::Tanh,
            "ln" | "log" | "lg" => Func::Ln,
            "exp" => Func::Exp,
            _ => return None,
        })
    }
}

/// Relations between the parts of an equation or inequality chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelOp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
    Ne,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// An exact number; `decimals` is `Some(k)` when it was written as a
    /// decimal with k digits after the point.
    Num {
        value: Rat,
        decimals: Option<u32>,
    },
    /// A numeral with a base subscript: `1011_2`.
    Based {
        digits: String,
        base: u32,
    },
    Const(Const),
    Var(String),
    Add(Vec<Expr>),
    Mul(Vec<Expr>),
    Neg(Box<Expr>),
    Div(Box<Expr>, Box<Expr>),
    Pow(Box<Expr>, Box<Expr>),
    /// (index, radicand)
    Root(Box<Expr>, Box<Expr>),
    Func(Func, Box<Expr>),
    Factorial(Box<Expr>),
    Binom(Box<Expr>, Box<Expr>),
    /// a ± b: both a + b and a - b.
    Pm(Box<Expr>, Box<Expr>),
    /// (a, b, ...): a point, a vector, or an open interval.
    Tuple(Vec<Expr>),
    Interval {
        lo: Box<Expr>,
        hi: Box<Expr>,
        lo_closed: bool,
        hi_closed: bool,
    },
    Union(Vec<Expr>),
    /// \{a, b\}
    Set(Vec<Expr>),
    /// a, b, c (unordered, like a set that keeps repeats)
    List(Vec<Expr>),
    Matrix(Vec<Vec<Expr>>),
    /// e0 op0 e1 op1 e2 ...
    Rel(Vec<Expr>, Vec<RelOp>),
    Text(String),
    /// A multiple-choice letter, (C).
    Letter(char),
    /// `\sum_{var=lo}^{hi} body`
    Sum {
        var: String,
        lo: Box<Expr>,
        hi: Box<Expr>,
        body: Box<Expr>,
    },
}

impl Expr {
    pub fn int(n: i64) -> Expr {
        Expr::Num {
            value: Rat::from_integer(BigInt::from(n)),
            decimals: None,
        }
    }

    /// Whether it is a plain number, function, or arithmetic on them (as
    /// opposed to a structure: tuple, set, interval, relation, text).
    pub fn is_scalar(&self) -> bool {
        match self {
            Expr::Num { .. } | Expr::Const(_) | Expr::Var(_) | Expr::Based { .. } => true,
            Expr::Add(xs) | Expr::Mul(xs) => xs.iter().all(Expr::is_scalar),
            Expr::Neg(a) | Expr::Func(_, a) | Expr::Factorial(a) => a.is_scalar(),
            Expr::Div(a, b) | Expr::Pow(a, b) | Expr::Root(a, b) | Expr::Binom(a, b) => {
                a.is_scalar() && b.is_scalar()
            }
            Expr::Sum { lo, hi, body, .. } => lo.is_scalar() && hi.is_scalar() && body.is_scalar(),
            _ => false,
        }
    }

    /// Whether it was written as a decimal literal (possibly negated).
    pub fn decimal_places(&self) -> Option<u32> {
        match self {
            Expr::Num { decimals, .. } => *decimals,
            Expr::Neg(a) => a.decimal_places(),
            _ => None,
        }
    }

    /// The variables it mentions, sorted.
    pub fn vars(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_vars(&mut out);
        out.sort();
        out.dedup();
        out
    }

    fn collect_vars(&self, out: &mut Vec<String>) {
        match self {
            Expr::Var(v) => out.push(v.clone()),
            Expr::Num { .. }
            | Expr::Based { .. }
            | Expr::Const(_)
            | Expr::Text(_)
            | Expr::Letter(_) => {}
            Expr::Add(xs)
            | Expr::Mul(xs)
            | Expr::Tuple(xs)
            | Expr::Union(xs)
            | Expr::Set(xs)
            | Expr::List(xs) => xs.iter().for_each(|x| x.collect_vars(out)),
            Expr::Rel(xs, _) => xs.iter().for_each(|x| x.collect_vars(out)),
            Expr::Neg(a) | Expr::Func(_, a) | Expr::Factorial(a) => a.collect_vars(out),
            Expr::Div(a, b)
            | Expr::Pow(a, b)
            | Expr::Root(a, b)
            | Expr::Binom(a, b)
            | Expr::Pm(a, b) => {
                a.collect_vars(out);
                b.collect_vars(out)
            }
            Expr::Interval { lo, hi, .. } => {
                lo.collect_vars(out);
                hi.collect_vars(out)
            }
            Expr::Matrix(rows) => rows.iter().flatten().for_each(|x| x.collect_vars(out)),
            Expr::Sum { var, lo, hi, body } => {
                lo.collect_vars(out);
                hi.collect_vars(out);
                let mut inner = Vec::new();
                body.collect_vars(&mut inner);
                out.extend(inner.into_iter().filter(|v| v != var));
            }
        }
    }
}

/// LaTeX-like text of an expression, for verdict details (`8 \times 7`,
/// `\frac{8 \times 7}{1}`). Not a round trip of what was written.
impl std::fmt::Display for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let join = |f: &mut std::fmt::Formatter<'_>, xs: &[Expr], sep: &str| {
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                write!(f, "{x}")?;
            }
            Ok(())
        };
        match self {
            Expr::Num { value, decimals } => match decimals {
                Some(k) if !value.is_integer() || *k > 0 => {
                    let v: f64 = num_traits::ToPrimitive::to_f64(value).unwrap_or(f64::NAN);
                    write!(f, "{v:.*}", *k as usize)
                }
                _ if value.is_integer() => write!(f, "{}", value.to_integer()),
                _ => write!(f, "\\frac{{{}}}{{{}}}", value.numer(), value.denom()),
            },
            Expr::Based { digits, base } => write!(f, "{digits}_{{{base}}}"),
            Expr::Const(c) => f.write_str(match c {
                Const::Pi => "\\pi",
                Const::E => "e",
                Const::I => "i",
                Const::Infinity => "\\infty",
            }),
            Expr::Var(v) => f.write_str(v),
            Expr::Add(xs) => {
                for (i, x) in xs.iter().enumerate() {
                    match (i, x) {
                        (0, x) => write!(f, "{x}")?,
                        (_, Expr::Neg(a)) => write!(f, " - {a}")?,
                        (_, x) => write!(f, " + {x}")?,
                    }
                }
                Ok(())
            }
            Expr::Mul(xs) => {
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" \\times ")?;
                    }
                    match x {
                        Expr::Add(_) | Expr::Pm(..) | Expr::Neg(_) => write!(f, "({x})")?,
                        x => write!(f, "{x}")?,
                    }
                }
                Ok(())
            }
            Expr::Neg(a) => match **a {
                Expr::Add(_) => write!(f, "-({a})"),
                _ => write!(f, "-{a}"),
            },
            Expr::Div(a, b) => write!(f, "\\frac{{{a}}}{{{b}}}"),
            Expr::Pow(a, b) => match **a {
                Expr::Num { .. } | Expr::Const(_) | Expr::Var(_) => write!(f, "{a}^{{{b}}}"),
                _ => write!(f, "({a})^{{{b}}}"),
            },
            Expr::Root(n, x) if **n == Expr::int(2) => write!(f, "\\sqrt{{{x}}}"),
            Expr::Root(n, x) => write!(f, "\\sqrt[{n}]{{{x}}}"),
            Expr::Func(func, a) => write!(f, "{}({a})", format!("{func:?}").to_lowercase()),
            Expr::Factorial(a) => write!(f, "({a})!"),
            Expr::Binom(a, b) => write!(f, "\\binom{{{a}}}{{{b}}}"),
            Expr::Pm(a, b) => write!(f, "{a} \\pm {b}"),
            Expr::Tuple(xs) => {
                f.write_str("(")?;
                join(f, xs, ", ")?;
                f.write_str(")")
            }
            Expr::Interval {
                lo,
                hi,
                lo_closed,
                hi_closed,
            } => write!(
                f,
                "{}{lo}, {hi}{}",
                if *lo_closed { "[" } else { "(" },
                if *hi_closed { "]" } else { ")" }
            ),
            Expr::Union(xs) => join(f, xs, " \\cup "),
            Expr::Set(xs) => {
                f.write_str("\\{")?;
                join(f, xs, ", ")?;
                f.write_str("\\}")
            }
            Expr::List(xs) => join(f, xs, ", "),
            Expr::Matrix(rows) => {
                f.write_str("\\begin{pmatrix}")?;
                for (i, r) in rows.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" \\\\ ")?;
                    }
                    join(f, r, " & ")?;
                }
                f.write_str("\\end{pmatrix}")
            }
            Expr::Rel(parts, ops) => {
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(match ops[i - 1] {
                            RelOp::Eq => " = ",
                            RelOp::Lt => " < ",
                            RelOp::Le => " \\le ",
                            RelOp::Gt => " > ",
                            RelOp::Ge => " \\ge ",
                            RelOp::Ne => " \\ne ",
                        })?;
                    }
                    write!(f, "{p}")?;
                }
                Ok(())
            }
            Expr::Text(t) => f.write_str(t),
            Expr::Letter(c) => write!(f, "({c})"),
            Expr::Sum { var, lo, hi, body } => {
                write!(f, "\\sum_{{{var}={lo}}}^{{{hi}}} {body}")
            }
        }
    }
}
