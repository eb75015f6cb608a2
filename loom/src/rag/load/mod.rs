//! Loaders: files to [`Document`]s, each with its source metadata.
//!
//! [`load`] reads one file and picks its [`Format`] from the extension; a [`Loader`] does the
//! same with settings (a size limit, the JSON field that holds the text, whether unknown
//! extensions are read as text); a [`DirectoryLoader`] walks a folder with include and
//! exclude globs. Content already in memory loads with [`load_str`],
//! [`Loader::load_str`] or [`Loader::load_bytes`] and an explicit format.
//!
//! ```
//! use loomflow::rag::load::{Format, load_str};
//!
//! let text = "---\nauthor: Ann\n---\n# Weaving\n\nWarp and weft.\n\n## Looms\n\nFloor and table looms.\n";
//! let docs = load_str("notes/weaving.md", text, Format::Markdown)?;
//! assert_eq!(docs.len(), 1);
//! assert_eq!(docs[0].id, "notes/weaving.md");
//! assert!(docs[0].text.starts_with("# Weaving\n"));
//! assert_eq!(docs[0].metadata["source"], "notes/weaving.md");
//! assert_eq!(docs[0].metadata["title"], "Weaving");
//! assert_eq!(docs[0].metadata["author"], "Ann");
//! # Ok::<(), loomflow::rag::load::LoadError>(())
//! ```
//!
//! # Formats
//!
//! Every document has `source` (the path as given, or the source name of in-memory content)
//! and `format` in its metadata.
//!
//! | format | extensions | documents | id | metadata |
//! |---|---|---|---|---|
//! | text | `.txt`, `.text` | the file, as is | `path` | |
//! | Markdown | `.md`, `.markdown` | the file, as is, without a leading frontmatter | `path` | `title` (the frontmatter's, else the first `#` heading); a frontmatter of plain `key: value` lines, as entries |
//! | HTML | `.html`, `.htm` | the page's main text, headings as `#` lines ([more](#html)) | `path` | `title` (`<title>`, else the first `<h1>`) |
//! | CSV, TSV | `.csv`, `.tsv` | one per row after the header, `header: value` lines | `path#row=N` | `row` (from 1), `line` |
//! | JSON | `.json` | one per element of a top-level array, else one | `path#item=N`, `path` | `item` (from 1) |
//! | JSON Lines | `.jsonl`, `.ndjson` | one per non-blank line | `path#line=N` | `line` (from 1) |
//! | PDF | `.pdf` (feature `rag-pdf`) | one per page with text | `path#page=N` | `page` (from 1), `pages` |
//!
//! A JSON record's text is the record written as `key: value` lines (nested keys joined by
//! `.`, as in `owner.name: Ann`), or, with [`Loader::text_field`], the value of that field,
//! the record's other fields becoming metadata.
//!
//! Text formats must be UTF-8 (a byte order mark is dropped). CSV and TSV are read by an RFC
//! 4180 parser: quoted fields may hold the delimiter, `""` and line breaks.
//!
//! # HTML
//!
//! The text comes from the first `<main>`, else the page's only `<article>`, else `<body>`,
//! without scripts, styles, navigation, forms, asides, and the page's header and footer.
//! Entities are decoded; paragraphs are separated by blank lines, list items written as
//! `- ` lines and table rows as cells joined by ` | `.
//!
//! # Failures
//!
//! A file that cannot be loaded at all (unreadable, too large, an unsupported extension, not
//! UTF-8, JSON that does not parse) is an error. A file that loads in part — a CSV row with
//! the wrong number of fields, a JSON Lines line that does not parse, a PDF page the
//! extractor fails on — keeps its other documents: [`Loader::load`] returns them and logs
//! each failed part as a `tracing` warning (and fails only if no document is left), while
//! [`Loader::load_report`] and the [`DirectoryLoader`] return every failed part in the
//! [`LoadReport`].
//!
//! Reading and parsing run on tokio's blocking thread pool (inline when called outside a
//! tokio runtime), so a large file or a slow PDF does not hold up other tasks.

mod csv;
mod dir;
mod error;
mod format;
mod html;
mod json;
#[cfg(feature = "rag-pdf")]
mod pdf;
mod text;

use std::io::Read as _;
use std::path::{Path, PathBuf};

pub use dir::DirectoryLoader;
pub use error::LoadError;
pub use format::Format;

use super::Document;

/// The default [`Loader::max_file_size`]: 64 MiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// Loads the file at `path` with the default [`Loader`], its format from its extension.
///
/// Parts of the file that fail (a CSV row, a JSON Lines line, a PDF page) are left out and
/// logged; use [`Loader::load_report`] to get them.
pub async fn load(path: impl AsRef<Path>) -> Result<Vec<Document>, LoadError> {
    Loader::new().load(path).await
}

