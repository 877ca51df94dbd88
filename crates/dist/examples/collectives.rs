//! Every collective of `dist::World` checked across the ranks of a job:
//! `mpirun -np N target/release/examples/collectives` exits 0 when each
//! rank got what the others sent (tests/mpi.sh runs it).

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
    if !problems.is_empty() {
        return dist::fail("collectives", problems.join("; "));
    }
    println!("rank {} of {}: collectives agree", w.rank(), w.size());
    dist::success()
}
