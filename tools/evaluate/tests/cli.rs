//! The evaluate binary: its input paths.

/// Prompts on standard input (`NAME=-`) are read once, by the rollout:
/// the run works and has no breakdown; the same file by path has one.
#[test]
fn prompts_on_standard_input_are_read_once() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("tiny");
    model::tiny::write_tiny(&ck, 16, 1, 3).unwrap();
    let prompts = dir.path().join("p.parquet");
    let rows: Vec<artifacts::prompts::PromptRow> = (0..3)
        .map(|i| artifacts::prompts::PromptRow {
            id: format!("s{i}"),
            source: "t".into(),
            question: format!("{i}+{i}"),
            answer: (2 * i).to_string(),
            level: Some(1),
            subject: None,
            prompt: format!("{i}+{i}="),
            metadata: Some(r#"{"kind":"add"}"#.into()),
        })
        .collect();
    artifacts::prompts::write(&prompts, &rows).unwrap();
    let run = |bench: &str, stdin: Option<&[u8]>| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_evaluate"))
            .args([
                "--policy",
                ck.to_str().unwrap(),
                "--max-new-tokens",
                "2",
                bench,
                "-o",
            ])
            .arg(dir.path().join("e.parquet"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(bytes) = stdin {
            input.write_all(bytes).unwrap();
        }
        drop(input);
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let piped = run("p=-", Some(&std::fs::read(&prompts).unwrap()));
    assert!(
        piped.contains("| p | 3 |") && !piped.contains("by kind"),
        "{piped}"
    );
    let named = run(&format!("p={}", prompts.display()), None);
    assert!(
        named.contains("`p` by kind:") && named.contains("| add | 3 |"),
        "{named}"
    );
}
