//! The formats the loaders read, and which file extensions name them.

use std::fmt;
use std::path::Path;

/// A format the loaders read. [`Format::from_path`] picks one from a file's extension; the
/// in-memory loaders ([`Loader::load_str`](super::Loader::load_str),
/// [`Loader::load_bytes`](super::Loader::load_bytes)) take one explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// Plain text, kept as is (`.txt`, `.text`).
    Text,
    /// Markdown, kept as is, with a leading YAML frontmatter taken into metadata (`.md`,
    /// `.markdown`).
    Markdown,
    /// HTML: the page's main readable text, headings as Markdown `#` lines (`.html`, `.htm`).
    Html,
    /// Comma-separated values, one document per row (`.csv`).
    Csv,
    /// Tab-separated values, one document per row (`.tsv`).
    Tsv,
    /// JSON: one document per element of a top-level array, or one for anything else (`.json`).
    Json,
    /// JSON Lines: one document per line (`.jsonl`, `.ndjson`).
    JsonLines,
    /// PDF, one document per page (`.pdf`; needs the `rag-pdf` feature).
    Pdf,
}

impl Format {
    /// Every format, in the order the error messages list them.
    pub const ALL: [Format; 8] = [
        Format::Text,
        Format::Markdown,
        Format::Html,
        Format::Csv,
        Format::Tsv,
        Format::Json,
        Format::JsonLines,
        Format::Pdf,
    ];

    /// The format a file extension (without the dot, any case) names.
    ///
    /// ```
    /// use loomflow::rag::load::Format;
    ///
    /// assert_eq!(Format::from_extension("MD"), Some(Format::Markdown));
    /// assert_eq!(Format::from_extension("ndjson"), Some(Format::JsonLines));
    /// assert_eq!(Format::from_extension("docx"), None);
    /// ```
    pub fn from_extension(extension: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.extensions().iter().any(|e| e.eq_ignore_ascii_case(extension)))
    }

    /// The format of a file, from its extension.
    pub fn from_path(path: impl AsRef<Path>) -> Option<Self> {
        path.as_ref().extension().and_then(|e| e.to_str()).and_then(Self::from_extension)
    }

    /// The extensions that name this format, without the dot.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Self::Text => &["txt", "text"],
            Self::Markdown => &["md", "markdown"],
            Self::Html => &["html", "htm"],
            Self::Csv => &["csv"],
            Self::Tsv => &["tsv"],
            Self::Json => &["json"],
            Self::JsonLines => &["jsonl", "ndjson"],
            Self::Pdf => &["pdf"],
        }
    }

    /// The name used in metadata (`format`) and messages: `text`, `markdown`, `html`, `csv`,
    /// `tsv`, `json`, `jsonl`, `pdf`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Markdown => "markdown",
            Self::Html => "html",
            Self::Csv => "csv",
            Self::Tsv => "tsv",
            Self::Json => "json",
            Self::JsonLines => "jsonl",
            Self::Pdf => "pdf",
        }
    }

    /// The cargo feature of `loomflow` the format needs beyond `rag`, when it is off in this
    /// build.
    pub(super) fn missing_feature(self) -> Option<&'static str> {
        match self {
            Self::Pdf if cfg!(not(feature = "rag-pdf")) => Some("rag-pdf"),
            _ => None,
        }
    }

    /// Every supported extension, as `.txt, .text, .md, ...` for messages.
    pub(super) fn supported_list() -> String {
        let all: Vec<String> = Self::ALL.iter().flat_map(|f| f.extensions().iter().map(|e| format!(".{e}"))).collect();
        all.join(", ")
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
