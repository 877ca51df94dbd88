//! Every tool's command line in one place, as uv keeps its in `uv-cli`:
//! the clap definitions the binaries parse, the one flag vocabulary they
//! share, the old spellings kept as hidden aliases, and
//! [`markdown`], which docs/cli.md is generated from (`make docs`; a
//! test fails when the file is out of date).
//!
//! A binary's `main` parses its `Cli`, calls [`warn_old_spellings`], and
//! hands the options to its library.

use clap::CommandFactory;

pub mod evaluate;
pub mod grader_check;
pub mod import_gguf;
pub mod init_model;
pub mod ppo_step;
pub mod prep_math;
pub mod report;
pub mod rollout;
pub mod sft_step;
pub mod verify;

/// Every tool, in pipeline order, with its command.
pub fn commands() -> Vec<clap::Command> {
    vec![
        prep_math::Cli::command(),
        rollout::Cli::command(),
        verify::Cli::command(),
        ppo_step::Cli::command(),
        sft_step::Cli::command(),
        evaluate::Cli::command(),
        report::Cli::command(),
        import_gguf::Cli::command(),
        init_model::Cli::command(),
        grader_check::Cli::command(),
    ]
}

/// One idea, one spelling: the flags every tool that has the idea uses.
pub const VOCABULARY: &[(&str, &str, &str)] = &[
    (
        "the stage's input",
        "the first argument; `-` reads standard input",
        "every stage",
    ),
    (
        "the stage's output",
        "`-o, --output`; `-` writes standard output (Parquet outputs)",
        "every stage",
    ),
    (
        "the model read",
        "`--policy` (a folder or a Hugging Face id `org/name[@revision]`); `--reference`, `--critic`",
        "rollout, ppo-step, sft-step, evaluate",
    ),
    (
        "responses per prompt",
        "`--samples`",
        "rollout, evaluate",
    ),
    (
        "sampling",
        "`--temperature`, `--top-p`, `--top-k`, `--max-new-tokens`, `--stop-words` (`--stop`), `--seed`",
        "rollout, evaluate",
    ),
    (
        "sequences decoded together",
        "`--decode-batch-size`",
        "rollout, evaluate",
    ),
    (
        "examples per optimizer step; per forward and backward",
        "`--train-batch-size`; `--micro-batch-size`",
        "ppo-step, sft-step",
    ),
    (
        "learning rates",
        "`--lr` (the policy's), `--critic-lr`, `--lr-schedule`, `--lr-warmup-ratio` / `--lr-warmup-steps`, `--min-lr-ratio`",
        "ppo-step, sft-step",
    ),
    (
        "a part of the rows",
        "`--shard k/n`, `--limit N`",
        "rollout, evaluate",
    ),
    (
        "where metrics go",
        "`--metrics FILE`, `--tensorboard DIR`",
        "ppo-step, sft-step",
    ),
    (
        "where it runs, in what precision",
        "`--device cpu\\|cuda\\|cuda:N`, `--dtype f32\\|bf16`",
        "rollout, ppo-step, sft-step, evaluate",
    ),
];

/// Spellings of earlier releases, still accepted (hidden from `--help`)
/// with a warning, until the next release: (tool, old, now).
pub const OLD_SPELLINGS: &[(&str, &str, &str)] = &[
    ("rollout", "--prompts", "PROMPTS (the first argument)"),
    ("rollout", "--samples-per-prompt", "--samples"),
    ("rollout", "--batch-size", "--decode-batch-size"),
    ("evaluate", "--batch-size", "--decode-batch-size"),
    ("ppo-step", "--scored", "SCORED (the first argument)"),
    ("ppo-step", "--policy-out", "-o, --output"),
    ("ppo-step", "--actor-lr", "--lr"),
    ("sft-step", "--data", "DATA (the first argument)"),
    ("sft-step", "--batch-size", "--train-batch-size"),
    ("sft-step", "--schedule", "--lr-schedule"),
    ("sft-step", "--warmup-steps", "--lr-warmup-steps"),
];

/// The warnings for the old spellings among `args` (a tool's arguments).
pub fn old_spellings_in(tool: &str, args: &[String]) -> Vec<String> {
    OLD_SPELLINGS
        .iter()
        .filter(|(t, _, _)| *t == tool)
        .filter(|(_, old, _)| {
            args.iter()
                .take_while(|a| *a != "--")
                .any(|a| a == old || a.starts_with(&format!("{old}=")))
        })
        .map(|(_, old, now)| {
            format!(
                "{tool}: warning: {old} is an old spelling of {now}; it goes in the next release"
            )
        })
        .collect()
}

/// Print [`old_spellings_in`] this process's arguments to stderr.
pub fn warn_old_spellings(tool: &str) {
    // args_os: a path that is not UTF-8 is an argument like any other.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    for w in old_spellings_in(tool, &args) {
        eprintln!("{w}");
    }
}

