//! "Did you mean ...?": the closest of a set of names to one that was not found.
//!
//! One helper for the whole of Loom: the macros use it for unknown attribute keys and edge
//! targets at compile time, the runtime for unknown tools, arguments and model strings. Names
//! may come from a model or the network, so the work is bounded: names longer than
//! [`MAX_SUGGEST_LEN`] characters get no suggestion, and the distance is computed in two rows
//! of `O(len)` memory.

/// Names (and candidates) longer than this many characters are never compared: nobody
/// mistypes a 10 MB tool name, and comparing it would cost time and memory by its length.
pub const MAX_SUGGEST_LEN: usize = 128;

/// The candidate closest to `name`, if it is close enough to be a likely typo: at most a
/// third of the longer name's characters differ (one edit for short names), and fewer edits
/// than the shorter name has characters.
///
/// ```
/// use loomflow_graph::suggest::did_you_mean;
/// assert_eq!(did_you_mean("nmae", ["name", "description"]), Some("name"));
/// assert_eq!(did_you_mean("gtp-4.1-mini", ["gpt-4.1-mini", "gpt-4.1"]), Some("gpt-4.1-mini"));
/// assert_eq!(did_you_mean("zzz", ["name"]), None);
/// assert_eq!(did_you_mean(&"x".repeat(10_000), ["x"]), None);
/// ```
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let a: Vec<char> = name.chars().take(MAX_SUGGEST_LEN + 1).collect();
    if a.len() > MAX_SUGGEST_LEN {
        return None;
    }
    let mut b = Vec::with_capacity(16);
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        b.clear();
        b.extend(candidate.chars().take(MAX_SUGGEST_LEN + 1));
        if b.len() > MAX_SUGGEST_LEN {
            continue;
        }
        let d = distance(&a, &b);
        let close = d <= (a.len().max(b.len()) / 3).max(1) && d < a.len().min(b.len());
        if close && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Edit distance counting insertions, deletions, substitutions and swaps of neighbours
/// (optimal string alignment), so `nmae` is one edit from `name`. Three rows of memory.
fn distance(a: &[char], b: &[char]) -> usize {
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut row: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        row[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(row[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            row[j] = d;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut row);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(a: &str, b: &str) -> usize {
        distance(&a.chars().collect::<Vec<_>>(), &b.chars().collect::<Vec<_>>())
    }

    #[test]
    fn distances() {
        assert_eq!(d("", ""), 0);
        assert_eq!(d("abc", ""), 3);
        assert_eq!(d("", "abc"), 3);
        assert_eq!(d("name", "name"), 0);
        assert_eq!(d("nmae", "name"), 1);
        assert_eq!(d("kitten", "sitting"), 3);
        assert_eq!(d("ca", "abc"), 3);
        assert_eq!(d("héllo", "hello"), 1);
    }

    #[test]
    fn suggestions_are_close_or_nothing() {
        assert_eq!(did_you_mean("revew", ["draft", "review", "publish"]), Some("review"));
        assert_eq!(did_you_mean("a", ["b"]), None);
        assert_eq!(did_you_mean("max_turn", ["max_turns", "model"]), Some("max_turns"));
        assert_eq!(did_you_mean("x", std::iter::empty()), None);
        // An absurd candidate is skipped, a sensible one still found.
        let long = "y".repeat(MAX_SUGGEST_LEN + 1);
        assert_eq!(did_you_mean("nmae", [long.as_str(), "name"]), Some("name"));
    }
}
