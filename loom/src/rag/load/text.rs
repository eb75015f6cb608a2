//! Plain text and Markdown.

use serde_json::Value;

use super::Format;
use crate::rag::{Document, Metadata};

/// Plain text, as is.
pub(super) fn text(source: &str, text: &str) -> Document {
    Document::new(source, text).with("format", Format::Text.name())
}

/// Markdown: the text as is, without a leading frontmatter block; `title` from the frontmatter
/// or the first heading; the frontmatter's `key: value` lines as metadata.
pub(super) fn markdown(source: &str, text: &str) -> Document {
    let (front, body) = split_frontmatter(text);
    let mut document = Document::new(source, body).with("format", Format::Markdown.name());
    if let Some(front) = front.and_then(simple_entries) {
        for (key, value) in front {
            document.metadata.entry(key).or_insert(value);
        }
    }
    if !matches!(document.metadata.get("title"), Some(Value::String(_)))
        && let Some(title) = first_heading(&document.text)
    {
        document.metadata.insert("title".into(), Value::String(title));
    }
    document
}

/// A leading `---` … `---` (or `...`) block, and the text after it. Without a closed block,
/// no frontmatter and the whole text.
fn split_frontmatter(text: &str) -> (Option<&str>, &str) {
    let mut lines = text.split_inclusive('\n');
    let Some(first) = lines.next() else { return (None, text) };
    if first.trim_end() != "---" {
        return (None, text);
    }
    let start = first.len();
    let mut at = start;
    for line in lines {
        let bare = line.trim_end();
        if bare == "---" || bare == "..." {
            let yaml = text.get(start..at).unwrap_or("");
            let body = text.get(at + line.len()..).unwrap_or("");
            return (Some(yaml), body.trim_start_matches(['\r', '\n']));
        }
        at += line.len();
    }
    (None, text)
}

/// The entries of a frontmatter made only of `key: value` lines (blank lines and `#` comments
/// allowed); `None` when any line is something else (nested YAML, lists, multi-line values).
fn simple_entries(yaml: &str) -> Option<Metadata> {
    let mut entries = Metadata::new();
    for line in yaml.lines() {
        let line = line.trim_end();
        if line.trim_start().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once(':')?;
        let simple_key = !key.is_empty()
            && key.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
            && !key.starts_with('-');
        let value = value.trim();
        if !simple_key || value.is_empty() || matches!(value.chars().next(), Some('|' | '>' | '&' | '*' | '!')) {
            return None;
        }
        entries.insert(key.to_owned(), scalar(value)?);
    }
    Some(entries)
}

/// A one-line YAML scalar: a quoted string, `true`/`false`, a number, or a plain string.
/// `None` for an unterminated quote.
fn scalar(value: &str) -> Option<Value> {
    for quote in ['"', '\''] {
        if let Some(rest) = value.strip_prefix(quote) {
            let inner = rest.strip_suffix(quote)?;
            return Some(Value::String(if quote == '\'' { inner.replace("''", "'") } else { inner.to_owned() }));
        }
    }
    // A comment after a plain value: `draft: true # for now`.
    let value = value.split_once(" #").map_or(value, |(v, _)| v.trim_end());
    Some(match value {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => match value.parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => match value.parse::<f64>() {
                Ok(x) if x.is_finite() && value.bytes().any(|b| b.is_ascii_digit()) => Value::from(x),
                _ => Value::String(value.to_owned()),
            },
        },
    })
}

/// The text of the first ATX heading (`# Title`, up to three spaces of indent, a closing
/// `#` run dropped) outside fenced code blocks.
pub(super) fn first_heading(text: &str) -> Option<String> {
    let mut fence: Option<(char, usize)> = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let bare = line.trim_start_matches(' ');
        if let Some(marker) = bare.chars().next().filter(|c| *c == '`' || *c == '~') {
            let run = bare.len() - bare.trim_start_matches(marker).len();
            if indent <= 3 && run >= 3 {
                match fence {
                    None => fence = Some((marker, run)),
                    Some((m, n)) if m == marker && run >= n && bare.trim_start_matches(marker).trim().is_empty() => {
                        fence = None;
                    }
                    Some(_) => {}
                }
                continue;
            }
        }
        if fence.is_some() || indent > 3 {
            continue;
        }
        let hashes = bare.len() - bare.trim_start_matches('#').len();
        if !(1..=6).contains(&hashes) {
            continue;
        }
        let rest = bare.get(hashes..).unwrap_or("");
        if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
            continue;
        }
        let rest = rest.trim();
        // A closing run of `#` counts only after a space (`# C#` keeps its `#`).
        let trimmed = rest.trim_end_matches('#');
        let title = if trimmed.is_empty() || trimmed.ends_with([' ', '\t']) { trimmed.trim_end() } else { rest };
        if !title.is_empty() {
            return Some(title.to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simple_frontmatter_becomes_metadata_and_leaves_the_text() {
        let doc = markdown(
            "a.md",
            "---\ntitle: \"Weaving, a primer\"\nweight: 3\ndraft: false\ntags: loom # later\n---\n\n# Heading\nBody\n",
        );
        assert_eq!(doc.text, "# Heading\nBody\n");
        assert_eq!(doc.metadata["title"], "Weaving, a primer");
        assert_eq!(doc.metadata["weight"], 3);
        assert_eq!(doc.metadata["draft"], false);
        assert_eq!(doc.metadata["tags"], "loom");
        assert_eq!(doc.metadata["source"], "a.md");
    }

    #[test]
    fn a_nested_frontmatter_is_dropped_and_cannot_override_the_source() {
        let doc = markdown("a.md", "---\nsource: elsewhere\nauthors:\n  - ann\n---\nText\n");
        assert_eq!(doc.text, "Text\n");
        assert_eq!(doc.metadata["source"], "a.md");
        assert!(!doc.metadata.contains_key("authors"));

        let doc = markdown("b.md", "---\nsource: elsewhere\nkind: note\n---\nText\n");
        assert_eq!(doc.metadata["source"], "b.md");
        assert_eq!(doc.metadata["kind"], "note");
    }

    #[test]
    fn an_unclosed_frontmatter_is_text() {
        let text = "---\nnot: closed\n\nJust a rule above.\n";
        let doc = markdown("a.md", text);
        assert_eq!(doc.text, text);
        assert!(!doc.metadata.contains_key("not"));
    }

    #[test]
    fn the_title_is_the_first_heading_outside_code() {
        let text = "intro\n```sh\n# not a heading\n```\n    # indented code\n#hashtag\n## Real one ##\n# Later\n";
        assert_eq!(first_heading(text).as_deref(), Some("Real one"));
        assert_eq!(first_heading("# C#\n").as_deref(), Some("C#"));
        assert_eq!(first_heading("no headings\n"), None);
        assert_eq!(markdown("a.md", "# Top\n").metadata["title"], "Top");
    }
}
