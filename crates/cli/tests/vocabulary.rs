//! One flag vocabulary: the same idea has the same spelling in every
//! tool, and the old spellings still parse, to the same values, with a
//! warning.

use clap::Parser;

fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

#[test]
fn clap_definitions_are_consistent() {
    for cmd in cli::commands() {
        cmd.debug_assert();
    }
}

#[test]
fn no_tool_shows_an_old_spelling_or_an_ambiguous_batch_size() {
    for cmd in cli::commands() {
        let visible: Vec<String> = cmd
            .get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .collect();
        for (tool, old, _) in cli::OLD_SPELLINGS {
            if *tool == cmd.get_name() {
                assert!(!visible.contains(&old.to_string()), "{tool} shows {old}");
            }
        }
        // A bare --batch-size meant the decode batch in one tool and the
        // optimizer batch in another.
        assert!(
            !visible.contains(&"--batch-size".to_string()),
            "{}",
            cmd.get_name()
        );
        // Every stage writes with -o/--output.
        if cmd.get_name() != "grader-check" && cmd.get_name() != "prep-math" {
            let out = cmd.get_arguments().find(|a| a.get_long() == Some("output"));
            assert!(
                out.is_some_and(|a| a.get_short() == Some('o')),
                "{} has no -o/--output",
                cmd.get_name()
            );
        }
    }
}

#[test]
fn rollout_old_and_new_spellings_agree() {
    let new = cli::rollout::Cli::parse_from(args(
        "rollout p.parquet --policy m -o r.parquet --samples 3 --decode-batch-size 5",
    ))
    .options();
    let old = cli::rollout::Cli::parse_from(args(
        "rollout --prompts p.parquet --policy m -o r.parquet --samples-per-prompt 3 --batch-size 5",
    ))
    .options();
    for o in [&new, &old] {
        assert_eq!(o.prompts.to_str(), Some("p.parquet"));
        assert_eq!((o.samples_per_prompt, o.batch_size), (3, 5));
    }
    // Both spellings of the input at once is an error, not a silent pick.
    assert!(cli::rollout::Cli::try_parse_from(args(
        "rollout a.parquet --prompts b.parquet --policy m -o r.parquet"
    ))
    .is_err());
    assert!(cli::rollout::Cli::try_parse_from(args("rollout --policy m -o r.parquet")).is_err());
}

#[test]
fn ppo_step_old_and_new_spellings_agree() {
    let new =
        cli::ppo_step::Cli::parse_from(args("ppo-step s.parquet --policy m -o out --lr 2e-6"))
            .options();
    let old = cli::ppo_step::Cli::parse_from(args(
        "ppo-step --scored s.parquet --policy m --policy-out out --actor-lr 2e-6",
    ))
    .options();
    for o in [&new, &old] {
        assert_eq!(o.io.scored.to_str(), Some("s.parquet"));
        assert_eq!(o.io.policy_out.to_str(), Some("out"));
        assert_eq!(o.config.actor_lr, 2e-6);
    }
    assert_eq!(new.config, old.config);
}

#[test]
fn sft_step_old_and_new_spellings_agree() {
    let new = cli::sft_step::Cli::parse_from(args(
        "sft-step d.parquet --policy m -o out --train-batch-size 6 --lr-schedule linear --lr-warmup-steps 3",
    ))
    .options();
    let old = cli::sft_step::Cli::parse_from(args(
        "sft-step --data d.parquet --policy m -o out --batch-size 6 --schedule linear --warmup-steps 3",
    ))
    .options();
    assert_eq!(new.io.data.to_str(), Some("d.parquet"));
    assert_eq!(old.io.data.to_str(), Some("d.parquet"));
    assert_eq!(new.config, old.config);
    assert_eq!((new.config.batch_size, new.config.warmup_steps), (6, 3));
}

#[test]
fn evaluate_old_and_new_spellings_agree() {
    let new = cli::evaluate::Cli::parse_from(args(
        "evaluate b.parquet --policy m -o r.parquet --decode-batch-size 7",
    ));
    let old = cli::evaluate::Cli::parse_from(args(
        "evaluate b.parquet --policy m -o r.parquet --batch-size 7",
    ));
    assert_eq!((new.batch_size, old.batch_size), (7, 7));
}

#[test]
fn an_old_spelling_is_named_in_a_warning() {
    let w = cli::old_spellings_in(
        "rollout",
        &args("--prompts p --samples-per-prompt=2 --policy m"),
    );
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].contains("--prompts") && w[0].contains("PROMPTS"),
        "{w:?}"
    );
    assert!(
        w[1].contains("--samples-per-prompt") && w[1].contains("--samples"),
        "{w:?}"
    );
    assert!(cli::old_spellings_in("rollout", &args("p --samples 2 --policy m")).is_empty());
    // The same word in another tool is not an old spelling there.
    assert!(cli::old_spellings_in("ppo-step", &args("--train-batch-size 2")).is_empty());
}
