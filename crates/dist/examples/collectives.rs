//! Every collective of `dist::World` checked across the ranks of a job:
//! `mpirun -np N target/release/examples/collectives` exits 0 when each
//! rank got what the others sent (tests/mpi.sh runs it). With `cuda` as
//! its argument (a build with `--features dist/nccl`, one GPU per rank:
//! pipelines/gpu-check.sh on a machine with two or more), the NCCL device
//! group's collectives too, on f32 and bf16 tensors on each rank's GPU.

fn main() -> std::process::ExitCode {
    let w = match dist::init() {
        Ok(w) => w,
        Err(e) => return dist::fail("collectives", e),
    };
    let (r, n) = (w.rank() as f32, w.size() as f32);
    let mut problems = Vec::new();
    let mut a = vec![r + 1.0; 3];
    w.all_reduce_sum_f32(&mut a);
    if a != vec![n * (n + 1.0) / 2.0; 3] {
        problems.push(format!("all_reduce_sum_f32 gave {a:?}"));
    }
    let mut m = [w.rank() as f64];
    w.all_reduce_max_f64(&mut m);
    if m[0] != (w.size() - 1) as f64 {
        problems.push(format!("all_reduce_max_f64 gave {m:?}"));
    }
    let mut b = vec![r; 2];
    w.reduce_sum_f32(0, &mut b);
    let want = if w.is_root() { n * (n - 1.0) / 2.0 } else { r };
    if b != vec![want; 2] {
        problems.push(format!("reduce_sum_f32 gave {b:?}"));
    }
    let mut c = vec![r; 2];
    w.broadcast_f32(n as usize - 1, &mut c);
    if c != vec![n - 1.0; 2] {
        problems.push(format!("broadcast_f32 gave {c:?}"));
    }
    let all = w.all_gather_bytes(format!("rank {}", w.rank()).as_bytes());
    let want: Vec<Vec<u8>> = (0..w.size())
        .map(|k| format!("rank {k}").into_bytes())
        .collect();
    if all != want {
        problems.push(format!("all_gather_bytes gave {all:?}"));
    }
    if std::env::args().nth(1).as_deref() == Some("cuda") {
        if let Err(e) = device_collectives(w, &mut problems) {
            problems.push(format!("NCCL: {e}"));
        }
    }
    if !problems.is_empty() {
        return dist::fail("collectives", problems.join("; "));
    }
    println!("rank {} of {}: collectives agree", w.rank(), w.size());
    dist::success()
}

/// The NCCL group's all-reduce, reduce and broadcast, in place on tensors
/// on this rank's GPU (its local rank's).
fn device_collectives(w: dist::World, problems: &mut Vec<String>) -> candle_core::Result<()> {
    use candle_core::{DType, Device, Tensor};
    let device = Device::new_cuda(dist::local_rank())?;
    let Some(g) = dist::nccl::DeviceGroup::for_device(w, &device)? else {
        problems.push(
            "no NCCL group on cuda (a build without --features dist/nccl, or one rank)".into(),
        );
        return Ok(());
    };
    let (r, n) = (w.rank() as f32, w.size() as f32);
    for dtype in [DType::F32, DType::BF16] {
        let filled = |v: f32| (Tensor::ones(3, DType::F32, &device)? * v as f64)?.to_dtype(dtype);
        let back = |t: &Tensor| t.to_dtype(DType::F32)?.to_vec1::<f32>();
        let a = filled(r + 1.0)?;
        g.all_reduce_sum(&a)?;
        if back(&a)? != vec![n * (n + 1.0) / 2.0; 3] {
            problems.push(format!(
                "NCCL all_reduce_sum ({dtype:?}) gave {:?}",
                back(&a)?
            ));
        }
        let b = filled(r)?;
        g.reduce_sum(0, &b)?;
        if w.is_root() && back(&b)? != vec![n * (n - 1.0) / 2.0; 3] {
            problems.push(format!("NCCL reduce_sum ({dtype:?}) gave {:?}", back(&b)?));
        }
        let c = filled(r)?;
        g.broadcast(w.size() - 1, &c)?;
        if back(&c)? != vec![n - 1.0; 3] {
            problems.push(format!("NCCL broadcast ({dtype:?}) gave {:?}", back(&c)?));
        }
    }
    // A view is refused, not reduced with its neighbours.
    let whole = Tensor::zeros(4, DType::F32, &device)?;
    if g.all_reduce_sum(&whole.narrow(0, 1, 2)?).is_ok() {
        problems.push("NCCL all_reduce_sum took a view of a larger buffer".into());
    }
    Ok(())
}