/// docs/cli.md: the vocabulary, the old spellings, and every tool's help.
pub fn markdown() -> String {
    let mut md = String::from(
        "# Command-line reference\n\n\
         Generated from the clap definitions in `crates/cli` by `make docs`; \
         `crates/cli/tests/docs.rs` fails when this file is out of date. \
         `TOOL --help` prints the same.\n\n\
         ## One vocabulary\n\n\
         | idea | spelling | tools |\n|---|---|---|\n",
    );
    for (idea, flags, tools) in VOCABULARY {
        md += &format!("| {idea} | {flags} | {tools} |\n");
    }
    md += "\n## Old spellings\n\n\
           Accepted with a warning until the next release, hidden from `--help`.\n\n\
           | tool | old | now |\n|---|---|---|\n";
    for (tool, old, now) in OLD_SPELLINGS {
        md += &format!("| {tool} | `{old}` | {now} |\n");
    }
    for cmd in commands() {
        command_markdown(&mut md, &cmd, cmd.get_name(), 2);
    }
    md
}

fn command_markdown(md: &mut String, cmd: &clap::Command, path: &str, level: usize) {
    let hashes = "#".repeat(level);
    md.push_str(&format!("\n{hashes} {path}\n\n"));
    let about = cmd
        .get_long_about()
        .or(cmd.get_about())
        .map(|s| s.to_string())
        .unwrap_or_default();
    if !about.is_empty() {
        md.push_str(&paragraphs(&about));
        md.push_str("\n\n");
    }
    let mut usage = cmd.clone().bin_name(path.to_string());
    md.push_str(&format!(
        "```text\n{}\n```\n\n",
        usage
            .render_usage()
            .to_string()
            .trim_start_matches("Usage: ")
    ));
    let args: Vec<&clap::Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter(|a| !["help", "version"].contains(&a.get_id().as_str()))
        .collect();
    for a in args {
        md.push_str(&format!("- {}", arg_title(a)));
        let help = a
            .get_long_help()
            .or(a.get_help())
            .map(|s| one_line(&s.to_string()))
            .unwrap_or_default();
        if !help.is_empty() {
            let end = if help.ends_with(['.', ')', ']']) {
                ""
            } else {
                "."
            };
            md.push_str(&format!(": {help}{end}"));
        }
        let defaults: Vec<String> = a
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        if !defaults.is_empty() && !a.is_positional() {
            md.push_str(&format!(" Default: `{}`.", defaults.join(",")));
        }
        let values: Vec<String> = a
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| match v.get_help() {
                Some(h) => format!("`{}` ({})", v.get_name(), one_line(&h.to_string())),
                None => format!("`{}`", v.get_name()),
            })
            .collect();
        let is_flag = matches!(
            a.get_action(),
            clap::ArgAction::SetTrue | clap::ArgAction::SetFalse
        );
        if !values.is_empty() && !is_flag {
            md.push_str(&format!(" Values: {}.", values.join("; ")));
        }
        md.push('\n');
    }
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        command_markdown(md, sub, &format!("{path} {}", sub.get_name()), level + 1);
    }
}

/// `-o, --output <OUTPUT>`, `--stop-words <STOP_WORDS> (also --stop)`, `<INPUT>`.
fn arg_title(a: &clap::Arg) -> String {
    let value = a
        .get_value_names()
        .map(|v| {
            v.iter()
                .map(|n| format!("<{n}>"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| format!("<{}>", a.get_id().as_str().to_uppercase()));
    if a.is_positional() {
        let dots = if matches!(a.get_num_args(), Some(r) if r.max_values() > 1) {
            "..."
        } else {
            ""
        };
        return format!("`{value}{dots}`");
    }
    let mut names = Vec::new();
    if let Some(s) = a.get_short() {
        names.push(format!("-{s}"));
    }
    if let Some(l) = a.get_long() {
        names.push(format!("--{l}"));
    }
    let takes_value = a.get_action().takes_values();
    let mut t = format!(
        "`{}{}`",
        names.join(", "),
        if takes_value {
            format!(" {value}")
        } else {
            String::new()
        }
    );
    if let Some(v) = a.get_visible_aliases().filter(|v| !v.is_empty()) {
        let v: Vec<String> = v.iter().map(|s| format!("`--{s}`")).collect();
        t += &format!(" (also {})", v.join(", "));
    }
    t
}

/// Help text on one line (its lines joined with spaces).
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A long about as Markdown: its paragraphs kept, indented examples as code.
fn paragraphs(s: &str) -> String {
    let mut out = Vec::new();
    for p in s.split("\n\n") {
        if p.lines().all(|l| l.starts_with("  ")) {
            out.push(format!("```text\n{}\n```", p.trim_end()));
        } else {
            out.push(one_line(p));
        }
    }
    out.join("\n\n")
}
