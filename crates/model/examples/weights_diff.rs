//! `weights_diff A B [TOL]`: the largest absolute difference between the
//! same-named tensors of two checkpoints (model.safetensors of each
//! folder), printed; exits 1 when it exceeds TOL (default 1e-5) or the
//! tensors differ in names or shapes. Used by tests/mpi.sh.

use std::path::Path;

pub fn main() -> std::process::ExitCode {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 2 {
        eprintln!("usage: weights_diff A B [TOL]");
        return std::process::ExitCode::from(2);
    }
    let tol: f64 = a.get(2).map_or(1e-5, |t| t.parse().expect("a number"));
    let dev = candle_core::Device::Cpu;
    let load = |d: &str| {
        candle_core::safetensors::load(Path::new(d).join("model.safetensors"), &dev)
            .unwrap_or_else(|e| panic!("{d}: {e}"))
    };
    let (x, y) = (load(&a[0]), load(&a[1]));
    let mut names: Vec<&String> = x.keys().collect();
    names.sort();
    if names.len() != y.len() {
        eprintln!("weights_diff: {} tensors vs {}", x.len(), y.len());
        return std::process::ExitCode::FAILURE;
    }
    let (mut worst, mut at) = (0f64, String::new());
    for n in names {
        let Some(t) = y.get(n) else {
            eprintln!("weights_diff: `{n}` is not in {}", a[1]);
            return std::process::ExitCode::FAILURE;
        };
        let u = &x[n];
        if u.dims() != t.dims() {
            eprintln!(
                "weights_diff: `{n}` has shapes {:?} and {:?}",
                u.dims(),
                t.dims()
            );
            return std::process::ExitCode::FAILURE;
        }
        let d = (u.to_dtype(candle_core::DType::F64).unwrap()
            - t.to_dtype(candle_core::DType::F64).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
        if d > worst || at.is_empty() {
            (worst, at) = (d.max(worst), n.clone());
        }
    }
    println!("max |a - b| = {worst:.3e} (at {at})");
    if worst.is_finite() && worst <= tol {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
