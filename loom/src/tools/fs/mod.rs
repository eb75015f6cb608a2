//! Filesystem tools scoped to a root folder: `read_file`, `write_file`, `edit_file`,
//! `list_dir`, `glob` and `grep`.
//!
//! A [`Filesystem`] opens its root once and hands out tools that only ever reach files beneath
//! it. Give them all to an agent in one call with [`Filesystem::tools`], or pick some
//! ([`Filesystem::read_file`], ...); [`Filesystem::read_only`] offers only the four reading
//! tools.
//!
//! ```
//! use loomflow::prelude::*;
//! use loomflow::tools::fs::Filesystem;
//! use serde_json::json;
//!
//! # let dir = std::env::temp_dir().join(format!("loom-fs-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let fs = Filesystem::new(&dir)?.max_read_lines(500);
//! let model = ScriptedModel::new([
//!     ScriptedTurn::tool_call("write_file", json!({"path": "notes/todo.md", "content": "- ship it\n"})),
//!     ScriptedTurn::tool_call("read_file", json!({"path": "notes/todo.md"})),
//!     ScriptedTurn::text("Noted."),
//! ]);
//! let agent = Agent::new("You keep notes in files.").model(model).tools(fs.tools());
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! let result = rt.block_on(async { agent.run("Remember: ship it").await })?;
//! assert_eq!(result.output, "Noted.");
//! assert_eq!(std::fs::read_to_string(dir.join("notes/todo.md"))?, "- ship it\n");
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What the model can reach
//!
//! Paths in the tools' arguments are relative to the root. These are refused, each with an
//! error result that names the path and the reason, so the model can correct itself:
//!
//! - an absolute path (the message gives the relative form when the path lies inside the root);
//! - `..` that climbs above the root, written in the path or inside a symbolic link's target;
//! - a symbolic link that points outside the root, or to an absolute path (even one inside
//!   the root), or through `/proc`'s "magic" links; a chain of more than 40 links;
//! - anything that is not a regular file where a file is needed: a FIFO (opened without
//!   blocking, so it cannot hang the tool), a socket, a device;
//! - a regular file with more than one hard link, for reading and writing alike: another
//!   link may lie outside the root, and nothing on the file says where.
//!
//! **Symbolic links that stay inside the root are followed** for reading, listing and as
//! folders on the way to a file. They are **never written through**: `write_file` and
//! `edit_file` refuse a path whose last part is a link, and say which path it points to.
//! Walks (`glob`, `grep`) do not descend into linked folders and do not search linked files.
//!
//! # No check-then-use race
//!
//! Nothing is checked by path and then opened by path. The root is opened once as a folder
//! descriptor, and every path is opened relative to it: on Linux with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`, so the kernel refuses an escape at the
//! moment of the open; where `openat2` is missing (before Linux 5.6, other unix systems, a
//! seccomp filter that blocks it), by walking the path one name at a time with
//! `openat(O_NOFOLLOW)`, reading each link and walking its target under the same rules. A
//! folder swapped for a link to `/etc` between two calls, or during one, cannot lead outside.
//! The type and link count are checked with `fstat` on the open descriptor, not by path.
//!
//! Writes are atomic: the new content goes to a temporary file created with `O_EXCL` in the
//! target's folder (opened as above), is flushed with `fsync`, and is renamed over the target
//! within that folder's descriptor; on any failure the temporary file is removed. A rename
//! replaces a directory entry and never follows a link, so a link swapped in at the last
//! moment is replaced, not written through. Missing folders are created one at a time with
//! `mkdirat`, each opened with `O_NOFOLLOW` right after.
//!
//! `write_file` and `edit_file` are marked [`destructive`](crate::tool::ToolHints::destructive),
//! so approval policies apply to them; the reading tools are
//! [`read_only`](crate::tool::ToolHints::read_only).
//!
//! This module exists on unix systems only; it is tested on Linux.
#![cfg(unix)]

mod edit;
mod glob;
mod grep;
mod list;
mod path;
mod read;
mod root;
mod tools;
mod walk;
mod write;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::error::ConfigError;
use crate::tool::Tool;

pub use tools::{EditFileTool, GlobTool, GrepTool, ListDirTool, ReadFileTool, WriteFileTool};

