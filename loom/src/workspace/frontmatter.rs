//! Notes as Markdown files with a YAML frontmatter, for the disk workspace: one `key: value`
//! a line, strings that need it in double quotes (JSON's escapes, which YAML reads alike),
//! tags as a flow list, then the body exactly as written.
//!
//! ```text
//! ---
//! title: "Competitor pricing"
//! author: researcher
//! kind: finding
//! tags: ["pricing"]
//! version: 2
//! created_at: 2026-03-01T09:00:00Z
//! updated_at: 2026-03-02T10:30:00.250Z
//! cited_count: 1
//! success_count: 1
//! ---
//! Acme charges $59 a seat since June.
//! ```

use std::fmt::Write as _;

use serde_json::Value;

use super::types::{Note, NoteKind, NoteVersion};
use crate::memory::Timestamp;

fn line(out: &mut String, key: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{key}: {value}");
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

fn tags(tags: &[String]) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "[]".to_owned())
}

/// The file of a note: its frontmatter, then its body.
pub(crate) fn write_note(note: &Note) -> String {
    let mut out = String::with_capacity(note.body.len() + 400);
    out.push_str("---\n");
    line(&mut out, "title", quoted(&note.title));
    line(&mut out, "author", &note.author);
    line(&mut out, "kind", note.kind);
    if !note.tags.is_empty() {
        line(&mut out, "tags", tags(&note.tags));
    }
    if let Some(parent) = &note.parent {
        line(&mut out, "parent", parent);
    }
    line(&mut out, "version", note.version);
    line(&mut out, "created_at", note.created_at);
    line(&mut out, "updated_at", note.updated_at);
    if let Some(at) = note.archived_at {
        line(&mut out, "archived_at", at);
    }
    if let Some(by) = &note.answered_by {
        line(&mut out, "answered_by", by);
    }
    if let Some(at) = note.answered_at {
        line(&mut out, "answered_at", at);
    }
    line(&mut out, "cited_count", note.cited_count);
    line(&mut out, "success_count", note.success_count);
    if let Some(at) = note.last_cited_at {
        line(&mut out, "last_cited_at", at);
    }
    out.push_str("---\n");
    out.push_str(&note.body);
    // Files end with a line break; reading takes it off again.
    out.push('\n');
    out
}

/// The file of an earlier version of a note.
pub(crate) fn write_version(v: &NoteVersion) -> String {
    let mut out = String::with_capacity(v.body.len() + 200);
    out.push_str("---\n");
    line(&mut out, "title", quoted(&v.title));
    line(&mut out, "author", &v.author);
    line(&mut out, "kind", v.kind);
    if !v.tags.is_empty() {
        line(&mut out, "tags", tags(&v.tags));
    }
    if let Some(parent) = &v.parent {
        line(&mut out, "parent", parent);
    }
    line(&mut out, "version", v.version);
    line(&mut out, "written_at", v.written_at);
    out.push_str("---\n");
    out.push_str(&v.body);
    out.push('\n');
    out
}

/// A file's frontmatter fields and its body.
struct Parsed<'t> {
    fields: Vec<(&'t str, &'t str)>,
    body: &'t str,
}

impl Parsed<'_> {
    fn raw(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn text(&self, key: &str) -> Result<Option<String>, String> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) if v.starts_with('"') => {
                serde_json::from_str::<String>(v).map(Some).map_err(|e| format!("`{key}` is not a quoted string: {e}"))
            }
            Some(v) if v.starts_with('\'') && v.ends_with('\'') && v.len() >= 2 => {
                Ok(Some(v[1..v.len() - 1].replace("''", "'")))
            }
            Some("") | Some("~") | Some("null") => Ok(None),
            Some(v) => Ok(Some(v.to_owned())),
        }
    }

    fn required(&self, key: &str) -> Result<String, String> {
        self.text(key)?.ok_or_else(|| format!("`{key}` is missing"))
    }

    fn number(&self, key: &str) -> Result<Option<u64>, String> {
        self.text(key)?.map(|v| v.parse::<u64>().map_err(|_| format!("`{key}` is not a number: `{v}`"))).transpose()
    }

    fn time(&self, key: &str) -> Result<Option<Timestamp>, String> {
        self.text(key)?.map(|v| Timestamp::parse(&v).map_err(|e| format!("`{key}`: {e}"))).transpose()
    }

    fn kind(&self) -> Result<NoteKind, String> {
        let kind = self.required("kind")?;
        NoteKind::from_word(&kind).ok_or_else(|| format!("`kind` is `{kind}`, not a kind of note"))
    }

    fn tags(&self) -> Result<Vec<String>, String> {
        match self.raw("tags") {
            None | Some("") | Some("[]") => Ok(Vec::new()),
            Some(v) if v.starts_with('[') => match serde_json::from_str::<Value>(v) {
                Ok(Value::Array(items)) => Ok(items
                    .into_iter()
                    .map(|t| match t {
                        Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect()),
                _ => {
                    // A YAML flow list without quotes: `[pricing, q3]`.
                    let inner = v.trim_start_matches('[').trim_end_matches(']');
                    Ok(inner
                        .split(',')
                        .map(|t| t.trim().trim_matches('"').to_owned())
                        .filter(|t| !t.is_empty())
                        .collect())
                }
            },
            Some(v) => Ok(v.split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect()),
        }
    }
}

fn parse(text: &str) -> Result<Parsed<'_>, String> {
    let rest = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
        .ok_or("the file does not begin with a `---` line (the frontmatter)")?;
    let mut fields = Vec::new();
    let mut offset = 0;
    for raw in rest.split_inclusive('\n') {
        offset += raw.len();
        let l = raw.trim_end_matches(['\n', '\r']);
        if l == "---" {
            let body = &rest[offset..];
            let body = body.strip_suffix('\n').unwrap_or(body);
            return Ok(Parsed { fields, body });
        }
        if l.trim().is_empty() || l.trim_start().starts_with('#') {
            continue;
        }
        let (key, value) =
            l.split_once(':').ok_or_else(|| format!("the frontmatter line `{l}` has no `key: value`"))?;
        fields.push((key.trim(), value.trim()));
    }
    Err("the frontmatter has no closing `---` line".to_owned())
}

