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
