//! Print a metrics.parquet as `step name=value ...` lines, without the
//! wall-clock columns (elapsed_s, tokens_per_s, rollout_s, verify_s,
//! timestamp): two runs of the same
//! steps print the same text; `--all` prints those too. Used by
//! tests/crash.sh and tests/pipeline.sh.

use artifacts::metrics::Metric;

pub fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let all = args.iter().any(|a| a == "--all");
    let path = args
        .iter()
        .find(|a| *a != "--all")
        .expect("usage: metrics_dump [--all] METRICS.parquet");
    let rows = match artifacts::metrics::read(path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("metrics_dump: {e}");
            std::process::exit(1);
        }
    };
    for r in rows {
        let mut line = format!("step {}", r.step);
        for m in Metric::ALL {
            if !all
                && matches!(
                    m,
                    Metric::ElapsedS
                        | Metric::TokensPerS
                        | Metric::RolloutS
                        | Metric::VerifyS
                        | Metric::Timestamp
                )
            {
                continue;
            }
            if let Some(v) = r.get(*m) {
                line.push_str(&format!(" {m}={v:e}"));
            }
        }
        println!("{line}");
    }
}
