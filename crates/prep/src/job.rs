//! prep-math's run: one [`Job`] per subcommand, each loading problems,
//! templating and selecting them ([`crate::select`]) and writing one
//! prompts file (or, with a response field, an SFT set) atomically.

use std::path::PathBuf;

use crate::raw::{self, FieldMap, LoadOptions, LoadReport, Problem, RawFormat};
use crate::select::{self, Selection};
use crate::synth::Difficulty;
use crate::template::{Template, TemplateName};
use crate::PrepError;

/// The prompt template: a named one, or the model's chat template.
#[derive(Debug, Clone)]
pub struct TemplateSpec {
    pub name: TemplateName,
    /// tokenizer_config.json with the model's chat_template (for `chat`).
    pub tokenizer_config: Option<PathBuf>,
    /// A system turn for `chat`.
    pub system: Option<String>,
    /// Replaces the default instruction.
    pub instruction: Option<String>,
}

/// Where and how a job writes its problems.
#[derive(Debug, Clone)]
pub struct Output {
    pub path: PathBuf,
    pub template: TemplateSpec,
    pub selection: Selection,
    /// Count bad raw rows instead of failing on the first.
    pub skip_bad: bool,
    /// Also write a `response` column from this metadata field (an SFT set).
    pub response_field: Option<String>,
}

/// One subcommand of prep-math.
#[derive(Debug, Clone)]
pub enum Job {
    /// The built-in arithmetic set.
    Synth {
        count: usize,
        difficulty: Difficulty,
        seed: u64,
        out: Output,
    },
    /// The published recipe's training set, and its overlap with the
    /// recipe's own file (`reference`, or RAW/simplerl/train.parquet).
    SimplerlZero {
        raw: PathBuf,
        reference: Option<PathBuf>,
        out: Output,
    },
    /// Any raw data set.
    Convert {
        inputs: Vec<PathBuf>,
        format: RawFormat,
        fields: FieldMap,
        /// Keep only these levels.
        levels: Option<Vec<i64>>,
        dedupe: bool,
        out: Output,
    },
    /// Every evaluation set under RAW/eval (or `only` these), one prompts
    /// file each in `out_dir`.
    EvalSuite {
        raw: PathBuf,
        out_dir: PathBuf,
        only: Vec<String>,
        template: TemplateSpec,
        limit: Option<usize>,
    },
    /// A stage's Parquet schema as Markdown (every stage's when `None`).
    Schema { stage: Option<String> },
}

/// Run `job`; `say` gets each progress line (for stderr). Returns the text
/// for stdout (the schema; empty for the other jobs).
pub fn run(job: Job, say: &mut dyn FnMut(String)) -> Result<String, PrepError> {
    match job {
        Job::Synth {
            count,
            difficulty,
            seed,
            out,
        } => {
            let problems = crate::synth::generate(count, difficulty, seed);
            write(&out, problems, &LoadReport::default(), say)?;
        }
        Job::SimplerlZero {
            raw,
            reference,
            out,
        } => {
            let inputs = [Some(raw.as_path()), reference.as_deref()];
            let inputs: Vec<&std::path::Path> = inputs.into_iter().flatten().collect();
            durable::check_not_input(&out.path, &inputs)
                .map_err(|e| PrepError::Invalid(e.to_string()))?;
            let (problems, report) = crate::preset::simplerl_zero(&raw, out.skip_bad)?;
            say(format!("simplerl-zero: {report}"));
            let reference = reference
                .or_else(|| Some(raw.join("simplerl/train.parquet")).filter(|p| p.exists()));
            if let Some(reference) = reference {
                let (found, total) = crate::preset::overlap(&reference, &problems)?;
                let share = 100.0 * found as f64 / total.max(1) as f64;
                say(format!(
                    "simplerl-zero: {found} of the {total} questions of {} are in the output ({share:.2}%)",
                    reference.display()
                ));
            }
            write(&out, problems, &LoadReport::default(), say)?;
        }
        Job::Convert {
            inputs,
            format,
            fields,
            levels,
            dedupe,
            out,
        } => {
            let paths: Vec<&std::path::Path> = inputs.iter().map(PathBuf::as_path).collect();
            durable::check_not_input(&out.path, &paths)
                .map_err(|e| PrepError::Invalid(e.to_string()))?;
            let mut report = LoadReport::default();
            let mut problems = Vec::new();
            for input in &inputs {
                let opts = LoadOptions {
                    skip_bad: out.skip_bad,
                    ..Default::default()
                };
                problems.extend(raw::load(input, format, &fields, opts, &mut report)?);
            }
            if let Some(levels) = levels {
                problems.retain(|p| p.level.is_some_and(|l| levels.contains(&l)));
            }
            if dedupe {
                let n = select::dedupe_questions(&mut problems);
                say(format!("prep-math: dropped {n} duplicate problems"));
            }
            write(&out, problems, &report, say)?;
        }
        Job::EvalSuite {
            raw,
            out_dir,
            only,
            template,
            limit,
        } => eval_suite(&raw, &out_dir, &only, &template, limit, say)?,
        Job::Schema { stage: None } => return Ok(artifacts::schemas_markdown()),
        Job::Schema { stage: Some(stage) } => {
            let names: Vec<&str> = artifacts::ALL_SCHEMAS.iter().map(|s| s.stage).collect();
            let schema = artifacts::ALL_SCHEMAS
                .iter()
                .find(|s| s.stage == stage || s.stage.starts_with(&stage))
                .ok_or_else(|| {
                    PrepError::Invalid(format!(
                        "unknown stage `{stage}` (one of: {})",
                        names.join(", ")
                    ))
                })?;
            return Ok(schema.markdown());
        }
    }
    Ok(String::new())
}

