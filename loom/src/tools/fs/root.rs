//! The root folder as a descriptor, and every open beneath it.
//!
//! Every path is opened relative to the root's descriptor, never by a path string the OS
//! resolves from `/`. On Linux, `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS` lets
//! the kernel refuse any resolution that would leave the root, at the moment of the open. Where
//! `openat2` is missing (Linux before 5.6, other unix, a seccomp filter that blocks it), the
//! same rules are kept by walking the path one name at a time with `openat(O_NOFOLLOW)`,
//! holding a descriptor for each folder: a symbolic link is read with `readlinkat` and its
//! target walked the same way, so a link swapped in between two steps is seen, never followed
//! blindly.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use super::path::{RelPath, join_link};
use crate::tool::ToolError;

/// The most symbolic links one resolution follows (Linux's own limit).
const MAX_LINKS: usize = 40;

/// How paths are resolved beneath the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Strategy {
    /// `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`.
    Openat2,
    /// One `openat(O_NOFOLLOW)` per name, links read and walked by hand.
    Walk,
}

/// The root folder, open. Clones share the descriptor.
#[derive(Debug, Clone)]
pub(super) struct Root {
    fd: Arc<OwnedFd>,
    path: Arc<Path>,
    strategy: Strategy,
}

/// What an open is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// A folder, to list or walk.
    Dir,
    /// Anything, opened for reading without blocking (a FIFO must not hang the open); the
    /// caller checks the type with `fstat`.
    Any,
    /// A look at what is there, without opening it (`O_PATH`).
    #[cfg(target_os = "linux")]
    Path,
}

/// What [`Root::open_found`] found.
#[derive(Debug)]
pub(super) enum Found {
    /// A regular file, open for reading.
    File(OwnedFd, Stat),
    /// A folder, open for reading.
    Dir(OwnedFd),
    /// Something else, not opened.
    Other(FileType),
}

impl Root {
    /// Opens `path` as the root.
    pub(super) fn open(path: &Path) -> Result<Self, rustix::io::Errno> {
        let fd = rfs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
        let shown = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let strategy = probe(&fd);
        Ok(Self { fd: Arc::new(fd), path: shown.into(), strategy })
    }