/// The note in a file, whose location gives its slug and author.
pub(crate) fn read_note(text: &str, slug: &str, author: &str) -> Result<Note, String> {
    let p = parse(text)?;
    let updated_at = p.time("updated_at")?.ok_or("`updated_at` is missing")?;
    Ok(Note {
        slug: slug.to_owned(),
        author: author.to_owned(),
        title: p.required("title")?,
        body: p.body.to_owned(),
        kind: p.kind()?,
        tags: p.tags()?,
        parent: p.text("parent")?,
        version: p.number("version")?.unwrap_or(1),
        created_at: p.time("created_at")?.unwrap_or(updated_at),
        updated_at,
        archived_at: p.time("archived_at")?,
        answered_by: p.text("answered_by")?,
        answered_at: p.time("answered_at")?,
        cited_count: p.number("cited_count")?.unwrap_or(0),
        success_count: p.number("success_count")?.unwrap_or(0),
        last_cited_at: p.time("last_cited_at")?,
    })
}

/// The earlier version of note `slug` in a file.
pub(crate) fn read_version(text: &str, slug: &str) -> Result<NoteVersion, String> {
    let p = parse(text)?;
    Ok(NoteVersion {
        slug: slug.to_owned(),
        version: p.number("version")?.ok_or("`version` is missing")?,
        author: p.required("author")?,
        title: p.required("title")?,
        body: p.body.to_owned(),
        kind: p.kind()?,
        tags: p.tags()?,
        parent: p.text("parent")?,
        written_at: p.time("written_at")?.ok_or("`written_at` is missing")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_reads_back_as_written() -> Result<(), String> {
        let note = Note {
            slug: "q3-pricing".into(),
            author: "researcher".into(),
            title: "Q3: \"pricing\" — €".into(),
            body: "line one\n---\nline: three\n\n".into(),
            kind: NoteKind::Decision,
            tags: vec!["pricing".into(), "a, b".into()],
            parent: Some("earlier".into()),
            version: 3,
            created_at: Timestamp::from_ymd(2026, 3, 1),
            updated_at: Timestamp::from_ymd_hms(2026, 3, 2, 10, 30, 0).plus_millis(250),
            archived_at: Some(Timestamp::from_ymd(2026, 4, 1)),
            answered_by: None,
            answered_at: None,
            cited_count: 2,
            success_count: 1,
            last_cited_at: Some(Timestamp::from_ymd(2026, 3, 5)),
        };
        let text = write_note(&note);
        assert!(text.starts_with("---\ntitle: \"Q3: \\\"pricing\\\" — €\"\nauthor: researcher\nkind: decision\n"));
        assert_eq!(read_note(&text, "q3-pricing", "researcher")?, note);
        let v = note.as_version();
        assert_eq!(read_version(&write_version(&v), "q3-pricing")?, v);
        // Hand-written YAML reads too.
        let hand = "---\r\ntitle: 'It''s here'\r\nauthor: x\r\nkind: Findings\r\ntags: [a, b]\r\nupdated_at: 2026-01-01\r\n---\r\nbody\r\n";
        let read = read_note(hand, "s", "x")?;
        assert_eq!((read.title.as_str(), read.tags.len(), read.kind), ("It's here", 2, NoteKind::Finding));
        assert!(read_note("no frontmatter", "s", "x").is_err());
        assert!(read_note("---\ntitle: \"x\"\n", "s", "x").is_err());
        Ok(())
    }
}
