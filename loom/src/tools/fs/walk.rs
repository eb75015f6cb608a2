//! A walk of a folder tree through descriptors: each folder opened with `O_NOFOLLOW` relative
//! to its parent's descriptor, so a linked folder is never entered and a folder swapped for a
//! link mid-walk cannot lead outside.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self as rfs, FileType, Mode, OFlags};

use super::root::stat_nofollow;

/// The most entries one walk looks at; a larger tree is walked in part, with a note.
pub(super) const MAX_WALK_ENTRIES: usize = 200_000;

/// The deepest a walk goes below its start.
const MAX_DEPTH: usize = 64;

/// What an entry is, without following links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    File,
    Dir,
    Link,
    Other,
}

/// One entry met on the walk.
pub(super) struct Entry<'a> {
    /// The folder that holds it.
    pub(super) dir: BorrowedFd<'a>,
    /// Its name in that folder.
    pub(super) name: &'a str,
    /// Its path relative to the root.
    pub(super) rel: &'a str,
    pub(super) kind: Kind,
}

/// Whether to go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    Continue,
    Stop,
}

/// What a walk did not look at, for the note under the results.
#[derive(Debug, Default)]
pub(super) struct Skipped {
    pub(super) not_utf8: usize,
    pub(super) unreadable: usize,
    pub(super) too_deep: usize,
    pub(super) budget_exhausted: bool,
}

impl Skipped {
    /// A note for the model, or `""`.
    pub(super) fn note(&self) -> String {
        let mut parts = Vec::new();
        if self.budget_exhausted {
            parts.push(format!("the walk stopped after {MAX_WALK_ENTRIES} entries; give a narrower path or pattern"));
        }
        if self.not_utf8 > 0 {
            parts.push(format!("{} entries whose names are not UTF-8 were left out", self.not_utf8));
        }
        if self.unreadable > 0 {
            parts.push(format!("{} folders could not be read", self.unreadable));
        }
        if self.too_deep > 0 {
            parts.push(format!("{} folders deeper than {MAX_DEPTH} levels were not entered", self.too_deep));
        }
        if parts.is_empty() { String::new() } else { format!("({})", parts.join("; ")) }
    }
}

/// A walk's settings and what it skipped.
pub(super) struct Walker<'s> {
    skip_dirs: &'s [String],
    max_depth: usize,
    budget: usize,
    pub(super) skipped: Skipped,
}

impl<'s> Walker<'s> {
    /// A walk that does not enter folders named in `skip_dirs`, and goes at most `max_depth`
    /// levels below its start (`None`: as deep as [`MAX_DEPTH`]).
    pub(super) fn new(skip_dirs: &'s [String], max_depth: Option<usize>) -> Self {
        let max_depth = max_depth.map_or(MAX_DEPTH, |d| d.min(MAX_DEPTH));
        Self { skip_dirs, max_depth, budget: MAX_WALK_ENTRIES, skipped: Skipped::default() }
    }

    /// Walks the tree under `dir` (whose path relative to the root is `rel`), in name order,
    /// calling `visit` for every entry below it.
    pub(super) fn walk(&mut self, dir: OwnedFd, rel: &str, visit: &mut dyn FnMut(&Entry<'_>) -> Flow) -> Flow {
        let mut rel = rel.to_owned();
        self.walk_dir(dir, &mut rel, 1, visit)
    }

    fn walk_dir(
        &mut self,
        dir: OwnedFd,
        rel: &mut String,
        depth: usize,
        visit: &mut dyn FnMut(&Entry<'_>) -> Flow,
    ) -> Flow {
        let Ok(mut listing) = rfs::Dir::new(dir) else {
            self.skipped.unreadable += 1;
            return Flow::Continue;
        };
        let mut entries: Vec<(String, FileType)> = Vec::new();
        for entry in listing.by_ref() {
            let Ok(entry) = entry else {
                self.skipped.unreadable += 1;
                break;
            };
            match entry.file_name().to_str() {
                Ok("." | "..") => {}
                Ok(name) => entries.push((name.to_owned(), entry.file_type())),
                Err(_) => self.skipped.not_utf8 += 1,
            }
        }
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let Ok(fd) = listing.fd() else {
            self.skipped.unreadable += 1;
            return Flow::Continue;
        };
        for (name, file_type) in entries {
            if self.budget == 0 {
                self.skipped.budget_exhausted = true;
                return Flow::Stop;
            }
            self.budget -= 1;
            let file_type = match file_type {
                FileType::Unknown => {
                    stat_nofollow(fd, &name).map_or(FileType::Unknown, |st| FileType::from_raw_mode(st.st_mode))
                }
                known => known,
            };
            let kind = match file_type {
                FileType::RegularFile => Kind::File,
                FileType::Directory => Kind::Dir,
                FileType::Symlink => Kind::Link,
                _ => Kind::Other,
            };
            let len = rel.len();
            if !rel.is_empty() {
                rel.push('/');
            }
            rel.push_str(&name);
            if visit(&Entry { dir: fd, name: &name, rel, kind }) == Flow::Stop {
                return Flow::Stop;
            }
            if kind == Kind::Dir && !self.skip_dirs.contains(&name) {
                if depth >= self.max_depth {
                    if self.max_depth == MAX_DEPTH {
                        self.skipped.too_deep += 1;
                    }
                } else {
                    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                    match rfs::openat(fd.as_fd(), name.as_str(), flags, Mode::empty()) {
                        Ok(sub) => {
                            if self.walk_dir(sub, rel, depth + 1, visit) == Flow::Stop {
                                return Flow::Stop;
                            }
                        }
                        Err(_) => self.skipped.unreadable += 1,
                    }
                }
            }
            rel.truncate(len);
        }
        Flow::Continue
    }
}
