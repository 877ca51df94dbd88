//! prep-math: raw math data sets -> prompts.parquet.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;
use cli::prep_math::{Cli, Cmd, Levels, OutputArgs, TemplateArgs};
use prep::raw::{self, FieldMap, LoadOptions, LoadReport, RawFormat};
use prep::select::{self, Selection};
use prep::synth::Kind;
use prep::template::{Template, TemplateName};

/// The template the flags name.
fn build_template(args: &TemplateArgs) -> Result<Template> {
    let t = match args.template {
        TemplateName::Chat => {
            let cfg = args
                .tokenizer_config
                .as_ref()
                .context("--template chat needs --tokenizer-config MODEL/tokenizer_config.json")?;
            Template::chat(cfg, args.system.clone())?
        }
        name => Template::new(name)?,
    };
    Ok(match &args.instruction {
        Some(i) => t.with_instruction(i.clone()),
        None => t,
    })
}

fn selection(o: &OutputArgs, kinds: &[Kind]) -> Selection {
    Selection {
        split: o.split,
        holdout_fraction: o.holdout_fraction,
        shuffle_seed: o.shuffle_seed,
        kinds: kinds.iter().map(|k| k.as_str().to_string()).collect(),
        limit: o.limit,
    }
}

/// Template, select (`kinds`: the metadata kinds to keep, empty for all),
/// write; print the one-line summary.
fn write(
    o: &OutputArgs,
    problems: Vec<raw::Problem>,
    skipped: &LoadReport,
    kinds: &[Kind],
) -> Result<()> {
    let template = build_template(&o.template)?;
    let rows = select::to_prompts(problems, &template, &selection(o, kinds))?;
    if rows.is_empty() {
        bail!(
            "no problems selected: nothing written to {}",
            o.output.display()
        );
    }
    match &o.response_field {
        None => artifacts::prompts::write(&o.output, &rows)?,
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
                        _ => bail!(
                            "problem `{}` has no field `{field}` for --response-field (fields: {})",
                            r.id,
                            meta.as_object()
                                .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
                                .unwrap_or_default()
                        ),
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            artifacts::sft::write(&o.output, &pairs)?;
        }
    }
    let sources: Vec<String> = select::count_by_source(&rows)
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect();
    let skipped: Vec<String> = skipped
        .skipped
        .iter()
        .map(|(r, n)| format!("{n} {r}"))
        .collect();
    eprintln!(
        "prep-math: wrote {} prompts ({}) to {} [template {}, split {:?}]{}",
        rows.len(),
        sources.join(", "),
        o.output.display(),
        template.name(),
        o.split,
        if skipped.is_empty() {
            String::new()
        } else {
            format!("; skipped bad rows: {}", skipped.join(", "))
        }
    );
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Synth {
            count,
            difficulty,
            seed,
            kinds,
            out,
        } => {
            let problems = prep::synth::generate(count, difficulty, seed);
            write(&out, problems, &LoadReport::default(), &kinds)
        }
        Cmd::SimplerlZero {
            raw,
            reference,
            out,
        } => {
            let (problems, report) = prep::preset::simplerl_zero(&raw, out.skip_bad)?;
            eprintln!("simplerl-zero: {report}");
            let reference = reference
                .or_else(|| Some(raw.join("simplerl/train.parquet")).filter(|p| p.exists()));
            if let Some(reference) = reference {
                let (found, total) = prep::preset::overlap(&reference, &problems)?;
                eprintln!(
                    "simplerl-zero: {found} of the {total} questions of {} are in the output ({:.2}%)",
                    reference.display(),
                    100.0 * found as f64 / total.max(1) as f64
                );
            }
            write(&out, problems, &LoadReport::default(), &[])
        }
        Cmd::Convert {
            inputs,
            format,
            question_field,
            answer_field,
            id_field,
            source,
            levels,
            dedupe,
            out,
        } => {
            let mut fields = FieldMap {
                source,
                ..FieldMap::default()
            };
            if !question_field.is_empty() {
                fields.question = question_field;
            }
            if !answer_field.is_empty() {
                fields.answer = answer_field;
            }
            if !id_field.is_empty() {
                fields.id = id_field;
            }
            if let Some(input) = inputs.iter().find(|i| durable::same_file(i, &out.output)) {
                bail!(
                    "-o {} is the input {}; write the prompts elsewhere",
                    out.output.display(),
                    input.display()
                );
            }
            let mut report = LoadReport::default();
            let mut problems = Vec::new();
            for input in &inputs {
                let opts = LoadOptions {
                    skip_bad: out.skip_bad,
                    ..Default::default()
                };
                problems.extend(raw::load(input, format, &fields, opts, &mut report)?);
            }
            if let Some(Levels(levels)) = levels {
                problems.retain(|p| p.level.is_some_and(|l| levels.contains(&l)));
            }
            if dedupe {
                let n = select::dedupe_questions(&mut problems);
                eprintln!("prep-math: dropped {n} duplicate problems");
            }
            write(&out, problems, &report, &[])
        }
        Cmd::EvalSuite {
            raw,
            out_dir,
            only,
            template,
            limit,
        } => {
            let template = build_template(&template)?;
            let eval_dir = raw.join("eval");
            let mut names: Vec<String> = std::fs::read_dir(&eval_dir)
                .with_context(|| {
                    format!("{}: cannot list the evaluation sets", eval_dir.display())
                })?
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            if !only.is_empty() {
                for o in &only {
                    if !names.contains(o) {
                        bail!(
                            "{}: no evaluation set `{o}` (have: {})",
                            eval_dir.display(),
                            names.join(", ")
                        );
                    }
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
                let problems = raw::load(
                    &eval_dir.join(&name),
                    RawFormat::Auto,
                    &FieldMap::default(),
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
                let skipped: Vec<String> = report
                    .skipped
                    .iter()
                    .map(|(r, n)| format!("{n} {r}"))
                    .collect();
                eprintln!(
                    "prep-math: wrote {} prompts to {}{}",
                    rows.len(),
                    path.display(),
                    if skipped.is_empty() {
                        String::new()
                    } else {
                        format!(" (skipped: {})", skipped.join(", "))
                    }
                );
            }
            Ok(())
        }
        Cmd::Schema { stage: None } => {
            print!("{}", artifacts::schemas_markdown());
            Ok(())
        }
        Cmd::Schema { stage: Some(stage) } => {
            let names: Vec<&str> = artifacts::ALL_SCHEMAS.iter().map(|s| s.stage).collect();
            let schema = artifacts::ALL_SCHEMAS
                .iter()
                .find(|s| s.stage == stage || s.stage.starts_with(&stage))
                .with_context(|| {
                    format!("unknown stage `{stage}` (one of: {})", names.join(", "))
                })?;
            print!("{}", schema.markdown());
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    artifacts::provenance::begin("prep-math", version::VERSION);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("prep-math: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