/// Loads `text`, named `source` (the documents' id and `source`), as `format`, with the
/// default [`Loader`]. Runs on the calling thread.
pub fn load_str(source: &str, text: &str, format: Format) -> Result<Vec<Document>, LoadError> {
    Loader::new().load_str(source, text, format)
}

/// Reads files and in-memory content into documents, with its settings.
///
/// ```
/// use loomflow::rag::load::{Format, Loader};
///
/// let loader = Loader::new().max_file_size(1024 * 1024).text_field("body");
/// let docs = loader.load_str(
///     "posts.jsonl",
///     "{\"title\": \"Hello\", \"body\": \"First post.\"}\n{\"title\": \"Again\", \"body\": \"Second.\"}\n",
///     Format::JsonLines,
/// )?;
/// assert_eq!(docs[1].id, "posts.jsonl#line=2");
/// assert_eq!(docs[1].text, "Second.");
/// assert_eq!(docs[1].metadata["title"], "Again");
/// # Ok::<(), loomflow::rag::load::LoadError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Loader {
    max_file_size: u64,
    text_field: Option<String>,
    unknown_as_text: bool,
}

impl Default for Loader {
    fn default() -> Self {
        Self::new()
    }
}

/// What loading gave: the documents, and every file or part of one that failed.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct LoadReport {
    /// The documents, in the order of their files (sorted by path for a folder) and of their
    /// place in each file.
    pub documents: Vec<Document>,
    /// The files, or parts of files (a row, a line, a page), that failed, with why. The path
    /// is the file's.
    pub failed: Vec<(PathBuf, LoadError)>,
    /// Files a [`DirectoryLoader`] without include patterns passed over because Loom does not
    /// read their extension.
    pub skipped: Vec<PathBuf>,
}

impl LoadReport {
    /// Whether nothing failed.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }

    fn of(source: &str, parsed: Parsed) -> Self {
        let failed = parsed.problems.into_iter().map(|e| (PathBuf::from(source), e)).collect();
        Self { documents: parsed.documents, failed, skipped: Vec::new() }
    }
}

impl Loader {
    /// A loader with a limit of [`DEFAULT_MAX_FILE_SIZE`], whole JSON records as text, and
    /// unknown extensions refused.
    pub fn new() -> Self {
        Self { max_file_size: DEFAULT_MAX_FILE_SIZE, text_field: None, unknown_as_text: false }
    }

    /// Refuses files (and in-memory content) larger than `bytes` with
    /// [`LoadError::TooLarge`], before reading them.
    #[must_use]
    pub fn max_file_size(mut self, bytes: u64) -> Self {
        self.max_file_size = bytes;
        self
    }

    /// Takes the text of each JSON and JSON Lines record from `field` (a top-level key, or a
    /// JSON pointer such as `/content/text`) instead of writing the whole record; the record's
    /// other top-level fields become metadata. A record without it fails
    /// ([`LoadError::MissingField`]), and the others load.
    #[must_use]
    pub fn text_field(mut self, field: impl Into<String>) -> Self {
        self.text_field = Some(field.into());
        self
    }

    /// Reads files whose extension names no format (or that have none) as plain text, when
    /// their content is UTF-8 without NUL bytes; otherwise they fail with
    /// [`LoadError::Unsupported`] (the default for all of them).
    #[must_use]
    pub fn unknown_as_text(mut self, yes: bool) -> Self {
        self.unknown_as_text = yes;
        self
    }

    /// Loads the file at `path`, its format from its extension.
    ///
    /// Parts of the file that fail (a CSV row, a JSON Lines line, a PDF page) are left out and
    /// logged as warnings; the call fails when the file cannot be loaded at all, or when every
    /// part failed. [`load_report`](Self::load_report) returns the failed parts instead.
    pub async fn load(&self, path: impl AsRef<Path>) -> Result<Vec<Document>, LoadError> {
        finish(self.load_report(path).await)
    }

    /// Loads the file at `path`, and reports every failed part of it (or the whole file) in
    /// [`LoadReport::failed`] next to the documents that loaded.
    pub async fn load_report(&self, path: impl AsRef<Path>) -> LoadReport {
        let path = path.as_ref().to_path_buf();
        let loader = self.clone();
        let at = path.clone();
        match blocking(move || loader.read_and_parse(&at)).await {
            Ok(report) => report,
            Err(source) => {
                LoadReport { failed: vec![(path.clone(), LoadError::Io { path, source })], ..LoadReport::default() }
            }
        }
    }

