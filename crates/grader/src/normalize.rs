//! String-level clean-up of an answer before parsing: math delimiters,
//! `\left`/`\right`, spacing commands, `\dfrac`, thousands separators,
//! degrees, dollar signs, trailing units and `\text{}` wrappers.
//!
//! Everything here is a rewrite that never changes an answer's value; the
//! value-level policies (percent, decimals, ...) live in [`crate::policy`].

/// The cleaned answer and what was stripped from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    pub text: String,
    /// It ended in `%` (or "percent"): the number before it is a percentage.
    pub percent: bool,
    /// The units, degree and currency signs stripped (`cm`, `°`, `$`),
    /// lower case and comma-joined; `None` when none were.
    pub units: Option<String>,
}

const UNIT_WRAPPERS: [&str; 7] = [
    "\\text{",
    "\\textbf{",
    "\\mbox{",
    "\\mathrm{",
    "\\textnormal{",
    "\\textit{",
    "\\mathit{",
];

/// The units stripped from the end of a numeric answer: a closed list
/// (lower case, matched whole; a trailing `.` is ignored). A trailing
/// word not on it stays, so a word that changes the value (`5 million`,
/// `2 \text{ squared}`, `5 \text{ not}`) leaves an answer that is not the
/// number. Count nouns are the ones MATH's own golds end in
/// (`\text{ ways}`, `\text{ meals}`).
#[rustfmt::skip]
pub const UNITS: &[&str] = &[
    // length and area
    "mm", "cm", "m", "km", "meter", "meters", "metre", "metres", "millimeter", "millimeters",
    "centimeter", "centimeters", "centimetre", "centimetres", "kilometer", "kilometers",
    "kilometre", "kilometres", "inch", "inches", "ft", "foot", "feet", "yd", "yard", "yards",
    "mi", "mile", "miles", "unit", "units", "acre", "acres", "hectare", "hectares",
    // mass
    "mg", "g", "gm", "gram", "grams", "kg", "kilogram", "kilograms", "lb", "lbs", "pound",
    "pounds", "oz", "ounce", "ounces", "ton", "tons", "tonne", "tonnes",
    // volume
    "ml", "l", "liter", "liters", "litre", "litres", "gallon", "gallons", "gal", "quart",
    "quarts", "pint", "pints", "cup", "cups", "cc", "teaspoon", "teaspoons", "tablespoon",
    "tablespoons",
    // time and speed
    "s", "sec", "secs", "second", "seconds", "min", "mins", "minute", "minutes", "h", "hr",
    "hrs", "hour", "hours", "day", "days", "week", "weeks", "month", "months", "year", "years",
    "yr", "yrs", "mph", "kph",
    // money
    "dollar", "dollars", "usd", "cent", "cents", "euro", "euros", "yuan",
    // angle and temperature
    "degree", "degrees", "deg", "radian", "radians", "rad", "fahrenheit", "celsius",
    // percent (the answer is then a percentage)
    "percent", "percentage", "pct",
    // what MATH golds count
    "way", "ways", "value", "values", "meal", "meals", "integer", "integers", "digit", "digits",
    "point", "points", "multiple", "multiples", "triangle", "triangles", "piece", "pieces",
    "box", "boxes", "dog", "dogs", "student", "students", "teacher", "teachers", "ticket",
    "tickets", "edge", "edges", "people", "person", "persons", "handshake", "handshakes", "game",
    "games", "coin", "coins", "marble", "marbles", "number", "numbers", "pair", "pairs", "side",
    "sides", "diagonal", "diagonals", "daps",
];

/// Words that may stand between a value and its unit without changing
/// the value: area and volume (`square feet`, `sq. units`, `cubic cm`),
/// rates (`miles per hour`) and the adjectives MATH golds use
/// (`distinct integers`, `right triangles`, `children tickets`).
#[rustfmt::skip]
pub const UNIT_QUALIFIERS: &[&str] = &[
    "square", "sq", "cubic", "cu", "per", "an", "a", "distinct", "different", "possible",
    "positive", "right", "children", "adult",
];

