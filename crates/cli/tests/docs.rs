//! docs/cli.md is what the clap definitions say.

#[test]
fn cli_docs_are_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli.md");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == cli::markdown(),
        "{} is out of date: run `make docs`",
        path.display()
    );
}
