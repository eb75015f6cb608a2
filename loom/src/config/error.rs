//! What can be wrong with a config file, said with the file, line and column.

use std::fmt;
use std::path::{Path, PathBuf};

/// A config file that could not be read, parsed or turned into an agent or workflow.
///
/// Its `Display` is what a person fixing the file needs: `agent.toml:3:1: unknown key
/// `max_turn` (did you mean `max_turns`?)`, then the line with a caret under the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("cannot read `{}`: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not valid TOML, has a key Loom does not know, or a value of the wrong type.
    #[error("{0}")]
    Toml(Box<TomlProblem>),
    /// The file is valid TOML of the right shape but asks for something that cannot be: a
    /// tool the registry does not have, a node no agent defines, a backend whose cargo feature
    /// is off.
    #[error("{}", invalid_text(.file.as_deref(), .key, .message, .location.as_ref()))]
    Invalid {
        /// The file, when the text came from one.
        file: Option<PathBuf>,
        /// The key, dotted (`workflow.edges[1].to`).
        key: String,
        /// What is wrong and what to do.
        message: String,
        /// Where the key's value is in the text, when the text is known.
        location: Option<Location>,
    },
    /// A `${NAME}` reference could not be resolved.
    #[error("{file}: `{key}`: {source}", file = display_file(.file.as_deref()))]
    Secret {
        /// The file, when the text came from one.
        file: Option<PathBuf>,
        /// The key holding the reference.
        key: String,
        /// Why it could not be resolved.
        source: crate::governance::SecretsError,
    },
}

/// Where a key's value is in a config file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The line of the file, and the caret under the value.
    pub excerpt: String,
}

impl Location {
    /// The value at `key` (dotted, with `[i]` indices: `agents.draft.tools[1]`) in `text`.
    pub(super) fn of(text: &str, key: &str) -> Option<Self> {
        let span = span_of(text, key)?;
        let (line, column, excerpt) = locate(text, span.start, span.len().max(1));
        Some(Self { line, column, excerpt })
    }
}

fn invalid_text(file: Option<&Path>, key: &str, message: &str, location: Option<&Location>) -> String {
    match location {
        Some(at) => format!("{}:{}:{}: `{key}`: {message}\n{}", display_file(file), at.line, at.column, at.excerpt),
        None => format!("{}: `{key}`: {message}", display_file(file)),
    }
}

/// The span of the value at a dotted key path in `text`.
fn span_of(text: &str, key: &str) -> Option<std::ops::Range<usize>> {
    use toml::de::{DeTable, DeValue};
    let root = DeTable::parse(text).ok()?;
    let mut table: &DeTable<'_> = root.get_ref();
    let mut current: Option<&toml::Spanned<DeValue<'_>>> = None;
    for segment in key.split('.').filter(|s| !s.is_empty()) {
        let (name, indices) = segment.split_once('[').map_or((segment, ""), |(n, rest)| (n, rest));
        if let Some(value) = current {
            let DeValue::Table(inner) = value.get_ref() else { return None };
            table = inner;
        }
        let (_, mut value) = table.iter().find(|(k, _)| k.get_ref() == name)?;
        for index in indices.split('[').map(|i| i.trim_end_matches(']')).filter(|i| !i.is_empty()) {
            let DeValue::Array(items) = value.get_ref() else { return None };
            value = items.get(index.parse::<usize>().ok()?)?;
        }
        current = Some(value);
    }
    current.map(toml::Spanned::span)
}

fn display_file(file: Option<&Path>) -> String {
    file.map_or_else(|| "<config>".to_owned(), |f| f.display().to_string())
}

/// A TOML syntax, key or type problem, located.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TomlProblem {
    /// The file, when the text came from one.
    pub file: Option<PathBuf>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The key path, dotted, when known (`budget.per_user.cost_usd`).
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
    /// The closest known key or value, for a misspelt one.
    pub suggestion: Option<String>,
    /// The keys or values that would have been accepted there.
    pub expected: Vec<String>,
    /// The line of the file, and the caret under the problem.
    pub excerpt: String,
}

impl fmt::Display for TomlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", display_file(self.file.as_deref()), self.line, self.column, self.message)?;
        if let Some(s) = &self.suggestion {
            write!(f, " (did you mean `{s}`?)")?;
        }
        if !self.excerpt.is_empty() {
            write!(f, "\n{}", self.excerpt)?;
        }
        if !self.expected.is_empty() {
            let list = self.expected.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ");
            write!(f, "\n  = expected one of: {list}")?;
        }
        Ok(())
    }
}

