//! `C = A B` (or `C += A B`) in f32 on the CPU for any strides of A and B:
//! safe, bounds-checked views over the `gemm` crate (the one candle's CPU
//! matmul runs on; its packed, register-blocked kernels use AVX-512 or
//! AVX2 as the CPU has them). Transposed operands are only other strides,
//! so the three products of a linear layer's training step (`X W^T`,
//! `dY W`, `dY^T X`) run without a transposed copy, and an output may be
//! a column range of a wider matrix.

/// A read-only matrix view: element (i, j) is `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major `rows x cols` matrix.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> MatRef<'a> {
        MatRef::strided(data, rows, cols, cols, 1)
    }

    /// Any strides; panics when an element would fall outside `data`.
    pub fn strided(data: &'a [f32], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        if rows > 0 && cols > 0 {
            let last = (rows - 1) * rs + (cols - 1) * cs;
            assert!(
                last < data.len(),
                "a {rows} x {cols} view (strides {rs}, {cs}) needs {} values, has {}",
                last + 1,
                data.len()
            );
        }
        MatRef {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }

    /// The transpose (no copy).
    pub fn t(self) -> MatRef<'a> {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    /// Rows `r0..r0 + n` (no copy).
    pub fn rows(self, r0: usize, n: usize) -> MatRef<'a> {
        self.t().cols(r0, n).t()
    }

    /// Columns `c0..c0 + n` (no copy).
    pub fn cols(self, c0: usize, n: usize) -> MatRef<'a> {
        assert!(
            c0 + n <= self.cols,
            "columns {c0}..{} of {}",
            c0 + n,
            self.cols
        );
        let off = if n == 0 || self.rows == 0 {
            0
        } else {
            c0 * self.cs
        };
        MatRef {
            data: &self.data[off..],
            rows: self.rows,
            cols: n,
            rs: self.rs,
            cs: self.cs,
        }
    }
}

/// A row-major output with row stride `ld` (>= cols): columns of a wider
/// matrix may be written in place.
pub struct MatMut<'a> {
    data: &'a mut [f32],
    pub rows: usize,
    pub cols: usize,
    ld: usize,
}

impl<'a> MatMut<'a> {
    pub fn new(data: &'a mut [f32], rows: usize, cols: usize) -> MatMut<'a> {
        MatMut::strided(data, rows, cols, cols)
    }

    /// Rows `ld` apart; panics when the last element is outside `data`.
    pub fn strided(data: &'a mut [f32], rows: usize, cols: usize, ld: usize) -> MatMut<'a> {
        assert!(ld >= cols, "row stride {ld} below {cols} columns");
        if rows > 0 && cols > 0 {
            assert!(
                (rows - 1) * ld + cols <= data.len(),
                "a {rows} x {cols} output (stride {ld}) does not fit in {} values",
                data.len()
            );
        }
        MatMut {
            data,
            rows,
            cols,
            ld,
        }
    }

    /// Columns `c0..c0 + n` of this output.
    pub fn cols(self, c0: usize, n: usize) -> MatMut<'a> {
        assert!(
            c0 + n <= self.cols,
            "columns {c0}..{} of {}",
            c0 + n,
            self.cols
        );
        let (rows, ld) = (self.rows, self.ld);
        let data = if rows == 0 || n == 0 {
            &mut self.data[..0]
        } else {
            &mut self.data[c0..]
        };
        MatMut::strided(data, if n == 0 { 0 } else { rows }, n, ld)
    }
}

/// How a product meets the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Out {
    /// C = A B
    Set,
    /// C += A B
    Add,
}

/// `C = A B` or `C += A B` (`out`), over rayon's threads when `parallel`.
/// A is m x k, B is k x n, C is m x n.
pub fn gemm(a: MatRef, b: MatRef, c: MatMut, out: Out, parallel: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "A is {m} x {k}, B is {} x {n}", b.rows);
    assert!(
        c.rows == m && c.cols == n,
        "C is {} x {}, the product {m} x {n}",
        c.rows,
        c.cols
    );
    if m == 0 || n == 0 {
        return;
    }
    let threads = rayon::current_num_threads();
    let parallelism = if parallel && threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the views' constructors checked that every element (i, j)
    // of A, B and C lies inside its slice (for k == 0 no A or B element is
    // read); C is borrowed mutably, so nothing else reads or writes it.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.data.as_mut_ptr(),
            1,
            c.ld as isize,
            out == Out::Add,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rnd(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    }

    #[test]
    fn every_layout_matches_the_definition() {
        let mut seed = 3u64;
        // Ragged shapes, a k past 256 and an n past 2,048 (the gemm
        // crate's block edges), one- and zero-sized.
        for &(m, n, k) in &[
            (1, 1, 1),
            (7, 17, 5),
            (13, 33, 257),
            (150, 20, 300),
            (5, 2050, 3),
            (300, 40, 64),
            (3, 4, 0),
            (0, 4, 3),
        ] {
            let a: Vec<f32> = (0..m * k).map(|_| rnd(&mut seed)).collect();
            let b: Vec<f32> = (0..k * n).map(|_| rnd(&mut seed)).collect();
            let want = |i: usize, j: usize| -> f64 {
                (0..k)
                    .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                    .sum()
            };
            // A as stored and transposed (a^T stored), B likewise.
            let at: Vec<f32> = (0..k * m).map(|x| a[(x % m) * k + x / m]).collect();
            let bt: Vec<f32> = (0..n * k).map(|x| b[(x % k) * n + x / k]).collect();
            let av = [MatRef::new(&a, m, k), MatRef::new(&at, k, m).t()];
            let bv = [MatRef::new(&b, k, n), MatRef::new(&bt, n, k).t()];
            for (ai, a_) in av.iter().enumerate() {
                for (bi, b_) in bv.iter().enumerate() {
                    for par in [false, true] {
                        // Written into columns 2.. of a wider output, plus
                        // accumulation onto ones.
                        let ld = n + 3;
                        let mut c = vec![1f32; m * ld];
                        let view = MatMut::strided(&mut c, m, ld, ld).cols(2, n);
                        gemm(*a_, *b_, view, Out::Set, par);
                        let mut c2 = vec![1f32; m * n];
                        gemm(*a_, *b_, MatMut::new(&mut c2, m, n), Out::Add, par);
                        for i in 0..m {
                            assert_eq!(c[i * ld], 1.0);
                            assert_eq!(c[i * ld + 1], 1.0);
                            assert_eq!(c[i * ld + n + 2], 1.0);
                            for j in 0..n {
                                let w = want(i, j);
                                let tol = 1e-4 * (1.0 + w.abs()) as f32;
                                let (got, acc) = (c[i * ld + 2 + j], c2[i * n + j]);
                                assert!(
                                    (got - w as f32).abs() < tol && (acc - 1.0 - w as f32).abs() < tol,
                                    "{m}x{n}x{k} a{ai} b{bi} par {par}: ({i},{j}) {got} / {acc} vs {w}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