pub fn normalize(answer: &str) -> Normalized {
    let mut s = join_brace_thousands(&undouble_commands(answer.trim()));
    // Math delimiters around the whole answer.
    for (open, close) in [("\\[", "\\]"), ("\\(", "\\)"), ("$$", "$$")] {
        if let Some(inner) = s.strip_prefix(open).and_then(|t| t.strip_suffix(close)) {
            s = inner.trim().to_string();
        }
    }
    // `x = 1/3 \approx 0.33`: the exact part.
    if let Some(pos) = s.find("\\approx") {
        if pos > 0 {
            s.truncate(pos);
        }
    }
    // "1 000 000": thousands separated by spaces.
    if is_spaced_thousands(s.trim()) {
        s = s.replace(' ', "");
    }
    // Row separators `\\` must survive the spacing rewrites (`\ `).
    const ROW: &str = "\u{1}";
    s = s.replace("\\\\", ROW);
    let mut units: Vec<String> = Vec::new();
    if s.contains("\\$") {
        units.push("$".into());
    }
    // Commands that only change how it looks.
    for (from, to) in [
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("\\cfrac", "\\frac"),
        ("\\dbinom", "\\binom"),
        ("\\tbinom", "\\binom"),
        ("\\displaystyle", ""),
        ("\\textstyle", ""),
        ("\\limits", ""),
        (",\\! ", ","),
        (",\\!", ","),
        ("\\!", ""),
        ("\\,", ""),
        ("\\;", " "),
        ("\\:", " "),
        ("\\qquad", " "),
        ("\\quad", " "),
        ("\\ ", " "),
        ("~", " "),
        ("{,}", ""),
        ("\\%", "%"),
        ("\\$", ""),
        ("$", ""),
        ("\\lt", "<"),
        ("\\gt", ">"),
        ("\\leqslant", "\\le"),
        ("\\geqslant", "\\ge"),
        ("\\leq", "\\le"),
        ("\\geq", "\\ge"),
        ("\\neq", "\\ne"),
        ("<=", "\\le "),
        (">=", "\\ge "),
        ("!=", "\\ne "),
        ("≤", "\\le "),
        ("≥", "\\ge "),
        ("−", "-"),
        ("π", "\\pi "),
        ("∞", "\\infty "),
        ("×", "\\times "),
        ("·", "\\cdot "),
        ("\\cdotp", "\\cdot"),
        ("\\operatorname{", "\\text{"),
        ("\\mathbf{", "\\text{"),
        ("\\bf{", "\\text{"),
        ("\\boldsymbol{", "\\text{"),
        ("\\textup{", "\\text{"),
        ("\\textrm{", "\\text{"),
    ] {
        if s.contains(from) {
            s = s.replace(from, to);
        }
    }
    s = s.replace(ROW, "\\\\");
    s = remove_left_right(&s);
    s = strip_outer_group(&s);
    // Degrees: 48^\circ, 48^{\circ}, 48°, \degree.
    for deg in [
        "^{\\circ}",
        "^\\circ",
        "^{\\circ }",
        "\\circ",
        "°",
        "\\degree",
    ] {
        if s.contains(deg) {
            s = s.replace(deg, "");
            if !units.iter().any(|u| u == "°") {
                units.push("°".into());
            }
        }
    }
    let mut percent = false;
    // Trailing units, repeatedly ("100\text{ square units}", "5.4 cents", "4\pi \text{ cm}^2").
    loop {
        let t = s.trim_end().trim_end_matches('.').trim_end();
        if let Some(stripped) = t.strip_suffix('%') {
            percent = true;
            s = stripped.to_string();
            continue;
        }
        match strip_trailing_unit(t) {
            Some((rest, unit)) => {
                let u = unit.trim().to_ascii_lowercase();
                if u.starts_with("percent") || u == "pct" {
                    percent = true;
                } else {
                    units.push(u.split_whitespace().collect::<Vec<_>>().join(" "));
                }
                s = rest.to_string();
            }
            None => {
                s = t.to_string();
                break;
            }
        }
    }
    // Remaining \text{...}: a connective is a list separator, anything else
    // is its content.
    s = unwrap_text(&s);
    // A multiple-choice letter: "(C)", "(C) 12", "C)".
    if let Some(letter) = choice_letter(&s) {
        s = format!("({letter})");
    }
    Normalized {
        text: s.split_whitespace().collect::<Vec<_>>().join(" "),
        percent,
        units: (!units.is_empty()).then(|| units.join(", ")),
    }
}

