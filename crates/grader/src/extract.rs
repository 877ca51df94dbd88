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
    if fallbacks == Fallbacks::NONE {
        return last_boxed(response).map(|b| (b, Method::Boxed));
    }
    let all = outer_boxes(response);
    if let Some(&(_, last_end, ref last)) = all.last() {
        // "Final Answer: The final answer is $X$" after the boxes (Minerva's
        // format, with intermediate results boxed on the way) states it.
        if fallbacks.answer_phrase {
            if let Some((at, a)) = answer_phrase_in(response, &FINAL_ANSWER) {
                if at > last_end {
                    return Some((a, Method::AnswerPhrase));
                }
            }
        }
        let mut parts = vec![last.clone()];
        for w in all.windows(2).rev() {
            let between = &response[w[0].1..w[1].0];
            if !is_connective(between) && !joins_answers(between) {
                break;
            }
            parts.push(w[0].2.clone());
        }
        parts.reverse();
        return Some((parts.join(", "), Method::Boxed));
    }
    if fallbacks.answer_phrase {
        if let Some((_, a)) = answer_phrase(response) {
            return Some((a, Method::AnswerPhrase));
        }
    }
    // The last math span or the last number, whichever comes later.
    let span = fallbacks
        .math_span
        .then(|| last_math_span(response))
        .flatten();
    let number = fallbacks
        .last_number
        .then(|| last_number_at(response))
        .flatten();
    match (span, number) {
        (Some((span_end, _)), Some((at, n))) if at >= span_end => Some((n, Method::LastNumber)),
        (Some((_, a)), _) => Some((a, Method::MathSpan)),
        (None, Some((_, n))) => Some((n, Method::LastNumber)),
        (None, None) => None,
    }
}

/// The content of the last `\boxed{...}` (or `\fbox{...}`, or the
/// brace-less `\boxed x`) in `text` that is not inside another box. A box
/// whose content is one box is that box (`\boxed{\boxed{5}}` is 5); a box
/// inside other content stays part of it (`\boxed{57 \boxed{56}}` is
/// `57 \boxed{56}`, not 56). `None` when there is none or its braces never
/// close. Linear time: braces are matched once for the whole text.
///
/// ```
/// assert_eq!(grader::extract::last_boxed(r"so \boxed{\frac{1}{2}}."), Some(r"\frac{1}{2}".into()));
/// assert_eq!(grader::extract::last_boxed(r"\boxed{1} then \boxed 7$"), Some("7".into()));
/// assert_eq!(grader::extract::last_boxed(r"\boxed{57 \boxed{56}}"), Some(r"57 \boxed{56}".into()));
/// ```
pub fn last_boxed(text: &str) -> Option<String> {
    let mut content = outer_boxes(text).pop()?.2;
    // `\boxed{\boxed{5}}`: the box is its only content.
    while let Some((start, end, inner)) = outer_boxes(content.trim()).pop() {
        if start != 0 || end != content.trim().len() {
            break;
        }
        content = inner;
    }
    Some(content)
}

/// The boxes of `text` not nested in another: (start of the command, end
/// of the box, content), in order. Unclosed boxes are left out.
fn outer_boxes(text: &str) -> Vec<(usize, usize, String)> {
    let mut starts: Vec<(usize, usize)> = [r"\boxed", r"\fbox"]
        .iter()
        .flat_map(|cmd| text.match_indices(cmd).map(|(i, m)| (i, i + m.len())))
        .collect();
    if starts.is_empty() {
        return vec![];
    }
    starts.sort_unstable();
    let closing = matching_braces(text.as_bytes());
    let mut out: Vec<(usize, usize, String)> = Vec::new();
    for (cmd, i) in starts {
        if out.last().is_some_and(|o| cmd < o.1) {
            continue;
        }
        let rest = &text[i..];
        let found = match rest.as_bytes().first() {
            Some(b'{') => closing[i].map(|end| (end + 1, text[i + 1..end].to_string())),
            Some(b' ') => {
                let arg = rest.trim_start_matches(' ');
                let len = arg
                    .find(|c: char| c == '$' || c.is_whitespace())
                    .unwrap_or(arg.len());
                let tok = &arg[..len];
                let end = i + (rest.len() - arg.len()) + len;
                (!tok.is_empty() && !tok.starts_with('{')).then(|| (end, tok.to_string()))
            }
            _ => None,
        };
        if let Some((end, content)) = found {
            out.push((cmd, end, content));
        }
    }
    out
}

