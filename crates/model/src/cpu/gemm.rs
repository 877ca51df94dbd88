//! `y = x W^T + b` for inference on the CPU: the weight is packed once into
//! column panels of [`NR`] outputs, and a register-blocked kernel (AVX2 + FMA
//! when the CPU has them, portable code otherwise) streams each panel past
//! blocks of [`MR`] input rows. Work is split over rayon's threads by panel,
//! so a decode step with a handful of rows still uses every core.

use rayon::prelude::*;

/// Outputs per panel (two 8-lane vectors).
pub const NR: usize = 16;
/// Input rows per kernel call (12 accumulators + 2 weight vectors + 1
/// broadcast fit the 16 AVX2 registers).
pub const MR: usize = 6;
/// Input rows kept hot in L2 while a thread sweeps its panels.
const MC: usize = 96;

/// A linear layer's weight [n, k] (HF's [out, in]) packed as
/// `ceil(n / NR)` panels of [k, NR], zero-padded, plus its bias.
#[derive(Debug, Clone)]
pub struct Packed {
    pub n: usize,
    pub k: usize,
    data: Vec<f32>,
    bias: Option<Vec<f32>>,
}

impl Packed {
    /// `w`: row-major [n, k]; `bias`: [n].
    pub fn new(w: &[f32], n: usize, k: usize, bias: Option<Vec<f32>>) -> Packed {
        assert_eq!(w.len(), n * k, "weight is not [{n}, {k}]");
        if let Some(b) = &bias {
            assert_eq!(b.len(), n, "bias is not [{n}]");
        }
        let panels = n.div_ceil(NR);
        let mut data = vec![0f32; panels * k * NR];
        data.par_chunks_mut(k * NR)
            .enumerate()
            .for_each(|(p, panel)| {
                for j in 0..NR.min(n - p * NR) {
                    let row = &w[(p * NR + j) * k..(p * NR + j + 1) * k];
                    for (kk, &v) in row.iter().enumerate() {
                        panel[kk * NR + j] = v;
                    }
                }
            });
        Packed { n, k, data, bias }
    }

    fn panels(&self) -> usize {
        self.n.div_ceil(NR)
    }

    /// `y[m, n] = x[m, :] . W[n, :] + bias[n]` for `x` [m, k], `y` [m, n].
    pub fn matmul(&self, x: &[f32], y: &mut [f32]) {
        let (n, k) = (self.n, self.k);
        assert_eq!(x.len() % k, 0, "input is not [m, {k}]");
        let m = x.len() / k;
        assert_eq!(y.len(), m * n, "output is not [{m}, {n}]");
        if m == 0 {
            return;
        }
        let panels = self.panels();
        let tasks = panels.min(rayon::current_num_threads() * 4).max(1);
        let out = SendPtr(y.as_mut_ptr());
        (0..tasks).into_par_iter().for_each(|task| {
            let (p0, p1) = (panels * task / tasks, panels * (task + 1) / tasks);
            let out = &out;
            for m0 in (0..m).step_by(MC) {
                let mc = MC.min(m - m0);
                for p in p0..p1 {
                    let panel = &self.data[p * k * NR..(p + 1) * k * NR];
                    let cols = NR.min(n - p * NR);
                    for r0 in (m0..m0 + mc).step_by(MR) {
                        let rows = MR.min(m0 + mc - r0);
                        let mut acc = [[0f32; NR]; MR];
                        kernel(&x[r0 * k..(r0 + rows) * k], k, panel, rows, &mut acc);
                        for (r, a) in acc.iter().enumerate().take(rows) {
                            // SAFETY: tasks own disjoint panel ranges, so
                            // the columns written here are this task's alone,
                            // and (r0 + r) < m, p * NR + cols <= n.
                            let dst = unsafe {
                                std::slice::from_raw_parts_mut(
                                    out.0.add((r0 + r) * n + p * NR),
                                    cols,
                                )
                            };
                            match &self.bias {
                                Some(b) => {
                                    for ((d, v), b) in dst.iter_mut().zip(a).zip(&b[p * NR..]) {
                                        *d = v + b;
                                    }
                                }
                                None => dst.copy_from_slice(&a[..cols]),
                            }
                        }
                    }
                }
            }
        });
    }
}

struct SendPtr(*mut f32);
// SAFETY: used only to write disjoint regions from rayon tasks.
unsafe impl Sync for SendPtr {}
unsafe impl Send for SendPtr {}