/// Commands a double-escaped answer (`\\frac{1}{2}`, as a Python source
/// writes LaTeX) spells with two backslashes.
const DOUBLED: [&str; 30] = [
    "frac", "dfrac", "tfrac", "sqrt", "left", "right", "le", "ge", "leq", "geq", "ne", "neq", "pi",
    "boxed", "text", "textbf", "mathrm", "cdot", "times", "infty", "in", "cup", "cap", "pm",
    "circ", "approx", "sin", "cos", "tan", "log",
];

/// `\\frac{1}{2}` -> `\frac{1}{2}`: two backslashes directly before a known
/// command name are that command (a row break `\\` followed by letters
/// is only legitimate inside a matrix, which is left alone).
fn undouble_commands(s: &str) -> String {
    if s.contains("\\begin") || !s.contains("\\\\") {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'\\') && (i == 0 || b[i - 1] != b'\\') {
            let name_end = (i + 2..b.len())
                .find(|&j| !b[j].is_ascii_alphabetic())
                .unwrap_or(b.len());
            if DOUBLED.contains(&&s[i + 2..name_end]) {
                out.push('\\');
                out.push_str(&s[i + 2..name_end]);
                i = name_end;
                continue;
            }
        }
        let c = s[i..].chars().next().expect("in bounds");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// `14 {, }916` -> `14916`: a `{,}` thousands separator (with any spaces
/// inside or around it) between digits.
fn join_brace_thousands(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut copied = 0;
    while let Some(off) = s[i..].find("{,") {
        let open = i + off;
        let mut close = open + 2;
        while close < b.len() && b[close] == b' ' {
            close += 1;
        }
        i = open + 2;
        if b.get(close) != Some(&b'}') {
            continue;
        }
        let mut left = open;
        while left > 0 && b[left - 1] == b' ' {
            left -= 1;
        }
        let mut right = close + 1;
        while right < b.len() && b[right] == b' ' {
            right += 1;
        }
        if left > 0 && b[left - 1].is_ascii_digit() && b.get(right).is_some_and(u8::is_ascii_digit)
        {
            out.push_str(&s[copied..left]);
            copied = right;
            i = right;
        }
    }
    out.push_str(&s[copied..]);
    out
}

fn is_spaced_thousands(s: &str) -> bool {
    let mut groups = s.split(' ');
    let first = groups.next().unwrap_or("");
    let rest: Vec<&str> = groups.collect();
    !rest.is_empty()
        && (1..=3).contains(&first.len())
        && first.chars().all(|c| c.is_ascii_digit())
        && rest
            .iter()
            .all(|g| g.len() == 3 && g.chars().all(|c| c.is_ascii_digit()))
}

/// `(x \in [0, 1])` -> `x \in [0, 1]`: one pair of parentheses around the
/// whole answer with no comma at its top level is a group, not a tuple.
fn strip_outer_group(s: &str) -> String {
    let t = s.trim();
    if !(t.starts_with('(') && t.ends_with(')')) {
        return s.to_string();
    }
    let mut depth = 0i32;
    for (i, c) in t.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth == 0 && i + 1 < t.len() {
                    return s.to_string();
                }
            }
            ',' | ';' if depth == 1 => return s.to_string(),
            _ => {}
        }
    }
    t[1..t.len() - 1].trim().to_string()
}

