//! `grep`: lines that match a regular expression, with context.

use std::fmt::Write as _;
use std::io::Read as _;
use std::os::fd::{BorrowedFd, OwnedFd};

use regex::{Regex, RegexBuilder};
use rustix::fs::{self as rfs, FileType, Mode, OFlags};

use super::Filesystem;
use super::glob::filter;
use super::path::RelPath;
use super::read::SNIFF_BYTES;
use super::root::{Found, check_links, file_size, link_count, not_regular};
use super::walk::{Flow, Kind, Walker};
use crate::tool::args::shown;
use crate::tool::{Arguments, ToolError};

/// The longest line shown, in characters.
const MAX_LINE_CHARS: usize = 300;

/// The most context lines on either side of a match.
const MAX_CONTEXT: usize = 10;

/// The largest compiled regular expression, in bytes.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

struct Search {
    regex: Regex,
    before: usize,
    after: usize,
    max_matches: usize,
    max_bytes: usize,
    max_file_bytes: u64,
    filter: Option<(globset::GlobMatcher, bool)>,
    out: String,
    matches: usize,
    files_with_matches: usize,
    searched: usize,
    skipped: Skips,
    full: bool,
}

#[derive(Default)]
struct Skips {
    binary: usize,
    large: usize,
    linked: usize,
    special: usize,
    unreadable: usize,
}

pub(super) fn run(fs: &Filesystem, raw: &str) -> Result<String, ToolError> {
    let mut args = Arguments::parse(raw)?;
    let pattern: String = args.take("pattern")?;
    let path: Option<String> = args.take("path")?;
    let glob: Option<String> = args.take("glob")?;
    let context: Option<usize> = args.take("context")?;
    let before: Option<usize> = args.take("before")?;
    let after: Option<usize> = args.take("after")?;
    let ignore_case: Option<bool> = args.take("ignore_case")?;
    args.finish(&["pattern", "path", "glob", "context", "before", "after", "ignore_case"])?;

    if pattern.is_empty() {
        return Err(ToolError::invalid_arguments("the pattern is empty; give a regular expression, e.g. `TODO`"));
    }
    let regex = RegexBuilder::new(&pattern)
        .case_insensitive(ignore_case.unwrap_or(false))
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            ToolError::invalid_arguments(format!("`{}` is not a valid regular expression: {e}", shown(&pattern)))
        })?;
    let context = context.unwrap_or(0);
    let (before, after) = (before.unwrap_or(context), after.unwrap_or(context));
    if before > MAX_CONTEXT || after > MAX_CONTEXT {
        return Err(ToolError::invalid_arguments(format!("context is at most {MAX_CONTEXT} lines on either side")));
    }
    let filter = glob.as_deref().filter(|g| !g.is_empty()).map(filter).transpose()?;
    let rel = RelPath::parse(path.as_deref().unwrap_or("."), fs.root(), true)?;

    let mut search = Search {
        regex,
        before,
        after,
        max_matches: fs.settings.grep_max_matches,
        max_bytes: fs.settings.max_read_bytes,
        max_file_bytes: fs.settings.max_file_bytes,
        filter,
        out: String::new(),
        matches: 0,
        files_with_matches: 0,
        searched: 0,
        skipped: Skips::default(),
        full: false,
    };

    // A file or a folder, looked at before it is opened.
    let mut walk_note = String::new();
    match fs.root.open_found(rel.normal()).map_err(|e| fs.root.refusal(&rel, e, ""))? {
        Found::Dir(dir) => {
            let mut walker = Walker::new(&fs.settings.skip_dirs, None);
            walker.walk(dir, rel.normal(), &mut |entry| search.visit(entry.dir, entry.name, entry.rel, entry.kind));
            walk_note = walker.skipped.note();
        }
        // One file, named by the model: refusals are errors, not skips.
        Found::File(fd, stat) => {
            check_links(&rel, &stat)?;
            search.search_file(fd, rel.display(), true)?;
        }
        Found::Other(kind) => return Err(not_regular(&rel, kind)),
    }
    Ok(search.finish(&pattern, &walk_note))
}

