//! Readers for every raw shape the math data sets come in, normalised to
//! [`Problem`]s. Each raw record is first read as a JSON object (JSONL
//! lines as they are; Parquet rows converted, nested structs and lists
//! included), then mapped by its format.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{self as dt, DataType};
use serde_json::{Map, Value};

use crate::PrepError;

/// A problem before templating.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub id: String,
    pub source: String,
    pub question: String,
    pub answer: String,
    pub level: Option<i64>,
    pub subject: Option<String>,
    /// The record's other fields.
    pub metadata: Map<String, Value>,
}

/// The shape of a raw data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum RawFormat {
    /// Tell from the path (a folder named after a data set) or the fields.
    Auto,
    /// MATH per-subject JSONL: problem, level, type, solution (answer = last \boxed).
    Math,
    /// GSM8K: question, answer (final answer after `####`).
    Gsm8k,
    /// MATH-500: problem, answer, subject, level, unique_id.
    Math500,
    /// AIME 2024: id, problem, answer.
    Aime24,
    /// AMC 2023: id, question, answer (a number).
    Amc23,
    /// Minerva Math: problem, solution (answer = last \boxed), type.
    MinervaMath,
    /// OlympiadBench: question, context, final_answer (a list), unit, subfield.
    Olympiadbench,
    /// College Math: question, answer in $...$, data_topic.
    CollegeMath,
    /// Gaokao 2023 English: question, answer in $...$.
    Gaokao2023en,
    /// SVAMP: Body, Question, Answer (a number).
    Svamp,
    /// ASDiv: body, question, answer ("9 (apples)").
    Asdiv,
    /// MAWPS: input, target (a number).
    Mawps,
    /// SAT math: question, options, Answer (a letter).
    SatMath,
    /// Any JSONL or Parquet (HF-style, nested columns allowed) with the
    /// question and answer at the fields given by --question-field and
    /// --answer-field (dotted paths reach into structs:
    /// `reward_model.ground_truth`).
    Fields,
}

impl RawFormat {
    /// The data-set name used as `source` and in ids.
    pub fn source_name(self) -> &'static str {
        match self {
            RawFormat::Auto | RawFormat::Fields => "custom",
            RawFormat::Math => "math",
            RawFormat::Gsm8k => "gsm8k",
            RawFormat::Math500 => "math500",
            RawFormat::Aime24 => "aime24",
            RawFormat::Amc23 => "amc23",
            RawFormat::MinervaMath => "minerva_math",
            RawFormat::Olympiadbench => "olympiadbench",
            RawFormat::CollegeMath => "college_math",
            RawFormat::Gaokao2023en => "gaokao2023en",
            RawFormat::Svamp => "svamp",
            RawFormat::Asdiv => "asdiv",
            RawFormat::Mawps => "mawps",
            RawFormat::SatMath => "sat_math",
        }
    }

    /// Every named data-set format (not `auto` or `fields`).
    pub const DATASETS: [RawFormat; 13] = [
        RawFormat::Math,
        RawFormat::Gsm8k,
        RawFormat::Math500,
        RawFormat::Aime24,
        RawFormat::Amc23,
        RawFormat::MinervaMath,
        RawFormat::Olympiadbench,
        RawFormat::CollegeMath,
        RawFormat::Gaokao2023en,
        RawFormat::Svamp,
        RawFormat::Asdiv,
        RawFormat::Mawps,
        RawFormat::SatMath,
    ];
}

/// Field names for `--format fields` (and fallbacks for Parquet/JSONL of
/// unknown shape): each a dotted path; the first present one is used.
#[derive(Debug, Clone)]
pub struct FieldMap {
    pub question: Vec<String>,
    pub answer: Vec<String>,
    pub id: Vec<String>,
    pub source: Option<String>,
}

impl Default for FieldMap {
    fn default() -> Self {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
        Self {
            question: v(&["question", "problem", "extra_info.question"]),
            answer: v(&[
                "answer",
                "gt_answer",
                "reward_model.ground_truth",
                "final_answer",
            ]),
            id: v(&["id", "unique_id", "idx", "extra_info.index"]),
            source: None,
        }
    }
}

/// How [`load`] treats records it cannot use.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Count bad records in the report instead of failing on the first.
    pub skip_bad: bool,
    /// Return problems whose gold answer is empty (a caller that filters
    /// them itself, counting why).
    pub keep_empty_answers: bool,
}

