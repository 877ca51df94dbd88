//! Final-answer extraction from a response or a worked solution.
//!
//! The training reward follows the recipe: the answer is the last
//! `\boxed{...}` (or `\fbox{...}`, or `\boxed x`), and a response without one
//! has no answer. Evaluation may opt in to fallbacks ([`Fallbacks`]).

/// Opt-in fallbacks for evaluation, tried in this order when a response
/// has no boxed answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fallbacks {
    /// "the answer is X" / "final answer: X" (the last such phrase).
    pub answer_phrase: bool,
    /// The last inline or display math span: `$...$`, `\(...\)`, `\[...\]`.
    pub math_span: bool,
    /// The last number in the response (GSM8K-style sets).
    pub last_number: bool,
}

impl Fallbacks {
    pub const NONE: Fallbacks = Fallbacks {
        answer_phrase: false,
        math_span: false,
        last_number: false,
    };
    pub const ALL: Fallbacks = Fallbacks {
        answer_phrase: true,
        math_span: true,
        last_number: true,
    };
}

/// How the answer was found.
///
/// With any fallback enabled (evaluation), answers boxed one after another
/// and joined only by connectives (`\boxed{1} and \boxed{2}`, `\boxed{(2, 2)}
/// \quad \text{and} \quad \boxed{(6, 2)}`) are read as one list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Boxed,
    AnswerPhrase,
    MathSpan,
    LastNumber,
}

/// The final answer of `response`: the last boxed answer, else the enabled
/// fallbacks in order.
pub fn extract_answer(response: &str, fallbacks: Fallbacks) -> Option<(String, Method)> {
    if fallbacks != Fallbacks::NONE {
        let all = boxed_all(response);
        if let Some((_, _, last)) = all.last() {
            let mut parts = vec![last.clone()];
            for w in all.windows(2).rev() {
                let between = &response[w[0].1..w[1].0];
                if !is_connective(between) {
                    break;
                }
                parts.push(w[0].2.clone());
            }
            parts.reverse();
            return Some((parts.join(", "), Method::Boxed));
        }
    } else if let Some(b) = last_boxed(response) {
        return Some((b, Method::Boxed));
    }
    if fallbacks.answer_phrase {
        if let Some(a) = answer_phrase(response) {
            return Some((a, Method::AnswerPhrase));
        }
    }
    if fallbacks.math_span {
        if let Some(a) = last_math_span(response) {
            return Some((a, Method::MathSpan));
        }
    }
    if fallbacks.last_number {
        if let Some(n) = last_number(response) {
            return Some((n, Method::LastNumber));
        }
    }
    None
}

/// The content of the last `\boxed{...}` (or `\fbox{...}`, or the
/// brace-less `\boxed x`) in `text`, at any brace nesting depth. `None`
/// when there is none or its braces never close. Linear time: braces are
/// matched once for the whole text.
///
/// ```
/// assert_eq!(grader::extract::last_boxed(r"so \boxed{\frac{1}{2}}."), Some(r"\frac{1}{2}".into()));
/// assert_eq!(grader::extract::last_boxed(r"\boxed{1} then \boxed 7$"), Some("7".into()));
/// ```
pub fn last_boxed(text: &str) -> Option<String> {
    let mut starts: Vec<usize> = [r"\boxed", r"\fbox"]
        .iter()
        .flat_map(|cmd| text.match_indices(cmd).map(|(i, m)| i + m.len()))
        .collect();
    if starts.is_empty() {
        return None;
    }
    starts.sort_unstable();
    let closing = matching_braces(text.as_bytes());
    starts.iter().rev().find_map(|&i| {
        let rest = &text[i..];
        match rest.as_bytes().first() {
            Some(b'{') => closing[i].map(|end| text[i + 1..end].to_string()),
            Some(b' ') => {
                let arg = rest.trim_start_matches(' ');
                let end = arg
                    .find(|c: char| c == '$' || c.is_whitespace())
                    .unwrap_or(arg.len());
                let tok = &arg[..end];
                (!tok.is_empty() && !tok.starts_with('{')).then(|| tok.to_string())
            }
            _ => None,
        }
    })
}

