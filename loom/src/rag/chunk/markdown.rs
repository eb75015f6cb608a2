//! The Markdown chunker: sections at ATX headings, each with its heading trail.

use serde_json::Value;

use super::{Chunker, RecursiveChunker, Span, assemble};
use crate::error::ConfigError;
use crate::rag::{Chunk, Document};

/// Splits a Markdown document into sections at its ATX headings (`#` to `######` at the start
/// of a line, after at most three spaces), and chunks each section longer than `size` with a
/// [`RecursiveChunker`] of the same size, overlap and separators.
///
/// Every chunk of a section has `heading_path` in its metadata: the texts of the headings
/// above it, from the top level down to the section's own (`["Guide", "Install", "Linux"]`);
/// text before the first heading has `[]`. A section's text begins with its heading line, so a
/// chunk reads on its own. Sections are chunked apart: a chunk never spans two sections, and
/// sections do not overlap.
///
/// Lines inside fenced code blocks (```` ``` ```` or `~~~`) are never headings. Setext headings
/// (a line underlined with `===` or `---`) are not recognised: their text stays in the section
/// around them. The Markdown and HTML loaders write headings as ATX lines.
#[derive(Debug, Clone, Default)]
pub struct MarkdownChunker {
    inner: RecursiveChunker,
}

impl MarkdownChunker {
    /// Sections chunked to at most `size` characters, consecutive chunks of a section sharing
    /// at most `overlap`; out-of-range values are clamped as in [`RecursiveChunker::new`]. The
    /// default is 800 and 100.
    pub fn new(size: usize, overlap: usize) -> Self {
        Self { inner: RecursiveChunker::new(size, overlap) }
    }

    /// Like [`new`](Self::new), but a `size` of 0 or an `overlap` not below `size` is an
    /// error.
    pub fn try_new(size: usize, overlap: usize) -> Result<Self, ConfigError> {
        Ok(Self { inner: RecursiveChunker::try_new(size, overlap)? })
    }

    /// Splits long sections by these separators (see [`RecursiveChunker::separators`]).
    #[must_use]
    pub fn separators<S: Into<String>>(self, separators: impl IntoIterator<Item = S>) -> Self {
        Self { inner: self.inner.separators(separators) }
    }

    /// Measures sizes and overlaps in tokens of `counter` instead of characters.
    #[cfg(feature = "rag-tokens")]
    #[must_use]
    pub fn tokens(self, counter: super::TokenCounter) -> Self {
        Self { inner: self.inner.tokens(counter) }
    }
}

impl Chunker for MarkdownChunker {
    fn chunk(&self, document: &Document) -> Vec<Chunk> {
        let sections = sections(&document.text);
        let mut ranges = Vec::new();
        let mut owners = Vec::new();
        for (i, section) in sections.iter().enumerate() {
            let first = ranges.len();
            self.inner.ranges(&document.text, section.start, section.end, &mut ranges);
            // A long section's heading line alone is no passage: it joins the chunk after it
            // when both fit; when they do not, the section's body is chunked smaller by the
            // heading's length, and its first chunk begins with the heading.
            if let (Some(&(start, end)), Some(&(_, next_end))) = (ranges.get(first), ranges.get(first + 1))
                && end <= section.heading_end
            {
                let fits = |t: Option<&str>| t.is_some_and(|t| self.inner.len_of(t) <= self.inner.size());
                if fits(document.text.get(start..next_end)) {
                    ranges[first].1 = next_end;
                    ranges.remove(first + 1);
                } else {
                    let heading = document.text.get(start..section.heading_end).map_or(0, |h| self.inner.len_of(h));
                    let smaller = self.inner.with_size(self.inner.size().saturating_sub(heading + 2));
                    let mut body = Vec::new();
                    smaller.ranges(&document.text, section.heading_end, section.end, &mut body);
                    if let Some(&(_, body_end)) = body.first()
                        && !body.is_empty()
                        && fits(document.text.get(start..body_end))
                    {
                        body[0].0 = start;
                        ranges.truncate(first);
                        ranges.extend(body);
                    }
                }
            }
            owners.resize(ranges.len(), i);
        }
        let spans = ranges.into_iter().zip(owners).map(|((start, end), i)| Span {
            start,
            end,
            heading_path: sections.get(i).map(|s| &s.heading_path),
        });
        assemble(document, spans)
    }
}

/// A section: a heading line and what follows it up to the next heading (or the text before
/// the first heading).
struct Section {
    start: usize,
    end: usize,
    /// The end of the heading line (`start` before the first heading).
    heading_end: usize,
    heading_path: Value,
}

fn sections(text: &str) -> Vec<Section> {
    let mut sections = Vec::new();
    let mut trail: Vec<(usize, &str)> = Vec::new();
    let mut start = 0;
    let mut heading_end = 0;
    let mut heading_path = Value::Array(Vec::new());
    let mut fence: Option<(u8, usize)> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let at = offset;
        offset += line.len();
        if let Some((mark, run)) = fence {
            if let Some((m, r, rest)) = fence_line(line)
                && m == mark
                && r >= run
                && rest.trim().is_empty()
            {
                fence = None;
            }
            continue;
        }
        if let Some((mark, run, rest)) = fence_line(line) {
            if mark == b'~' || !rest.contains('`') {
                fence = Some((mark, run));
            }
            continue;
        }
        let Some((level, title)) = heading(line) else { continue };
        if at > start {
            let path = std::mem::replace(&mut heading_path, Value::Null);
            sections.push(Section { start, end: at, heading_end, heading_path: path });
        }
        while trail.last().is_some_and(|&(l, _)| l >= level) {
            trail.pop();
        }
        trail.push((level, title));
        heading_path = Value::Array(trail.iter().map(|&(_, t)| Value::from(t)).collect());
        start = at;
        heading_end = offset;
    }
    if text.len() > start {
        sections.push(Section { start, end: text.len(), heading_end, heading_path });
    }
    sections
}

/// The line without its indentation of at most three spaces; none when it is indented more.
fn unindented(line: &str) -> Option<&str> {
    let spaces = line.bytes().take_while(|&b| b == b' ').count();
    if spaces > 3 { None } else { line.get(spaces..) }
}

/// An ATX heading line's level and text (without the closing `#`s).
fn heading(line: &str) -> Option<(usize, &str)> {
    let body = unindented(line)?;
    let level = body.bytes().take_while(|&b| b == b'#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = body.get(level..)?;
    if !(rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n'])) {
        return None;
    }
    let title = rest.trim();
    let open = title.trim_end_matches('#');
    let title = if open.is_empty() {
        open
    } else if open.ends_with([' ', '\t']) {
        open.trim_end()
    } else {
        title
    };
    Some((level, title))
}

/// A code fence line: the fence character, how many of it, and the rest of the line.
fn fence_line(line: &str) -> Option<(u8, usize, &str)> {
    let body = unindented(line)?;
    let mark = *body.as_bytes().first()?;
    if mark != b'`' && mark != b'~' {
        return None;
    }
    let run = body.bytes().take_while(|&b| b == mark).count();
    if run < 3 {
        return None;
    }
    Some((mark, run, body.get(run..)?))
}