/// Text between two answers that only joins them: commas, "and", "or",
/// spacing, math delimiters.
fn is_connective(between: &str) -> bool {
    without_markup(between)
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .all(|w| w.is_empty() || w == "and" || w == "or")
}

/// `between` with math delimiters, `\text{}` wrappers, braces and spacing
/// commands turned into spaces.
fn without_markup(between: &str) -> String {
    let mut t = between.to_string();
    for tok in [
        r"\text{",
        r"\textbf{",
        r"\quad",
        r"\qquad",
        r"\(",
        r"\)",
        r"\[",
        r"\]",
        r"\,",
        r"\ ",
        "$",
        "}",
        "{",
    ] {
        t = t.replace(tok, " ");
    }
    t
}

/// Text between two boxed answers that lists them in prose: `\boxed{1}
/// papers and \boxed{2} bins`, `\boxed{(3,3)} \text{ for part (a) and }
/// \boxed{(1,1)}`, `\( y_1 = \boxed{..} \) and \( y_2 = \boxed{..} \)`:
/// "and" with at most four other short words, part labels and the name
/// assigned to the next answer, nothing else (no numbers, no "or", which
/// offers an alternative, no sentence break, no word that judges or
/// corrects: `\boxed{5} is wrong, and \boxed{7}` keeps 7).
fn joins_answers(between: &str) -> bool {
    let t = without_markup(between);
    // The name the next answer is assigned to: `y_2 =`, `x=`.
    let t = t.trim_end();
    let t = match t.strip_suffix('=') {
        Some(rest) => {
            let rest = rest.trim_end();
            let name_start = rest
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(0, |i| i + 1);
            let name = &rest[name_start..];
            if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
                return false;
            }
            &rest[..name_start]
        }
        None => t,
    };
    let words: Vec<&str> = t
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let label = |w: &str| {
        w.len() == 3
            && w.starts_with('(')
            && w.ends_with(')')
            && w.as_bytes()[1].is_ascii_alphabetic()
    };
    // Words that judge, correct or reason about an answer rather than
    // name what it counts.
    const REASONING: [&str; 24] = [
        "is",
        "was",
        "are",
        "were",
        "be",
        "not",
        "no",
        "wrong",
        "incorrect",
        "correct",
        "right",
        "but",
        "instead",
        "actually",
        "then",
        "so",
        "therefore",
        "thus",
        "hence",
        "should",
        "would",
        "could",
        "gives",
        "get",
    ];
    words.contains(&"and")
        && !words
            .iter()
            .any(|w| REASONING.contains(&w.to_ascii_lowercase().as_str()))
        && words.iter().filter(|w| **w != "and").count() <= 4
        && words.iter().all(|w| {
            *w == "and"
                || label(w)
                || (w.len() <= 12 && w.chars().all(|c| c.is_ascii_alphabetic()) && *w != "or")
        })
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
fn answer_phrase(text: &str) -> Option<(usize, String)> {
    answer_phrase_in(
        text,
        &[
            "the answer is",
            "final answer is",
            "final answer:",
            "answer:",
        ],
    )
}

/// The phrases that state a final answer even after boxed results.
const FINAL_ANSWER: [&str; 2] = ["final answer is", "final answer:"];

/// [`answer_phrase`] for the given (lower-case) phrases: where the last one
/// starts, and the answer after it.
fn answer_phrase_in(text: &str, phrases: &[&str]) -> Option<(usize, String)> {
    let lower = text.to_ascii_lowercase();
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
        return last_number(&outside).map(|n| (pos, n));
    }
    // Quoted (`"$12$ and $13$"`), or several math spans joined by words.
    let mut ans = ans.trim();
    for q in ["\\\"", "\""] {
        if let Some(inner) = ans.strip_prefix(q).and_then(|a| a.strip_suffix(q)) {
            ans = inner.trim();
        }
    }
    if ans.matches('$').count() > 2 {
        if let Some((_, spans)) = last_math_span(ans) {
            return Some((pos, spans));
        }
    }
    let ans = ans.trim_matches('$').trim();
    (!ans.is_empty()).then(|| (pos, ans.to_string()))
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
pub fn last_math_span(text: &str) -> Option<(usize, String)> {
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
    let &(_, end, last) = kept.last()?;
    let mut parts = vec![last];
    for w in kept.windows(2).rev() {
        if !is_connective(&text[w[0].1..w[1].0]) {
            break;
        }
        parts.push(w[0].2);
    }
    parts.reverse();
    Some((end, parts.join(", ")))
}