    /// The root's path, for messages.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn strategy(&self) -> Strategy {
        self.strategy
    }

    pub(super) fn set_strategy(&mut self, strategy: Strategy) {
        self.strategy = strategy;
    }

    /// Opens a folder (symbolic links inside the root are followed).
    pub(super) fn open_dir(&self, rel: &str) -> Result<OwnedFd, Errno> {
        self.resolve(rel, Want::Dir)
    }

    /// Opens what is at `rel` (following symbolic links that stay inside the root) without
    /// side effects: on Linux it is first looked at through an `O_PATH` descriptor, so a
    /// device or a FIFO is never opened; a file or a folder is then opened for reading and
    /// checked to be the same inode.
    pub(super) fn open_found(&self, rel: &str) -> Result<Found, Errno> {
        #[cfg(target_os = "linux")]
        let kind = {
            let probe = self.resolve(rel, Want::Path)?;
            let seen = rfs::fstat(&probe)?;
            let kind = FileType::from_raw_mode(seen.st_mode);
            if !matches!(kind, FileType::RegularFile | FileType::Directory) {
                return Ok(Found::Other(kind));
            }
            Some((kind, seen))
        };
        #[cfg(not(target_os = "linux"))]
        let kind: Option<(FileType, Stat)> = None;
        let want = match kind {
            Some((FileType::Directory, _)) => Want::Dir,
            _ => Want::Any,
        };
        let fd = self.resolve(rel, want)?;
        let stat = rfs::fstat(&fd)?;
        if let Some((_, seen)) = kind
            && (seen.st_dev, seen.st_ino) != (stat.st_dev, stat.st_ino)
        {
            // Swapped between the look and the open.
            return Err(Errno::AGAIN);
        }
        Ok(match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile => Found::File(fd, stat),
            FileType::Directory => Found::Dir(fd),
            other => Found::Other(other),
        })
    }

    /// Opens a regular, singly linked file for reading: the checks every file tool makes.
    pub(super) fn open_file(&self, rel: &RelPath, hint: &str) -> Result<(std::fs::File, Stat), ToolError> {
        match self.open_found(rel.normal()).map_err(|e| self.refusal(rel, e, hint))? {
            Found::File(fd, stat) => {
                check_links(rel, &stat)?;
                Ok((std::fs::File::from(fd), stat))
            }
            Found::Dir(_) => Err(ToolError::new(format!("`{}` is a folder{hint}", rel.shown()))),
            Found::Other(kind) => Err(not_regular(rel, kind)),
        }
    }

    /// Opens the folder that holds `rel`'s last name; with `create`, missing folders are made,
    /// one at a time, each opened with `O_NOFOLLOW` right after `mkdirat`.
    pub(super) fn open_parent<'p>(&self, rel: &'p RelPath, create: bool) -> Result<(OwnedFd, &'p str), ToolError> {
        let Some((parent, name)) = rel.split_last() else {
            return Err(ToolError::invalid_arguments(format!(
                "`{}` is the root folder itself; give the path of a file inside it",
                rel.shown()
            )));
        };
        match self.open_dir(parent) {
            Ok(fd) => Ok((fd, name)),
            Err(Errno::NOENT) if create => self.create_dirs(rel, parent).map(|fd| (fd, name)),
            Err(Errno::NOENT) => Err(ToolError::new(format!(
                "the folder `{parent}` of `{}` does not exist; create it first",
                rel.shown()
            ))),
            Err(Errno::NOTDIR) => Err(ToolError::new(format!(
                "`{}` cannot be written: a part of `{parent}` is a file, not a folder",
                rel.shown()
            ))),
            Err(e) => Err(self.refusal(rel, e, "")),
        }
    }

    fn create_dirs(&self, rel: &RelPath, parent: &str) -> Result<OwnedFd, ToolError> {
        let parts: Vec<&str> = parent.split('/').collect();
        // The deepest folder that exists, resolved beneath the root like any other path.
        let mut existing = parts.len();
        let mut fd = loop {
            existing -= 1;
            match self.open_dir(&parts[..existing].join("/")) {
                Ok(fd) => break fd,
                Err(Errno::NOENT) if existing > 0 => {}
                Err(e) => return Err(self.refusal(rel, e, "")),
            }
        };
        for (i, part) in parts.iter().enumerate().skip(existing) {
            let made = || parts[..=i].join("/");
            match rfs::mkdirat(&fd, *part, Mode::from_raw_mode(0o777)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => {
                    return Err(ToolError::new(format!(
                        "the folder `{}` for `{}` cannot be created: {e}",
                        made(),
                        rel.shown()
                    )));
                }
            }
            // What is there now must be a real folder: a link (dangling, or swapped in) is
            // refused here, never followed.
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            fd = match rfs::openat(&fd, *part, flags, Mode::empty()) {
                Ok(next) => next,
                Err(e) => {
                    let what = match stat_nofollow(fd.as_fd(), part) {
                        Ok(st) => kind_name(FileType::from_raw_mode(st.st_mode)),
                        Err(_) => "not a folder",
                    };
                    let what = if what == "a symbolic link" {
                        "a symbolic link to a missing folder (folders are not created through links)"
                    } else {
                        what
                    };
                    return Err(ToolError::new(format!(
                        "`{}` cannot be written: `{}` is {what} ({e})",
                        rel.shown(),
                        made()
                    )));
                }
            };
        }
        Ok(fd)
    }

    fn resolve(&self, rel: &str, want: Want) -> Result<OwnedFd, Errno> {
        let oflags = match want {
            Want::Dir => OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Want::Any => OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            #[cfg(target_os = "linux")]
            Want::Path => OFlags::PATH | OFlags::CLOEXEC,
        };
        match self.strategy {
            Strategy::Openat2 => openat2_beneath(self.fd.as_fd(), rel, oflags),
            Strategy::Walk => walk_beneath(self.fd.as_fd(), rel, oflags),
        }
    }

    /// The message for a failed open of `rel`. `hint` is added to "is a folder" and the like.
    pub(super) fn refusal(&self, rel: &RelPath, e: Errno, hint: &str) -> ToolError {
        let p = rel.shown();
        let message = match e {
            Errno::NOENT => format!("`{p}` does not exist{}", self.suggestion(rel)),
            Errno::XDEV => format!(
                "`{p}` leads outside the root folder (through a symbolic link that points outside it, or \
                 to an absolute path); only files inside the root can be used"
            ),
            Errno::LOOP => format!(
                "`{p}` goes through a symbolic link that cannot be followed (a chain of more than \
                 {MAX_LINKS} links, a loop, or a /proc link); use the real path"
            ),
            Errno::NOTDIR => format!("a part of `{p}` is a file, not a folder"),
            Errno::ISDIR => format!("`{p}` is a folder{hint}"),
            Errno::ACCESS | Errno::PERM => format!("permission denied: `{p}` cannot be opened"),
            Errno::NAMETOOLONG => format!("`{p}` is too long: a name in a path can be at most 255 bytes"),
            Errno::NXIO => format!("`{p}` is a socket or a device, not a regular file; only regular files can be used"),
            Errno::AGAIN => format!("`{p}` changed while it was being opened; try again"),
            e => format!("`{p}` cannot be opened: {e}"),
        };
        ToolError::new(message)
    }

    /// " (did you mean `x`?)" when the folder has a name close to the missing one.
    fn suggestion(&self, rel: &RelPath) -> String {
        let Some((parent, name)) = rel.split_last() else { return String::new() };
        let Ok(fd) = self.open_dir(parent) else { return String::new() };
        let Ok(dir) = rfs::Dir::new(fd) else { return String::new() };
        let names: Vec<String> =
            dir.filter_map(Result::ok).filter_map(|e| e.file_name().to_str().ok().map(str::to_owned)).collect();
        match crate::tool::args::closest(name, names.iter().map(String::as_str).filter(|n| *n != "." && *n != "..")) {
            Some(close) => {
                let full = if parent.is_empty() { close.to_owned() } else { format!("{parent}/{close}") };
                format!(" (did you mean `{full}`?)")
            }
            None => String::new(),
        }
    }
}

