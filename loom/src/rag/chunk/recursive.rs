//! The recursive chunker: split by the first separator that occurs, merge up to the size,
//! recurse into what is still too long.

use std::collections::VecDeque;
use std::str::{CharIndices, MatchIndices};

use super::{Chunker, Span, assemble};
use crate::error::ConfigError;
use crate::rag::{Chunk, Document};

/// The separators of [`RecursiveChunker::default`], coarsest first: paragraphs, lines,
/// sentences, clauses, words, characters.
pub const DEFAULT_SEPARATORS: [&str; 9] = ["\n\n", "\n", ". ", "! ", "? ", "; ", ", ", " ", ""];

/// Splits a document by the first of its separators that occurs in the text, merges the
/// pieces into chunks of at most `size`, and splits pieces still longer than `size` by the
/// next separators; the empty separator splits between characters.
///
/// This is LangChain's recursive character splitter with one difference: a separator stays at
/// the end of the piece before it (`"One. "`, `"Two."`), so chunks begin where a paragraph,
/// line, sentence or word begins rather than with the separator.
///
/// **Overlap.** When a chunk is full, the next one starts with the last pieces of it that fit
/// in `overlap`, so a passage cut at a chunk boundary is whole in one of the two. Two
/// consecutive chunks never share more than `overlap`; they share less when the pieces are
/// coarse (a paragraph longer than the overlap is not carried over). Chunks of different
/// pieces that were too long to merge (split further on their own) do not overlap.
///
/// **Length.** Characters (`char`s) by default; with the `rag-tokens` feature, tokens of a
/// `TokenCounter` (`.tokens(...)`). Every chunk is at most `size` long, except a piece that no
/// remaining separator can split (with [`DEFAULT_SEPARATORS`], which end with the empty
/// separator, only a single character longer than `size` tokens).
///
/// Each chunk is an exact range of the document's text with the whitespace at its ends
/// trimmed; chunks that would be only whitespace are left out.
///
/// ```
/// use loomflow::rag::Document;
/// use loomflow::rag::chunk::{Chunker, RecursiveChunker};
///
/// let doc = Document::new("notes.txt", "One two three. Four five six. Seven eight nine.");
/// let chunks = RecursiveChunker::new(35, 20).chunk(&doc);
/// let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
/// assert_eq!(texts, ["One two three. Four five six.", "Four five six. Seven eight nine."]);
/// ```
#[derive(Debug, Clone)]
pub struct RecursiveChunker {
    size: usize,
    overlap: usize,
    separators: Vec<String>,
    measure: Measure,
}

impl Default for RecursiveChunker {
    /// 800 characters, 100 of overlap, the [`DEFAULT_SEPARATORS`].
    fn default() -> Self {
        Self::new(800, 100)
    }
}

impl RecursiveChunker {
    /// Chunks of at most `size` characters, consecutive ones sharing at most `overlap`, split
    /// by the [`DEFAULT_SEPARATORS`]. Out-of-range values are clamped: `size` to at least 1,
    /// `overlap` to at most `size - 1`; [`try_new`](Self::try_new) refuses them instead.
    pub fn new(size: usize, overlap: usize) -> Self {
        let size = size.max(1);
        Self {
            size,
            overlap: overlap.min(size - 1),
            separators: DEFAULT_SEPARATORS.iter().map(|s| (*s).to_owned()).collect(),
            measure: Measure::Chars,
        }
    }

    /// Like [`new`](Self::new), but a `size` of 0 or an `overlap` not below `size` is an
    /// error.
    pub fn try_new(size: usize, overlap: usize) -> Result<Self, ConfigError> {
        check(size, overlap)?;
        Ok(Self::new(size, overlap))
    }

    /// Splits by these separators, coarsest first, instead of the [`DEFAULT_SEPARATORS`].
    /// End with `""` so that any text can be split down to the size; without it a piece no
    /// separator splits stays whole, however long. Separators are plain text, not patterns.
    #[must_use]
    pub fn separators<S: Into<String>>(mut self, separators: impl IntoIterator<Item = S>) -> Self {
        self.separators = separators.into_iter().map(Into::into).collect();
        self
    }

    /// Measures sizes and overlaps in tokens of `counter` instead of characters.
    #[cfg(feature = "rag-tokens")]
    #[must_use]
    pub fn tokens(mut self, counter: super::TokenCounter) -> Self {
        self.measure = Measure::Tokens(counter);
        self
    }

    /// The largest length of a chunk.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The largest length two consecutive chunks share.
    pub fn overlap(&self) -> usize {
        self.overlap
    }

    /// The length of `text` in this chunker's unit (characters or tokens).
    pub fn len_of(&self, text: &str) -> usize {
        self.measure.len(text)
    }

