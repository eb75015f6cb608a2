//! Prices of common models, for the cost of a run.

use super::Usage;

/// The price of a model in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Price {
    /// Input tokens at the full rate.
    pub input: f64,
    /// Input tokens read from the prompt cache.
    pub cached_input: f64,
    /// Input tokens written to the prompt cache.
    pub cache_write: f64,
    /// Output tokens (reasoning included).
    pub output: f64,
}

const fn price(input: f64, cached_input: f64, cache_write: f64, output: f64) -> Price {
    Price { input, cached_input, cache_write, output }
}

/// List prices (USD per million tokens) as the providers published them, matched by the
/// longest prefix of the model name, so dated versions (`gpt-4o-2024-08-06`) share their
/// family's price. Prices change: check the provider's page for billing decisions.
const PRICES: &[(&str, Price)] = &[
    ("gpt-5-nano", price(0.05, 0.005, 0.05, 0.40)),
    ("gpt-5-mini", price(0.25, 0.025, 0.25, 2.00)),
    ("gpt-5", price(1.25, 0.125, 1.25, 10.00)),
    ("gpt-4.1-nano", price(0.10, 0.025, 0.10, 0.40)),
    ("gpt-4.1-mini", price(0.40, 0.10, 0.40, 1.60)),
    ("gpt-4.1", price(2.00, 0.50, 2.00, 8.00)),
    ("gpt-4o-mini", price(0.15, 0.075, 0.15, 0.60)),
    ("gpt-4o", price(2.50, 1.25, 2.50, 10.00)),
    ("o4-mini", price(1.10, 0.275, 1.10, 4.40)),
    ("o3-mini", price(1.10, 0.55, 1.10, 4.40)),
    ("o3", price(2.00, 0.50, 2.00, 8.00)),
    ("o1-mini", price(1.10, 0.55, 1.10, 4.40)),
    ("o1", price(15.00, 7.50, 15.00, 60.00)),
    ("claude-opus-4", price(15.00, 1.50, 18.75, 75.00)),
    ("claude-sonnet-4", price(3.00, 0.30, 3.75, 15.00)),
    ("claude-3-7-sonnet", price(3.00, 0.30, 3.75, 15.00)),
    ("claude-3-5-sonnet", price(3.00, 0.30, 3.75, 15.00)),
    ("claude-haiku-4", price(1.00, 0.10, 1.25, 5.00)),
    ("claude-3-5-haiku", price(0.80, 0.08, 1.00, 4.00)),
    ("claude-3-haiku", price(0.25, 0.03, 0.30, 1.25)),
    ("gemini-2.5-pro", price(1.25, 0.31, 1.25, 10.00)),
    ("gemini-2.5-flash-lite", price(0.10, 0.025, 0.10, 0.40)),
    ("gemini-2.5-flash", price(0.30, 0.075, 0.30, 2.50)),
    ("gemini-2.0-flash-lite", price(0.075, 0.02, 0.075, 0.30)),
    ("gemini-2.0-flash", price(0.10, 0.025, 0.10, 0.40)),
    ("deepseek-chat", price(0.27, 0.07, 0.27, 1.10)),
    ("deepseek-reasoner", price(0.55, 0.14, 0.55, 2.19)),
];

/// The model names Loom knows a price for (each also names a family: dated versions share it).
pub fn known_models() -> impl Iterator<Item = &'static str> {
    PRICES.iter().map(|(name, _)| *name)
}

/// The price of `model`, if Loom knows it. Provider prefixes (`openai/`, `anthropic:`) are
/// ignored.
pub fn price_of(model: &str) -> Option<Price> {
    let name = model.rsplit(['/', ':']).next().unwrap_or(model);
    PRICES.iter().filter(|(prefix, _)| name.starts_with(prefix)).max_by_key(|(prefix, _)| prefix.len()).map(|(_, p)| *p)
}

/// What `usage` cost on `model`, in US dollars; `None` for a model without a known price.
/// No tokens cost nothing on any model.
///
/// ```
/// use loomflow::model::{Usage, pricing};
/// let usage = Usage::new(1_000_000, 100_000);
/// assert_eq!(pricing::cost("gpt-4.1-mini-2025-04-14", &usage), Some(0.40 + 0.16));
/// assert_eq!(pricing::cost("my-local-model", &usage), None);
/// assert_eq!(pricing::cost("my-local-model", &Usage::default()), Some(0.0));
/// ```
pub fn cost(model: &str, usage: &Usage) -> Option<f64> {
    if *usage == Usage::default() {
        return Some(0.0);
    }
    let p = price_of(model)?;
    let per = |tokens: u64, rate: f64| tokens as f64 * rate / 1_000_000.0;
    Some(
        per(usage.input_tokens, p.input)
            + per(usage.cached_input_tokens, p.cached_input)
            + per(usage.cache_write_tokens, p.cache_write)
            + per(usage.output_tokens, p.output),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_prefix_wins() {
        assert_eq!(price_of("gpt-4o-mini-2024-07-18").map(|p| p.input), Some(0.15));
        assert_eq!(price_of("gpt-4o-2024-08-06").map(|p| p.input), Some(2.50));
        assert_eq!(price_of("openai/gpt-5-mini").map(|p| p.output), Some(2.00));
        assert_eq!(price_of("claude-sonnet-4-5-20250929").map(|p| p.cache_write), Some(3.75));
    }

    #[test]
    fn cached_tokens_are_cheaper() {
        let full = cost("claude-sonnet-4", &Usage::new(1000, 0)).unwrap_or_default();
        let cached = cost("claude-sonnet-4", &Usage::new(0, 0).with_cached_input_tokens(1000)).unwrap_or_default();
        assert!((full - 0.003).abs() < 1e-12);
        assert!((cached - 0.0003).abs() < 1e-12);
    }
}
