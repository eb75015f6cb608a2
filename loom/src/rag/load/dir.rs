//! Loading every matching file under a folder.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use futures::StreamExt as _;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::{Format, LoadError, LoadReport, Loader, blocking};

/// Loads the files under a folder that match its patterns, each with a [`Loader`].
///
/// Patterns are globs over paths relative to the root, with `/` between folders: `*` stays
/// within one folder, `**` crosses any number (`**/*.md` matches `guide.md` and
/// `docs/a/b.md`). Without an include pattern, every file whose extension Loom reads is
/// loaded, and the others are listed in [`LoadReport::skipped`]; with include patterns, every
/// file that matches one is loaded, and one Loom cannot read is a failure. Excluded files
/// are left out, and an excluded folder (`**/target/**`, `**/target`) is not walked at all.
///
/// Files and folders whose names start with `.` are left out unless [`hidden`](Self::hidden)
/// is set. Symbolic links are not followed unless [`follow_links`](Self::follow_links) is
/// set; then each folder is walked once, however many links lead to it, so a link cycle ends.
///
/// The documents come in the order of their paths, sorted, whatever order the system lists
/// folders in. A file that fails is in [`LoadReport::failed`], and the others load.
#[derive(Debug, Clone)]
pub struct DirectoryLoader {
    root: PathBuf,
    include: Vec<String>,
    exclude: Vec<String>,
    loader: Loader,
    hidden: bool,
    follow_links: bool,
    concurrency: usize,
}

impl DirectoryLoader {
    /// A loader for the files under `root`, with the default [`Loader`].
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            include: Vec::new(),
            exclude: Vec::new(),
            loader: Loader::new(),
            hidden: false,
            follow_links: false,
            concurrency: 4,
        }
    }

    /// Loads only files that match `pattern` (or another include pattern).
    #[must_use]
    pub fn include(mut self, pattern: impl Into<String>) -> Self {
        self.include.push(pattern.into());
        self
    }

    /// Leaves out files and folders that match `pattern`.
    #[must_use]
    pub fn exclude(mut self, pattern: impl Into<String>) -> Self {
        self.exclude.push(pattern.into());
        self
    }

    /// Loads each file with `loader` (its size limit, text field, ...).
    #[must_use]
    pub fn loader(mut self, loader: Loader) -> Self {
        self.loader = loader;
        self
    }

    /// Also walks files and folders whose names start with `.` (off by default).
    #[must_use]
    pub fn hidden(mut self, hidden: bool) -> Self {
        self.hidden = hidden;
        self
    }

    /// Follows symbolic links to files and folders (off by default).
    #[must_use]
    pub fn follow_links(mut self, follow: bool) -> Self {
        self.follow_links = follow;
        self
    }

    /// How many files load at once (4 by default; at least 1).
    #[must_use]
    pub fn concurrency(mut self, files: usize) -> Self {
        self.concurrency = files.max(1);
        self
    }

    /// Walks the folder and loads every matching file.
    ///
    /// Fails only when a pattern is not a valid glob or the root is not a readable folder;
    /// every other problem (a file that cannot be read or parsed, a row or page that fails, a
    /// subfolder that cannot be listed) is in the report's [`failed`](LoadReport::failed).
    pub async fn load(&self) -> Result<LoadReport, LoadError> {
        let walk = Walk {
            root: self.root.clone(),
            include: compile(&self.include)?,
            exclude: compile(&self.exclude)?,
            exclude_dirs: compile(&folder_patterns(&self.exclude))?,
            hidden: self.hidden,
            follow_links: self.follow_links,
            unknown_as_text: self.loader.unknown_as_text,
        };
        let root = self.root.clone();
        let found = blocking(move || walk.run()).await.map_err(|source| LoadError::Io { path: root, source })??;

        let mut report = LoadReport { documents: Vec::new(), failed: found.failed, skipped: found.skipped };
        let loads =
            futures::stream::iter(found.files).map(|path| self.loader.load_report(path)).buffered(self.concurrency);
        let reports: Vec<LoadReport> = loads.collect().await;
        for file in reports {
            report.documents.extend(file.documents);
            report.failed.extend(file.failed);
            report.skipped.extend(file.skipped);
        }
        report.failed.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(report)
    }
}

/// `None` for no patterns, else the set.
fn compile(patterns: &[String]) -> Result<Option<GlobSet>, LoadError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        let bare = pattern.strip_prefix("./").unwrap_or(pattern);
        let glob = GlobBuilder::new(bare)
            .literal_separator(true)
            .build()
            .map_err(|e| LoadError::InvalidGlob { pattern: pattern.clone(), message: e.kind().to_string() })?;
        set.add(glob);
    }
    set.build().map_err(|e| LoadError::InvalidGlob { pattern: patterns.join(", "), message: e.to_string() }).map(Some)
}

/// The patterns that exclude a whole folder: each pattern as given (`**/target`), and the
/// folder part of one that ends in `/**` (`**/target/**` → `**/target`).
fn folder_patterns(exclude: &[String]) -> Vec<String> {
    let mut out = exclude.to_vec();
    out.extend(exclude.iter().filter_map(|p| p.strip_suffix("/**")).filter(|p| !p.is_empty()).map(str::to_owned));
    out
}