/// What a load read, and what `--skip-bad` dropped, per reason.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub read: usize,
    pub skipped: BTreeMap<&'static str, usize>,
}

/// One raw record and where it came from (for error messages).
struct Record<'a> {
    path: &'a Path,
    /// 1-based line (JSONL) or row (Parquet).
    line: usize,
    obj: Map<String, Value>,
    /// The record's JSON text (JSONL and JSON files), where its numbers
    /// are read as written: `1.10` stays `1.10`, `18446744073709551617`
    /// stays whole (a parsed JSON number is an f64).
    json: Option<String>,
}

/// Why a record could not become a problem.
struct Bad {
    reason: &'static str,
    message: String,
}

fn bad(reason: &'static str, message: impl Into<String>) -> Bad {
    Bad {
        reason,
        message: message.into(),
    }
}

impl Record<'_> {
    fn get(&self, path: &str) -> Option<&Value> {
        let mut v = self.obj.get(path.split('.').next()?)?;
        for part in path.split('.').skip(1) {
            v = v.get(part)?;
        }
        (!v.is_null()).then_some(v)
    }
    /// A field as text: strings as they are, numbers as written in a JSON
    /// source (in their shortest form from Parquet), lists joined.
    fn text(&self, field: &str) -> Result<String, Bad> {
        match self.get(field) {
            None if self.is_null(field) => {
                Err(bad("null field", format!("field `{field}` is null")))
            }
            None => Err(bad("missing field", format!("missing field `{field}`"))),
            Some(Value::Number(_)) if self.json.is_some() => self
                .source_text(field)
                .ok_or_else(|| bad("bad field", format!("field `{field}` is not readable"))),
            Some(v) => value_text(v).ok_or_else(|| {
                bad(
                    "bad field",
                    format!("field `{field}` is not text or a number"),
                )
            }),
        }
    }
    /// Whether `path` is present with the value null.
    fn is_null(&self, path: &str) -> bool {
        let mut parts = path.split('.');
        let Some(mut v) = parts.next().and_then(|p| self.obj.get(p)) else {
            return false;
        };
        for part in parts {
            match v.get(part) {
                Some(x) => v = x,
                None => return false,
            }
        }
        v.is_null()
    }
    /// The JSON text of the value at `path`, as written in the source.
    fn source_text(&self, path: &str) -> Option<String> {
        let mut raw: &str = self.json.as_deref()?;
        for part in path.split('.') {
            let obj: std::collections::HashMap<String, &serde_json::value::RawValue> =
                serde_json::from_str(raw).ok()?;
            raw = obj.get(part)?.get();
        }
        Some(raw.trim().to_string())
    }
    fn first_text(&self, fields: &[String]) -> Result<String, Bad> {
        let f = fields
            .iter()
            .find(|f| self.get(f).is_some())
            .or_else(|| fields.iter().find(|f| self.is_null(f)))
            .ok_or_else(|| {
                bad(
                    "missing field",
                    format!("missing field `{}`", fields.join("` or `")),
                )
            })?;
        self.text(f)
    }
    fn opt_text(&self, field: &str) -> Option<String> {
        self.get(field)
            .and_then(value_text)
            .filter(|s| !s.is_empty() && s != "None")
    }
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(number_text(n)),
        Value::Bool(b) => Some(b.to_string()),
        // A one-element list (OlympiadBench's final_answer) is its element;
        // longer lists are joined as an answer list.
        Value::Array(items) if !items.is_empty() => {
            let parts: Option<Vec<String>> = items.iter().map(value_text).collect();
            parts.map(|p| p.join(", "))
        }
        _ => None,
    }
}

/// 27.0 -> "27", 11.5 -> "11.5".
fn number_text(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        Some(f) => format!("{f}"),
        None => n.to_string(),
    }
}

/// Math-mode dollars removed: `$10-4 n$` -> `10-4 n`, `$48$, $384$` ->
/// `48, 384`. An escaped `\$` (a currency sign) stays.
fn strip_dollars(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev = '\0';
    for c in s.chars() {
        if c != '$' || prev == '\\' {
            out.push(c);
        }
        prev = c;
    }
    out.trim().to_string()
}