/// `\left(` -> `(`, `\right]` -> `]`, `\left.` -> ``, `\left\{` -> `\{`.
fn remove_left_right(s: &str) -> String {
    if !s.contains("\\left") && !s.contains("\\right") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('\\') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        let cmd = ["\\left", "\\right"].into_iter().find(|c| {
            after.starts_with(c)
                && !after[c.len()..].starts_with(|ch: char| ch.is_ascii_alphabetic())
        });
        match cmd {
            Some(c) => {
                rest = &after[c.len()..];
                if let Some(r) = rest.strip_prefix('.') {
                    rest = r;
                }
            }
            None => {
                out.push('\\');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// If `s` ends in a unit (`\text{...}`-like wrapper of letters, or plain
/// words) after a numeric part, split it off: (the rest, the unit).
fn strip_trailing_unit(s: &str) -> Option<(&str, &str)> {
    // An optional power on the unit: cm^2, \text{ cm}^{3}.
    let mut end = s.len();
    for pow in ["^{2}", "^{3}", "^2", "^3"] {
        if s[..end].ends_with(pow) {
            end -= pow.len();
            break;
        }
    }
    let body = &s[..end];
    // \text{ cm}
    if body.ends_with('}') {
        for w in UNIT_WRAPPERS {
            if let Some(start) = body.rfind(w) {
                let inner = &body[start + w.len()..body.len() - 1];
                if inner.contains(['{', '}']) {
                    continue;
                }
                let rest = body[..start].trim_end();
                let word = inner.trim();
                if is_unit_word(word, true) && ends_numeric(rest) {
                    return Some((rest, inner));
                }
            }
        }
    }
    // plain words: "5.4 cents", "125 miles", "28 percent", "1,000.99m"
    let word_start = body
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_alphabetic() || *c == ' ' || *c == '.')
        .last()
        .map(|(i, _)| i)?;
    let word = body[word_start..].trim();
    let rest = body[..word_start].trim_end();
    if word.len() >= 2 && is_unit_word(word, false) && ends_numeric(rest) {
        return Some((rest, word));
    }
    None
}

/// Whether `word` (a phrase) is a unit: listed [`UNITS`], after any
/// [`UNIT_QUALIFIERS`], and nothing else.
fn is_unit_word(word: &str, wrapped: bool) -> bool {
    if word.is_empty()
        || !word
            .chars()
            .all(|c| c.is_ascii_alphabetic() || c == ' ' || c == '.')
    {
        return false;
    }
    let lower = word.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split_whitespace()
        .map(|w| w.trim_end_matches('.'))
        .filter(|w| !w.is_empty())
        .collect();
    let Some((last, before)) = words.split_last() else {
        return false;
    };
    let unit = |w: &str| UNITS.contains(&w);
    if !unit(last)
        || !before
            .iter()
            .all(|w| UNIT_QUALIFIERS.contains(w) || unit(w))
    {
        return false;
    }
    // A single letter in \text{} is a unit only when wrapped ("5\text{ m}").
    wrapped || word.trim().len() >= 2
}

/// Whether the part before a unit is a value: ends in a digit or a closing
/// bracket, or a constant.
fn ends_numeric(rest: &str) -> bool {
    let t = rest.trim_end();
    t.ends_with(|c: char| c.is_ascii_digit() || c == '}' || c == ')' || c == ']' || c == '%')
        || t.ends_with("\\pi")
        || t.ends_with("\\infty")
}

/// `\text{ and }` -> `,`; `\text{x}` -> `x`.
fn unwrap_text(s: &str) -> String {
    let mut out = s.to_string();
    for w in UNIT_WRAPPERS {
        let mut guard = 0;
        while let Some(start) = out.find(w) {
            guard += 1;
            if guard > 64 {
                break;
            }
            let inner_start = start + w.len();
            let Some(close) = matching_close(&out, inner_start) else {
                break;
            };
            let inner = out[inner_start..close].to_string();
            let t = inner.trim().to_ascii_lowercase();
            let replacement = if t == "and" || t == "or" || t == "," || t == ", and" {
                ",".to_string()
            } else {
                inner
            };
            out.replace_range(start..=close, &replacement);
        }
    }
    while out.contains(", ,") {
        out = out.replace(", ,", ",");
    }
    out = out.replace(",,", ",");
    // "(11,7)or(7,11)"
    out = out.replace(")or(", "),(").replace(")and(", "),(");
    // Connectives between values written without \text ("21, 16 or 11"),
    // but not inside a text answer ("Evelyn and Briana").
    if out.contains(|c: char| c.is_ascii_digit()) {
        for conn in [", and ", " and ", " or "] {
            out = out.replace(conn, ", ");
        }
    }
    out
}

fn matching_close(s: &str, from: usize) -> Option<usize> {
    let mut depth = 1usize;
    for (i, c) in s[from..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(from + i);
                }
            }
            _ => {}
        }
    }
    None
}

