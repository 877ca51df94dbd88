//! Grading throughput on labelled cases, steadier than grader-check's one
//! pass: every variant's response graded REPEATS times, single-threaded;
//! prints the best and the median pass in pairs/s.
//!
//! `cargo run --release -p grader --example grade_speed -- ../shared/verifier-cases/variants.jsonl 20`

use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "../shared/verifier-cases/variants.jsonl".into());
    let repeats: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(20);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let variants = grader::cases::read_variants(&text).expect("variants");
    let scheme = grader::RewardScheme::default();
    let mut rates: Vec<f64> = (0..repeats)
        .map(|_| {
            let t = Instant::now();
            let correct = variants
                .iter()
                .filter(|v| grader::grade(&v.model_output, &v.gold, &scheme).correct)
                .count();
            std::hint::black_box(correct);
            variants.len() as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    println!(
        "{} responses x {repeats}: best {:.0} pairs/s, median {:.0} pairs/s",
        variants.len(),
        rates[repeats - 1],
        rates[repeats / 2]
    );
}
