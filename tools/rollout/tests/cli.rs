//! rollout end to end on a tiny random checkpoint.

use std::path::Path;
use std::process::Command;

use artifacts::prompts::PromptRow;

fn rollout(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rollout"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Rows equal up to float rounding of the log-probs (batch composition
/// changes summation order, not the sampled tokens).
fn assert_same(a: &[artifacts::rollouts::RolloutRow], b: &[artifacts::rollouts::RolloutRow]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(
            (
                &x.prompt_id,
                x.sample_index,
                &x.response_token_ids,
                &x.response
            ),
            (
                &y.prompt_id,
                y.sample_index,
                &y.response_token_ids,
                &y.response
            )
        );
        assert_eq!((x.seed, &x.finish_reason), (y.seed, &y.finish_reason));
        for (l, m) in x.response_logprobs.iter().zip(&y.response_logprobs) {
            assert!((l - m).abs() < 1e-4, "{l} vs {m}");
        }
    }
}

fn prompts(n: usize) -> Vec<PromptRow> {
    (0..n)
        .map(|i| PromptRow {
            id: format!("synth/{i}+{i}"),
            source: "synth".into(),
            question: format!("What is {i} + {i}?"),
            answer: (2 * i).to_string(),
            level: Some(1),
            subject: None,
            prompt: format!(
                "<|im_start|>user\nWhat is {i} + {i}?<|im_end|>\n<|im_start|>assistant\n"
            ),
            metadata: None,
        })
        .collect()
}

struct Setup {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
}

fn setup(n: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    model::tiny::write_tiny(&root.join("policy"), 32, 2, 1).unwrap();
    artifacts::prompts::write(root.join("prompts.parquet"), &prompts(n)).unwrap();
    Setup { _dir: dir, root }
}

impl Setup {
    /// rollout of this setup's prompts and policy into `out` with `flags`;
    /// its rows (the run must succeed).
    fn rollout_rows(&self, out: &Path, flags: &[&str]) -> Vec<artifacts::rollouts::RolloutRow> {
        let prompts = self.root.join("prompts.parquet");
        let policy = self.root.join("policy");
        let head = [s(&prompts), "--policy", s(&policy), "-o", s(out)];
        let (ok, log) = rollout(&[&head[..], flags].concat());
        assert!(ok, "{log}");
        artifacts::rollouts::read(out).unwrap()
    }
}

#[test]
fn samples_every_prompt_with_logprobs() {
    let t = setup(3);
    let out = t.root.join("rollouts.parquet");
    let (ok, log) = rollout(&[
        s(&t.root.join("prompts.parquet")),
        "--policy",
        s(&t.root.join("policy")),
        "-o",
        s(&out),
        "--samples",
        "2",
        "--max-new-tokens",
        "8",
        "--seed",
        "5",
        "--decode-batch-size",
        "4",
    ]);
    assert!(ok, "{log}");
    assert!(log.contains("6 responses"), "{log}");
    let rows = artifacts::rollouts::read(&out).unwrap();
    assert_eq!(rows.len(), 6);
    for r in &rows {
        assert_eq!(r.response_token_ids.len(), r.response_logprobs.len());
        assert!(!r.response_token_ids.is_empty() && r.response_token_ids.len() <= 8);
        assert!(r
            .response_logprobs
            .iter()
            .all(|l| *l <= 0.0 && l.is_finite()));
        assert_eq!(r.prompt_token_ids[0], 257, "<|im_start|>");
        assert!(["stop", "length"].contains(&r.finish_reason.as_str()));
        assert_eq!(
            r.answer,
            prompts(3)
                .iter()
                .find(|p| p.id == r.prompt_id)
                .unwrap()
                .answer
        );
    }
    // Same seed, same samples.
    let again = t.root.join("again.parquet");
    let (ok, _) = rollout(&[
        s(&t.root.join("prompts.parquet")),
        "--policy",
        s(&t.root.join("policy")),
        "-o",
        s(&again),
        "--samples",
        "2",
        "--max-new-tokens",
        "8",
        "--seed",
        "5",
        "--decode-batch-size",
        "1",
    ]);
    assert!(ok);
    assert_same(&artifacts::rollouts::read(&again).unwrap(), &rows);
}

