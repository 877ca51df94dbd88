//! `exp` over slices, eight lanes at a time with AVX2 + FMA when the CPU
//! has them (Cephes' range reduction and degree-6 polynomial: relative
//! error below 3e-7 for inputs up to 88.3, above which the result
//! saturates near f32's largest; inputs below -87.3, the masked scores'
//! -inf included, give exactly 0), libm's `exp` otherwise. The
//! softmaxes of attention and of the log-prob head spend most of their
//! non-matmul time here.

/// `x[j] = exp(x[j] * scale - shift)` in place; returns the sum.
pub fn exp_affine_sum(x: &mut [f32], scale: f32, shift: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if super::gemm::avx2() {
            // SAFETY: AVX2 and FMA are present (checked just above).
            return unsafe { x86::exp_affine_sum(x, scale, shift) };
        }
    }
    let mut sum = 0f32;
    for v in x.iter_mut() {
        *v = (*v * scale - shift).exp();
        sum += *v;
    }
    sum
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// exp of each lane (see the module's doc).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn exp8(x: __m256) -> __m256 {
        let zero_below = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(-87.3));
        let x = _mm256_min_ps(x, _mm256_set1_ps(88.37));
        let x = _mm256_max_ps(x, _mm256_set1_ps(-87.3));
        // n = round(x / ln 2), r = x - n ln 2 (in two parts).
        let n = _mm256_floor_ps(_mm256_fmadd_ps(
            x,
            _mm256_set1_ps(std::f32::consts::LOG2_E),
            _mm256_set1_ps(0.5),
        ));
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm256_set1_ps(1.987_569_1e-4);
        for c in [1.398_2e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
        }
        let y = _mm256_fmadd_ps(
            p,
            _mm256_mul_ps(r, r),
            _mm256_add_ps(r, _mm256_set1_ps(1.0)),
        );
        let pow2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_cvtps_epi32(n),
            _mm256_set1_epi32(127),
        )));
        _mm256_andnot_ps(zero_below, _mm256_mul_ps(y, pow2))
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn exp_affine_sum(x: &mut [f32], scale: f32, shift: f32) -> f32 {
        let (s, sh) = (_mm256_set1_ps(scale), _mm256_set1_ps(shift));
        let mut acc = _mm256_setzero_ps();
        let mut chunks = x.chunks_exact_mut(8);
        for c in &mut chunks {
            let v = _mm256_fmsub_ps(_mm256_loadu_ps(c.as_ptr()), s, sh);
            let e = exp8(v);
            _mm256_storeu_ps(c.as_mut_ptr(), e);
            acc = _mm256_add_ps(acc, e);
        }
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
        let mut sum: f32 = lanes.iter().sum();
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let mut buf = [0f32; 8];
            buf[..rest.len()].copy_from_slice(rest);
            let e = exp8(_mm256_fmsub_ps(_mm256_loadu_ps(buf.as_ptr()), s, sh));
            _mm256_storeu_ps(buf.as_mut_ptr(), e);
            rest.copy_from_slice(&buf[..rest.len()]);
            sum += rest.iter().sum::<f32>();
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sum_is_the_sum_of_the_exponentials() {
        // A softmax row: 37 values (not a whole number of lanes), masked ones.
        let xs: Vec<f32> = (0..37)
            .map(|i| {
                if i % 5 == 4 {
                    f32::NEG_INFINITY
                } else {
                    -(i as f32) * 0.3
                }
            })
            .collect();
        let mut got = xs.clone();
        let sum = exp_affine_sum(&mut got, 2.0, -1.0);
        let want: f64 = xs.iter().map(|&x| (x as f64 * 2.0 + 1.0).exp()).sum();
        assert!(((sum as f64 - want) / want).abs() < 1e-6, "{sum} vs {want}");
        assert!((got.iter().map(|&g| g as f64).sum::<f64>() - want).abs() / want < 1e-6);
    }

    #[test]
    fn exp_matches_libm_and_masks_to_zero() {
        let xs: Vec<f32> = (0..2001)
            .map(|i| -100.0 + i as f32 * 0.0937)
            .chain([f32::NEG_INFINITY, -1e9, 0.0, 88.0, -87.0])
            .collect();
        for (scale, shift) in [(1.0, 0.0), (0.5, 3.0), (1.7, -2.0)] {
            let mut got = xs.clone();
            let sum = exp_affine_sum(&mut got, scale, shift);
            for (&x, &g) in xs.iter().zip(&got) {
                // The argument rounded to f32 as the kernel rounds it (one fused
                // multiply-subtract), the exponential in f64.
                let w = (x.mul_add(scale, -shift) as f64).exp();
                if w < 2e-38 {
                    assert!(
                        g.abs() < 1e-37,
                        "exp({x} * {scale} - {shift}) = {g}, want ~0"
                    );
                } else if x.mul_add(scale, -shift) <= 88.3 {
                    let rel = ((g as f64 - w) / w).abs();
                    assert!(rel < 1e-6, "exp({x} * {scale} - {shift}) = {g}, want {w}");
                }
            }
            let _ = sum;
        }
    }
}
