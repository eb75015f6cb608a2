//! `write_file`, and the atomic replace that `edit_file` shares.

use std::io::Write as _;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use super::Filesystem;
use super::path::RelPath;
use super::root::{check_links, kind_name, link_count, link_refusal, stat_nofollow};
use crate::tool::{Arguments, ToolError};

pub(super) fn run(fs: &Filesystem, raw: &str) -> Result<String, ToolError> {
    let mut args = Arguments::parse(raw)?;
    let path: String = args.take("path")?;
    let content: String = args.take("content")?;
    args.finish(&["path", "content"])?;
    let rel = RelPath::parse(&path, fs.root(), false)?;
    if content.len() as u64 > fs.settings.max_file_bytes {
        return Err(ToolError::invalid_arguments(format!(
            "the content for `{}` is {} bytes; the most a file may have here is {} bytes",
            rel.shown(),
            content.len(),
            fs.settings.max_file_bytes
        )));
    }
    let (dir, name) = fs.root.open_parent(&rel, fs.settings.create_parents)?;
    let existing = existing_target(dir.as_fd(), &rel, name, "write")?;
    replace(dir.as_fd(), name, content.as_bytes(), existing.map(|st| mode_of(&st)), None)
        .map_err(|e| write_error(&rel, &e))?;
    let lines = content.lines().count();
    let what = if existing.is_some() { "replaced the content of" } else { "created" };
    Ok(format!(
        "{what} `{}` ({} bytes, {lines} line{})",
        rel.display(),
        content.len(),
        if lines == 1 { "" } else { "s" }
    ))
}

/// What is at the target now, looked at without following a link: `None` when nothing is.
/// A link, a folder, a special file or a hard-linked file is refused.
pub(super) fn existing_target(
    dir: BorrowedFd<'_>,
    rel: &RelPath,
    name: &str,
    verb: &str,
) -> Result<Option<Stat>, ToolError> {
    let stat = match stat_nofollow(dir, name) {
        Ok(stat) => stat,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(ToolError::new(format!("`{}` cannot be examined: {e}", rel.shown()))),
    };
    let p = rel.shown();
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile if link_count(&stat) > 1 => Err(ToolError::new(format!(
            "`{p}` has {} hard links; files with more than one link are refused, because another link may \
             lie outside the root folder",
            link_count(&stat)
        ))),
        FileType::RegularFile => Ok(Some(stat)),
        FileType::Symlink => Err(link_refusal(dir, rel, name, verb)),
        FileType::Directory => Err(ToolError::new(format!("`{p}` is a folder; give the path of a file"))),
        other => Err(ToolError::new(format!(
            "`{p}` is {}, not a regular file; only regular files can be {verb}ed",
            kind_name(other)
        ))),
    }
}

/// The permission bits a replacement keeps.
pub(super) fn mode_of(stat: &Stat) -> Mode {
    Mode::from_raw_mode(stat.st_mode & 0o777)
}

/// Why a replace failed.
#[derive(Debug)]
pub(super) enum ReplaceError {
    /// A system call failed.
    Io(std::io::Error),
    /// The target changed between the read and the write (an edit's lost update).
    Changed,
}

impl From<Errno> for ReplaceError {
    fn from(e: Errno) -> Self {
        Self::Io(e.into())
    }
}

impl From<std::io::Error> for ReplaceError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The temporary file, removed unless the rename succeeded.
struct Temp<'d> {
    dir: BorrowedFd<'d>,
    name: String,
    armed: bool,
}

impl Drop for Temp<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = rfs::unlinkat(self.dir, self.name.as_str(), AtFlags::empty());
        }
    }
}

