//! `read_file`: numbered lines of a text file, a range at a time.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};

use super::Filesystem;
use super::path::RelPath;
use super::root::file_size;
use crate::tool::{Arguments, ToolError};

/// How many bytes of a file are looked at for NUL bytes before it is read as text.
pub(super) const SNIFF_BYTES: usize = 8 * 1024;

/// The longest line shown, in characters; a longer one is cut with a note.
const MAX_LINE_CHARS: usize = 2000;

pub(super) fn run(fs: &Filesystem, raw: &str) -> Result<String, ToolError> {
    let mut args = Arguments::parse(raw)?;
    let path: String = args.take("path")?;
    let offset: Option<u64> = args.take("offset")?;
    let limit: Option<u64> = args.take("limit")?;
    args.finish(&["path", "offset", "limit"])?;
    let offset = match offset {
        None => 1,
        Some(0) => {
            return Err(ToolError::invalid_arguments("`offset` counts lines from 1; use offset 1 for the first line"));
        }
        Some(n) => n,
    };
    let max_lines = fs.settings.max_read_lines as u64;
    let limit = match limit {
        None => max_lines,
        Some(0) => return Err(ToolError::invalid_arguments("`limit` must be at least 1 line")),
        Some(n) => n.min(max_lines),
    };

    let rel = RelPath::parse(&path, fs.root(), false)?;
    let (file, stat) = fs.root.open_file(&rel, "; use list_dir to see what it holds")?;
    let size = file_size(&stat);
    if size == 0 {
        return Ok(format!("`{}` is empty (0 bytes)", rel.shown()));
    }
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let head = reader.fill_buf().map_err(|e| read_error(&rel, &e))?;
    if head[..head.len().min(SNIFF_BYTES)].contains(&0) {
        return Err(binary(&rel, size));
    }

    let mut out = String::new();
    let mut line = Vec::new();
    let mut number: u64 = 0;
    let mut shown: u64 = 0;
    let mut cut_at_bytes = false;
    loop {
        let wanted = number + 1 >= offset;
        let Some(full_len) = next_line(&mut reader, &mut line, if wanted { MAX_LINE_CHARS * 4 } else { 0 })
            .map_err(|e| read_error(&rel, &e))?
        else {
            break;
        };
        number += 1;
        if !wanted {
            continue;
        }
        if line.contains(&0) {
            return Err(binary(&rel, size));
        }
        let text = utf8_prefix(&line, full_len).ok_or_else(|| {
            ToolError::new(format!(
                "`{}` is not UTF-8 text (line {number} is not valid UTF-8); read_file only reads text files",
                rel.shown()
            ))
        })?;
        let text = text.strip_suffix('\r').unwrap_or(text);
        let mut entry = String::with_capacity(text.len() + 8);
        let _ = write!(entry, "{number:>6}\t");
        match text.char_indices().nth(MAX_LINE_CHARS) {
            Some((end, _)) => {
                let _ = write!(entry, "{}… [line cut: {full_len} bytes in all]", &text[..end]);
            }
            None if full_len > line.len() => {
                let _ = write!(entry, "{text}… [line cut: {full_len} bytes in all]");
            }
            None => entry.push_str(text),
        }
        entry.push('\n');
        if shown > 0 && out.len() + entry.len() > fs.settings.max_read_bytes {
            cut_at_bytes = true;
            break;
        }
        out.push_str(&entry);
        shown += 1;
        if shown >= limit {
            break;
        }
    }

    if shown == 0 {
        return Err(ToolError::invalid_arguments(format!(
            "offset {offset} is past the end of `{}`, which has {number} line{}",
            rel.shown(),
            if number == 1 { "" } else { "s" }
        )));
    }
    let last = offset + shown - 1;
    let more = cut_at_bytes || !reader.fill_buf().map_err(|e| read_error(&rel, &e))?.is_empty();
    if cut_at_bytes {
        let _ = write!(
            out,
            "\n(output cut at {} bytes after line {last}; read on with offset={})",
            fs.settings.max_read_bytes,
            last + 1
        );
    } else if more {
        let _ = write!(out, "\n(showing lines {offset}-{last}; the file goes on: read on with offset={})", last + 1);
    } else if offset > 1 {
        let _ = write!(out, "\n(lines {offset}-{last} of {last}; end of file)");
    }
    Ok(out)
}

/// Reads one line into `buf`, keeping at most `keep` bytes of it (a huge line is not held in
/// memory). Returns the line's full length without its `\n`, or `None` at the end of the file.
fn next_line<R: Read>(reader: &mut BufReader<R>, buf: &mut Vec<u8>, keep: usize) -> std::io::Result<Option<usize>> {
    buf.clear();
    let mut len = 0;
    let mut any = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(any.then_some(len));
        }
        any = true;
        let (piece, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        let room = keep.saturating_sub(buf.len());
        buf.extend_from_slice(&piece[..piece.len().min(room)]);
        len += piece.len();
        let used = done.unwrap_or(chunk.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(Some(len));
        }
    }
}

/// The line as text: all of it when it was kept whole, else the valid prefix up to the cut
/// (a character split by the cut is dropped). `None` when the bytes are not UTF-8.
fn utf8_prefix(kept: &[u8], full_len: usize) -> Option<&str> {
    match std::str::from_utf8(kept) {
        Ok(text) => Some(text),
        // Cut in the middle of a character: only the end is incomplete.
        Err(e) if kept.len() < full_len && e.error_len().is_none() => {
            std::str::from_utf8(&kept[..e.valid_up_to()]).ok()
        }
        Err(_) => None,
    }
}

fn binary(rel: &RelPath, size: u64) -> ToolError {
    ToolError::new(format!(
        "`{}` is a binary file ({size} bytes; it contains NUL bytes); read_file only reads text files",
        rel.shown()
    ))
}

fn read_error(rel: &RelPath, e: &std::io::Error) -> ToolError {
    ToolError::new(format!("`{}` could not be read: {e}", rel.shown()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[u8], keep: usize) -> Vec<(Vec<u8>, usize)> {
        let mut reader = BufReader::with_capacity(4, text);
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while let Ok(Some(len)) = next_line(&mut reader, &mut buf, keep) {
            out.push((buf.clone(), len));
        }
        out
    }

    #[test]
    fn lines_are_split_and_long_ones_kept_only_in_part() {
        assert_eq!(lines(b"ab\ncd", 10), [(b"ab".to_vec(), 2), (b"cd".to_vec(), 2)]);
        assert_eq!(lines(b"abcdefghij\n", 3), [(b"abc".to_vec(), 10)]);
        assert_eq!(lines(b"\n\n", 3), [(vec![], 0), (vec![], 0)]);
        assert!(lines(b"", 3).is_empty());
    }

    #[test]
    fn a_character_cut_in_half_is_dropped_but_bad_bytes_are_refused() {
        let e_acute = "é".as_bytes();
        assert_eq!(utf8_prefix(&[b'a', e_acute[0]], 3), Some("a"));
        assert_eq!(utf8_prefix(&[b'a', 0xff], 2), None);
        assert_eq!(utf8_prefix(&[b'a', e_acute[0]], 2), None);
    }
}
