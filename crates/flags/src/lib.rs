//! Parsers for numeric flags, each with the range it accepts in its name;
//! used as clap's `value_parser`. NaN and infinities are never accepted:
//! `--lr nan` stops at parse time instead of writing a NaN model.
//!
//! | parser | accepts |
//! |---|---|
//! | [`finite`] | any finite number |
//! | [`non_negative`] | 0 <= x < inf |
//! | [`positive`] | 0 < x < inf |
//! | [`unit`] | 0 <= x <= 1 |
//! | [`probability`] | 0 < x <= 1 |
//! | [`fraction`] | 0 <= x < 1 |
//! | [`above_one`] | 1 < x < inf |
//! | [`at_least_one`] | an integer >= 1 |
//! | [`steps`] | a step count >= 1 (u64) |
//! | [`temperature`] | 0 (greedy) or [`MIN_TEMPERATURE`] <= x < inf |

fn number(s: &str) -> Result<f64, String> {
    let x: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if !x.is_finite() {
        return Err(format!("`{s}` is not a finite number"));
    }
    Ok(x)
}

fn check(s: &str, ok: impl Fn(f64) -> bool, range: &str) -> Result<f64, String> {
    let x = number(s)?;
    if ok(x) {
        Ok(x)
    } else {
        Err(format!("`{s}` is out of range: must be {range}"))
    }
}

/// The smallest sampling temperature above 0. Logits divided by less
/// overflow f32 (a 1e-300 temperature made every logit infinite); such a
/// temperature samples the argmax anyway, which 0 (greedy) does exactly.
pub const MIN_TEMPERATURE: f64 = 1e-4;

/// A sampling temperature: 0 (greedy), or [`MIN_TEMPERATURE`] <= x < inf.
pub fn temperature(s: &str) -> Result<f64, String> {
    let x = number(s)?;
    if x == 0.0 || x >= MIN_TEMPERATURE {
        Ok(x)
    } else {
        Err(format!(
            "`{s}` is out of range: must be 0 (greedy) or >= {MIN_TEMPERATURE} (smaller ones overflow the logits; 0 samples the same argmax exactly)"
        ))
    }
}

/// Any finite number (a reward value).
pub fn finite(s: &str) -> Result<f64, String> {
    number(s)
}

/// 0 <= x < inf (learning rates, coefficients, weight decay, a clip
/// where 0 means off).
pub fn non_negative(s: &str) -> Result<f64, String> {
    check(s, |x| x >= 0.0, ">= 0")
}

/// 0 < x < inf (clip ranges, memory limits).
pub fn positive(s: &str) -> Result<f64, String> {
    check(s, |x| x > 0.0, "> 0")
}

/// 0 <= x <= 1 (discount, GAE lambda, a share of the learning rate).
pub fn unit(s: &str) -> Result<f64, String> {
    check(s, |x| (0.0..=1.0).contains(&x), "between 0 and 1")
}

/// 0 < x <= 1 (nucleus sampling's top-p).
pub fn probability(s: &str) -> Result<f64, String> {
    check(s, |x| x > 0.0 && x <= 1.0, "> 0 and <= 1")
}

/// 0 <= x < 1 (a held-out share).
pub fn fraction(s: &str) -> Result<f64, String> {
    check(s, |x| (0.0..1.0).contains(&x), ">= 0 and < 1")
}

/// 1 < x < inf (dual-clip's constant).
pub fn above_one(s: &str) -> Result<f64, String> {
    check(s, |x| x > 1.0, "> 1")
}

/// An integer >= 1 (counts and sizes).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    let n: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number"))?;
    if n == 0 {
        return Err(format!("`{s}` is out of range: must be >= 1"));
    }
    Ok(n)
}

/// A number of steps >= 1.
pub fn steps(s: &str) -> Result<u64, String> {
    at_least_one(s).map(|n| n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_are_refused_everywhere() {
        for bad in ["nan", "NaN", "inf", "-inf", "infinity", "1e400", "", "x"] {
            for p in [
                finite,
                non_negative,
                positive,
                unit,
                probability,
                fraction,
                above_one,
            ] {
                assert!(p(bad).is_err(), "{bad} accepted");
            }
        }
    }

    #[test]
    fn a_temperature_is_greedy_or_not_too_small_to_divide_by() {
        assert_eq!(temperature("0"), Ok(0.0));
        assert_eq!(temperature("0.6"), Ok(0.6));
        assert_eq!(temperature("1e-4"), Ok(1e-4));
        for bad in ["1e-300", "5e-5", "-1", "nan"] {
            assert!(temperature(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(non_negative("0"), Ok(0.0));
        assert!(non_negative("-1e-7").is_err());
        assert!(positive("0").is_err());
        assert_eq!(positive("0.2"), Ok(0.2));
        assert_eq!(unit("1"), Ok(1.0));
        assert!(unit("1.01").is_err());
        assert!(probability("0").is_err());
        assert_eq!(probability("1"), Ok(1.0));
        assert!(fraction("1").is_err());
        assert!(above_one("1").is_err());
        assert_eq!(finite("-0.5"), Ok(-0.5));
        assert_eq!(at_least_one("3"), Ok(3));
        assert!(at_least_one("0").is_err());
        assert!(at_least_one("-1").is_err());
        assert!(non_negative("-1").unwrap_err().contains(">= 0"));
    }
}