/// acc[r][j] = sum_kk x[r, kk] * panel[kk, j] for r < rows.
fn kernel(x: &[f32], k: usize, panel: &[f32], rows: usize, acc: &mut [[f32; NR]; MR]) {
    // Checked in release builds too: the unsafe kernels below read
    // `rows * k` values of `x` and `k * NR` of `panel` without bounds checks
    // (and `rows == 0` would select the 6-row kernel). One comparison per
    // MR x NR block of a whole k-long product.
    assert!(
        (1..=MR).contains(&rows) && x.len() == rows * k && panel.len() == k * NR,
        "gemm kernel: {rows} rows, x of {} for k {k}, panel of {}",
        x.len(),
        panel.len()
    );
    #[cfg(target_arch = "x86_64")]
    {
        if avx2() {
            // SAFETY: the CPU has AVX2 and FMA (checked); the slices have
            // the lengths asserted above, which bound every load.
            unsafe {
                match rows {
                    1 => x86::kernel::<1>(x, k, panel, acc),
                    2 => x86::kernel::<2>(x, k, panel, acc),
                    3 => x86::kernel::<3>(x, k, panel, acc),
                    4 => x86::kernel::<4>(x, k, panel, acc),
                    5 => x86::kernel::<5>(x, k, panel, acc),
                    _ => x86::kernel::<MR>(x, k, panel, acc),
                }
            }
            return;
        }
    }
    for r in 0..rows {
        let xr = &x[r * k..(r + 1) * k];
        let a = &mut acc[r];
        for (kk, &xv) in xr.iter().enumerate() {
            let w = &panel[kk * NR..(kk + 1) * NR];
            for j in 0..NR {
                a[j] += xv * w[j];
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) fn avx2() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{MR, NR};
    use std::arch::x86_64::*;

    /// The R x 16 register-blocked kernel.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn kernel<const R: usize>(
        x: &[f32],
        k: usize,
        panel: &[f32],
        acc: &mut [[f32; NR]; MR],
    ) {
        let mut lo = [_mm256_setzero_ps(); R];
        let mut hi = [_mm256_setzero_ps(); R];
        let xp = x.as_ptr();
        let wp = panel.as_ptr();
        for kk in 0..k {
            let w0 = _mm256_loadu_ps(wp.add(kk * NR));
            let w1 = _mm256_loadu_ps(wp.add(kk * NR + 8));
            for r in 0..R {
                let xb = _mm256_set1_ps(*xp.add(r * k + kk));
                lo[r] = _mm256_fmadd_ps(xb, w0, lo[r]);
                hi[r] = _mm256_fmadd_ps(xb, w1, hi[r]);
            }
        }
        for r in 0..R {
            _mm256_storeu_ps(acc[r].as_mut_ptr(), lo[r]);
            _mm256_storeu_ps(acc[r].as_mut_ptr().add(8), hi[r]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(
        x: &[f32],
        w: &[f32],
        b: Option<&[f32]>,
        m: usize,
        n: usize,
        k: usize,
    ) -> Vec<f32> {
        let mut y = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0f64;
                for kk in 0..k {
                    s += x[i * k + kk] as f64 * w[j * k + kk] as f64;
                }
                y[i * n + j] = s as f32 + b.map_or(0.0, |b| b[j]);
            }
        }
        y
    }

    #[test]
    fn matches_the_definition_on_ragged_shapes() {
        let mut seed = 7u64;
        let mut rnd = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        // Rows around MR and MC, outputs around NR, odd k.
        for &(m, n, k) in &[
            (1, 1, 1),
            (5, 17, 3),
            (7, 33, 9),
            (16, 48, 64),
            (100, 31, 13),
            (193, 70, 5),
        ] {
            let x: Vec<f32> = (0..m * k).map(|_| rnd()).collect();
            let w: Vec<f32> = (0..n * k).map(|_| rnd()).collect();
            let b: Vec<f32> = (0..n).map(|_| rnd()).collect();
            for bias in [None, Some(b.clone())] {
                let p = Packed::new(&w, n, k, bias.clone());
                let mut y = vec![f32::NAN; m * n];
                p.matmul(&x, &mut y);
                let want = reference(&x, &w, bias.as_deref(), m, n, k);
                for (a, b) in y.iter().zip(&want) {
                    assert!((a - b).abs() < 1e-5, "{m}x{n}x{k}: {a} vs {b}");
                }
            }
        }
    }
}