/// What a walk found.
struct Found {
    files: Vec<PathBuf>,
    failed: Vec<(PathBuf, LoadError)>,
    skipped: Vec<PathBuf>,
}

struct Walk {
    root: PathBuf,
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
    exclude_dirs: Option<GlobSet>,
    hidden: bool,
    follow_links: bool,
    unknown_as_text: bool,
}

impl Walk {
    fn run(self) -> Result<Found, LoadError> {
        let meta = std::fs::metadata(&self.root).map_err(|source| LoadError::Io { path: self.root.clone(), source })?;
        if !meta.is_dir() {
            return Err(LoadError::NotADirectory { path: self.root.clone() });
        }
        let mut found = Found { files: Vec::new(), failed: Vec::new(), skipped: Vec::new() };
        let mut seen: HashSet<PathBuf> = HashSet::new();
        if let Ok(real) = std::fs::canonicalize(&self.root) {
            seen.insert(real);
        }
        let mut first = true;
        // Relative paths of the folders still to list; the root is the empty path.
        let mut pending = vec![PathBuf::new()];
        while let Some(rel) = pending.pop() {
            let dir = self.root.join(&rel);
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(source) if first => return Err(LoadError::Io { path: dir, source }),
                Err(source) => {
                    found.failed.push((dir.clone(), LoadError::Io { path: dir, source }));
                    continue;
                }
            };
            first = false;
            for entry in entries {
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(source) => {
                        found.failed.push((dir.clone(), LoadError::Io { path: dir.clone(), source }));
                        continue;
                    }
                };
                let name = entry.file_name();
                if !self.hidden && name.as_encoded_bytes().starts_with(b".") {
                    continue;
                }
                let path = entry.path();
                let rel = rel.join(&name);
                let Some(is_dir) = self.kind(&entry, &path, &mut found) else { continue };
                if is_dir {
                    if matches(self.exclude_dirs.as_ref(), &rel) {
                        continue;
                    }
                    if self.follow_links {
                        match std::fs::canonicalize(&path) {
                            Ok(real) => {
                                if !seen.insert(real) {
                                    continue;
                                }
                            }
                            Err(source) => {
                                found.failed.push((path.clone(), LoadError::Io { path, source }));
                                continue;
                            }
                        }
                    }
                    pending.push(rel);
                } else if !matches(self.exclude.as_ref(), &rel) {
                    match &self.include {
                        Some(include) if include.is_match(&rel) => found.files.push(path),
                        Some(_) => {}
                        None if self.unknown_as_text || Format::from_path(&rel).is_some() => found.files.push(path),
                        None => found.skipped.push(path),
                    }
                }
            }
        }
        found.files.sort();
        found.skipped.sort();
        Ok(found)
    }

    /// Whether the entry is a folder (`Some(true)`), a regular file (`Some(false)`), or
    /// something to leave out (`None`: a link not followed, a FIFO, a socket, a device).
    fn kind(&self, entry: &std::fs::DirEntry, path: &Path, found: &mut Found) -> Option<bool> {
        let kind = match entry.file_type() {
            Ok(kind) => kind,
            Err(source) => {
                found.failed.push((path.to_owned(), LoadError::Io { path: path.to_owned(), source }));
                return None;
            }
        };
        if kind.is_symlink() {
            if !self.follow_links {
                return None;
            }
            return match std::fs::metadata(path) {
                Ok(meta) if meta.is_dir() => Some(true),
                Ok(meta) if meta.is_file() => Some(false),
                Ok(_) => None,
                Err(source) => {
                    found.failed.push((path.to_owned(), LoadError::Io { path: path.to_owned(), source }));
                    None
                }
            };
        }
        if kind.is_dir() {
            Some(true)
        } else if kind.is_file() {
            Some(false)
        } else {
            None
        }
    }
}

fn matches(set: Option<&GlobSet>, rel: &Path) -> bool {
    set.is_some_and(|set| set.is_match(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(patterns: &[&str]) -> GlobSet {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        match compile(&patterns) {
            Ok(Some(set)) => set,
            other => panic!("patterns should compile: {other:?}"),
        }
    }

    #[test]
    fn double_star_matches_at_any_depth_and_star_stays_in_a_folder() {
        let md = set(&["**/*.md"]);
        assert!(md.is_match("guide.md") && md.is_match("docs/a/b.md"));
        let top = set(&["*.md"]);
        assert!(top.is_match("guide.md") && !top.is_match("docs/b.md"));
    }

    #[test]
    fn an_exclude_ending_in_double_star_prunes_the_folder() {
        let dirs = set(&folder_patterns(&["**/target/**".to_owned()]).iter().map(String::as_str).collect::<Vec<_>>());
        assert!(dirs.is_match("target") && dirs.is_match("crates/x/target"));
        assert!(!dirs.is_match("targets"));
    }

    #[test]
    fn an_invalid_pattern_is_named() {
        match compile(&["docs/[".to_owned()]) {
            Err(LoadError::InvalidGlob { pattern, .. }) => assert_eq!(pattern, "docs/["),
            other => panic!("expected an invalid glob, got {other:?}"),
        }
    }
}