/// Every braced `\boxed{...}`/`\fbox{...}`: (start of the command, end of
/// its closing brace, content), in order.
fn boxed_all(text: &str) -> Vec<(usize, usize, String)> {
    let closing = matching_braces(text.as_bytes());
    let mut out: Vec<(usize, usize, String)> = [r"\boxed", r"\fbox"]
        .iter()
        .flat_map(|cmd| text.match_indices(cmd).map(|(i, m)| (i, i + m.len())))
        .filter_map(|(start, arg)| {
            (text.as_bytes().get(arg) == Some(&b'{'))
                .then(|| closing[arg].map(|end| (start, end + 1, text[arg + 1..end].to_string())))
                .flatten()
        })
        .collect();
    out.sort_by_key(|x| x.0);
    // Drop boxes nested inside an earlier one.
    let mut kept: Vec<(usize, usize, String)> = Vec::new();
    for b in out {
        if kept.last().is_none_or(|k| b.0 >= k.1) {
            kept.push(b);
        }
    }
    kept
}

/// Text between two answers that only joins them: commas, "and", "or",
/// spacing, math delimiters.
fn is_connective(between: &str) -> bool {
    let mut t = between.to_string();
    for tok in [
        "\\text{", "\\quad", "\\qquad", "\\(", "\\)", "\\[", "\\]", "\\,", "\\ ", "$", "}", "{",
    ] {
        t = t.replace(tok, " ");
    }
    t.split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .all(|w| w.is_empty() || w == "and" || w == "or")
}

