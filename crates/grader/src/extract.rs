//! Final-answer extraction from a response or a worked solution.

/// The content of the last `\boxed{...}` (or `\fbox{...}`, or the
/// brace-less `\boxed x`) in `text`, at any brace nesting depth. `None`
/// when there is none or its braces never close.
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
    starts.sort_unstable();
    starts
        .iter()
        .rev()
        .find_map(|&i| boxed_argument(&text[i..]))
}

/// Parse the argument after `\boxed`: `{...}` with balanced braces, or
/// ` x` (a space, then a token up to `$`, whitespace or end).
fn boxed_argument(rest: &str) -> Option<String> {
    let bytes = rest.as_bytes();
    match bytes.first() {
        Some(b'{') => {
            let mut depth = 0usize;
            let mut i = 0;
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' => {
                        i += 2;
                        continue;
                    }
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(rest[1..i].to_string());
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        Some(b' ') => {
            let arg = rest.trim_start_matches(' ');
            let end = arg
                .find(|c: char| c == '$' || c.is_whitespace())
                .unwrap_or(arg.len());
            let tok = &arg[..end];
            (!tok.is_empty()).then(|| tok.to_string())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::last_boxed;

    #[test]
    fn nested_braces_any_depth() {
        let s = r"\boxed{\frac{\sqrt{\frac{1}{2}}}{\left\{3\right\}}}";
        assert_eq!(
            last_boxed(s).unwrap(),
            r"\frac{\sqrt{\frac{1}{2}}}{\left\{3\right\}}"
        );
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
}
