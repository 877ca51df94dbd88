//! `prep-math`'s command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use prep::raw::RawFormat;
use prep::select::Split;
use prep::synth::{Difficulty, Kind};
use prep::template::TemplateName;

/// Normalise raw math data sets into prompts.parquet: one row per problem
/// with columns id, source, question, answer (gold, LaTeX), level, subject,
/// prompt (the templated text the model sees) and metadata (the source's
/// other fields as JSON).
#[derive(Parser)]
#[command(name = "prep-math", allow_negative_numbers = true, version = version::VERSION, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Built-in arithmetic problems with exact answers (the default training
    /// data). Each one's metadata holds its kind, its number of operations
    /// and a worked solution ending in \boxed{} (`--response-field
    /// solution` writes them as an SFT set).
    Synth {
        /// Number of distinct problems. [range: >= 1]
        #[arg(long, default_value_t = 1000, value_parser = flags::at_least_one)]
        count: usize,
        /// easy: one digit with one digit; medium: two digits; hard: two-step; mixed: mostly easy; steps: 60% two-step (one-step problems a minority); digit-steps: one-digit operands, about 80% two-step (the default set).
        #[arg(long, value_enum, default_value_t = Difficulty::Mixed)]
        difficulty: Difficulty,
        /// Generator seed: the same seed gives the same problems.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Keep only these kinds, comma-separated (e.g. `add-sub,mul-add,paren-mul`,
        /// the two-step ones), after the split and the shuffle, so the rows kept
        /// are in the order the unfiltered output has them. Default: every kind.
        #[arg(long, value_enum, value_delimiter = ',')]
        kinds: Vec<Kind>,
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
pub struct TemplateArgs {
    /// Prompt template: qwen-math-cot, simplerl-zoo, chat (needs --tokenizer-config) or plain.
    #[arg(long, value_enum, default_value_t = TemplateName::QwenMathCot)]
    pub template: TemplateName,
    /// tokenizer_config.json with the model's chat_template (for `--template chat`).
    #[arg(long)]
    pub tokenizer_config: Option<PathBuf>,
    /// A system turn for `--template chat`.
    #[arg(long)]
    pub system: Option<String>,
    /// The instruction (default: "Please reason step by step, and put your final answer within \boxed{}.").
    #[arg(long)]
    pub instruction: Option<String>,
}

#[derive(Args)]
pub struct OutputArgs {
    /// Output prompts Parquet (written atomically).
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub template: TemplateArgs,
    /// Shuffle with this seed (default: keep the input order).
    #[arg(long)]
    pub shuffle_seed: Option<u64>,
    /// Keep at most this many rows (after split and shuffle). [range: >= 1]
    #[arg(long, value_parser = flags::at_least_one)]
    pub limit: Option<usize>,
    /// Keep all rows, or one side of a stable split by hashing the id.
    #[arg(long, value_enum, default_value_t = Split::All)]
    pub split: Split,
    /// Share of ids in the holdout side. [range: >= 0 and < 1]
    #[arg(long, default_value_t = 0.1, value_parser = flags::fraction)]
    pub holdout_fraction: f64,
    /// Skip bad rows (malformed JSON, missing field, empty answer) and count them, instead of failing.
    #[arg(long)]
    pub skip_bad: bool,
    /// Also write a `response` column from this field of the raw record,
    /// making an SFT set for sft-step: `--response-field solution` on MATH
    /// gives the recipe's "8K MATH SFT" targets (solutions ending in \boxed{}).
    #[arg(long)]
    pub response_field: Option<String>,
}

/// A set of difficulty levels.
#[derive(Clone)]
pub struct Levels(pub Vec<i64>);

pub fn parse_levels(s: &str) -> Result<Levels, String> {
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
    fn spec(self) -> prep::job::TemplateSpec {
        prep::job::TemplateSpec {
            name: self.template,
            tokenizer_config: self.tokenizer_config,
            system: self.system,
            instruction: self.instruction,
        }
    }
}

impl OutputArgs {
    /// `kinds`: the metadata kinds to keep (empty: all).
    fn output(self, kinds: &[Kind]) -> prep::job::Output {
        prep::job::Output {
            path: self.output,
            template: self.template.spec(),
            selection: prep::select::Selection {
                split: self.split,
                holdout_fraction: self.holdout_fraction,
                shuffle_seed: self.shuffle_seed,
                kinds: kinds.iter().map(|k| k.as_str().to_string()).collect(),
                limit: self.limit,
            },
            skip_bad: self.skip_bad,
            response_field: self.response_field,
        }
    }
}

impl Cli {
    /// The job these flags ask for.
    pub fn job(self) -> prep::job::Job {
        use prep::job::Job;
        match self.cmd {
            Cmd::Synth {
                count,
                difficulty,
                seed,
                kinds,
                out,
            } => Job::Synth {
                count,
                difficulty,
                seed,
                out: out.output(&kinds),
            },
            Cmd::SimplerlZero {
                raw,
                reference,
                out,
            } => Job::SimplerlZero {
                raw,
                reference,
                out: out.output(&[]),
            },
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
                let mut fields = prep::raw::FieldMap {
                    source,
                    ..Default::default()
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
                Job::Convert {
                    inputs,
                    format,
                    fields,
                    levels: levels.map(|Levels(l)| l),
                    dedupe,
                    out: out.output(&[]),
                }
            }
            Cmd::EvalSuite {
                raw,
                out_dir,
                only,
                template,
                limit,
            } => Job::EvalSuite {
                raw,
                out_dir,
                only,
                template: template.spec(),
                limit,
            },
            Cmd::Schema { stage } => Job::Schema { stage },
        }
    }
}
