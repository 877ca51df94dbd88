//! Evaluating expressions: exactly (big rationals) where possible, else as
//! complex floats. Both are bounded: sizes and work are capped, so no
//! input (10^10^10, 10000!) can take long.

use num_bigint::BigInt;
use num_complex::Complex64;
use num_integer_roots::nth_root_exact;
use num_traits::{One, Signed, ToPrimitive, Zero};

use crate::expr::{Const, Expr, Func, Rat};

/// Largest numerator/denominator kept exact, in bits.
const MAX_BITS: u64 = 4096;
/// Largest n for which n! is computed exactly.
const MAX_FACTORIAL: u64 = 300;
/// Most terms a `\sum` is evaluated over.
const MAX_SUM_TERMS: i64 = 1000;

/// A budget of evaluation steps shared by one comparison.
#[derive(Debug)]
pub struct Fuel(pub u64);

impl Fuel {
    fn burn(&mut self) -> Option<()> {
        if self.0 == 0 {
            return None;
        }
        self.0 -= 1;
        Some(())
    }
}

fn small(r: &Rat) -> Option<()> {
    (r.numer().bits() <= MAX_BITS && r.denom().bits() <= MAX_BITS).then_some(())
}

/// The exact rational value, when there is one and it is small enough.
pub fn exact(e: &Expr, fuel: &mut Fuel) -> Option<Rat> {
    fuel.burn()?;
    let r = match e {
        Expr::Num { value, .. } => value.clone(),
        Expr::Based { digits, base } => {
            let v = BigInt::parse_bytes(digits.as_bytes(), *base)?;
            Rat::from_integer(v)
        }
        Expr::Add(xs) => {
            let mut acc = Rat::zero();
            for x in xs {
                acc += exact(x, fuel)?;
                small(&acc)?;
            }
            acc
        }
        Expr::Mul(xs) => {
            let mut acc = Rat::one();
            for x in xs {
                acc *= exact(x, fuel)?;
                small(&acc)?;
            }
            acc
        }
        Expr::Neg(a) => -exact(a, fuel)?,
        Expr::Div(a, b) => {
            let b = exact(b, fuel)?;
            if b.is_zero() {
                return None;
            }
            exact(a, fuel)? / b
        }
        Expr::Pow(a, b) => {
            let base = exact(a, fuel)?;
            let ex = exact(b, fuel)?;
            rational_pow(&base, &ex)?
        }
        Expr::Root(n, x) => {
            let n = exact(n, fuel)?;
            let x = exact(x, fuel)?;
            if !n.is_integer() || !n.is_positive() {
                return None;
            }
            rational_pow(&x, &Rat::new(BigInt::one(), n.to_integer()))?
        }
        Expr::Factorial(a) => {
            let n = exact(a, fuel)?;
            if !n.is_integer() || n.is_negative() {
                return None;
            }
            let n = n.to_integer().to_u64()?;
            if n > MAX_FACTORIAL {
                return None;
            }
            let mut acc = BigInt::one();
            for k in 2..=n {
                acc *= k;
            }
            Rat::from_integer(acc)
        }
        Expr::Binom(a, b) => {
            let n = exact(a, fuel)?;
            let k = exact(b, fuel)?;
            if !n.is_integer() || !k.is_integer() {
                return None;
            }
            let (n, k) = (n.to_integer().to_i64()?, k.to_integer().to_i64()?);
            if k < 0 || n < 0 || k > n {
                return Some(Rat::zero());
            }
            if n > 10_000 {
                return None;
            }
            let k = k.min(n - k);
            let mut acc = BigInt::one();
            for j in 0..k {
                acc = acc * (n - j) / (j + 1);
            }
            Rat::from_integer(acc)
        }
        _ => return None,
    };
    small(&r)?;
    Some(r)
}

/// base^ex for a rational exponent p/q, when the result is rational and
/// small: an integer power, or an exact q-th root.
fn rational_pow(base: &Rat, ex: &Rat) -> Option<Rat> {
    let p = ex.numer().to_i64()?;
    let q = ex.denom().to_u32()?;
    if p.unsigned_abs() > 4096 || q > 64 {
        return None;
    }
    let bits = base.numer().bits().max(base.denom().bits());
    if bits.saturating_mul(p.unsigned_abs()) > MAX_BITS {
        return None;
    }
    if base.is_zero() {
        return (p > 0).then(Rat::zero);
    }
    // q-th root first (exact or nothing).
    let root = if q == 1 {
        base.clone()
    } else {
        if base.is_negative() && q % 2 == 0 {
            return None;
        }
        let sign = if base.is_negative() { -1 } else { 1 };
        let n = nth_root_exact(&base.numer().abs(), q)?;
        let d = nth_root_exact(base.denom(), q)?;
        Rat::new(n * sign, d)
    };
    let r = num_traits::pow(root.clone(), p.unsigned_abs() as usize);
    Some(if p < 0 { r.recip() } else { r })
}