impl Search {
    fn visit(&mut self, dir: BorrowedFd<'_>, name: &str, rel: &str, kind: Kind) -> Flow {
        match kind {
            Kind::File => {}
            Kind::Link => {
                self.skipped.linked += 1;
                return Flow::Continue;
            }
            Kind::Other => {
                self.skipped.special += 1;
                return Flow::Continue;
            }
            Kind::Dir => return Flow::Continue,
        }
        if let Some((matcher, by_path)) = &self.filter
            && !matcher.is_match(if *by_path { rel } else { name })
        {
            return Flow::Continue;
        }
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let Ok(fd) = rfs::openat(dir, name, flags, Mode::empty()) else {
            self.skipped.unreadable += 1;
            return Flow::Continue;
        };
        // Checked on the open file: a link or a special file swapped in is skipped.
        match rfs::fstat(&fd) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile => self.skipped.special += 1,
            Ok(st) if link_count(&st) > 1 => self.skipped.linked += 1,
            Ok(_) => {
                let _ = self.search_file(fd, rel, false);
            }
            Err(_) => self.skipped.unreadable += 1,
        }
        if self.full { Flow::Stop } else { Flow::Continue }
    }

    /// Searches one open file. With `named` (the model gave this file), a file that cannot be
    /// searched is an error; in a walk it is counted and skipped.
    fn search_file(&mut self, fd: OwnedFd, rel: &str, named: bool) -> Result<(), ToolError> {
        let stat = rfs::fstat(&fd).map_err(|e| ToolError::new(format!("`{rel}` cannot be examined: {e}")))?;
        let size = file_size(&stat);
        if size > self.max_file_bytes {
            self.skipped.large += 1;
            return if named {
                Err(ToolError::new(format!(
                    "`{rel}` is {size} bytes; files over {} bytes are not searched",
                    self.max_file_bytes
                )))
            } else {
                Ok(())
            };
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        if std::fs::File::from(fd).take(self.max_file_bytes).read_to_end(&mut bytes).is_err() {
            self.skipped.unreadable += 1;
            return if named { Err(ToolError::new(format!("`{rel}` could not be read"))) } else { Ok(()) };
        }
        let text = match std::str::from_utf8(&bytes) {
            Ok(text) if !bytes[..bytes.len().min(SNIFF_BYTES)].contains(&0) => text,
            _ => {
                self.skipped.binary += 1;
                return if named {
                    Err(ToolError::new(format!(
                        "`{rel}` is a binary file (or not UTF-8 text); grep only searches text"
                    )))
                } else {
                    Ok(())
                };
            }
        };
        self.searched += 1;
        let lines: Vec<&str> = text.lines().collect();
        let mut hits: Vec<usize> = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            if self.regex.is_match(line) {
                if self.matches + hits.len() >= self.max_matches {
                    // One more match than may be shown: the note says the list is cut.
                    self.full = true;
                    break;
                }
                hits.push(i);
            }
        }
        if hits.is_empty() {
            return Ok(());
        }
        self.files_with_matches += 1;
        self.matches += hits.len();
        let mut printed: Option<usize> = None;
        for (k, &hit) in hits.iter().enumerate() {
            let from = hit.saturating_sub(self.before);
            let from = printed.map_or(from, |p| from.max(p + 1));
            let to = (hit + self.after).min(lines.len() - 1);
            // A separator between groups that do not touch, and between files.
            if (printed.is_none() && !self.out.is_empty()) || printed.is_some_and(|p| from > p + 1) {
                self.out.push_str("--\n");
            }
            // Context after this match stops before the next match's own context begins.
            let to = hits.get(k + 1).map_or(to, |&next| to.min(next.saturating_sub(1)).max(hit));
            for (i, line) in lines.iter().enumerate().take(to + 1).skip(from) {
                let sep = if hits.binary_search(&i).is_ok() { ':' } else { '-' };
                let _ = writeln!(self.out, "{rel}{sep}{}{sep}{}", i + 1, cut(line));
                printed = Some(i);
            }
            if self.out.len() > self.max_bytes {
                self.full = true;
                break;
            }
        }
        Ok(())
    }

    fn finish(mut self, pattern: &str, walk_note: &str) -> String {
        let mut notes: Vec<String> = Vec::new();
        let s = &self.skipped;
        for (n, what) in [
            (s.binary, "binary"),
            (s.large, "larger than the size limit"),
            (s.linked, "symbolic or hard links"),
            (s.special, "not regular files"),
            (s.unreadable, "unreadable"),
        ] {
            if n > 0 {
                notes.push(format!("{n} {what}"));
            }
        }
        let skipped = if notes.is_empty() { String::new() } else { format!("; skipped: {}", notes.join(", ")) };
        let files = |n: usize| if n == 1 { "1 file".to_owned() } else { format!("{n} files") };
        if self.matches == 0 {
            self.out = format!("no matches for `{}` in {} searched{skipped}", shown(pattern), files(self.searched));
        } else {
            let _ = write!(
                self.out,
                "\n{} match{} in {} ({} searched{skipped})",
                self.matches,
                if self.matches == 1 { "" } else { "es" },
                files(self.files_with_matches),
                files(self.searched),
            );
            if self.full {
                let _ = write!(
                    self.out,
                    "\n(stopped at {} matches or {} bytes of output; narrow the pattern, the path or the glob \
                     to see the rest)",
                    self.max_matches, self.max_bytes
                );
            }
        }
        if !walk_note.is_empty() {
            self.out.push('\n');
            self.out.push_str(walk_note);
        }
        self.out
    }
}

/// A line fit to show: cut at [`MAX_LINE_CHARS`] characters.
fn cut(line: &str) -> std::borrow::Cow<'_, str> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    match line.char_indices().nth(MAX_LINE_CHARS) {
        Some((end, _)) => format!("{}… [{} bytes in all]", &line[..end], line.len()).into(),
        None => line.into(),
    }
}