/// GSM8K: the text after the last `####`, thousands commas removed.
pub fn gsm8k_answer(solution: &str) -> Option<String> {
    let (_, tail) = solution.rsplit_once("####")?;
    let a = tail.trim().replace(',', "");
    (!a.is_empty()).then_some(a)
}

/// Read every record of `path`: a JSONL file, a JSON array file, or a
/// Parquet file. Malformed lines are reported through `on_bad`.
fn read_records<'a>(
    path: &'a Path,
    mut on_record: impl FnMut(Result<Record<'a>, (usize, Bad)>) -> Result<(), PrepError>,
) -> Result<(), PrepError> {
    let io = |source| PrepError::Io {
        path: path.to_path_buf(),
        source,
    };
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ext == "parquet" {
        let t = artifacts::read_table(path).map_err(PrepError::Artifact)?;
        for row in 0..t.batch.num_rows() {
            on_record(Ok(Record {
                path,
                line: row + 1,
                obj: row_json(&t.batch, row),
                json: None,
            }))?;
        }
        return Ok(());
    }
    let file = File::open(path).map_err(io)?;
    if ext == "json" {
        let items: Vec<Box<serde_json::value::RawValue>> =
            serde_json::from_reader(BufReader::new(file)).map_err(|e| PrepError::Json {
                path: path.to_path_buf(),
                line: e.line(),
                message: if e.is_data() {
                    "expected a JSON array of objects".into()
                } else {
                    e.to_string()
                },
            })?;
        for (i, item) in items.into_iter().enumerate() {
            on_record(match serde_json::from_str::<Value>(item.get()) {
                Ok(Value::Object(obj)) => Ok(Record {
                    path,
                    line: i + 1,
                    obj,
                    json: Some(item.get().to_string()),
                }),
                _ => Err((
                    i + 1,
                    bad("malformed JSON", "array element is not an object"),
                )),
            })?;
        }
        return Ok(());
    }
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        on_record(match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(obj)) => Ok(Record {
                path,
                line: i + 1,
                obj,
                json: Some(line),
            }),
            Ok(_) => Err((i + 1, bad("malformed JSON", "line is not a JSON object"))),
            Err(e) => Err((i + 1, bad("malformed JSON", format!("malformed JSON: {e}")))),
        })?;
    }
    Ok(())
}

/// One Parquet row as a JSON object, nested columns included.
fn row_json(batch: &RecordBatch, row: usize) -> Map<String, Value> {
    let schema = batch.schema();
    schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, a)| (f.name().clone(), cell_json(a.as_ref(), row)))
        .collect()
}