/// Filesystem tools scoped to one root folder.
///
/// Cheap to clone (the root's descriptor and the settings are shared). Settings apply to the
/// tools made after they are set.
///
/// ```
/// use loomflow::tools::fs::Filesystem;
///
/// # let dir = std::env::temp_dir();
/// let fs = Filesystem::new(&dir)?
///     .max_read_bytes(64 * 1024)
///     .grep_max_matches(50)
///     .read_only();
/// let names: Vec<String> = fs.tools().iter().map(|t| t.definition().name().to_owned()).collect();
/// assert_eq!(names, ["read_file", "list_dir", "glob", "grep"]);
/// # Ok::<(), loomflow::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Filesystem {
    root: root::Root,
    settings: Arc<Settings>,
}

/// The limits and switches of a [`Filesystem`].
#[derive(Debug, Clone)]
struct Settings {
    max_read_bytes: usize,
    max_read_lines: usize,
    max_file_bytes: u64,
    grep_max_matches: usize,
    glob_max_results: usize,
    list_max_entries: usize,
    read_only: bool,
    create_parents: bool,
    skip_dirs: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_read_bytes: Filesystem::DEFAULT_MAX_READ_BYTES,
            max_read_lines: Filesystem::DEFAULT_MAX_READ_LINES,
            max_file_bytes: Filesystem::DEFAULT_MAX_FILE_BYTES,
            grep_max_matches: Filesystem::DEFAULT_GREP_MAX_MATCHES,
            glob_max_results: Filesystem::DEFAULT_GLOB_MAX_RESULTS,
            list_max_entries: Filesystem::DEFAULT_LIST_MAX_ENTRIES,
            read_only: false,
            create_parents: true,
            skip_dirs: vec![".git".to_owned()],
        }
    }
}

impl fmt::Debug for Filesystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filesystem")
            .field("root", &self.root.path())
            .field("settings", &*self.settings)
            .field("resolution", &self.root.strategy())
            .finish()
    }
}

impl Filesystem {
    /// The default of [`max_read_bytes`](Self::max_read_bytes): 256 KiB.
    pub const DEFAULT_MAX_READ_BYTES: usize = 256 * 1024;
    /// The default of [`max_read_lines`](Self::max_read_lines): 2000.
    pub const DEFAULT_MAX_READ_LINES: usize = 2000;
    /// The default of [`max_file_bytes`](Self::max_file_bytes): 10 MiB.
    pub const DEFAULT_MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
    /// The default of [`grep_max_matches`](Self::grep_max_matches): 200.
    pub const DEFAULT_GREP_MAX_MATCHES: usize = 200;
    /// The default of [`glob_max_results`](Self::glob_max_results): 300.
    pub const DEFAULT_GLOB_MAX_RESULTS: usize = 300;
    /// The default of [`list_max_entries`](Self::list_max_entries): 1000.
    pub const DEFAULT_LIST_MAX_ENTRIES: usize = 1000;

    /// Opens `root` (a folder; a symbolic link to one is followed, once, here) as the root of
    /// the tools. A missing or unreadable folder is a [`ConfigError`].
    pub fn new(root: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = root.as_ref();
        let root = root::Root::open(path).map_err(|e| ConfigError::InvalidSetting {
            setting: "filesystem root",
            reason: format!("`{}` cannot be opened as a folder: {e}", path.display()),
        })?;
        Ok(Self { root, settings: Arc::new(Settings::default()) })
    }

    fn set(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        f(Arc::make_mut(&mut self.settings));
        self
    }

    /// The most bytes one `read_file` call returns (default 256 KiB; at least 1). Longer
    /// output is cut after a whole line, with a note telling the model where to go on.
    #[must_use]
    pub fn max_read_bytes(self, bytes: usize) -> Self {
        self.set(|s| s.max_read_bytes = bytes.max(1))
    }

    /// The most lines one `read_file` call returns, and how many it returns when the model
    /// gives no `limit` (default 2000; at least 1).
    #[must_use]
    pub fn max_read_lines(self, lines: usize) -> Self {
        self.set(|s| s.max_read_lines = lines.max(1))
    }

    /// The largest file `edit_file` edits, `write_file` writes and `grep` searches (default
    /// 10 MiB; at least 1). `read_file` reads any size, a part at a time.
    #[must_use]
    pub fn max_file_bytes(self, bytes: u64) -> Self {
        self.set(|s| s.max_file_bytes = bytes.max(1))
    }

