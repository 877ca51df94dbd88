//! Where an artifact came from, in its own Parquet footer: every file a
//! stage writes carries key-value metadata naming the tool, its version
//! (with the commit), the full command line, the tables it read, and the
//! wall time of each stage that led to it, so `duckdb -c "select * from
//! parquet_kv_metadata('scored.parquet')"` answers "what made this?".
//!
//! | key | value |
//! |---|---|
//! | `simplerl.tool` | the tool that wrote the file (`rollout`) |
//! | `simplerl.version` | its version and commit (`0.1.0 (commit 0123abcd)`) |
//! | `simplerl.command` | its command line, shell-quoted |
//! | `simplerl.inputs` | JSON list of the tables it read (`-` is stdin) |
//! | `simplerl.timings` | JSON object: seconds per stage, the inputs' stages first, then this one's (from its start to the write) |
//!
//! A tool calls [`begin`] first thing; the stage readers record their
//! inputs ([`crate::read_table`]) and [`crate::write_table`] writes the
//! metadata. A library caller that never calls [`begin`] writes none.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

pub const TOOL: &str = "simplerl.tool";
pub const VERSION: &str = "simplerl.version";
pub const COMMAND: &str = "simplerl.command";
pub const INPUTS: &str = "simplerl.inputs";
pub const TIMINGS: &str = "simplerl.timings";

struct Stage {
    tool: String,
    version: String,
    command: String,
    started: Instant,
    inputs: Vec<String>,
    /// The stages before this one, from the inputs' metadata (the first
    /// input that names a stage wins).
    upstream: BTreeMap<String, f64>,
}

static CURRENT: Mutex<Option<Stage>> = Mutex::new(None);

fn current() -> std::sync::MutexGuard<'static, Option<Stage>> {
    CURRENT.lock().unwrap_or_else(|e| e.into_inner())
}

/// Start recording for `tool` (this process's command line and start time).
pub fn begin(tool: &str, version: &str) {
    let command = std::env::args_os()
        .map(|a| shell_quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ");
    *current() = Some(Stage {
        tool: tool.to_string(),
        version: version.to_string(),
        command,
        started: Instant::now(),
        inputs: Vec::new(),
        upstream: BTreeMap::new(),
    });
}

/// A table this stage read, with its metadata (called by the readers).
pub(crate) fn record_input(path: &str, kv: &BTreeMap<String, String>) {
    let mut guard = current();
    let Some(stage) = guard.as_mut() else {
        return;
    };
    if !stage.inputs.iter().any(|p| p == path) {
        stage.inputs.push(path.to_string());
    }
    for (name, secs) in timings(kv) {
        stage.upstream.entry(name).or_insert(secs);
    }
}

/// The seconds a stage before this one took, as its output's metadata
/// says (e.g. `upstream_seconds("rollout")` in ppo-step, through verify).
pub fn upstream_seconds(tool: &str) -> Option<f64> {
    current().as_ref()?.upstream.get(tool).copied()
}

/// The stage timings of a file's metadata.
pub fn timings(kv: &BTreeMap<String, String>) -> BTreeMap<String, f64> {
    kv.get(TIMINGS)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

/// The key-value metadata for a file written now (empty before [`begin`]).
pub(crate) fn metadata() -> Vec<(String, String)> {
    let guard = current();
    let Some(s) = guard.as_ref() else {
        return Vec::new();
    };
    let mut timings = s.upstream.clone();
    let own = (s.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    timings.insert(s.tool.clone(), own);
    vec![
        (TOOL.into(), s.tool.clone()),
        (VERSION.into(), s.version.clone()),
        (COMMAND.into(), s.command.clone()),
        (
            INPUTS.into(),
            serde_json::to_string(&s.inputs).expect("strings"),
        ),
        (
            TIMINGS.into(),
            serde_json::to_string(&timings).expect("numbers"),
        ),
    ]
}

/// `a` as a POSIX shell word: unchanged when it is plain, else in single
/// quotes.
pub fn shell_quote(a: &str) -> String {
    let plain = !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%^".contains(c));
    if plain {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_only_when_the_shell_needs_it() {
        assert_eq!(shell_quote("--lr"), "--lr");
        assert_eq!(shell_quote("runs/a b"), "'runs/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("</s>,<|im_end|>"), "'</s>,<|im_end|>'");
    }
}
