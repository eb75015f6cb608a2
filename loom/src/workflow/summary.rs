//! The short description of a node's output that a step record keeps.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// The longest text kept inline, in bytes.
const INLINE: usize = 22;

/// The longest summary, in bytes; a longer text is cut (at a character boundary) and ends
/// with `…`.
pub const MAX_SUMMARY_LEN: usize = 120;

/// A short description of a node's output: its text when it is a string or a number (at most
/// [`MAX_SUMMARY_LEN`] bytes), its type's name otherwise.
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
    /// The summary of `text`: the text itself, cut at [`MAX_SUMMARY_LEN`] bytes.
    pub fn of(text: &str) -> Self {
        if text.len() <= MAX_SUMMARY_LEN {
            return Self::from(text);
        }
        let mut end = MAX_SUMMARY_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Self::from(format!("{}…", &text[..end]))
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

impl From<&str> for Summary {
    fn from(text: &str) -> Self {
        if text.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            Self(Repr::Inline { len: text.len() as u8, bytes })
        } else {
            Self(Repr::Heap(text.into()))
        }
    }
}

impl From<String> for Summary {
    fn from(text: String) -> Self {
        if text.len() <= INLINE { Self::from(text.as_str()) } else { Self(Repr::Heap(text.into_boxed_str())) }
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
        let text = "é".repeat(100);
        let summary = Summary::of(&text);
        assert!(summary.ends_with('…'));
        assert!(summary.len() <= MAX_SUMMARY_LEN + '…'.len_utf8());
        assert!(text.starts_with(summary.trim_end_matches('…')));
        assert_eq!(Summary::of("short"), "short");
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
