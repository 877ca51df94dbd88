//! Print a metrics.parquet as `step name=value ...` lines, without the
//! wall-clock columns (elapsed_s, tokens_per_s): two runs of the same
//! steps print the same text. Used by tests/crash.sh.

use artifacts::metrics::Metric;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: metrics_dump METRICS.parquet");
    let rows = match artifacts::metrics::read(&path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("metrics_dump: {e}");
            std::process::exit(1);
        }
    };
    for r in rows {
        let mut line = format!("step {}", r.step);
        for m in Metric::ALL {
            if matches!(m, Metric::ElapsedS | Metric::TokensPerS) {
                continue;
            }
            if let Some(v) = r.get(*m) {
                line.push_str(&format!(" {m}={v:e}"));
            }
        }
        println!("{line}");
    }
}