/// Exact integer roots.
mod num_integer_roots {
    use num_bigint::BigInt;
    use num_traits::Zero;

    pub fn nth_root_exact(x: &BigInt, n: u32) -> Option<BigInt> {
        if x.is_zero() {
            return Some(BigInt::zero());
        }
        let r = x.nth_root(n);
        (num_traits::pow(r.clone(), n as usize) == *x).then_some(r)
    }
}

/// An addend smaller than this share of the largest addend of its sum is
/// below what a float comparison can see: the sum is not evaluated. Ten
/// times the tolerance at test points ([`crate::policy::POINT_TOL`]), so
/// an addend is either seen by the comparison or makes it undecided
/// (`x + 10^{-9}` is not `x`).
pub const ABSORBED: f64 = 1e-7;

/// A nonzero result that came out as zero: an underflow, not a value.
fn underflow(x: Complex64) -> bool {
    x.re == 0.0 && x.im == 0.0
}

/// The value with `vars` bound, as a complex float. `None` when it has no
/// finite value (a free variable, a pole, infinity, the fuel ran out) or
/// when floats cannot represent it faithfully: a nonzero number that
/// underflows to 0 (`10^{-100000}`), a product or quotient of nonzero
/// values that underflows, or a sum with an addend too small to change it
/// as far as a comparison can tell (`1-10^{-10^{10}}`, `2\pi+10^{-30}`).
/// A comparison that needs such a value is undecided, so never "equal".
pub fn float(e: &Expr, vars: &[(String, Complex64)], fuel: &mut Fuel) -> Option<Complex64> {
    fuel.burn()?;
    let v = match e {
        Expr::Num { value, .. } => {
            let f = value.to_f64()?;
            if f == 0.0 && !value.is_zero() {
                return None;
            }
            Complex64::new(f, 0.0)
        }
        Expr::Based { .. } => Complex64::new(exact(e, fuel)?.to_f64()?, 0.0),
        Expr::Const(Const::Pi) => Complex64::new(std::f64::consts::PI, 0.0),
        Expr::Const(Const::E) => Complex64::new(std::f64::consts::E, 0.0),
        Expr::Const(Const::I) => Complex64::i(),
        Expr::Const(Const::Infinity) => return None,
        Expr::Var(name) => vars.iter().find(|(n, _)| n == name)?.1,
        Expr::Add(xs) => {
            let mut acc = Complex64::new(0.0, 0.0);
            let mut terms = Vec::with_capacity(xs.len());
            for x in xs {
                let t = float(x, vars, fuel)?;
                acc += t;
                terms.push(t.norm());
            }
            let largest = terms.iter().copied().fold(0.0, f64::max);
            if terms.iter().any(|&t| t > 0.0 && t < ABSORBED * largest) {
                return None;
            }
            acc
        }
        Expr::Mul(xs) => {
            let mut acc = Complex64::new(1.0, 0.0);
            let mut zero_factor = false;
            for x in xs {
                let f = float(x, vars, fuel)?;
                zero_factor |= underflow(f);
                acc *= f;
            }
            if underflow(acc) && !zero_factor {
                return None;
            }
            acc
        }
        Expr::Neg(a) => -float(a, vars, fuel)?,
        Expr::Div(a, b) => {
            let (n, d) = (float(a, vars, fuel)?, float(b, vars, fuel)?);
            let q = n / d;
            if underflow(q) && !underflow(n) {
                return None;
            }
            q
        }
        Expr::Pow(a, b) => {
            let base = float(a, vars, fuel)?;
            let ex = float(b, vars, fuel)?;
            let p = if ex.im == 0.0 && ex.re.fract() == 0.0 && ex.re.abs() <= 1e6 {
                base.powi(ex.re as i32)
            } else if base.im == 0.0 && base.re >= 0.0 && ex.im == 0.0 {
                Complex64::new(base.re.powf(ex.re), 0.0)
            } else {
                base.powc(ex)
            };
            if underflow(p) && !underflow(base) {
                return None;
            }
            p
        }
        Expr::Root(n, x) => {
            let n = float(n, vars, fuel)?;
            let x = float(x, vars, fuel)?;
            // Odd roots of negative reals are real.
            if x.im == 0.0
                && n.im == 0.0
                && x.re < 0.0
                && n.re.fract() == 0.0
                && (n.re as i64) % 2 != 0
            {
                Complex64::new(-(-x.re).powf(1.0 / n.re), 0.0)
            } else {
                x.powc(n.inv())
            }
        }
        Expr::Func(f, a) => {
            let x = float(a, vars, fuel)?;
            match f {
                Func::Sin => x.sin(),
                Func::Cos => x.cos(),
                Func::Tan => x.tan(),
                Func::Cot => x.tan().inv(),
                Func::Sec => x.cos().inv(),
                Func::Csc => x.sin().inv(),
                Func::Asin => x.asin(),
                Func::Acos => x.acos(),
                Func::Atan => x.atan(),
                Func::Sinh => x.sinh(),
                Func::Cosh => x.cosh(),
                Func::Tanh => x.tanh(),
                Func::Ln => x.ln(),
                Func::Exp => {
                    let y = x.exp();
                    if underflow(y) {
                        return None;
                    }
                    y
                }
                Func::Abs => Complex64::new(x.norm(), 0.0),
                Func::Floor => Complex64::new(x.re.floor(), 0.0),
                Func::Ceil => Complex64::new(x.re.ceil(), 0.0),
            }
        }
        Expr::Factorial(_) | Expr::Binom(_, _) => Complex64::new(exact(e, fuel)?.to_f64()?, 0.0),
        Expr::Sum { var, lo, hi, body } => {
            // Integer bounds only, and a bounded number of terms.
            let integer = |x: Complex64| {
                (x.im == 0.0 && x.re.fract() == 0.0 && x.re.abs() < 1e9).then_some(x.re as i64)
            };
            let lo = integer(float(lo, vars, fuel)?)?;
            let hi = integer(float(hi, vars, fuel)?)?;
            if hi - lo >= MAX_SUM_TERMS {
                return None;
            }
            let mut env = vars.to_vec();
            env.retain(|(n, _)| n != var);
            env.push((var.clone(), Complex64::new(0.0, 0.0)));
            let mut acc = Complex64::new(0.0, 0.0);
            for k in lo..=hi {
                env.last_mut().expect("pushed").1 = Complex64::new(k as f64, 0.0);
                acc += float(body, &env, fuel)?;
            }
            acc
        }
        _ => return None,
    };
    (v.re.is_finite() && v.im.is_finite()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn ex(s: &str) -> Option<Rat> {
        exact(&parse(s).unwrap(), &mut Fuel(10_000))
    }

    #[test]
    fn exact_arithmetic() {
        assert_eq!(ex(r"\frac{28}{6}"), ex(r"\frac{14}{3}"));
        assert_eq!(ex(r"\sqrt{4}"), ex("2"));
        assert_eq!(ex(r"\sqrt{2}"), None);
        assert_eq!(ex(r"5!"), ex("120"));
        assert_eq!(ex(r"\binom{5}{2}"), ex("10"));
        assert_eq!(ex("2^{-2}"), ex("0.25"));
        assert_eq!(ex("1011_2"), ex("11"));
        assert_eq!(ex("8^{1/3}"), ex("2"));
    }

    #[test]
    fn huge_values_are_refused_quickly() {
        assert_eq!(ex("10^{10^{10}}"), None);
        assert_eq!(ex("10000!"), None);
        assert!(float(&parse("10^{10^{10}}").unwrap(), &[], &mut Fuel(10_000)).is_none());
        assert!(float(
            &parse(r"\sum_{k=1}^{10^{12}} k").unwrap(),
            &[],
            &mut Fuel(10_000)
        )
        .is_none());
    }

    #[test]
    fn sums_over_integer_bounds() {
        let f = |s: &str| float(&parse(s).unwrap(), &[], &mut Fuel(10_000)).map(|c| c.re);
        assert_eq!(f(r"\sum_{k=1}^{10} k"), Some(55.0));
        assert_eq!(f(r"\sum_{k=1}^{3} k^2 + 1"), Some(15.0));
        assert_eq!(f(r"\sum_{k=1}^{n} k"), None);
    }
}