    /// Loads `text`, named `source`, as `format`, on the calling thread. For a PDF in memory,
    /// use [`load_bytes`](Self::load_bytes).
    pub fn load_str(&self, source: &str, text: &str, format: Format) -> Result<Vec<Document>, LoadError> {
        finish(self.parse_report(source, text.as_bytes(), format))
    }

    /// Loads `bytes`, named `source`, as `format`, on the blocking thread pool.
    pub async fn load_bytes(
        &self,
        source: impl Into<String>,
        bytes: impl Into<Vec<u8>>,
        format: Format,
    ) -> Result<Vec<Document>, LoadError> {
        let (source, bytes, loader) = (source.into(), bytes.into(), self.clone());
        let name = PathBuf::from(&source);
        let report = blocking(move || loader.parse_report(&source, &bytes, format))
            .await
            .map_err(|source| LoadError::Io { path: name, source })?;
        finish(report)
    }

    fn parse_report(&self, source: &str, bytes: &[u8], format: Format) -> LoadReport {
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if size > self.max_file_size {
            let error = LoadError::TooLarge { path: source.into(), size, limit: self.max_file_size };
            return LoadReport::of(source, Parsed::failed(error));
        }
        LoadReport::of(source, self.parse(source, bytes, format))
    }

    /// Reads the file within the size limit and parses it. Blocking.
    fn read_and_parse(&self, path: &Path) -> LoadReport {
        let source = path.to_string_lossy().into_owned();
        let fail = |e: LoadError| LoadReport::of(&source, Parsed::failed(e));
        if let Err(e) = self.check(path) {
            return fail(e);
        }
        let format = match Format::from_path(path) {
            Some(format) => Some(format),
            None if self.unknown_as_text => None,
            None => {
                let extension = path.extension().map(|e| e.to_string_lossy().into_owned());
                return fail(LoadError::Unsupported { path: path.into(), extension });
            }
        };
        if let Some(format) = format
            && let Some(feature) = format.missing_feature()
        {
            return fail(LoadError::FeatureDisabled { path: path.into(), format, feature });
        }
        let bytes = match self.read(path) {
            Ok(bytes) => bytes,
            Err(e) => return fail(e),
        };
        let format = match format {
            Some(format) => format,
            None if !bytes.contains(&0) && std::str::from_utf8(strip_bom(&bytes)).is_ok() => Format::Text,
            None => {
                let extension = path.extension().map(|e| e.to_string_lossy().into_owned());
                return fail(LoadError::Unsupported { path: path.into(), extension });
            }
        };
        LoadReport::of(&source, self.parse(&source, &bytes, format))
    }

    /// Refuses what is not a regular file, and a file over the limit, before reading it.
    fn check(&self, path: &Path) -> Result<(), LoadError> {
        let io = |source| LoadError::Io { path: path.into(), source };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.is_dir() {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "it is a folder; load folders with `DirectoryLoader`",
            )));
        }
        if !meta.is_file() {
            return Err(io(std::io::Error::new(std::io::ErrorKind::InvalidInput, "it is not a regular file")));
        }
        if meta.len() > self.max_file_size {
            return Err(LoadError::TooLarge { path: path.into(), size: meta.len(), limit: self.max_file_size });
        }
        Ok(())
    }

    /// The file's bytes, at most the limit (a file that grew since [`check`](Self::check) is
    /// refused while reading).
    fn read(&self, path: &Path) -> Result<Vec<u8>, LoadError> {
        let io = |source| LoadError::Io { path: path.into(), source };
        let limit = self.max_file_size;
        let file = std::fs::File::open(path).map_err(io)?;
        let mut bytes = Vec::new();
        file.take(limit.saturating_add(1)).read_to_end(&mut bytes).map_err(io)?;
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if size > limit {
            return Err(LoadError::TooLarge { path: path.into(), size, limit });
        }
        Ok(bytes)
    }

    /// Parses content of a known format. Blocking (PDF extraction is CPU-bound).
    fn parse(&self, source: &str, bytes: &[u8], format: Format) -> Parsed {
        if let Some(feature) = format.missing_feature() {
            return Parsed::failed(LoadError::FeatureDisabled { path: source.into(), format, feature });
        }
        if format == Format::Pdf {
            return pdf(source, bytes);
        }
        let text = match decode(source, bytes) {
            Ok(text) => text,
            Err(e) => return Parsed::failed(e),
        };
        let field = self.text_field.as_deref();
        match format {
            Format::Text => Parsed::one(text::text(source, text)),
            Format::Markdown => Parsed::one(text::markdown(source, text)),
            Format::Html => Parsed::one(html::load(source, text)),
            Format::Csv | Format::Tsv => csv::load(source, text, format),
            Format::Json => json::load(source, text, field),
            Format::JsonLines => json::load_lines(source, text, field),
            Format::Pdf => pdf(source, bytes),
        }
    }
}

