//! Generated texts for the benchmarks: a seeded random number generator and a Zipf-distributed
//! vocabulary whose most common words are English ones, so a query matches many texts by a
//! common word and few by a rare one.
#![allow(dead_code)]

use std::collections::HashSet;

/// splitmix64: small, fast, and the same everywhere.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// A number in `0..1`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The most common words, most common first.
const COMMON: &[&str] = &[
    "the", "i", "to", "a", "and", "you", "of", "it", "is", "in", "my", "that", "for", "me", "what", "on", "do", "with",
    "can", "be", "this", "have", "was", "are", "at", "your", "so", "but", "not", "we", "how", "about", "from", "like",
    "just", "there", "when", "all", "if", "would", "or", "an", "as", "they", "will", "one", "get", "out", "up",
    "which", "know", "did", "want", "go", "time", "some", "think", "could", "make", "need",
];

/// The syllables of the made-up words.
const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "pe", "da", "zu", "ri", "mo", "fa", "ge", "bi", "tu", "sa", "ye",
    "no", "ha", "ku", "le", "ti",
];

/// The vocabulary's size.
const VOCABULARY: usize = 5_000;

/// A Zipf-distributed vocabulary (exponent 1): its first words are common English ones.
pub(crate) struct Vocabulary {
    words: Vec<String>,
    /// The cumulative probability of each word.
    cumulative: Vec<f64>,
}

impl Vocabulary {
    /// The vocabulary of `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        let mut rng = Rng(seed);
        let mut words: Vec<String> = COMMON.iter().map(|w| (*w).to_owned()).collect();
        let mut seen: HashSet<String> = words.iter().cloned().collect();
        while words.len() < VOCABULARY {
            let syllables = 2 + rng.below(2);
            let word: String = (0..syllables).map(|_| SYLLABLES[rng.below(SYLLABLES.len())]).collect();
            if seen.insert(word.clone()) {
                words.push(word);
            }
        }
        let weights: Vec<f64> = (1..=words.len()).map(|rank| 1.0 / rank as f64).collect();
        let total: f64 = weights.iter().sum();
        let mut sum = 0.0;
        let cumulative = weights
            .iter()
            .map(|w| {
                sum += w / total;
                sum
            })
            .collect();
        Self { words, cumulative }
    }

    /// A word, drawn by frequency.
    pub(crate) fn word(&self, rng: &mut Rng) -> &str {
        let u = rng.unit();
        let i = self.cumulative.partition_point(|c| *c < u).min(self.words.len() - 1);
        &self.words[i]
    }

    /// `min` to `max` words.
    pub(crate) fn sentence(&self, rng: &mut Rng, min: usize, max: usize) -> String {
        let n = min + rng.below(max - min + 1);
        let words: Vec<&str> = (0..n).map(|_| self.word(rng)).collect();
        words.join(" ")
    }
}

/// A duration given in microseconds, with a unit that suits it.
pub(crate) fn human_us(us: f64) -> String {
    if us >= 10_000.0 {
        format!("{:.1} ms", us / 1_000.0)
    } else if us >= 1_000.0 {
        format!("{:.2} ms", us / 1_000.0)
    } else if us >= 100.0 {
        format!("{us:.0} µs")
    } else {
        format!("{us:.1} µs")
    }
}

/// `1234567` as `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Microseconds, rounded to nanoseconds.
pub(crate) fn us(d: std::time::Duration) -> f64 {
    round(d.as_secs_f64() * 1e6, 3)
}

/// `x` rounded to `decimals` places.
pub(crate) fn round(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

/// The `p`th percentile of sorted durations (nearest rank).
pub(crate) fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    if sorted.is_empty() {
        return std::time::Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
