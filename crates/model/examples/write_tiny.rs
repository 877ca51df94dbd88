//! Write a tiny random checkpoint (byte-level tokenizer) for pipeline
//! tests: `write_tiny DIR [HIDDEN] [LAYERS] [SEED]`.

pub fn main() {
    let a: Vec<String> = std::env::args().collect();
    let Some(dir) = a.get(1) else {
        eprintln!("usage: write_tiny DIR [HIDDEN] [LAYERS] [SEED]");
        std::process::exit(2);
    };
    let num = |i: usize, d: usize| a.get(i).map_or(d, |s| s.parse().expect("a number"));
    model::tiny::write_tiny(
        std::path::Path::new(dir),
        num(2, 32),
        num(3, 2),
        num(4, 0) as u64,
    )
    .expect("write tiny checkpoint");
}
