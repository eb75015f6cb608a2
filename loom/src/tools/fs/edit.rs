//! `edit_file`: exact-string replacement, unique unless told otherwise.

use std::io::Read as _;
use std::os::fd::AsFd;

use super::Filesystem;
use super::path::RelPath;
use super::root::file_size;
use super::write::{mode_of, open_for_edit, replace, write_error};
use crate::tool::{Arguments, ToolError};

pub(super) fn run(fs: &Filesystem, raw: &str) -> Result<String, ToolError> {
    let mut args = Arguments::parse(raw)?;
    let path: String = args.take("path")?;
    let old: String = args.take("old_string")?;
    let new: String = args.take("new_string")?;
    let replace_all: Option<bool> = args.take("replace_all")?;
    args.finish(&["path", "old_string", "new_string", "replace_all"])?;
    let replace_all = replace_all.unwrap_or(false);
    if old.is_empty() {
        return Err(ToolError::invalid_arguments(
            "`old_string` is empty; give the exact text to replace (to create a file, use write_file)",
        ));
    }
    if old == new {
        return Err(ToolError::invalid_arguments("`old_string` and `new_string` are the same; nothing would change"));
    }

    let rel = RelPath::parse(&path, fs.root(), false)?;
    let (dir, name) = fs.root.open_parent(&rel, false)?;
    let (mut file, stat) = open_for_edit(dir.as_fd(), &rel, name)?;
    let size = file_size(&stat);
    if size > fs.settings.max_file_bytes {
        return Err(ToolError::new(format!(
            "`{}` is {size} bytes; files over {} bytes are not edited here",
            rel.shown(),
            fs.settings.max_file_bytes
        )));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.by_ref()
        .take(fs.settings.max_file_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ToolError::new(format!("`{}` could not be read: {e}", rel.shown())))?;
    drop(file);
    if bytes.contains(&0) {
        return Err(ToolError::new(format!("`{}` is a binary file; edit_file only edits text files", rel.shown())));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        ToolError::new(format!(
            "`{}` is not UTF-8 text (invalid byte at offset {}); edit_file only edits text files",
            rel.shown(),
            e.utf8_error().valid_up_to()
        ))
    })?;

    let (old, new) = match_line_endings(&text, old, new);
    let count = text.matches(old.as_str()).count();
    if count == 0 {
        return Err(ToolError::new(format!(
            "`old_string` was not found in `{}`; read the file again and copy the text exactly, including \
             whitespace and indentation",
            rel.shown()
        )));
    }
    if count > 1 && !replace_all {
        return Err(ToolError::new(format!(
            "`old_string` occurs {count} times in `{}`; add surrounding lines to make it unique, or set \
             `replace_all` to true to replace all {count}",
            rel.shown()
        )));
    }
    let first_line = text.find(old.as_str()).map_or(1, |at| text[..at].matches('\n').count() + 1);
    let edited = if replace_all { text.replace(old.as_str(), &new) } else { text.replacen(old.as_str(), &new, 1) };
    replace(dir.as_fd(), name, edited.as_bytes(), Some(mode_of(&stat)), Some(&stat))
        .map_err(|e| write_error(&rel, &e))?;
    let (n, s) = if count == 1 { (count, "") } else { (count, "s") };
    Ok(format!("replaced {n} occurrence{s} in `{}` (first at line {first_line})", rel.display()))
}

/// A file with `\r\n` line endings, and text from the model with `\n` only (read_file shows
/// lines without their `\r`): the model's text is given the file's line endings when that is
/// what makes it match.
fn match_line_endings(text: &str, old: String, new: String) -> (String, String) {
    if text.contains(old.as_str()) || !old.contains('\n') || old.contains('\r') || !text.contains("\r\n") {
        return (old, new);
    }
    let crlf = old.replace('\n', "\r\n");
    if text.contains(crlf.as_str()) { (crlf, new.replace("\r\n", "\n").replace('\n', "\r\n")) } else { (old, new) }
}

#[cfg(test)]
mod tests {
    use super::match_line_endings;

    #[test]
    fn crlf_files_match_text_written_with_lf() {
        let (old, new) = match_line_endings("a\r\nb\r\nc\r\n", "a\nb".into(), "x\ny".into());
        assert_eq!((old.as_str(), new.as_str()), ("a\r\nb", "x\r\ny"));
        let (old, _) = match_line_endings("a\nb\n", "a\nb".into(), "x".into());
        assert_eq!(old, "a\nb");
    }
}