fn cell_json(a: &dyn Array, i: usize) -> Value {
    if a.is_null(i) {
        return Value::Null;
    }
    macro_rules! prim {
        ($t:ty) => {
            serde_json::json!(a.as_primitive::<$t>().value(i))
        };
    }
    match a.data_type() {
        DataType::Utf8 => Value::String(a.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Value::String(a.as_string::<i64>().value(i).to_string()),
        DataType::Utf8View => Value::String(a.as_string_view().value(i).to_string()),
        DataType::Boolean => Value::Bool(a.as_boolean().value(i)),
        DataType::Int8 => prim!(dt::Int8Type),
        DataType::Int16 => prim!(dt::Int16Type),
        DataType::Int32 => prim!(dt::Int32Type),
        DataType::Int64 => prim!(dt::Int64Type),
        DataType::UInt8 => prim!(dt::UInt8Type),
        DataType::UInt16 => prim!(dt::UInt16Type),
        DataType::UInt32 => prim!(dt::UInt32Type),
        DataType::UInt64 => prim!(dt::UInt64Type),
        // The float32 0.1 is 0.1, not 0.10000000149011612: its shortest
        // decimal, read back as a double.
        DataType::Float32 => {
            let x = a.as_primitive::<dt::Float32Type>().value(i);
            x.to_string()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or(Value::Null, Value::Number)
        }
        DataType::Float64 => prim!(dt::Float64Type),
        DataType::Struct(_) => {
            let s = a.as_struct();
            Value::Object(
                s.fields()
                    .iter()
                    .zip(s.columns())
                    .map(|(f, c)| (f.name().clone(), cell_json(c.as_ref(), i)))
                    .collect(),
            )
        }
        DataType::List(_) => list_json(a.as_list::<i32>().value(i).as_ref()),
        DataType::LargeList(_) => list_json(a.as_list::<i64>().value(i).as_ref()),
        _ => match arrow::compute::cast(&a.slice(i, 1), &DataType::Utf8) {
            Ok(s) => Value::String(s.as_string::<i32>().value(0).to_string()),
            Err(_) => Value::Null,
        },
    }
}

fn list_json(values: &dyn Array) -> Value {
    Value::Array((0..values.len()).map(|j| cell_json(values, j)).collect())
}

/// Guess the format of `path` from its folder names, then its first
/// record's fields.
pub fn detect(path: &Path) -> Result<RawFormat, PrepError> {
    for comp in path.components().rev() {
        let name = comp.as_os_str().to_string_lossy();
        if let Some(f) = RawFormat::DATASETS.iter().find(|f| f.source_name() == name) {
            return Ok(*f);
        }
    }
    let mut first = None;
    read_records(path, |r| {
        if first.is_none() {
            if let Ok(rec) = r {
                first = Some(rec.obj.keys().cloned().collect::<Vec<_>>());
            }
        }
        Ok(())
    })?;
    let keys = first.unwrap_or_default();
    let has = |k: &str| keys.iter().any(|x| x == k);
    Ok(
        if has("problem") && has("level") && has("type") && has("solution") {
            RawFormat::Math
        } else if has("unique_id") && has("answer") {
            RawFormat::Math500
        } else if has("final_answer") && has("question") {
            RawFormat::Olympiadbench
        } else if has("Body") && has("Question") {
            RawFormat::Svamp
        } else if has("body") && has("question") {
            RawFormat::Asdiv
        } else if has("input") && has("target") {
            RawFormat::Mawps
        } else if has("options") && has("Answer") {
            RawFormat::SatMath
        } else if has("problem") && has("solution") && has("type") {
            RawFormat::MinervaMath
        } else {
            RawFormat::Fields
        },
    )
}

/// Where `path` is a folder, its data files (sorted); else the file.
pub fn expand(path: &Path) -> Result<Vec<PathBuf>, PrepError> {
    if !path.is_dir() {
        if !path.exists() {
            return Err(PrepError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such file or directory",
                ),
            });
        }
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| PrepError::Io {
            path: dir.clone(),
            source,
        })?;
        for e in entries {
            let p = e
                .map_err(|source| PrepError::Io {
                    path: dir.clone(),
                    source,
                })?
                .path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("jsonl" | "json" | "parquet")
            ) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Load every problem of `path` (a file or a folder of them).
///
/// A bad record (malformed JSON, a missing field, an empty answer, no
/// \boxed{} in a solution) is an error naming `path:line`, unless
/// `opts.skip_bad`, when it is counted in `report.skipped` by reason.
pub fn load(
    path: &Path,
    format: RawFormat,
    fields: &FieldMap,
    opts: LoadOptions,
    report: &mut LoadReport,
) -> Result<Vec<Problem>, PrepError> {
    let mut out = Vec::new();
    for file in expand(path)? {
        let fmt = if format == RawFormat::Auto {
            detect(&file)?
        } else {
            format
        };
        read_records(&file, |rec| {
            report.read += 1;
            let result = rec.and_then(|r| {
                let line = r.line;
                map_record(fmt, fields, opts, r).map_err(|b| (line, b))
            });
            match result {
                Ok(p) => out.push(p),
                Err((_, b)) if opts.skip_bad => {
                    *report.skipped.entry(b.reason).or_default() += 1;
                }
                Err((line, b)) => {
                    return Err(PrepError::Row {
                        path: file.clone(),
                        line,
                        message: format!("{} (--skip-bad skips and counts such rows)", b.message),
                    })
                }
            }
            Ok(())
        })?;
    }
    Ok(out)
}

