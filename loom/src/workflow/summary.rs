//! The short description of a node's output that a step record keeps.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// The longest text kept inline, in bytes.
const INLINE: usize = 22;

/// The longest summary, in bytes: a longer text is cut at a character boundary and ends with
/// `…` (within the limit).
pub const MAX_SUMMARY_LEN: usize = 120;

/// What a cut summary ends with.
const ELLIPSIS: &str = "…";

/// A short description of a node's output: its text when it is a string or a number, its
/// type's name otherwise; never longer than [`MAX_SUMMARY_LEN`] bytes.
///
/// It reads as a `&str` (it derefs to one, and compares and prints like one). A short summary
/// — most of them — is stored inline, so recording a step does not allocate.
///
/// ```
/// use loomflow::workflow::Summary;
///
/// let summary = Summary::from("abc");
/// assert_eq!(summary, "abc");
/// assert!(summary.starts_with('a'));
/// ```
#[derive(Clone)]
pub struct Summary(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl Summary {
    /// The summary of `text`: the text itself, or its beginning and `…` when it is longer than
    /// [`MAX_SUMMARY_LEN`] bytes.
    pub fn of(text: &str) -> Self {
        if text.len() <= MAX_SUMMARY_LEN {
            return Self::whole(text);
        }
        let end = floor_char_boundary(text, MAX_SUMMARY_LEN - ELLIPSIS.len());
        Self(Repr::Heap(format!("{}{ELLIPSIS}", &text[..end]).into_boxed_str()))
    }

    /// The summary of what `args` writes, e.g. `Summary::format(format_args!("{value:?}"))`.
    /// Formatting stops once the summary is full, so a large value costs no more than a small
    /// one.
    pub fn format(args: fmt::Arguments<'_>) -> Self {
        if let Some(text) = args.as_str() {
            return Self::of(text);
        }
        let mut out = Bounded { bytes: [0; MAX_SUMMARY_LEN], len: 0, cut: false };
        // An error only means the summary is full.
        let _ = fmt::write(&mut out, args);
        let text = out.text();
        if out.cut {
            let end = floor_char_boundary(text, MAX_SUMMARY_LEN - ELLIPSIS.len());
            Self::whole(&format!("{}{ELLIPSIS}", &text[..end]))
        } else {
            Self::whole(text)
        }
    }

    /// A summary of `text`, which fits.
    fn whole(text: &str) -> Self {
        if text.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            Self(Repr::Inline { len: text.len() as u8, bytes })
        } else {
            Self(Repr::Heap(text.into()))
        }
    }

    /// The summary as a string slice.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // The bytes were copied from a `&str` whole: they are UTF-8.
            Repr::Inline { len, bytes } => std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default(),
            Repr::Heap(text) => text,
        }
    }
}

/// The largest character boundary of `text` at or before `index`.
fn floor_char_boundary(text: &str, index: usize) -> usize {
    let mut end = index.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// A writer that keeps the first [`MAX_SUMMARY_LEN`] bytes and then refuses more.
struct Bounded {
    bytes: [u8; MAX_SUMMARY_LEN],
    len: usize,
    cut: bool,
}

impl Bounded {
    fn text(&self) -> &str {
        // Only whole `&str`s and their prefixes at character boundaries are copied in.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = MAX_SUMMARY_LEN - self.len;
        let take = if s.len() <= room { s.len() } else { floor_char_boundary(s, room) };
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        if take < s.len() {
            self.cut = true;
            return Err(fmt::Error);
        }
        Ok(())
    }
}

/// The same as [`Summary::of`].
impl From<&str> for Summary {
    fn from(text: &str) -> Self {
        Self::of(text)
    }
}

/// The same as [`Summary::of`], keeping the string's buffer when it fits.
impl From<String> for Summary {
    fn from(text: String) -> Self {
        if text.len() <= INLINE || text.len() > MAX_SUMMARY_LEN {
            Self::of(&text)
        } else {
            Self(Repr::Heap(text.into_boxed_str()))
        }
    }
}

impl From<Summary> for String {
    fn from(summary: Summary) -> Self {
        match summary.0 {
            Repr::Heap(text) => text.into_string(),
            Repr::Inline { .. } => summary.as_str().to_owned(),
        }
    }
}

impl Deref for Summary {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Summary {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Summary {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for Summary {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Summary {}

impl PartialEq<str> for Summary {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Summary {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Summary {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialOrd for Summary {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Summary {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Summary {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_texts_read_back_whole() {
        for text in ["", "a", "exactly twenty-two by!", "twenty-three bytes long", "ü".repeat(11).as_str()] {
            assert_eq!(Summary::from(text).as_str(), text);
            assert_eq!(Summary::from(text.to_owned()).as_str(), text);
            assert_eq!(String::from(Summary::from(text)), text);
        }
        assert!(matches!(Summary::from("exactly twenty-two by!").0, Repr::Inline { .. }));
        assert!(matches!(Summary::from("twenty-three bytes long").0, Repr::Heap(_)));
    }

    #[test]
    fn a_long_text_is_cut_at_a_character_boundary() {
        for text in ["é".repeat(100), "x".repeat(500), format!("a{}", "€".repeat(60))] {
            for summary in [Summary::of(&text), Summary::from(text.clone()), Summary::format(format_args!("{text}"))] {
                assert!(summary.ends_with('…'), "{summary}");
                assert!(summary.len() <= MAX_SUMMARY_LEN, "{} bytes", summary.len());
                assert!(summary.len() > MAX_SUMMARY_LEN - 8, "{} bytes", summary.len());
                assert!(text.starts_with(summary.trim_end_matches('…')));
            }
        }
        let exact = "y".repeat(MAX_SUMMARY_LEN);
        assert_eq!(Summary::of(&exact), exact);
        assert_eq!(Summary::format(format_args!("{exact}")), exact);
        assert_eq!(Summary::of("short"), "short");
    }

    #[test]
    fn formatting_stops_when_the_summary_is_full() {
        struct Endless;
        impl fmt::Debug for Endless {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // A value whose text never ends: only a writer that refuses more stops it.
                loop {
                    f.write_str("more ")?;
                }
            }
        }
        let summary = Summary::format(format_args!("{:?}", Endless));
        assert!(summary.starts_with("more more"));
        assert!(summary.ends_with('…'));
        assert_eq!(Summary::format(format_args!("{}", 42)), "42");
        assert!(matches!(Summary::format(format_args!("<{}>", "u8")).0, Repr::Inline { .. }));
    }

    #[test]
    fn it_compares_and_hashes_as_its_text() {
        use std::collections::HashSet;
        let a = Summary::from("same");
        let b = Summary::from("same".to_owned());
        assert_eq!(a, b);
        assert_eq!(format!("{a} {a:?}"), "same \"same\"");
        let set: HashSet<Summary> = [a, b].into_iter().collect();
        assert!(set.contains("same"));
    }
}
