//! Paths as the model writes them, checked before they touch the filesystem.

use std::path::Path;

use crate::tool::ToolError;
use crate::tool::args::shown;

/// The longest path a tool accepts, in bytes (Linux's `PATH_MAX`).
pub(super) const MAX_PATH_BYTES: usize = 4096;

/// A path from the model, relative to the root, with `.` and `..` resolved lexically.
///
/// The normal form has no `.`, no `..`, no empty parts and no leading or trailing `/`: `""` is
/// the root itself. Symbolic links are not looked at here; the open does that, beneath the
/// root's descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RelPath {
    shown: String,
    normal: String,
}

impl RelPath {
    /// Checks `raw`: not empty unless `allow_root`, no NUL, not absolute, not too long, and no
    /// `..` that climbs above the root.
    pub(super) fn parse(raw: &str, root: &Path, allow_root: bool) -> Result<Self, ToolError> {
        let shown_path = shown(raw).into_owned();
        if raw.contains('\0') {
            return Err(ToolError::invalid_arguments(format!(
                "`{}` contains a NUL byte; file names cannot contain one",
                shown_path.replace('\0', "\\0")
            )));
        }
        if raw.len() > MAX_PATH_BYTES {
            return Err(ToolError::invalid_arguments(format!(
                "the path is {} bytes long; the longest path allowed is {MAX_PATH_BYTES} bytes",
                raw.len()
            )));
        }
        if raw.starts_with('/') {
            return Err(ToolError::invalid_arguments(absolute_message(raw, &shown_path, root)));
        }
        let mut parts: Vec<&str> = Vec::new();
        for part in raw.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(ToolError::invalid_arguments(format!(
                            "`{shown_path}` leads outside the root folder; paths must stay inside it \
                             (`..` cannot climb above the root)"
                        )));
                    }
                }
                name => parts.push(name),
            }
        }
        if parts.is_empty() && !allow_root {
            return Err(ToolError::invalid_arguments(format!(
                "`{shown_path}` is the root folder itself; give the path of a file inside it, e.g. `notes.txt`"
            )));
        }
        Ok(Self { shown: shown_path, normal: parts.join("/") })
    }

    /// The path as the model wrote it, fit for a message.
    pub(super) fn shown(&self) -> &str {
        &self.shown
    }

    /// The normal form: `a/b/c`, or `""` for the root.
    pub(super) fn normal(&self) -> &str {
        &self.normal
    }

    /// The normal form for messages: `.` for the root.
    pub(super) fn display(&self) -> &str {
        if self.normal.is_empty() { "." } else { &self.normal }
    }

    /// The folder and the last name: `("a/b", "c")`, `("", "c")`. `None` for the root.
    pub(super) fn split_last(&self) -> Option<(&str, &str)> {
        if self.normal.is_empty() {
            return None;
        }
        Some(match self.normal.rsplit_once('/') {
            Some((parent, name)) => (parent, name),
            None => ("", self.normal.as_str()),
        })
    }
}

/// Joins a symbolic link's target to the folder that holds the link, lexically: the path the
/// link points to, relative to the root, or `None` when it leads outside.
pub(super) fn join_link(folder: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = folder.split('/').filter(|p| !p.is_empty()).collect();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            name => parts.push(name),
        }
    }
    Some(parts.join("/"))
}

fn absolute_message(raw: &str, shown_path: &str, root: &Path) -> String {
    let inside = root.to_str().and_then(|root| {
        let root = root.trim_end_matches('/');
        let rest = raw.strip_prefix(root)?;
        if rest.is_empty() || rest == "/" {
            return Some(".".to_owned());
        }
        rest.strip_prefix('/').map(str::to_owned)
    });
    match inside {
        Some(rel) => format!(
            "`{shown_path}` is an absolute path; paths are relative to the root folder, so write `{}`",
            shown(&rel)
        ),
        None => format!(
            "`{shown_path}` is an absolute path; give a path relative to the root folder (`src/main.rs`, \
             not `/...`): files outside the root cannot be used"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<String, String> {
        RelPath::parse(raw, Path::new("/work/proj"), true)
            .map(|p| p.normal().to_owned())
            .map_err(|e| e.message().to_owned())
    }

    #[test]
    fn normal_forms() {
        assert_eq!(parse("a/b/c"), Ok("a/b/c".to_owned()));
        assert_eq!(parse("./a//b/"), Ok("a/b".to_owned()));
        assert_eq!(parse("a/../b"), Ok("b".to_owned()));
        assert_eq!(parse("."), Ok(String::new()));
        assert_eq!(parse(""), Ok(String::new()));
        assert_eq!(parse("a/.."), Ok(String::new()));
    }

    #[test]
    fn refusals_say_why() {
        assert!(parse("..").unwrap_err().contains("leads outside the root"));
        assert!(parse("a/../../x").unwrap_err().contains("leads outside the root"));
        assert!(parse("/etc/passwd").unwrap_err().contains("is an absolute path"));
        assert!(parse("a\0b").unwrap_err().contains("NUL byte"));
        assert!(parse(&"a/".repeat(3000)).unwrap_err().contains("longest path allowed"));
        let root_only = RelPath::parse(".", Path::new("/r"), false).map_err(|e| e.message().to_owned());
        assert!(root_only.unwrap_err().contains("root folder itself"));
    }

    #[test]
    fn an_absolute_path_inside_the_root_gets_its_relative_form() {
        let msg = parse("/work/proj/src/main.rs").unwrap_err();
        assert!(msg.contains("so write `src/main.rs`"), "{msg}");
        let msg = parse("/work/project/x").unwrap_err();
        assert!(!msg.contains("so write"), "{msg}");
    }

    #[test]
    fn link_targets_join_lexically() {
        assert_eq!(join_link("a/b", "../c"), Some("a/c".to_owned()));
        assert_eq!(join_link("", "c"), Some("c".to_owned()));
        assert_eq!(join_link("a", "../../c"), None);
        assert_eq!(join_link("a", "/etc"), None);
    }
}
