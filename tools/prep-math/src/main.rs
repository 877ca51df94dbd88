//! prep-math: raw math data sets -> prompts.parquet.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use prep::raw::{self, FieldMap, LoadOptions, LoadReport, RawFormat};
use prep::select::{self, Selection, Split};
use prep::synth::Difficulty;
use prep::template::{Template, TemplateName};

/// Normalise raw math data sets into prompts.parquet: one row per problem
/// with columns id, source, question, answer (gold, LaTeX), level, subject,
/// prompt (the templated text the model sees) and metadata (the source's
/// other fields as JSON).
#[derive(Parser)]
#[command(allow_negative_numbers = true, version = version::VERSION, about, long_about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Built-in arithmetic problems with exact answers (the default training data).
    Synth {
        /// Number of distinct problems. [range: >= 1]
        #[arg(long, default_value_t = 1000, value_parser = flags::at_least_one)]
        count: usize,
        /// easy: one digit with one digit; medium: two digits; hard: two-step; mixed: mostly easy.
        #[arg(long, value_enum, default_value_t = Difficulty::Mixed)]
        difficulty: Difficulty,
        /// Generator seed: the same seed gives the same problems.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// The published recipe's training set: MATH train + test, levels 3-5,
    /// minus the MATH-500 problems, de-duplicated.
    SimplerlZero {
        /// Folder with math/*.jsonl and eval/math500/test.jsonl.
        #[arg(long, default_value = "../shared/data/raw")]
        raw: PathBuf,
        /// Report how many questions of this Parquet (the recipe's own
        /// simplerl/train.parquet) the output contains. Default: RAW/simplerl/train.parquet if present.
        #[arg(long)]
        reference: Option<PathBuf>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Any raw data set: MATH, GSM8K, each evaluation set, HF-style Parquet,
    /// or JSONL/Parquet with the question and answer at named fields.
    Convert {
        /// Files or folders (every .jsonl/.json/.parquet inside).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// The raw shape; `auto` tells it from the folder name or the fields.
        #[arg(long, value_enum, default_value_t = RawFormat::Auto)]
        format: RawFormat,
        /// Question field for `--format fields` (dotted path into structs; repeat for fallbacks).
        #[arg(long)]
        question_field: Vec<String>,
        /// Gold-answer field for `--format fields` (e.g. `reward_model.ground_truth`).
        #[arg(long)]
        answer_field: Vec<String>,
        /// Id field for `--format fields`; default: the line or row number.
        #[arg(long)]
        id_field: Vec<String>,
        /// The `source` column; default: the data set's name (or the file's stem).
        #[arg(long)]
        source: Option<String>,
        /// Keep only these levels: `3-5` or `1,2`.
        #[arg(long, value_parser = parse_levels)]
        levels: Option<Levels>,
        /// Drop problems whose whitespace-normalised text was seen before.
        #[arg(long)]
        dedupe: bool,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Every evaluation set under RAW/eval, one prompts file each
    /// (OUT_DIR/<name>.parquet), for evaluate.
    EvalSuite {
        #[arg(long, default_value = "../shared/data/raw")]
        raw: PathBuf,
        #[arg(long)]
        out_dir: PathBuf,
        /// Only these sets (default: every folder under RAW/eval).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        #[command(flatten)]
        template: TemplateArgs,
        /// Keep at most this many problems of each set. [range: >= 1]
        #[arg(long, value_parser = flags::at_least_one)]
        limit: Option<usize>,
    },
    /// Print the columns of a stage's Parquet schema (prompts, rollouts,
    /// scored, metrics, eval results), or of all of them.
    Schema { stage: Option<String> },
}

#[derive(Args)]
struct TemplateArgs {
    /// Prompt template: qwen-math-cot, simplerl-zoo, chat (needs --tokenizer-config) or plain.
    #[arg(long, value_enum, default_value_t = TemplateName::QwenMathCot)]
    template: TemplateName,
    /// tokenizer_config.json with the model's chat_template (for `--template chat`).
    #[arg(long)]
    tokenizer_config: Option<PathBuf>,
    /// A system turn for `--template chat`.
    #[arg(long)]
    system: Option<String>,
    /// The instruction (default: "Please reason step by step, and put your final answer within \boxed{}.").
    #[arg(long)]
    instruction: Option<String>,
}

#[derive(Args)]
struct OutputArgs {
    /// Output prompts Parquet (written atomically).
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    template: TemplateArgs,
    /// Shuffle with this seed (default: keep the input order).
    #[arg(long)]
    shuffle_seed: Option<u64>,
    /// Keep at most this many rows (after split and shuffle). [range: >= 1]
    #[arg(long, value_parser = flags::at_least_one)]
    limit: Option<usize>,
    /// Keep all rows, or one side of a stable split by hashing the id.
    #[arg(long, value_enum, default_value_t = Split::All)]
    split: Split,
    /// Share of ids in the holdout side. [range: >= 0 and < 1]
    #[arg(long, default_value_t = 0.1, value_parser = flags::fraction)]
    holdout_fraction: f64,
    /// Skip bad rows (malformed JSON, missing field, empty answer) and count them, instead of failing.
    #[arg(long)]
    skip_bad: bool,
    /// Also write a `response` column from this field of the raw record,
    /// making an SFT set for sft-step: `--response-field solution` on MATH
    /// gives the recipe's "8K MATH SFT" targets (solutions ending in \boxed{}).
    #[arg(long)]
    response_field: Option<String>,
}

/// A set of difficulty levels.
#[derive(Clone)]
struct Levels(Vec<i64>);

fn parse_levels(s: &str) -> Result<Levels, String> {
    let bad = || format!("levels must look like `3-5` or `1,2`, got `{s}`");
    if let Some((a, b)) = s.split_once('-') {
        let (a, b): (i64, i64) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        return Ok(Levels((a..=b).collect()));
    }
    s.split(',')
        .map(|x| x.trim().parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()
        .map(Levels)
}

impl TemplateArgs {
    fn build(&self) -> Result<Template> {
        let t = match self.template {
            TemplateName::Chat => {
                let cfg = self.tokenizer_config.as_ref().context(
                    "--template chat needs --tokenizer-config MODEL/tokenizer_config.json",
                )?;
                Template::chat(cfg, self.system.clone())?
            }
            name => Template::new(name)?,
        };
        Ok(match &self.instruction {
            Some(i) => t.with_instruction(i.clone()),
            None => t,
        })
    }
}

impl OutputArgs {
    fn selection(&self) -> Selection {
        Selection {
            split: self.split,
            holdout_fraction: self.holdout_fraction,
            shuffle_seed: self.shuffle_seed,
            limit: self.limit,
        }
    }

    /// Template, select, write; print the one-line summary.
    fn write(&self, problems: Vec<raw::Problem>, skipped: &LoadReport) -> Result<()> {
        let template = self.template.build()?;
        let rows = select::to_prompts(problems, &template, &self.selection())?;
        if rows.is_empty() {
            bail!(
                "no problems selected: nothing written to {}",
                self.output.display()
            );
        }
        match &self.response_field {
            None => artifacts::prompts::write(&self.output, &rows)?,
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
                artifacts::sft::write(&self.output, &pairs)?;
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
            self.output.display(),
            template.name(),
            self.split,
            if skipped.is_empty() {
                String::new()
            } else {
                format!("; skipped bad rows: {}", skipped.join(", "))
            }
        );
        Ok(())
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Synth {
            count,
            difficulty,
            seed,
            out,
        } => {
            let problems = prep::synth::generate(count, difficulty, seed);
            out.write(problems, &LoadReport::default())
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
            out.write(problems, &LoadReport::default())
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
            out.write(problems, &report)
        }
        Cmd::EvalSuite {
            raw,
            out_dir,
            only,
            template,
            limit,
        } => {
            let template = template.build()?;
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
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("prep-math: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