    /// The chunk ranges of `text[start..end]`, appended to `out` in order.
    /// A text that fits is one chunk, however its pieces would add up.
    /// The same chunker with chunks of at most `size` (overlap clamped below it).
    pub(super) fn with_size(&self, size: usize) -> Self {
        let size = size.max(1);
        Self {
            size,
            overlap: self.overlap.min(size - 1),
            separators: self.separators.clone(),
            measure: self.measure.clone(),
        }
    }

    pub(super) fn ranges(&self, text: &str, start: usize, end: usize, out: &mut Vec<(usize, usize)>) {
        let mut splitter = Splitter { text, chunker: self, out };
        let slice = splitter.slice(start, end);
        if self.measure.may_fit(slice.len(), self.size) && self.measure.len(trim(slice)) <= self.size {
            splitter.emit(start, end);
        } else {
            splitter.split(start, end, &self.separators);
        }
    }
}

/// Checks a size and an overlap.
pub(super) fn check(size: usize, overlap: usize) -> Result<(), ConfigError> {
    if size == 0 {
        return Err(ConfigError::InvalidSetting { setting: "chunk size", reason: "must be at least 1".into() });
    }
    if overlap >= size {
        return Err(ConfigError::InvalidSetting {
            setting: "chunk overlap",
            reason: format!(
                "{overlap} is not below the chunk size {size}; use a smaller overlap (a tenth of the size is usual)"
            ),
        });
    }
    Ok(())
}

impl Chunker for RecursiveChunker {
    fn chunk(&self, document: &Document) -> Vec<Chunk> {
        let mut ranges = Vec::new();
        self.ranges(&document.text, 0, document.text.len(), &mut ranges);
        assemble(document, ranges.into_iter().map(|(start, end)| Span { start, end, heading_path: None }))
    }
}

/// How lengths are measured.
#[derive(Debug, Clone)]
enum Measure {
    Chars,
    #[cfg(feature = "rag-tokens")]
    Tokens(super::TokenCounter),
}

impl Measure {
    fn len(&self, text: &str) -> usize {
        match self {
            Self::Chars => text.chars().count(),
            #[cfg(feature = "rag-tokens")]
            Self::Tokens(counter) => counter.count(text),
        }
    }

    /// Whether a text of `bytes` bytes may be at most `size` long: a character is at most 4
    /// bytes; a token longer than 64 bytes is rare enough not to count the text for it.
    fn may_fit(&self, bytes: usize, size: usize) -> bool {
        match self {
            Self::Chars => bytes <= size.saturating_mul(4),
            #[cfg(feature = "rag-tokens")]
            Self::Tokens(_) => bytes <= size.saturating_mul(64),
        }
    }

    /// Whether the length of joined pieces is the sum of their lengths. Characters add up;
    /// token counts nearly do, so the merged text is counted again to make sure.
    fn additive(&self) -> bool {
        match self {
            Self::Chars => true,
            #[cfg(feature = "rag-tokens")]
            Self::Tokens(_) => false,
        }
    }
}

/// A piece of the text: its byte range and its length.
#[derive(Debug, Clone, Copy)]
struct Piece {
    start: usize,
    end: usize,
    len: usize,
}

/// The pieces being merged into the next chunk: the overlap carried from the last chunk, then
/// `fresh` new pieces.
#[derive(Default)]
struct Window {
    pieces: VecDeque<Piece>,
    total: usize,
    fresh: usize,
}

impl Window {
    fn pop_front(&mut self) {
        if let Some(p) = self.pieces.pop_front() {
            self.total -= p.len;
            self.fresh = self.fresh.min(self.pieces.len());
        }
    }

    fn range(&self) -> Option<(usize, usize)> {
        Some((self.pieces.front()?.start, self.pieces.back()?.end))
    }
}

struct Splitter<'t, 'o> {
    text: &'t str,
    chunker: &'t RecursiveChunker,
    out: &'o mut Vec<(usize, usize)>,
}