#[test]
fn shards_concatenate_to_the_whole_run() {
    let t = setup(5);
    let args = |out: &Path, shard: &str| -> Vec<String> {
        vec![
            s(&t.root.join("prompts.parquet")).into(),
            "--policy".into(),
            s(&t.root.join("policy")).into(),
            "-o".into(),
            s(out).into(),
            "--max-new-tokens".into(),
            "6".into(),
            "--samples".into(),
            "2".into(),
            "--shard".into(),
            shard.into(),
        ]
    };
    let run = |out: &Path, shard: &str| {
        let a = args(out, shard);
        let a: Vec<&str> = a.iter().map(|x| x.as_str()).collect();
        let (ok, log) = rollout(&a);
        assert!(ok, "{log}");
        artifacts::rollouts::read(out).unwrap()
    };
    let whole = run(&t.root.join("whole.parquet"), "0/1");
    let mut parts = run(&t.root.join("a.parquet"), "0/2");
    parts.extend(run(&t.root.join("b.parquet"), "1/2"));
    let key = |r: &artifacts::rollouts::RolloutRow| (r.prompt_id.clone(), r.sample_index);
    let mut whole_sorted = whole.clone();
    whole_sorted.sort_by_key(key);
    parts.sort_by_key(key);
    assert_same(&parts, &whole_sorted);
}

/// --filter-groups with --shard: each shard tops up from its own share of
/// the prompts outside the whole batch, never from another shard's batch
/// rows (the tiny model's groups are all uninformative, so every extra
/// prompt it may sample is sampled).
#[test]
fn filter_groups_shards_sample_disjoint_prompts() {
    let t = setup(12);
    let run = |name: &str, shard: &str| {
        let flags = [
            "--max-new-tokens",
            "4",
            "--samples",
            "2",
            "--prompt-batch",
            "0:6",
            "--filter-groups",
            "--max-extra-prompts",
            "3",
            "--shard",
            shard,
        ];
        let rows = t.rollout_rows(&t.root.join(name), &flags);
        rows.into_iter()
            .map(|r| r.prompt_id)
            .collect::<std::collections::BTreeSet<String>>()
    };
    let (a, b) = (run("a.parquet", "0/2"), run("b.parquet", "1/2"));
    assert_eq!((a.len(), b.len()), (3 + 3, 3 + 3), "{a:?} {b:?}");
    assert!(
        a.is_disjoint(&b),
        "shards sampled the same prompts: {a:?} {b:?}"
    );
}

#[test]
fn bad_input_fails_cleanly() {
    let t = setup(2);
    let out = t.root.join("rollouts.parquet");
    let policy = t.root.join("policy");
    let prompts_path = t.root.join("prompts.parquet");
    // Prompt longer than the context (512).
    let (ok, log) = rollout(&[
        s(&prompts_path),
        "--policy",
        s(&policy),
        "-o",
        s(&out),
        "--max-new-tokens",
        "600",
    ]);
    assert!(
        !ok && log.contains("exceeds the model's context") && log.contains("row 0"),
        "{log}"
    );
    // Unreadable checkpoint.
    let (ok, log) = rollout(&[
        s(&prompts_path),
        "--policy",
        s(&t.root.join("nope")),
        "-o",
        s(&out),
    ]);
    assert!(!ok && log.contains("nope"), "{log}");
    // A prompts file without the prompt column.
    let bad = t.root.join("bad.parquet");
    artifacts::rollouts::write(&bad, &[]).unwrap();
    let (ok, log) = rollout(&[s(&bad), "--policy", s(&policy), "-o", s(&out)]);
    assert!(!ok && log.contains("missing column `id`"), "{log}");
    assert_eq!(log.trim().lines().count(), 1, "{log}");
    let (ok, log) = rollout(&[
        s(&prompts_path),
        "--policy",
        s(&policy),
        "-o",
        s(&out),
        "--shard",
        "2/2",
    ]);
    assert!(!ok && log.contains("--shard"), "{log}");
    assert!(!out.exists(), "no output after a failure");
}

/// A response ends at the first stop string (kept in the text), its tokens
/// end with the token that completed it, and the row says `stop`; without
/// stop words the same sample (same seed) runs on to the length limit.
#[test]
fn stops_at_the_first_stop_word() {
    let t = setup(1);
    let run = |out: &str, stop: &str| {
        let flags = [
            "--samples",
            "1",
            "--max-new-tokens",
            "24",
            "--seed",
            "3",
            "--stop-words",
            stop,
        ];
        t.rollout_rows(&t.root.join(out), &flags).remove(0)
    };
    let full = run("full.parquet", "");
    // A token (k >= 2) that decodes to one printable character not seen
    // before it in the response.
    let text = |toks: &[u32]| {
        let tok = model::tokenizer::Tokenizer::load(&t.root.join("policy")).unwrap();
        tok.decode(toks).unwrap()
    };
    let (k, word) = (2..full.response_token_ids.len())
        .find_map(|k| {
            let w = text(&full.response_token_ids[k..k + 1]);
            let before = text(&full.response_token_ids[..k]);
            let ok = w.chars().count() == 1
                && w.chars().all(|c| c.is_ascii_graphic() && c != ',')
                && !before.contains(&w);
            ok.then_some((k, w))
        })
        .unwrap_or_else(|| {
            panic!(
                "no fresh printable token in {:?} {:?}",
                full.response, full.response_token_ids
            )
        });
    let cut = run("cut.parquet", &format!("{word},no-such-word"));
    assert_eq!(cut.response_token_ids, full.response_token_ids[..=k]);
    assert_eq!(cut.finish_reason, "stop");
    assert!(cut.response.ends_with(&word), "{:?}", cut.response);
    assert!(full.response.starts_with(&cut.response));
    assert_eq!(cut.response.matches(&word).count(), 1);
}