    /// The most matching lines one `grep` call returns (default 200; at least 1).
    #[must_use]
    pub fn grep_max_matches(self, matches: usize) -> Self {
        self.set(|s| s.grep_max_matches = matches.max(1))
    }

    /// The most paths one `glob` call returns (default 300; at least 1).
    #[must_use]
    pub fn glob_max_results(self, results: usize) -> Self {
        self.set(|s| s.glob_max_results = results.max(1))
    }

    /// The most entries one `list_dir` call returns (default 1000; at least 1).
    #[must_use]
    pub fn list_max_entries(self, entries: usize) -> Self {
        self.set(|s| s.list_max_entries = entries.max(1))
    }

    /// Offers only the reading tools: [`tools`](Self::tools) leaves out `write_file` and
    /// `edit_file`, and those tools, if made anyway, refuse every call.
    #[must_use]
    pub fn read_only(self) -> Self {
        self.set(|s| s.read_only = true)
    }

    /// Whether `write_file` creates missing folders on the way to the file (default `true`).
    #[must_use]
    pub fn create_parents(self, create: bool) -> Self {
        self.set(|s| s.create_parents = create)
    }

    /// Names of folders `glob` and `grep` do not descend into (default `[".git"]`); replaces
    /// the list. A walk that starts inside such a folder still searches it.
    #[must_use]
    pub fn skip_dirs<S: Into<String>>(self, names: impl IntoIterator<Item = S>) -> Self {
        let names = names.into_iter().map(Into::into).collect();
        self.set(|s| s.skip_dirs = names)
    }

    /// Resolves paths by walking them one name at a time even where the kernel has
    /// `openat2`. The rules are the same; it costs a system call per name. For kernels whose
    /// `openat2` is not trusted, and for testing that path.
    #[must_use]
    pub fn resolve_by_walking(mut self) -> Self {
        self.root.set_strategy(root::Strategy::Walk);
        self
    }

    /// Whether paths are resolved by the kernel's `openat2` (Linux 5.6 and later), rather
    /// than by walking them.
    pub fn uses_openat2(&self) -> bool {
        self.root.strategy() == root::Strategy::Openat2
    }

    /// The root folder (its canonical path, when it could be found).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Whether only the reading tools are offered.
    pub fn is_read_only(&self) -> bool {
        self.settings.read_only
    }

    /// Every tool, ready for [`Agent::tools`](crate::Agent::tools): `read_file`,
    /// `write_file`, `edit_file`, `list_dir`, `glob`, `grep` — without the two writing tools
    /// when [`read_only`](Self::read_only).
    pub fn tools(&self) -> Vec<Arc<dyn Tool>> {
        let mut tools: Vec<Arc<dyn Tool>> = vec![Arc::new(self.read_file())];
        if !self.settings.read_only {
            tools.push(Arc::new(self.write_file()));
            tools.push(Arc::new(self.edit_file()));
        }
        tools.push(Arc::new(self.list_dir()));
        tools.push(Arc::new(self.glob()));
        tools.push(Arc::new(self.grep()));
        tools
    }

    /// The `read_file` tool: a text file's lines, numbered, a range at a time.
    pub fn read_file(&self) -> ReadFileTool {
        ReadFileTool::new(self.clone())
    }

    /// The `write_file` tool: creates or replaces a file, atomically.
    pub fn write_file(&self) -> WriteFileTool {
        WriteFileTool::new(self.clone())
    }

    /// The `edit_file` tool: replaces an exact piece of text that occurs once (or every
    /// occurrence, when asked).
    pub fn edit_file(&self) -> EditFileTool {
        EditFileTool::new(self.clone())
    }

    /// The `list_dir` tool: a folder's entries with their types and sizes.
    pub fn list_dir(&self) -> ListDirTool {
        ListDirTool::new(self.clone())
    }

    /// The `glob` tool: paths that match a pattern such as `src/**/*.rs`.
    pub fn glob(&self) -> GlobTool {
        GlobTool::new(self.clone())
    }

    /// The `grep` tool: lines that match a regular expression, with context.
    pub fn grep(&self) -> GrepTool {
        GrepTool::new(self.clone())
    }
}