fn map_record(
    fmt: RawFormat,
    fields: &FieldMap,
    opts: LoadOptions,
    r: Record,
) -> Result<Problem, Bad> {
    let stem = r
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let source = fields.source.clone().unwrap_or_else(|| match fmt {
        // `simplerl/train.parquet` is from `simplerl`; `gsm_hard.jsonl` from `gsm_hard`.
        RawFormat::Fields | RawFormat::Auto => match stem.as_str() {
            "train" | "test" | "validation" | "valid" | "dev" | "data" => r
                .path
                .parent()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| stem.clone()),
            _ => stem.clone(),
        },
        f => f.source_name().to_string(),
    });
    let line_id = || format!("{source}/{stem}/{}", r.line);
    let own_id = |field: &str| r.opt_text(field).map(|v| format!("{source}/{v}"));
    let from_boxed = |field: &str| -> Result<String, Bad> {
        let sol = r.text(field)?;
        grader::extract::last_boxed(&sol).ok_or_else(|| {
            bad(
                "no boxed answer",
                format!("no \\boxed{{}} answer in `{field}`"),
            )
        })
    };
    let (question, answer, id, level, subject) = match fmt {
        RawFormat::Math => (
            r.text("problem")?,
            from_boxed("solution")?,
            line_id(),
            r.opt_text("level")
                .and_then(|l| l.trim_start_matches("Level ").trim().parse().ok()),
            r.opt_text("type"),
        ),
        RawFormat::Gsm8k => {
            let sol = r.text("answer")?;
            let a = gsm8k_answer(&sol)
                .ok_or_else(|| bad("no final answer", "no `#### answer` in `answer`"))?;
            (
                r.text("question")?,
                a,
                own_id("idx").unwrap_or_else(line_id),
                None,
                None,
            )
        }
        RawFormat::Math500 => (
            r.text("problem")?,
            r.text("answer")?,
            r.opt_text("unique_id")
                .map(|u| format!("{source}/{u}"))
                .unwrap_or_else(line_id),
            r.opt_text("level").and_then(|l| l.parse().ok()),
            r.opt_text("subject"),
        ),
        RawFormat::Aime24 | RawFormat::Amc23 => (
            r.first_text(&["problem".into(), "question".into()])?,
            r.text("answer")?,
            own_id("id").unwrap_or_else(line_id),
            None,
            None,
        ),
        RawFormat::MinervaMath => (
            r.text("problem")?,
            from_boxed("solution")?,
            own_id("idx").unwrap_or_else(line_id),
            None,
            r.opt_text("type"),
        ),
        RawFormat::Olympiadbench => {
            let q = r.text("question")?;
            let q = match r.opt_text("context") {
                Some(c) => format!("{c}\n{q}"),
                None => q,
            };
            let a = strip_dollars(&r.text("final_answer")?);
            (
                q,
                a,
                own_id("id").unwrap_or_else(line_id),
                None,
                r.opt_text("subfield"),
            )
        }
        RawFormat::CollegeMath => (
            r.text("question")?,
            strip_dollars(&r.text("answer")?),
            line_id(),
            None,
            r.opt_text("data_topic"),
        ),
        RawFormat::Gaokao2023en => (
            r.text("question")?,
            strip_dollars(&r.text("answer")?),
            line_id(),
            None,
            None,
        ),
        RawFormat::Svamp => (
            format!("{} {}", r.text("Body")?.trim(), r.text("Question")?.trim()),
            r.text("Answer")?,
            own_id("ID").unwrap_or_else(line_id),
            None,
            r.opt_text("Type"),
        ),
        RawFormat::Asdiv => {
            let a = r.text("answer")?;
            // "9 (apples)" -> "9"; a text answer stays as it is.
            let a = match a.split_once(" (") {
                Some((v, _)) if a.ends_with(')') => v.trim().to_string(),
                _ => a,
            };
            (
                format!("{} {}", r.text("body")?.trim(), r.text("question")?.trim()),
                a,
                own_id("idx").unwrap_or_else(line_id),
                None,
                r.opt_text("solution_type"),
            )
        }
        RawFormat::Mawps => (
            r.text("input")?,
            r.text("target")?,
            own_id("idx").unwrap_or_else(line_id),
            None,
            r.opt_text("type"),
        ),
        RawFormat::SatMath => (
            format!(
                "{}\nAnswer Choices: {}",
                r.text("question")?,
                r.text("options")?
            ),
            r.text("Answer")?,
            own_id("id").unwrap_or_else(line_id),
            None,
            None,
        ),
        RawFormat::Fields | RawFormat::Auto => (
            r.first_text(&fields.question)?,
            r.first_text(&fields.answer)?,
            fields
                .id
                .iter()
                .find_map(|f| r.opt_text(f))
                .map(|v| format!("{source}/{v}"))
                .unwrap_or_else(line_id),
            r.opt_text("level")
                .and_then(|l| l.trim_start_matches("Level ").trim().parse().ok()),
            r.opt_text("subject").or_else(|| r.opt_text("type")),
        ),
    };
    if question.trim().is_empty() {
        return Err(bad("empty question", "empty question"));
    }
    // The gold as it is graded: a boxed gold unwrapped, an empty one
    // (blank, or an empty box) refused.
    let answer = match grader::gold_answer(&answer) {
        Some(g) => g,
        None if opts.keep_empty_answers => String::new(),
        None => {
            return Err(bad(
                "empty answer",
                "empty answer: a blank gold, or an empty box, cannot be graded",
            ))
        }
    };
    let mut metadata = r.obj;
    for k in ["problem", "question", "prompt"] {
        metadata.remove(k);
    }
    Ok(Problem {
        id,
        source,
        question,
        answer: answer.trim().to_string(),
        level,
        subject,
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_their_shortest_form() {
        assert_eq!(
            number_text(&serde_json::Number::from_f64(27.0).unwrap()),
            "27"
        );
        assert_eq!(
            number_text(&serde_json::Number::from_f64(11.5).unwrap()),
            "11.5"
        );
        assert_eq!(number_text(&serde_json::Number::from(3159)), "3159");
    }

    fn load_text(ext: &str, text: &str) -> Result<Vec<Problem>, PrepError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("golds.{ext}"));
        std::fs::write(&path, text).unwrap();
        load(
            &path,
            RawFormat::Fields,
            &FieldMap::default(),
            LoadOptions::default(),
            &mut LoadReport::default(),
        )
    }

    #[test]
    fn numeric_golds_keep_their_source_text() {
        let jsonl = concat!(
            r#"{"question": "q1", "answer": 18446744073709551617}"#,
            "
",
            r#"{"question": "q2", "answer": 1.10}"#,
            "
",
            r#"{"question": "q3", "reward_model": {"ground_truth": 0.10}}"#,
            "
",
            r#"{"question": "q4", "answer": -2.50e3}"#,
            "
"
        );
        let golds: Vec<String> = load_text("jsonl", jsonl)
            .unwrap()
            .into_iter()
            .map(|p| p.answer)
            .collect();
        assert_eq!(golds, ["18446744073709551617", "1.10", "0.10", "-2.50e3"]);
        let json = r#"[{"question": "q", "answer": 1.10}]"#;
        assert_eq!(load_text("json", json).unwrap()[0].answer, "1.10");
    }

    #[test]
    fn a_float32_gold_is_its_shortest_decimal() {
        use arrow::array::{Float32Array, RecordBatch, StringArray};
        use std::sync::Arc;
        let batch = RecordBatch::try_from_iter([
            ("question", Arc::new(StringArray::from(vec!["q"])) as _),
            ("answer", Arc::new(Float32Array::from(vec![0.1f32])) as _),
        ])
        .unwrap();
        assert_eq!(row_json(&batch, 0)["answer"].to_string(), "0.1");
    }

    #[test]
    fn empty_null_and_boxed_golds() {
        let err = |text: &str| load_text("jsonl", text).unwrap_err().to_string();
        let e = err("{\"question\": \"q\", \"answer\": \"\"}\n");
        assert!(e.contains("golds.jsonl:1: empty answer"), "{e}");
        let e = err("{\"question\": \"q\", \"answer\": \"\\\\boxed{ }\"}\n");
        assert!(e.contains("empty answer"), "{e}");
        let e = err("{\"question\": \"q\", \"answer\": null}\n");
        assert!(
            e.contains("golds.jsonl:1") && e.contains("`answer` is null"),
            "{e}"
        );
        let boxed = load_text(
            "jsonl",
            "{\"question\": \"q\", \"answer\": \"\\\\boxed{5}\"}\n",
        );
        assert_eq!(boxed.unwrap()[0].answer, "5");
    }

    #[test]
    fn gsm8k_final_answer_without_commas() {
        assert_eq!(gsm8k_answer("so 1,000 + 234\n#### 1,234").unwrap(), "1234");
        assert_eq!(gsm8k_answer("no marker"), None);
    }

    #[test]
    fn dollars_stripped_only_when_wrapping() {
        assert_eq!(strip_dollars("$10-4 n$"), "10-4 n");
        assert_eq!(strip_dollars("$48$, $384$"), "48, 384");
        assert_eq!(strip_dollars(r"$\$6$"), r"\$6");
        assert_eq!(strip_dollars("-1"), "-1");
    }
}