#[cfg(feature = "rag-pdf")]
fn pdf(source: &str, bytes: &[u8]) -> Parsed {
    pdf::load(source, bytes)
}

#[cfg(not(feature = "rag-pdf"))]
fn pdf(source: &str, _bytes: &[u8]) -> Parsed {
    Parsed::failed(LoadError::FeatureDisabled { path: source.into(), format: Format::Pdf, feature: "rag-pdf" })
}

/// What parsing one source gave: its documents, and the parts (or the whole) that failed.
#[derive(Debug, Default)]
struct Parsed {
    documents: Vec<Document>,
    problems: Vec<LoadError>,
}

impl Parsed {
    fn one(document: Document) -> Self {
        Self { documents: vec![document], problems: Vec::new() }
    }

    fn failed(problem: LoadError) -> Self {
        Self { documents: Vec::new(), problems: vec![problem] }
    }

    fn push(&mut self, record: Result<Document, LoadError>) {
        match record {
            Ok(document) => self.documents.push(document),
            Err(problem) => self.problems.push(problem),
        }
    }
}

/// The documents, with each failed part logged; the first failure when nothing loaded.
fn finish(report: LoadReport) -> Result<Vec<Document>, LoadError> {
    let mut failed = report.failed.into_iter().map(|(_, e)| e);
    if report.documents.is_empty()
        && let Some(first) = failed.next()
    {
        for other in failed {
            tracing::warn!(error = %other, "part of a file could not be loaded");
        }
        return Err(first);
    }
    for e in failed {
        tracing::warn!(error = %e, "part of a file could not be loaded; the rest is loaded");
    }
    Ok(report.documents)
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes)
}

/// The content as UTF-8 text, without a byte order mark.
fn decode<'b>(source: &str, bytes: &'b [u8]) -> Result<&'b str, LoadError> {
    std::str::from_utf8(strip_bom(bytes)).map_err(|e| LoadError::NotUtf8 {
        path: source.into(),
        offset: e.valid_up_to() + (bytes.len() - strip_bom(bytes).len()),
        utf16: bytes.starts_with(b"\xff\xfe") || bytes.starts_with(b"\xfe\xff"),
    })
}

/// Runs `f` on tokio's blocking pool, or inline outside a tokio runtime. The error is the
/// pool's (a task cancelled at shutdown, or one that panicked), as an I/O error.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, std::io::Error> {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => runtime
            .spawn_blocking(f)
            .await
            .map_err(|e| std::io::Error::other(format!("the loading task did not finish: {e}"))),
        Err(_) => Ok(f()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_is_required_and_a_bom_is_dropped() {
        let docs = load_str("a.txt", "\u{feff}hello", Format::Text);
        assert!(matches!(docs.as_deref(), Ok([d]) if d.text == "hello"));
        match Loader::new().parse_report("b.txt", b"ok \xff", Format::Text).failed.as_slice() {
            [(_, LoadError::NotUtf8 { offset: 3, utf16: false, .. })] => {}
            other => panic!("expected not UTF-8 at 3, got {other:?}"),
        }
        let utf16 = Loader::new().parse_report("c.txt", b"\xff\xfeh\0i\0", Format::Text);
        assert!(matches!(utf16.failed.as_slice(), [(_, LoadError::NotUtf8 { utf16: true, .. })]));
    }

    #[test]
    fn content_over_the_limit_is_refused() {
        let result = Loader::new().max_file_size(4).load_str("a.txt", "12345", Format::Text);
        assert!(matches!(result, Err(LoadError::TooLarge { size: 5, limit: 4, .. })));
    }

    #[test]
    fn a_file_where_every_part_failed_is_an_error() {
        let result = load_str("a.jsonl", "{bad\n", Format::JsonLines);
        assert!(matches!(result, Err(LoadError::Parse { line: Some(1), .. })));
        assert!(matches!(load_str("b.jsonl", "", Format::JsonLines).as_deref(), Ok([])));
    }

    #[test]
    fn an_unsupported_extension_lists_the_supported_ones() {
        let e = LoadError::Unsupported { path: "a.docx".into(), extension: Some("docx".into()) };
        let message = e.to_string();
        assert!(message.contains("`.docx`") && message.contains(".md") && message.contains(".jsonl"), "{message}");
    }
}