/// The template `spec` names.
pub fn build_template(spec: &TemplateSpec) -> Result<Template, PrepError> {
    let t = match spec.name {
        TemplateName::Chat => {
            let cfg = spec.tokenizer_config.as_ref().ok_or_else(|| {
                PrepError::Invalid(
                    "--template chat needs --tokenizer-config MODEL/tokenizer_config.json".into(),
                )
            })?;
            Template::chat(cfg, spec.system.clone())?
        }
        name => Template::new(name)?,
    };
    Ok(match &spec.instruction {
        Some(i) => t.with_instruction(i.clone()),
        None => t,
    })
}

/// "3 reason, 1 other": what a load skipped, by reason.
fn skipped(report: &LoadReport) -> String {
    let parts: Vec<String> = report
        .skipped
        .iter()
        .map(|(r, n)| format!("{n} {r}"))
        .collect();
    parts.join(", ")
}

/// Template, select, write; say the one-line summary.
fn write(
    o: &Output,
    problems: Vec<Problem>,
    report: &LoadReport,
    say: &mut dyn FnMut(String),
) -> Result<(), PrepError> {
    let template = build_template(&o.template)?;
    let rows = select::to_prompts(problems, &template, &o.selection)?;
    if rows.is_empty() {
        return Err(PrepError::Invalid(format!(
            "no problems selected: nothing written to {}",
            o.path.display()
        )));
    }
    match &o.response_field {
        None => artifacts::prompts::write(&o.path, &rows)?,
        Some(field) => {
            let pairs = rows
                .iter()
                .map(|r| {
                    let meta: serde_json::Value = r
                        .metadata
                        .as_deref()
                        .and_then(|m| serde_json::from_str(m).ok())
                        .unwrap_or_default();
                    match meta[field.as_str()].as_str() {
                        Some(t) if !t.trim().is_empty() => Ok((r.clone(), t.to_string())),
                        _ => Err(PrepError::Invalid(format!(
                            "problem `{}` has no field `{field}` for --response-field (fields: {})",
                            r.id,
                            meta.as_object()
                                .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
                                .unwrap_or_default()
                        ))),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            artifacts::sft::write(&o.path, &pairs)?;
        }
    }
    let sources: Vec<String> = select::count_by_source(&rows)
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect();
    let skipped = skipped(report);
    say(format!(
        "prep-math: wrote {} prompts ({}) to {} [template {}, split {:?}]{}",
        rows.len(),
        sources.join(", "),
        o.path.display(),
        template.name(),
        o.selection.split,
        if skipped.is_empty() {
            String::new()
        } else {
            format!("; skipped bad rows: {skipped}")
        }
    ));
    Ok(())
}

fn eval_suite(
    raw: &std::path::Path,
    out_dir: &std::path::Path,
    only: &[String],
    template: &TemplateSpec,
    limit: Option<usize>,
    say: &mut dyn FnMut(String),
) -> Result<(), PrepError> {
    let template = build_template(template)?;
    let eval_dir = raw.join("eval");
    let listing = std::fs::read_dir(&eval_dir).map_err(|e| {
        PrepError::Invalid(format!(
            "{}: cannot list the evaluation sets: {e}",
            eval_dir.display()
        ))
    })?;
    let mut names: Vec<String> = listing
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if !only.is_empty() {
        if let Some(o) = only.iter().find(|o| !names.contains(o)) {
            return Err(PrepError::Invalid(format!(
                "{}: no evaluation set `{o}` (have: {})",
                eval_dir.display(),
                names.join(", ")
            )));
        }
        names.retain(|n| only.contains(n));
    }
    for name in names {
        let mut report = LoadReport::default();
        // The published sets have a few unusable rows (an empty gold
        // answer): skip them and say so.
        let opts = LoadOptions {
            skip_bad: true,
            ..Default::default()
        };
        let fields = FieldMap::default();
        let problems = raw::load(
            &eval_dir.join(&name),
            RawFormat::Auto,
            &fields,
            opts,
            &mut report,
        )?;
        let sel = Selection {
            limit,
            ..Selection::default()
        };
        let rows = select::to_prompts(problems, &template, &sel)?;
        let path = out_dir.join(format!("{name}.parquet"));
        artifacts::prompts::write(&path, &rows)?;
        let skipped = skipped(&report);
        say(format!(
            "prep-math: wrote {} prompts to {}{}",
            rows.len(),
            path.display(),
            if skipped.is_empty() {
                String::new()
            } else {
                format!(" (skipped: {skipped})")
            }
        ));
    }
    Ok(())
}
