//! `list_dir`: one folder's entries, with types and sizes.

use std::fmt::Write as _;

use rustix::fs::{self as rfs, FileType};
use rustix::io::Errno;

use super::Filesystem;
use super::path::RelPath;
use super::root::{file_size, stat_nofollow};
use crate::tool::{Arguments, ToolError};

pub(super) fn run(fs: &Filesystem, raw: &str) -> Result<String, ToolError> {
    let mut args = Arguments::parse(raw)?;
    let path: Option<String> = args.take("path")?;
    args.finish(&["path"])?;
    let rel = RelPath::parse(path.as_deref().unwrap_or("."), fs.root(), true)?;
    let fd = fs.root.open_dir(rel.normal()).map_err(|e| match e {
        Errno::NOTDIR if !rel.normal().is_empty() => {
            ToolError::new(format!("`{}` is a file, not a folder; use read_file to read it", rel.shown()))
        }
        e => fs.root.refusal(&rel, e, ""),
    })?;
    let dir = rfs::Dir::new(fd).map_err(|e| ToolError::new(format!("`{}` cannot be listed: {e}", rel.shown())))?;
    // The entries are read first, then each is examined through the folder's descriptor.
    let mut names: Vec<String> = Vec::new();
    let mut not_utf8 = 0usize;
    let mut dir = dir;
    for entry in dir.by_ref() {
        let entry = entry.map_err(|e| ToolError::new(format!("`{}` cannot be listed: {e}", rel.shown())))?;
        match entry.file_name().to_str() {
            Ok("." | "..") => {}
            Ok(name) => names.push(name.to_owned()),
            Err(_) => not_utf8 += 1,
        }
    }
    names.sort_unstable();
    let dir_fd = dir.fd().map_err(|e| ToolError::new(format!("`{}` cannot be listed: {e}", rel.shown())))?;
    let total = names.len();
    let cap = fs.settings.list_max_entries;

    let mut out = format!("`{}`: {total} entr{}\n", rel.display(), if total == 1 { "y" } else { "ies" });
    for name in names.iter().take(cap) {
        let line = match stat_nofollow(dir_fd, name) {
            Err(e) => format!("?        {name} (cannot be examined: {e})"),
            Ok(stat) => match FileType::from_raw_mode(stat.st_mode) {
                FileType::Directory => format!("dir      {name}/"),
                FileType::RegularFile => format!("file     {name} ({})", size(file_size(&stat))),
                FileType::Symlink => {
                    let target = rfs::readlinkat(dir_fd, name.as_str(), Vec::new())
                        .map(|t| t.to_string_lossy().into_owned())
                        .unwrap_or_else(|_| "?".to_owned());
                    format!("symlink  {name} -> {}", crate::tool::args::shown(&target))
                }
                FileType::Fifo => format!("fifo     {name}"),
                FileType::Socket => format!("socket   {name}"),
                FileType::CharacterDevice | FileType::BlockDevice => format!("device   {name}"),
                FileType::Unknown => format!("?        {name}"),
            },
        };
        out.push_str(&line);
        out.push('\n');
    }
    if total > cap {
        let _ = writeln!(out, "({} more entries not shown; use glob with a pattern to narrow down)", total - cap);
    }
    if not_utf8 > 0 {
        let _ = writeln!(out, "({not_utf8} entries whose names are not UTF-8 are not shown)");
    }
    if total == 0 && not_utf8 == 0 {
        out = format!("`{}` is an empty folder\n", rel.display());
    }
    out.pop();
    Ok(out)
}

/// `12 bytes`, `3.4 KiB`, `1.2 MiB`.
fn size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    if bytes == 1 {
        return "1 byte".to_owned();
    }
    if bytes < KIB {
        return format!("{bytes} bytes");
    }
    let (value, unit) = if bytes < KIB * KIB {
        (bytes as f64 / KIB as f64, "KiB")
    } else if bytes < KIB * KIB * KIB {
        (bytes as f64 / (KIB * KIB) as f64, "MiB")
    } else {
        (bytes as f64 / (KIB * KIB * KIB) as f64, "GiB")
    };
    format!("{value:.1} {unit}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_well() {
        assert_eq!(super::size(12), "12 bytes");
        assert_eq!(super::size(3 * 1024 + 512), "3.5 KiB");
        assert_eq!(super::size(5 * 1024 * 1024), "5.0 MiB");
    }
}