/// The last number in `text` (`-1,234.5` -> `-1234.5`), not counting
/// digits inside a word (`AZYUK2A`); a fraction of integers (`2/3`) and a
/// trailing `%` are part of it.
fn last_number(text: &str) -> Option<String> {
    last_number_at(text).map(|(_, n)| n)
}

/// [`last_number`] and the byte offset where it starts.
fn last_number_at(text: &str) -> Option<(usize, String)> {
    let b = text.as_bytes();
    let mut end = b.len();
    while end > 0 && !b[end - 1].is_ascii_digit() {
        end -= 1;
    }
    if end == 0 {
        return None;
    }
    let number_start = |end: usize| {
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
        start
    };
    let mut start = number_start(end);
    // `2/3`: an integer over an integer.
    let integer = !text[start..end].contains(['.', ',']);
    if integer && start >= 2 && b[start - 1] == b'/' && b[start - 2].is_ascii_digit() {
        let num = number_start(start - 1);
        if !text[num..start - 1].contains(['.', ',']) {
            start = num;
        }
    }
    if start > 0 && b[start - 1] == b'.' {
        start -= 1;
    }
    if start > 0 && b[start - 1].is_ascii_alphabetic() {
        return last_number_at(&text[..start]);
    }
    if start > 0 && b[start - 1] == b'-' {
        start -= 1;
    }
    let percent = b.get(end) == Some(&b'%');
    let mut n = text[start..end].replace(',', "");
    if percent {
        n.push('%');
    }
    Some((start, n))
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
        // Boxed intermediate results, then Minerva's final-answer line.
        let r = r"so $\boxed{200}$ ... $\boxed{255}$. Final Answer: The final answer is $10,455$. I hope it is correct.";
        assert_eq!(
            extract_answer(r, Fallbacks::ALL).unwrap(),
            ("10,455".into(), Method::AnswerPhrase)
        );
        assert_eq!(extract_answer(r, Fallbacks::NONE).unwrap().0, "255");
    }

    #[test]
    fn fallbacks_take_the_later_of_math_span_and_number() {
        let r = "so $d = \\frac{90}{n}$ for each divisor. Therefore, there are 12 sequences.";
        assert_eq!(
            extract_answer(r, Fallbacks::ALL).unwrap(),
            ("12".into(), Method::LastNumber)
        );
        let r = "There are 12 divisors, so $d = 15$.";
        assert_eq!(
            extract_answer(r, Fallbacks::ALL).unwrap(),
            ("d = 15".into(), Method::MathSpan)
        );
        assert_eq!(last_number("P(A) = 2/3. Done"), Some("2/3".into()));
        assert_eq!(last_number("it grows by 100%."), Some("100%".into()));
        assert_eq!(last_number("ratio 1.5/2"), Some("2".into()));
    }

    #[test]
    fn boxes_listed_in_prose_join() {
        let all = |r: &str| extract_answer(r, Fallbacks::ALL).unwrap().0;
        assert_eq!(all(r"\boxed{1} papers and \boxed{2} bins"), "1, 2");
        assert_eq!(
            all(r"$\boxed{(3, 3)} \text{ for part (a) and } \boxed{(1, 1)}$"),
            "(3, 3), (1, 1)"
        );
        assert_eq!(
            all(r"\( y_1 = \boxed{x+1} \) and \( y_2 = \boxed{x-1} \)"),
            "x+1, x-1"
        );
        // An alternative, a correction or a sentence break keeps the last box.
        assert_eq!(all(r"\boxed{5} or maybe \boxed{7}"), "7");
        assert_eq!(all(r"\boxed{5} is wrong, and \boxed{7} is right"), "7");
        assert_eq!(all(r"\boxed{5}. Then 3 and \boxed{7}"), "7");
        // The training reward never joins.
        assert_eq!(
            extract_answer(r"\boxed{1} papers and \boxed{2} bins", Fallbacks::NONE)
                .unwrap()
                .0,
            "2"
        );
    }
}
