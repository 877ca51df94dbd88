//! GFLOP/s of the training products of SmolLM2's shapes (2,048 tokens):
//! `cpu::sgemm` in each layout a linear layer's step uses, beside candle's
//! matmul (the gemm crate) on the same shapes, in the same run.
//! `sgemm_bench [TOKENS]`.

use std::time::Instant;

use candle_core::{Device, Tensor};
use model::cpu::sgemm::{gemm, MatMut, MatRef, Out};

fn best(mut f: impl FnMut()) -> f64 {
    f();
    (0..3)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() -> anyhow::Result<()> {
    let tokens: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(2048);
    let dev = Device::Cpu;
    println!("threads {}", rayon::current_num_threads());
    for &(name, out, inn) in &[
        ("q/o 576x576", 576, 576),
        ("k/v 192x576", 192, 576),
        ("qkv 960x576", 960, 576),
        ("gate+up 3072x576", 3072, 576),
        ("down 576x1536", 576, 1536),
        ("head 49152x576", 49152, 576),
    ] {
        let m = tokens;
        let x: Vec<f32> = (0..m * inn)
            .map(|i| ((i % 7) as f32 - 3.0) * 0.01)
            .collect();
        let w: Vec<f32> = (0..out * inn)
            .map(|i| ((i % 5) as f32 - 2.0) * 0.01)
            .collect();
        let dy: Vec<f32> = (0..m * out)
            .map(|i| ((i % 3) as f32 - 1.0) * 0.01)
            .collect();
        let flops = 2.0 * (m * out * inn) as f64 / 1e9;
        let mut y = vec![0f32; m * out];
        let fwd = best(|| {
            gemm(
                MatRef::new(&x, m, inn),
                MatRef::new(&w, out, inn).t(),
                MatMut::new(&mut y, m, out),
                Out::Set,
                true,
            )
        });
        let mut dx = vec![0f32; m * inn];
        let dxt = best(|| {
            gemm(
                MatRef::new(&dy, m, out),
                MatRef::new(&w, out, inn),
                MatMut::new(&mut dx, m, inn),
                Out::Set,
                true,
            )
        });
        let mut dw = vec![0f32; out * inn];
        let dwt = best(|| {
            gemm(
                MatRef::new(&dy, m, out).t(),
                MatRef::new(&x, m, inn),
                MatMut::new(&mut dw, out, inn),
                Out::Add,
                true,
            )
        });
        let xt = Tensor::from_vec(x.clone(), (m, inn), &dev)?;
        let wt = Tensor::from_vec(w.clone(), (out, inn), &dev)?;
        let ct = best(|| {
            xt.matmul(&wt.t().unwrap()).unwrap();
        });
        println!(
            "{name} x {m}: sgemm X W^T {:.1}  dY W {:.1}  dY^T X {:.1} GFLOP/s; candle X W^T {:.1}",
            flops / fwd,
            flops / dxt,
            flops / dwt,
            flops / ct
        );
    }
    Ok(())
}