/// Writes `bytes` to a new file in `dir` and renames it over `name`, atomically: readers see
/// the old content or the new, never a mix. `mode` keeps the permissions of the file it
/// replaces. With `expect`, the rename only happens if `name` is still that file (same device,
/// inode, size and modification time).
pub(super) fn replace(
    dir: BorrowedFd<'_>,
    name: &str,
    bytes: &[u8],
    mode: Option<Mode>,
    expect: Option<&Stat>,
) -> Result<(), ReplaceError> {
    let (fd, temp) = create_temp(dir, name, mode)?;
    let mut temp = Temp { dir, name: temp, armed: true };
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)?;
    if let Some(mode) = mode {
        // Created with the umask applied; the replaced file's bits are restored exactly.
        rfs::fchmod(&file, mode)?;
    }
    file.sync_all()?;
    drop(file);
    if let Some(expected) = expect {
        let now = stat_nofollow(dir, name)?;
        if !same_file(expected, &now) {
            return Err(ReplaceError::Changed);
        }
    }
    rfs::renameat(dir, temp.name.as_str(), dir, name)?;
    temp.armed = false;
    // The rename is durable once the folder is; a failure here loses nothing already written.
    let _ = rfs::fsync(dir);
    Ok(())
}

fn create_temp(
    dir: BorrowedFd<'_>,
    name: &str,
    mode: Option<Mode>,
) -> Result<(std::os::fd::OwnedFd, String), ReplaceError> {
    // Short enough for the 255-byte limit on a name, whatever the target's name is.
    let stem: String = name
        .chars()
        .scan(0, |len, c| {
            *len += c.len_utf8();
            (*len <= 180).then_some(c)
        })
        .collect();
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut last = Errno::EXIST;
    for _ in 0..16 {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = format!(".{stem}.loom-{}-{n}.tmp", std::process::id());
        match rfs::openat(dir, temp.as_str(), flags, mode.unwrap_or(Mode::from_raw_mode(0o666))) {
            Ok(fd) => return Ok((fd, temp)),
            Err(Errno::EXIST) => last = Errno::EXIST,
            Err(e) => return Err(e.into()),
        }
    }
    Err(last.into())
}

pub(super) fn same_file(a: &Stat, b: &Stat) -> bool {
    a.st_dev == b.st_dev
        && a.st_ino == b.st_ino
        && a.st_size == b.st_size
        && a.st_mtime == b.st_mtime
        && a.st_mtime_nsec == b.st_mtime_nsec
}

pub(super) fn write_error(rel: &RelPath, e: &ReplaceError) -> ToolError {
    match e {
        ReplaceError::Io(e) => ToolError::new(format!("`{}` could not be written: {e}", rel.shown())),
        ReplaceError::Changed => ToolError::new(format!(
            "`{}` changed while it was being edited; nothing was written: read it again and retry",
            rel.shown()
        )),
    }
}

/// Opens the file at `name` in `dir` for an edit: not through a link, and only a regular file
/// with one link. What is there is looked at first, so a device or a FIFO is never opened; the
/// open then checks it is the same inode.
pub(super) fn open_for_edit(
    dir: BorrowedFd<'_>,
    rel: &RelPath,
    name: &str,
) -> Result<(std::fs::File, Stat), ToolError> {
    let Some(seen) = existing_target(dir, rel, name, "edit")? else {
        return Err(ToolError::new(format!("`{}` does not exist; create it with write_file", rel.shown())));
    };
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let changed = || ToolError::new(format!("`{}` changed while it was being opened; try again", rel.shown()));
    let fd = rfs::openat(dir, name, flags, Mode::empty()).map_err(|e| match e {
        Errno::LOOP | Errno::NOENT => changed(),
        e => ToolError::new(format!("`{}` cannot be opened: {e}", rel.shown())),
    })?;
    let stat = rfs::fstat(&fd).map_err(|e| ToolError::new(format!("`{}` cannot be examined: {e}", rel.shown())))?;
    if (stat.st_dev, stat.st_ino) != (seen.st_dev, seen.st_ino) {
        return Err(changed());
    }
    check_links(rel, &stat)?;
    Ok((std::fs::File::from(fd), stat))
}
