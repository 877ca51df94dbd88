//! A small deterministic RNG and a stable hash, so a seed or an id gives
//! the same shuffle, split and synthetic set on every machine and version.

/// SplitMix64: tiny, fast, and fixed forever (unlike `rand`'s `StdRng`,
/// whose algorithm may change between versions).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi - lo + 1) as u64;
        lo + (self.next_u64() % span) as i64
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Fisher-Yates.
    pub fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            xs.swap(i, j);
        }
    }
}

/// `0..n` in the order `SplitMix64::new(seed)` shuffles it.
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    SplitMix64::new(seed).shuffle(&mut v);
    v
}

/// FNV-1a, 64 bit: a stable hash of a string.
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Whether `id` falls in the holdout share `fraction` (stable: depends on
/// the id alone, so adding or removing other rows never moves a row).
pub fn in_holdout(id: &str, fraction: f64) -> bool {
    let h = SplitMix64::new(fnv1a(id)).next_u64();
    ((h >> 11) as f64 / (1u64 << 53) as f64) < fraction
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_reference_values() {
        // First outputs for seed 0 from the reference implementation.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn shuffled_is_a_permutation_fixed_by_the_seed() {
        let a = shuffled(50, 7);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_eq!(a, shuffled(50, 7));
        assert_ne!(a, shuffled(50, 8));
    }

    #[test]
    fn holdout_is_about_the_fraction_and_stable() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("x/{i}")).collect();
        let n = ids.iter().filter(|id| in_holdout(id, 0.1)).count();
        assert!((900..1100).contains(&n), "{n}");
        assert_eq!(
            in_holdout("math/algebra_train/1", 0.5),
            in_holdout("math/algebra_train/1", 0.5)
        );
    }
}
