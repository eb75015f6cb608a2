//! What can go wrong loading a file, and where.

use std::fmt;
use std::path::{Path, PathBuf};

use super::Format;

/// A file, or a part of one (a row, a line, a page), that could not be loaded.
///
/// Every variant names the path (as given, or the source name of in-memory content) and says
/// what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file or folder could not be read.
    #[error("cannot read `{}`: {source}; check that it exists and is readable", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A directory loader was pointed at something that is not a folder.
    #[error("`{}` is not a folder; load a single file with `load` or `Loader::load`", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// The file's extension names no format Loom reads.
    #[error(
        "`{}` has {}, which Loom cannot load; supported: {}; for other text files use \
         `Loader::unknown_as_text(true)`, or load the content with an explicit `Format`",
        path.display(),
        shown_extension(extension.as_deref()),
        Format::supported_list()
    )]
    Unsupported {
        /// The path.
        path: PathBuf,
        /// Its extension, if it has one.
        extension: Option<String>,
    },
    /// The format needs a cargo feature of `loomflow` that is off in this build.
    #[error(
        "`{}` is {format}, which needs the `{feature}` feature of loomflow; enable it in Cargo.toml \
         (`loomflow = {{ features = [\"{feature}\"] }}`)",
        path.display()
    )]
    FeatureDisabled {
        /// The path.
        path: PathBuf,
        /// Its format.
        format: Format,
        /// The feature to enable.
        feature: &'static str,
    },
    /// A text format whose bytes are not UTF-8.
    #[error(
        "`{}` is not UTF-8 text (invalid byte at offset {offset}){}; convert it to UTF-8 \
         (for example with `iconv -t UTF-8`)",
        path.display(),
        if *utf16 { ", it looks like UTF-16" } else { "" }
    )]
    NotUtf8 {
        /// The path.
        path: PathBuf,
        /// The byte offset of the first invalid byte.
        offset: usize,
        /// Whether the content starts with a UTF-16 byte order mark.
        utf16: bool,
    },
    /// The file is larger than the loader's limit.
    #[error(
        "`{}` is {size} bytes, over the limit of {limit} bytes; raise it with `Loader::max_file_size` \
         or split the file",
        path.display()
    )]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The content is not valid in its format: JSON that does not parse, a JSON Lines line
    /// that does not, a CSV quote that is never closed.
    #[error("`{}`{}: invalid {format}: {message}; fix the file or load it as another format", path.display(), Position(*line, *column))]
    Parse {
        /// The path.
        path: PathBuf,
        /// The format it was read as.
        format: Format,
        /// The line (1-based) where the problem is, when known.
        line: Option<u64>,
        /// The column (1-based) on that line, when known.
        column: Option<u64>,
        /// What is wrong.
        message: String,
    },
    /// A CSV or TSV row whose number of fields differs from the header's. The other rows load.
    #[error(
        "`{}` row {row} (line {line}) has {found} fields but the header has {expected}; quote fields \
         that contain the delimiter, or fix the row",
        path.display()
    )]
    FieldCount {
        /// The path.
        path: PathBuf,
        /// The row, counted from 1 after the header.
        row: u64,
        /// The line where the row starts, 1-based.
        line: u64,
        /// The header's number of fields.
        expected: usize,
        /// The row's.
        found: usize,
    },
    /// A JSON record without the text field the loader was told to read.
    #[error(
        "`{}` {record}: no field `{field}`; every record needs it, or load without \
         `Loader::text_field` to read whole records",
        path.display()
    )]
    MissingField {
        /// The path.
        path: PathBuf,
        /// Which record: `item 3` of a JSON array, `line 7` of a JSON Lines file, `the value`.
        record: String,
        /// The field (a name, or a JSON pointer such as `/body/text`).
        field: String,
    },
    /// The PDF, or one of its pages, could not be read.
    #[error("`{}`{}: cannot extract the PDF's text: {message}", path.display(), Page(*page))]
    Pdf {
        /// The path.
        path: PathBuf,
        /// The page (1-based), or `None` when the whole file failed.
        page: Option<u32>,
        /// What the extractor said.
        message: String,
    },
    /// The PDF extractor panicked on the file or one of its pages; the panic was caught and
    /// nothing else is affected.
    #[error(
        "`{}`{}: the PDF extractor failed on this content ({message}); the file may be damaged \
         or use features it does not support: try re-saving or printing it to PDF",
        path.display(),
        Page(*page)
    )]
    ExtractorPanicked {
        /// The path.
        path: PathBuf,
        /// The page (1-based), or `None` when opening the file panicked.
        page: Option<u32>,
        /// The panic's message.
        message: String,
    },
    /// An include or exclude pattern of a directory loader is not a valid glob.
    #[error("`{pattern}` is not a valid glob pattern: {message}; patterns look like `**/*.md` or `docs/*`")]
    InvalidGlob {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        message: String,
    },
}

impl LoadError {
    /// The file (or source name) the error is about, when it is about one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Io { path, .. }
            | Self::NotADirectory { path }
            | Self::Unsupported { path, .. }
            | Self::FeatureDisabled { path, .. }
            | Self::NotUtf8 { path, .. }
            | Self::TooLarge { path, .. }
            | Self::Parse { path, .. }
            | Self::FieldCount { path, .. }
            | Self::MissingField { path, .. }
            | Self::Pdf { path, .. }
            | Self::ExtractorPanicked { path, .. } => Some(path),
            Self::InvalidGlob { .. } => None,
        }
    }

    /// The line (1-based) the error is at, for parse errors, rows and JSON Lines records.
    pub fn line(&self) -> Option<u64> {
        match self {
            Self::Parse { line, .. } => *line,
            Self::FieldCount { line, .. } => Some(*line),
            _ => None,
        }
    }
}

fn shown_extension(extension: Option<&str>) -> String {
    match extension {
        Some(e) => format!("the extension `.{e}`"),
        None => "no extension".to_owned(),
    }
}

/// ` (line 3, column 7)`, ` (line 3)` or nothing.
struct Position(Option<u64>, Option<u64>);

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(line), Some(column)) => write!(f, " (line {line}, column {column})"),
            (Some(line), None) => write!(f, " (line {line})"),
            _ => Ok(()),
        }
    }
}

/// ` page 3` or nothing.
struct Page(Option<u32>);

impl fmt::Display for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(page) => write!(f, " page {page}"),
            None => Ok(()),
        }
    }
}