impl<'t> Splitter<'t, '_> {
    fn slice(&self, start: usize, end: usize) -> &'t str {
        self.text.get(start..end).unwrap_or_default()
    }

    /// Splits `text[start..end]` by the first of `separators` that occurs in it.
    fn split(&mut self, start: usize, end: usize, separators: &[String]) {
        let slice = self.slice(start, end);
        let (separator, rest) = match separators.iter().position(|s| s.is_empty() || slice.contains(s.as_str())) {
            Some(i) if separators[i].is_empty() => (Some(""), &[][..]),
            Some(i) => (Some(separators[i].as_str()), &separators[i + 1..]),
            None => (None, &[][..]),
        };
        let mut window = Window::default();
        for (s, e) in Pieces::new(slice, separator) {
            let (s, e) = (start + s, start + e);
            let len = self.chunker.measure.len(self.slice(s, e));
            if len <= self.chunker.size {
                self.feed(&mut window, Piece { start: s, end: e, len });
            } else {
                self.finish(&mut window);
                if rest.is_empty() {
                    self.emit(s, e);
                } else {
                    self.split(s, e, rest);
                }
            }
        }
        self.finish(&mut window);
    }

    /// Adds a piece to the window, emitting the window first when the piece does not fit.
    fn feed(&mut self, window: &mut Window, piece: Piece) {
        // Pieces given back by `flush`, latest first; empty (and unallocated) but for tokens.
        let mut todo: Vec<Piece> = Vec::new();
        let mut next = Some(piece);
        while let Some(piece) = next.take().or_else(|| todo.pop()) {
            if !window.pieces.is_empty() && window.total + piece.len > self.chunker.size {
                let dropped = self.flush(window, piece.len);
                if !dropped.is_empty() {
                    todo.push(piece);
                    todo.extend(dropped);
                    continue;
                }
            }
            window.pieces.push_back(piece);
            window.total += piece.len;
            window.fresh += 1;
        }
    }

    /// Emits what is left in the window and empties it.
    fn finish(&mut self, window: &mut Window) {
        while window.fresh > 0 {
            let dropped = self.flush(window, 0);
            if dropped.is_empty() {
                break;
            }
            for piece in dropped.into_iter().rev() {
                self.feed(window, piece);
            }
        }
        *window = Window::default();
    }

    /// Emits the window as a chunk and keeps the overlap for the next one, whose first piece is
    /// `next` long. When the measure is not additive and the joined text is longer than the
    /// size, the last pieces are given back (latest first) to be fed again.
    fn flush(&mut self, window: &mut Window, next: usize) -> Vec<Piece> {
        let size = self.chunker.size;
        let overlap = self.chunker.overlap;
        let mut dropped = Vec::new();
        if window.fresh == 0 {
            // Nothing new to emit: only make room.
            while !window.pieces.is_empty() && window.total + next > size {
                window.pop_front();
            }
            return dropped;
        }
        if !self.chunker.measure.additive() {
            while let Some((s, e)) = window.range() {
                if self.chunker.measure.len(trim(self.slice(s, e))) <= size {
                    break;
                }
                if window.fresh > 1 {
                    if let Some(p) = window.pieces.pop_back() {
                        window.total -= p.len;
                        window.fresh -= 1;
                        dropped.push(p);
                    }
                } else if window.pieces.len() > window.fresh {
                    window.pop_front();
                } else {
                    break;
                }
            }
        }
        if let Some((s, e)) = window.range() {
            self.emit(s, e);
        }
        window.fresh = 0;
        let next = dropped.last().map_or(next, |p| p.len);
        window.pop_front();
        while !window.pieces.is_empty() && (window.total > overlap || window.total + next > size) {
            window.pop_front();
        }
        if !self.chunker.measure.additive() {
            while let Some((s, e)) = window.range() {
                if self.chunker.measure.len(trim(self.slice(s, e))) <= overlap {
                    break;
                }
                window.pop_front();
            }
        }
        dropped
    }

    /// Records the chunk `text[start..end]` with the whitespace at its ends trimmed. A chunk
    /// inside the last one is left out; one that starts where the last one starts replaces it.
    fn emit(&mut self, start: usize, end: usize) {
        let slice = self.slice(start, end);
        let lead = slice.len() - slice.trim_start().len();
        let trimmed = trim(slice);
        if trimmed.is_empty() {
            return;
        }
        let (s, e) = (start + lead, start + lead + trimmed.len());
        match self.out.last_mut() {
            Some(last) if s >= last.0 && e <= last.1 => {}
            Some(last) if s <= last.0 && e >= last.1 => *last = (s, e),
            _ => self.out.push((s, e)),
        }
    }
}

fn trim(text: &str) -> &str {
    text.trim_matches(char::is_whitespace)
}

/// The pieces of a text split by a separator, as byte ranges, the separator kept at the end of
/// the piece before it; the empty separator gives each character; none gives the whole text.
enum Pieces<'t> {
    Matches { matches: MatchIndices<'t, &'t str>, sep_len: usize, at: usize, len: usize },
    Chars(CharIndices<'t>),
    Whole(Option<usize>),
}

impl<'t> Pieces<'t> {
    fn new(text: &'t str, separator: Option<&'t str>) -> Self {
        match separator {
            Some("") => Self::Chars(text.char_indices()),
            Some(sep) => Self::Matches { matches: text.match_indices(sep), sep_len: sep.len(), at: 0, len: text.len() },
            None => Self::Whole(Some(text.len())),
        }
    }
}

impl Iterator for Pieces<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        match self {
            Self::Chars(chars) => chars.next().map(|(i, c)| (i, i + c.len_utf8())),
            Self::Whole(len) => len.take().filter(|&l| l > 0).map(|l| (0, l)),
            Self::Matches { matches, sep_len, at, len } => loop {
                let end = match matches.next() {
                    Some((i, _)) => i + *sep_len,
                    None if *at < *len => *len,
                    None => return None,
                };
                let start = std::mem::replace(at, end);
                if end > start {
                    return Some((start, end));
                }
            },
        }
    }
}