/// The recipe's end-of-turn strings are the default stop words.
#[test]
fn the_default_stop_words_are_the_recipes() {
    let out = Command::new(env!("CARGO_BIN_EXE_rollout"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for w in grader::STOP_WORDS {
        assert!(help.contains(w), "{w} missing from\n{help}");
    }
}

/// --prompt-batch samples the loader's batch for the iteration (the same
/// rows the library function names), and --max-prompt-tokens leaves long
/// prompts out, counting them.
#[test]
fn prompt_batches_and_long_prompts() {
    let t = setup(5);
    let out = t.root.join("rollouts.parquet");
    let (prompts_path, policy) = (t.root.join("prompts.parquet"), t.root.join("policy"));
    let run = |extra: &[&str]| {
        let mut args = vec![
            s(&prompts_path),
            "--policy",
            s(&policy),
            "-o",
            s(&out),
            "--samples",
            "1",
            "--max-new-tokens",
            "2",
        ];
        args.extend(extra);
        let (ok, log) = rollout(&args);
        assert!(ok, "{log}");
        (artifacts::rollouts::read(&out).unwrap(), log)
    };
    let (rows, _) = run(&["--prompt-batch", "3:2", "--shuffle-seed", "9"]);
    let want: Vec<String> = stages::rollout::PromptBatch {
        iteration: 3,
        size: 2,
    }
    .rows(5, 9)
    .into_iter()
    .map(|i| prompts(5)[i].id.clone())
    .collect();
    let got: Vec<String> = rows.iter().map(|r| r.prompt_id.clone()).collect();
    assert_eq!(got, want);
    let (rows, log) = run(&["--max-prompt-tokens", "8"]);
    assert!(rows.is_empty());
    assert!(log.contains("left out 5 prompts"), "{log}");
    let (ok, log) = rollout(&[
        s(&t.root.join("prompts.parquet")),
        "--policy",
        s(&t.root.join("policy")),
        "-o",
        s(&out),
        "--prompt-batch",
        "0:6",
    ]);
    assert!(
        !ok && log.contains("fewer than one --prompt-batch of 6"),
        "{log}"
    );
}

/// `--policy org/name[@revision]` is found in the Hugging Face cache
/// ($HF_HOME/hub, the layout huggingface_hub writes) offline; an id that
/// is not cached is an error naming it, and nothing is downloaded.
#[test]
fn a_hub_id_is_found_in_the_hf_cache_offline() {
    let t = setup(2);
    let home = t.root.join("hf-home");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let repo = home.join("hub/models--acme--tiny-math");
    let snapshot = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&snapshot).unwrap();
    for f in std::fs::read_dir(t.root.join("policy")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, snapshot.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    let run = |policy: &str| {
        let out = t.root.join("hub.parquet");
        let o = Command::new(env!("CARGO_BIN_EXE_rollout"))
            .current_dir(&t.root)
            .env("HF_HOME", &home)
            .env("HF_HUB_OFFLINE", "1")
            .args([
                s(&t.root.join("prompts.parquet")),
                "--policy",
                policy,
                "-o",
                s(&out),
                "--max-new-tokens",
                "2",
            ])
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&o.stderr).into_owned();
        (o.status.success(), log, out)
    };
    for id in ["acme/tiny-math", &format!("acme/tiny-math@{commit}")] {
        let (ok, log, out) = run(id);
        assert!(ok, "{id}: {log}");
        let rows = artifacts::rollouts::read(&out).unwrap();
        assert_eq!(rows.len(), 8);
        assert!(rows[0].policy.contains(commit), "{}", rows[0].policy);
    }
    let (ok, log, _) = run("acme/not-there");
    assert!(!ok);
    assert!(
        log.contains("`acme/not-there`: not a local folder, and not in the Hugging Face cache")
            && log.contains("HF_HUB_OFFLINE"),
        "{log}"
    );
}
