//! docs/schemas.md is what the code defines.

#[test]
fn schema_docs_are_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schemas.md");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == artifacts::schemas_markdown(),
        "{} is out of date: run `make docs`",
        path.display()
    );
}
