//! A small seeded generator (SplitMix64): every check is reproducible from
//! its seed alone.

/// SplitMix64, or a fuzzer's bytes.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
    /// When set, the bytes every draw reads (then zeros once they run out),
    /// so that a fuzzer's mutations steer each decision.
    bytes: Option<(Vec<u8>, usize)>,
}

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed, bytes: None }
    }

    /// A "generator" that replays `data`, 8 bytes a draw (for fuzz targets).
    pub fn from_bytes(data: &[u8]) -> Rng {
        Rng { state: 0, bytes: Some((data.to_vec(), 0)) }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        if let Some((data, at)) = &mut self.bytes {
            let mut word = [0u8; 8];
            let rest = data.get(*at..).unwrap_or(&[]);
            let n = rest.len().min(8);
            word[..n].copy_from_slice(&rest[..n]);
            *at += n;
            return u64::from_le_bytes(word);
        }
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi as i128 - lo as i128 + 1) as u128;
        (lo as i128 + (self.next_u64() as u128 % span) as i128) as i64
    }

    /// True with probability `1/n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}
