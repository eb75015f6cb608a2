//! CSV and TSV: one document per row, read by an RFC 4180 parser.
//!
//! Fields are separated by the delimiter and records by `\n`, `\r\n` or `\r`. A field that
//! starts with `"` is quoted: it runs to the next lone `"`, `""` inside it is one `"`, and it
//! may hold delimiters and line breaks. Blank lines are skipped. Two things RFC 4180 forbids
//! are read leniently, as most writers and readers do: a `"` inside an unquoted field is
//! kept, and text between a closing quote and the next delimiter is appended to the field.

use std::path::Path;

use super::{Format, LoadError, Parsed};
use crate::rag::Document;

/// A parsed record: its fields and the line it starts on (1-based).
#[derive(Debug, PartialEq)]
pub(super) struct Record {
    pub(super) fields: Vec<String>,
    pub(super) line: u64,
}

/// A quote that is never closed: the line it opens on.
#[derive(Debug, PartialEq)]
pub(super) struct Unterminated {
    pub(super) line: u64,
}

/// Splits `text` into records. Stops at a quote that is never closed, with the records
/// before it.
pub(super) fn records(text: &str, delimiter: char) -> (Vec<Record>, Option<Unterminated>) {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line: u64 = 1;
    loop {
        // Blank lines between records are skipped.
        while let Some(&c) = chars.peek() {
            if c != '\n' && c != '\r' {
                break;
            }
            chars.next();
            if c == '\n' || chars.peek() != Some(&'\n') {
                line += 1;
            }
        }
        if chars.peek().is_none() {
            return (out, None);
        }
        let start = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        loop {
            // At the start of a field.
            if chars.peek() == Some(&'"') {
                chars.next();
                let open = line;
                loop {
                    match chars.next() {
                        None => return (out, Some(Unterminated { line: open })),
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some('"') => break,
                        Some(c) => {
                            if c == '\n' || (c == '\r' && chars.peek() != Some(&'\n')) {
                                line += 1;
                            }
                            field.push(c);
                        }
                    }
                }
            }
            // The unquoted part (all of an unquoted field, or what trails a closing quote).
            let mut end_of_record = true;
            while let Some(c) = chars.next() {
                if c == delimiter {
                    end_of_record = false;
                    break;
                }
                if c == '\n' || c == '\r' {
                    if c == '\r' && chars.peek() == Some(&'\n') {
                        chars.next();
                    }
                    line += 1;
                    break;
                }
                field.push(c);
            }
            fields.push(std::mem::take(&mut field));
            if end_of_record {
                break;
            }
        }
        out.push(Record { fields, line: start });
    }
}

/// One document per row after the header: `header: value` lines, id `source#row=N`, metadata
/// `row` and `line`. A row with the wrong number of fields is a problem; the others load.
pub(super) fn load(source: &str, text: &str, format: Format) -> Parsed {
    let delimiter = if format == Format::Tsv { '\t' } else { ',' };
    let (records, unterminated) = records(text, delimiter);
    let mut parsed = Parsed::default();
    let mut rows = records.into_iter();
    if let Some(header) = rows.next() {
        let names: Vec<String> = header
            .fields
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let name = name.trim();
                if name.is_empty() { format!("column {}", i + 1) } else { name.to_owned() }
            })
            .collect();
        for (n, record) in (1u64..).zip(rows) {
            if record.fields.len() != names.len() {
                parsed.problems.push(LoadError::FieldCount {
                    path: source.into(),
                    row: n,
                    line: record.line,
                    expected: names.len(),
                    found: record.fields.len(),
                });
                continue;
            }
            let text: Vec<String> = names
                .iter()
                .zip(&record.fields)
                .map(|(name, value)| format!("{name}: {value}").trim_end().to_owned())
                .collect();
            parsed.documents.push(
                Document::new(format!("{source}#row={n}"), text.join("\n"))
                    .with("source", source)
                    .with("format", format.name())
                    .with("row", n)
                    .with("line", record.line),
            );
        }
    }
    if let Some(Unterminated { line }) = unterminated {
        parsed.problems.push(LoadError::Parse {
            path: Path::new(source).into(),
            format,
            line: Some(line),
            column: None,
            message: "a quoted field opens here and is never closed (a `\"` inside a quoted field is written `\"\"`)"
                .into(),
        });
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Vec<Vec<String>> {
        let (records, end) = records(text, ',');
        assert_eq!(end, None);
        records.into_iter().map(|r| r.fields).collect()
    }

    #[test]
    fn quoted_fields_hold_delimiters_quotes_and_line_breaks() {
        assert_eq!(
            fields("a,b,c\n\"x, y\",\"say \"\"hi\"\"\",\"two\nlines\"\n"),
            [vec!["a", "b", "c"], vec!["x, y", "say \"hi\"", "two\nlines"]]
        );
    }

    #[test]
    fn empty_fields_crlf_and_a_missing_final_newline() {
        assert_eq!(fields("a,,c\r\n,\r\n\"\",z"), [vec!["a", "", "c"], vec!["", ""], vec!["", "z"]]);
    }

    #[test]
    fn blank_lines_are_skipped_and_lines_counted_across_quoted_breaks() {
        let (records, _) = records("h1,h2\n\n\"a\nb\",c\r\n\r\nd,e\n", ',');
        let lines: Vec<u64> = records.iter().map(|r| r.line).collect();
        assert_eq!(lines, [1, 3, 6]);
    }

    #[test]
    fn stray_quotes_are_kept_leniently() {
        assert_eq!(fields("5\" disk,\"a\"b\n"), [vec!["5\" disk", "ab"]]);
    }

    #[test]
    fn an_unterminated_quote_stops_with_its_line() {
        let (records, end) = records("a\nb\n\"open,\nmore\n", ',');
        assert_eq!(records.len(), 2);
        assert_eq!(end, Some(Unterminated { line: 3 }));
    }

    #[test]
    fn rows_become_header_value_lines_and_a_short_row_is_reported() {
        let parsed = load("t.csv", "name,note\nloom,\"warp, weft\"\nshort\nlast,one\n", Format::Csv);
        let ids: Vec<&str> = parsed.documents.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["t.csv#row=1", "t.csv#row=3"]);
        assert_eq!(parsed.documents[0].text, "name: loom\nnote: warp, weft");
        assert_eq!(parsed.documents[1].metadata["row"], 3);
        assert_eq!(parsed.documents[1].metadata["line"], 4);
        assert_eq!(parsed.documents[0].metadata["source"], "t.csv");
        match parsed.problems.as_slice() {
            [LoadError::FieldCount { row: 2, line: 3, expected: 2, found: 1, .. }] => {}
            other => panic!("expected one field-count problem, got {other:?}"),
        }
    }

    #[test]
    fn tsv_splits_on_tabs_only() {
        let parsed = load("t.tsv", "a\tb\nx, y\tz\n", Format::Tsv);
        assert_eq!(parsed.documents[0].text, "a: x, y\nb: z");
        assert!(parsed.problems.is_empty());
    }
}
