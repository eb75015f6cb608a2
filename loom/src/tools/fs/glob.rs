//! `glob`: paths under the root that match a pattern.

use std::fmt::Write as _;

use globset::GlobBuilder;
use rustix::io::Errno;

use super::Filesystem;
use super::path::RelPath;
use super::walk::{Flow, Kind, Walker};
use crate::tool::args::shown;
use crate::tool::{Arguments, ToolError};

/// The characters that make a part of a pattern more than a literal name.
const META: &[char] = &['*', '?', '[', ']', '{', '}', '\\'];

pub(super) fn run(fs: &Filesystem, raw: &str) -> Result<String, ToolError> {
    let mut args = Arguments::parse(raw)?;
    let pattern: String = args.take("pattern")?;
    args.finish(&["pattern"])?;
    let pattern = checked_pattern(&pattern, fs)?;
    let matcher = compile(&pattern)?;

    // Walk from the longest literal folder prefix (`src/tools` for `src/tools/**/*.rs`).
    let parts: Vec<&str> = pattern.split('/').collect();
    let literal = parts.iter().take(parts.len() - 1).take_while(|p| !p.contains(META)).count();
    let start = parts[..literal].join("/");
    let rest = &parts[literal..];
    // Without `**`, nothing deeper than the pattern's own depth can match.
    let max_depth = (!rest.iter().any(|p| p.contains("**"))).then_some(rest.len());

    let start_rel = RelPath::parse(&start, fs.root(), true)?;
    let dir = match fs.root.open_dir(start_rel.normal()) {
        Ok(dir) => dir,
        Err(Errno::NOENT | Errno::NOTDIR) => {
            return Ok(format!("no paths match `{}` (`{start}` is not a folder)", shown(&pattern)));
        }
        Err(e) => return Err(fs.root.refusal(&start_rel, e, "")),
    };
    let mut found: Vec<String> = Vec::new();
    let mut walker = Walker::new(&fs.settings.skip_dirs, max_depth);
    walker.walk(dir, start_rel.normal(), &mut |entry| {
        if matcher.is_match(entry.rel) {
            found.push(if entry.kind == Kind::Dir { format!("{}/", entry.rel) } else { entry.rel.to_owned() });
        }
        Flow::Continue
    });
    found.sort_unstable();

    let total = found.len();
    let cap = fs.settings.glob_max_results;
    let mut out = String::new();
    if total == 0 {
        let _ = write!(out, "no paths match `{}`", shown(&pattern));
    }
    for path in found.iter().take(cap) {
        out.push_str(path);
        out.push('\n');
    }
    if total > cap {
        let _ = writeln!(out, "({} more paths match, {total} in all; narrow the pattern to see them)", total - cap);
    }
    let note = walker.skipped.note();
    if !note.is_empty() {
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&note);
    }
    Ok(out.trim_end().to_owned())
}

/// The pattern, relative and beneath the root: `./` dropped, absolute and `..` refused.
fn checked_pattern(raw: &str, fs: &Filesystem) -> Result<String, ToolError> {
    if raw.is_empty() {
        return Err(ToolError::invalid_arguments("the pattern is empty; try `**/*.rs` or `src/*`"));
    }
    // The checks of a path apply: NUL, length, absolute (with the relative form suggested).
    if raw.starts_with('/') || raw.contains('\0') || raw.len() > super::path::MAX_PATH_BYTES {
        RelPath::parse(raw, fs.root(), true)?;
    }
    let parts: Vec<&str> = raw.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.contains(&"..") {
        return Err(ToolError::invalid_arguments(format!(
            "`{}` contains `..`; glob patterns are relative to the root folder and cannot leave it",
            shown(raw)
        )));
    }
    if parts.is_empty() {
        return Err(ToolError::invalid_arguments("the pattern names the root folder itself; try `*` or `**/*`"));
    }
    Ok(parts.join("/"))
}

fn compile(pattern: &str) -> Result<globset::GlobMatcher, ToolError> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| {
            ToolError::invalid_arguments(format!("`{}` is not a valid glob pattern: {}", shown(pattern), e.kind()))
        })
}

/// Compiles a file filter for `grep`: a pattern without `/` matches file names, one with `/`
/// matches paths relative to the root.
pub(super) fn filter(raw: &str) -> Result<(globset::GlobMatcher, bool), ToolError> {
    let pattern = raw.strip_prefix("./").unwrap_or(raw);
    if pattern.starts_with('/') || pattern.split('/').any(|p| p == "..") {
        return Err(ToolError::invalid_arguments(format!(
            "the glob `{}` must be relative to the root folder, without `..`",
            shown(raw)
        )));
    }
    Ok((compile(pattern)?, pattern.contains('/')))
}