/// For each byte that is an unescaped `{`, the index of its matching `}`.
fn matching_braces(b: &[u8]) -> Vec<Option<usize>> {
    let mut out = vec![None; b.len()];
    let mut stack = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                i += 2;
                continue;
            }
            b'{' => stack.push(i),
            b'}' => {
                if let Some(open) = stack.pop() {
                    out[open] = Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// "The answer is X." / "Final answer: X" / "answer: X": the text after the
/// last such phrase, to the end of its sentence. When that sentence is
/// words ("The largest $n$ is 34."), its last number.
fn answer_phrase(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let phrases = [
        "the answer is",
        "final answer is",
        "final answer:",
        "answer:",
    ];
    let (pos, len) = phrases
        .iter()
        .filter_map(|p| lower.rfind(p).map(|i| (i, p.len())))
        .max_by_key(|&(i, _)| i)?;
    let tail = text[pos + len..].trim_start_matches([' ', ':']);
    // The sentence: up to a newline, or a period followed by a space.
    let mut end = tail.find('\n').unwrap_or(tail.len());
    if let Some(p) = tail[..end].find(". ") {
        end = p;
    }
    let mut ans = tail[..end].trim();
    if let Some(stripped) = ans.strip_suffix('.') {
        ans = stripped;
    }
    // Words outside math: take the last number of the sentence.
    let outside = strip_math_spans(ans);
    let wordy = outside
        .split(|c: char| !c.is_ascii_alphabetic())
        .any(|w| w.len() >= 3 && w != "and");
    if wordy {
        return last_number(&outside);
    }
    let ans = ans.trim().trim_matches('$').trim();
    (!ans.is_empty()).then(|| ans.to_string())
}

/// `s` without its `$...$` spans.
fn strip_math_spans(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in s.split('$').enumerate() {
        if i % 2 == 0 {
            out.push_str(part);
            out.push(' ');
        }
    }
    out
}

/// The content of the last non-empty math span: `$...$`, `$$...$$`,
/// `\(...\)` or `\[...\]`; spans just before it that only connectives
/// separate (`$1$ and $2$ and $3$`) join it as a list.
fn last_math_span(text: &str) -> Option<String> {
    // (outer start, outer end, content)
    let mut spans: Vec<(usize, usize, &str)> = Vec::new();
    for (open, close) in [("\\[", "\\]"), ("\\(", "\\)"), ("$$", "$$")] {
        let mut from = 0;
        while let Some(s) = text[from..].find(open) {
            let start = from + s + open.len();
            let Some(e) = text[start..].find(close) else {
                break;
            };
            spans.push((
                from + s,
                start + e + close.len(),
                text[start..start + e].trim(),
            ));
            from = start + e + close.len();
        }
    }
    // Single dollars: pair them up left to right, skipping `$$` and `\$`.
    let b = text.as_bytes();
    let mut open: Option<usize> = None;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == b'$' {
            if i + 1 < b.len() && b[i + 1] == b'$' {
                i += 2;
                continue;
            }
            match open {
                None => open = Some(i),
                Some(s) => {
                    spans.push((s, i + 1, text[s + 1..i].trim()));
                    open = None;
                }
            }
        }
        i += 1;
    }
    spans.retain(|s| !s.2.is_empty());
    spans.sort_by_key(|s| s.0);
    // Drop spans inside another (a `$` inside `\[...\]`).
    let mut kept: Vec<(usize, usize, &str)> = Vec::new();
    for sp in spans {
        if kept.last().is_none_or(|k| sp.0 >= k.1) {
            kept.push(sp);
        }
    }
    let mut parts = vec![kept.last()?.2];
    for w in kept.windows(2).rev() {
        if !is_connective(&text[w[0].1..w[1].0]) {
            break;
        }
        parts.push(w[0].2);
    }
    parts.reverse();
    Some(parts.join(", "))
}

/// The last number in `text` (`-1,234.5` -> `-1234.5`), not counting
/// digits inside a word (`AZYUK2A`).
fn last_number(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut end = b.len();
    while end > 0 && !b[end - 1].is_ascii_digit() {
        end -= 1;
    }
    if end == 0 {
        return None;
    }
    let mut start = end;
    while start > 0 {
        let c = b[start - 1];
        let digit_follows = start < end && b[start].is_ascii_digit();
        if c.is_ascii_digit()
            || ((c == b'.' || c == b',')
                && digit_follows
                && start >= 2
                && b[start - 2].is_ascii_digit())
        {
            start -= 1;
        } else {
            break;
        }
    }
    if start > 0 && b[start - 1] == b'.' {
        start -= 1;
    }
    if start > 0 && b[start - 1].is_ascii_alphabetic() {
        return last_number(&text[..start]);
    }
    if start > 0 && b[start - 1] == b'-' {
        start -= 1;
    }
    Some(text[start..end].replace(',', ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_braces_any_depth() {
        let s = r"\boxed{\frac{\sqrt{\frac{1}{2}}}{\left\{3\right\}}}";
        assert_eq!(
            last_boxed(s).unwrap(),
            r"\frac{\sqrt{\frac{1}{2}}}{\left\{3\right\}}"
        );
        let deep = format!(r"\boxed{{{}x{}}}", "{".repeat(500), "}".repeat(500));
        assert_eq!(last_boxed(&deep).unwrap().len(), 1001);
    }

    #[test]
    fn last_one_wins_and_fbox() {
        assert_eq!(last_boxed(r"\boxed{1} or \fbox{2}").unwrap(), "2");
        assert_eq!(last_boxed(r"\fbox{2} or \boxed{3}").unwrap(), "3");
    }

    #[test]
    fn unterminated_last_falls_back_to_earlier() {
        assert_eq!(last_boxed(r"\boxed{5} and \boxed{6").unwrap(), "5");
        assert_eq!(last_boxed(r"\boxed{6"), None);
        assert_eq!(last_boxed("no answer"), None);
    }

    #[test]
    fn escaped_braces_do_not_count() {
        assert_eq!(last_boxed(r"\boxed{\{1,2\}}").unwrap(), r"\{1,2\}");
    }

    #[test]
    fn fallbacks_are_opt_in() {
        let r = "So the answer is 42.";
        assert_eq!(extract_answer(r, Fallbacks::NONE), None);
        assert_eq!(
            extract_answer(r, Fallbacks::ALL).unwrap(),
            ("42".into(), Method::AnswerPhrase)
        );
        let r = "She pays 3 x $1,250.50 = $3,751.50 in total";
        let f = Fallbacks {
            answer_phrase: false,
            math_span: false,
            last_number: true,
        };
        assert_eq!(extract_answer(r, f).unwrap().0, "3751.50");
        assert_eq!(
            extract_answer(r"\boxed{7}. The answer is 8", Fallbacks::ALL)
                .unwrap()
                .0,
            "7"
        );
    }
}