/// Whether the kernel has a working `openat2` for this root.
fn probe(root: &OwnedFd) -> Strategy {
    #[cfg(target_os = "linux")]
    {
        if openat2_beneath(root.as_fd(), "", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC).is_ok() {
            return Strategy::Openat2;
        }
    }
    let _ = root;
    Strategy::Walk
}

#[cfg(target_os = "linux")]
fn openat2_beneath(root: BorrowedFd<'_>, rel: &str, oflags: OFlags) -> Result<OwnedFd, Errno> {
    use rustix::fs::ResolveFlags;
    let path = if rel.is_empty() { "." } else { rel };
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    // EAGAIN: a rename raced with a `..` step inside a link's target; the kernel asks to retry.
    let mut tries = 0;
    loop {
        match rfs::openat2(root, path, oflags, Mode::empty(), resolve) {
            Err(Errno::AGAIN) if tries < 16 => tries += 1,
            other => return other,
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn openat2_beneath(root: BorrowedFd<'_>, rel: &str, oflags: OFlags) -> Result<OwnedFd, Errno> {
    walk_beneath(root, rel, oflags)
}

/// Whether `e` is what `openat(O_NOFOLLOW)` returns for a symbolic link (FreeBSD says EMLINK).
fn is_link_errno(e: Errno) -> bool {
    #[cfg(any(target_os = "freebsd", target_os = "dragonfly"))]
    if e == Errno::MLINK {
        return true;
    }
    e == Errno::LOOP
}

/// Resolves `rel` beneath `root` one name at a time: `O_NOFOLLOW` on every step, a stack of
/// folder descriptors for `..`, links read with `readlinkat` and refused when absolute or when
/// they climb above the root.
pub(super) fn walk_beneath(root: BorrowedFd<'_>, rel: &str, oflags: OFlags) -> Result<OwnedFd, Errno> {
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut pending: VecDeque<String> = rel.split('/').map(str::to_owned).collect();
    let mut links = 0;
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    loop {
        let current = stack.last().map_or(root, AsFd::as_fd);
        let Some(part) = pending.pop_front() else {
            // The path ended on a folder already open (the root, or after `..`).
            return rfs::openat(current, ".", oflags | OFlags::NOFOLLOW, Mode::empty());
        };
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                if stack.pop().is_none() {
                    return Err(Errno::XDEV);
                }
                continue;
            }
            _ => {}
        }
        let last = pending.iter().all(|p| p.is_empty() || p == ".");
        let flags = if last { oflags | OFlags::NOFOLLOW } else { dir_flags };
        let opened = rfs::openat(current, part.as_str(), flags, Mode::empty());
        // `O_PATH | O_NOFOLLOW` opens a link itself instead of failing: read it like the others.
        #[cfg(target_os = "linux")]
        let opened = match opened {
            Ok(fd) if last && oflags.contains(OFlags::PATH) && is_link(&fd) => Err(Errno::LOOP),
            other => other,
        };
        match opened {
            Ok(fd) if last => return Ok(fd),
            Ok(fd) => stack.push(fd),
            // A link gives ELOOP, or ENOTDIR when a folder was asked for.
            Err(e) if is_link_errno(e) || e == Errno::NOTDIR => {
                let target = match rfs::readlinkat(current, part.as_str(), Vec::new()) {
                    Ok(target) => target,
                    // Not a link after all (a file where a folder was needed).
                    Err(Errno::INVAL) => return Err(e),
                    Err(e) => return Err(e),
                };
                links += 1;
                if links > MAX_LINKS {
                    return Err(Errno::LOOP);
                }
                let target = target.to_str().map_err(|_| Errno::NOENT)?;
                if target.starts_with('/') {
                    return Err(Errno::XDEV);
                }
                for piece in target.split('/').rev() {
                    pending.push_front(piece.to_owned());
                }
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(target_os = "linux")]
fn is_link(fd: &OwnedFd) -> bool {
    rfs::fstat(fd).is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
}

/// Refuses a regular file with more than one hard link.
pub(super) fn check_links(rel: &RelPath, stat: &Stat) -> Result<(), ToolError> {
    let links = link_count(stat);
    if links > 1 {
        return Err(ToolError::new(format!(
            "`{}` has {links} hard links; files with more than one link are refused, because another link \
             may lie outside the root folder",
            rel.shown()
        )));
    }
    Ok(())
}

/// "`p` is a named pipe (FIFO), not a regular file; ..."
pub(super) fn not_regular(rel: &RelPath, kind: FileType) -> ToolError {
    ToolError::new(format!(
        "`{}` is {}, not a regular file; only regular files can be used",
        rel.shown(),
        kind_name(kind)
    ))
}

/// "a named pipe (FIFO)", "a socket", ...
pub(super) fn kind_name(kind: FileType) -> &'static str {
    match kind {
        FileType::RegularFile => "a file",
        FileType::Directory => "a folder",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a named pipe (FIFO)",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "of an unknown type",
    }
}

#[allow(clippy::useless_conversion, clippy::unnecessary_fallible_conversions)]
pub(super) fn link_count(stat: &Stat) -> u64 {
    u64::try_from(stat.st_nlink).unwrap_or(u64::MAX)
}

pub(super) fn file_size(stat: &Stat) -> u64 {
    u64::try_from(stat.st_size).unwrap_or(0)
}

/// What is at `name` in `dir`, without following a link.
pub(super) fn stat_nofollow(dir: BorrowedFd<'_>, name: &str) -> Result<Stat, Errno> {
    rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
}

/// A message for a write or edit aimed at a symbolic link: where it points, and which path to
/// use instead.
pub(super) fn link_refusal(dir: BorrowedFd<'_>, rel: &RelPath, name: &str, verb: &str) -> ToolError {
    let p = rel.shown();
    let folder = rel.split_last().map_or("", |(parent, _)| parent);
    let target = rfs::readlinkat(dir, name, Vec::new()).ok().and_then(|t| t.into_string().ok());
    let instead = match target.as_deref().map(|t| (t, join_link(folder, t))) {
        Some((_, Some(inside))) if inside.is_empty() => " to the root folder".to_owned(),
        Some((_, Some(inside))) => format!("; {verb} `{inside}`, the path it points to, instead"),
        Some((t, None)) if t.starts_with('/') => {
            format!(" to the absolute path `{}`; it cannot be written", crate::tool::args::shown(t))
        }
        Some((t, None)) => {
            format!(" to `{}`, outside the root folder; it cannot be written", crate::tool::args::shown(t))
        }
        None => String::new(),
    };
    ToolError::new(format!("`{p}` is a symbolic link{instead} (links are never written through)"))
}