impl TomlProblem {
    /// Locates and rewords a `toml` error for a person.
    pub(super) fn new(
        file: Option<&Path>,
        text: &str,
        error: &toml::de::Error,
        path: Option<&serde_path_to_error::Path>,
    ) -> Self {
        let offset = error.span().map_or(0, |s| s.start).min(text.len());
        let (line, column, excerpt) = locate(text, offset, error.span().map_or(1, |s| s.len().max(1)));
        let key = path.map(ToString::to_string).filter(|p| p != "." && !p.is_empty());
        let raw = error.message().trim();
        let (message, suggestion, expected) = reword(raw, key.as_deref());
        Self { file: file.map(Path::to_path_buf), line, column, key, message, suggestion, expected, excerpt }
    }
}

/// Line, column and a two-line excerpt (the line, a caret under the span) at `offset`.
fn locate(text: &str, offset: usize, len: usize) -> (usize, usize, String) {
    let mut offset = offset;
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..offset].chars().count() + 1;
    let line_text = text[line_start..].lines().next().unwrap_or("");
    let width = line_text.chars().count().saturating_sub(column - 1).max(1);
    let number = line.to_string();
    let pad = " ".repeat(number.len());
    let excerpt = format!(
        "{pad} |\n{number} | {line_text}\n{pad} | {}{}",
        " ".repeat(column - 1),
        "^".repeat(len.min(width).max(1))
    );
    (line, column, excerpt)
}

/// Rewords serde's messages: `unknown field` → an unknown key with a suggestion; `invalid
/// type` → which key wanted what.
fn reword(raw: &str, key: Option<&str>) -> (String, Option<String>, Vec<String>) {
    let first_line = raw.lines().next().unwrap_or(raw);
    for (prefix, what) in [("unknown field `", "key"), ("unknown variant `", "value")] {
        if let Some(rest) = first_line.strip_prefix(prefix)
            && let Some((name, tail)) = rest.split_once('`')
        {
            let expected = backticked(tail);
            let suggestion =
                loomflow_graph::suggest::did_you_mean(name, expected.iter().map(String::as_str)).map(str::to_owned);
            let place = match (what, key) {
                ("key", Some(k)) => match k.rsplit_once('.') {
                    Some((table, _)) => format!(" in `{table}`"),
                    None => " at the top level".to_owned(),
                },
                ("value", Some(k)) => format!(" for `{k}`"),
                _ => String::new(),
            };
            let message = format!("unknown {what} `{name}`{place}");
            return (message, suggestion, expected);
        }
    }
    if let Some(rest) = first_line.strip_prefix("invalid type: ")
        && let Some((found, expected)) = rest.rsplit_once(", expected ")
    {
        let expected = match expected {
            "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)",
            "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
            "f32" | "f64" => "a number",
            "a boolean" | "bool" => "`true` or `false`",
            other => other,
        };
        let message = match key {
            Some(k) => format!("wrong type for `{k}`: expected {expected}, found {found}"),
            None => format!("wrong type: expected {expected}, found {found}"),
        };
        return (message, None, Vec::new());
    }
    if let Some(field) = first_line.strip_prefix("missing field `").and_then(|r| r.split_once('`')).map(|(f, _)| f) {
        let message = match key {
            Some(k) => format!("`{k}` needs the key `{field}`"),
            None => format!("the key `{field}` is required"),
        };
        return (message, None, Vec::new());
    }
    let message = match key {
        Some(k) => format!("`{k}`: {first_line}"),
        None => first_line.to_owned(),
    };
    (message, None, Vec::new())
}

fn backticked(text: &str) -> Vec<String> {
    text.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_points_at_the_column() {
        let (line, column, excerpt) = locate("a = 1\nmax_turn = 3\n", 6, 8);
        assert_eq!((line, column), (2, 1));
        assert_eq!(excerpt, "  |\n2 | max_turn = 3\n  | ^^^^^^^^");
    }

    #[test]
    fn a_dotted_key_with_indices_is_found_in_the_text() {
        let text = "[agents.a]\ntools = [\"x\", \"yy\"]\n\n[[mcp]]\nname = \"files\"\n";
        let at = Location::of(text, "agents.a.tools[1]").map(|l| (l.line, l.column));
        assert_eq!(at, Some((2, 15)));
        assert_eq!(Location::of(text, "mcp[0].name").map(|l| l.line), Some(5));
        assert_eq!(Location::of(text, "agents.b"), None);
        assert_eq!(Location::of(text, "agents.a.tools[7]"), None);
        assert_eq!(Location::of("not toml [", "x"), None);
    }

    #[test]
    fn the_keys_serde_expected_are_listed() {
        let (message, suggestion, expected) =
            reword("unknown field `max_turn`, expected one of `model`, `max_turns`", Some("max_turn"));
        assert_eq!(message, "unknown key `max_turn` at the top level");
        assert_eq!(suggestion.as_deref(), Some("max_turns"));
        assert_eq!(expected, ["model", "max_turns"]);
    }
}