/// "(C)", "(C) 12", "C)", "\textbf{(C)}" (already unwrapped) -> 'C'.
fn choice_letter(s: &str) -> Option<char> {
    let t = s.trim();
    let b = t.as_bytes();
    if b.len() >= 3 && b[0] == b'(' && b[2] == b')' && b[1].is_ascii_uppercase() {
        let rest = t[3..].trim();
        if rest.is_empty()
            || rest.starts_with(|c: char| c.is_ascii_digit() || c == '\\' || c == '$')
        {
            return Some(b[1] as char);
        }
    }
    if b.len() == 2 && b[0].is_ascii_uppercase() && b[1] == b')' {
        return Some(b[0] as char);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        normalize(s).text
    }

    #[test]
    fn delimiters_and_spacing() {
        assert_eq!(
            n(r"$\left( 3, \dfrac{\pi}{2} \right)$"),
            r"( 3, \frac{\pi}{2} )"
        );
        assert_eq!(n(r"11,\! 111,\! 111,\! 100"), "11,111,111,100");
        assert_eq!(n(r"2\,220"), "2220");
        assert_eq!(n(r"2{,}220"), "2220");
        assert_eq!(n(r"14 {, }916"), "14916");
        assert_eq!(
            n(r"\\left( \\frac{4}{3}, -\\frac{1}{3} \\right)"),
            n(r"\left( \frac{4}{3}, -\frac{1}{3} \right)")
        );
        // A row break before a variable in a matrix stays one.
        assert_eq!(
            n(r"\begin{pmatrix}a\\b\end{pmatrix}"),
            r"\begin{pmatrix}a\\b\end{pmatrix}"
        );
        assert_eq!(n(r"\{,1\}"), r"\{,1\}");
        assert_eq!(n(r"\$18.90"), "18.90");
    }

    #[test]
    fn units_and_degrees() {
        assert_eq!(n(r"100\text{ square units}"), "100");
        assert_eq!(n(r"864 \mbox{ inches}^2"), "864");
        assert_eq!(n(r"5 \mathrm{~m}"), "5");
        assert_eq!(n(r"4 \pi \text{ cm}^2"), r"4 \pi");
        assert_eq!(n(r"48^\circ"), "48");
        assert_eq!(n(r"90\text{ degrees}"), "90");
        assert_eq!(n("5.4 cents"), "5.4");
        assert_eq!(n(r"\frac{270}7 degrees"), r"\frac{270}7");
        assert_eq!(n(r"\text{Evelyn}"), "Evelyn");
        assert_eq!(n(r"\text{9}"), "9");
        assert!(normalize(r"25\%").percent && n(r"25\%") == "25");
        assert!(normalize("28 percent").percent);
    }

    #[test]
    fn letters_and_connectives() {
        assert_eq!(n(r"\text{(C)}"), "(C)");
        assert_eq!(n(r"\textbf{(C)}\ 12"), "(C)");
        assert_eq!(n(r"6 \text{ and } 8"), "6 , 8");
        assert_eq!(n(r"x \in \left(3, 4\right]"), r"x \in (3, 4]");
    }
}
