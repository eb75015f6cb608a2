//! The six tools: what the model is shown, and how a call reaches the code that runs it.

use serde_json::json;

use super::Filesystem;
use crate::context::RunContext;
use crate::tool::{Tool, ToolDefinition, ToolError, ToolHints, ToolOutput};

/// The arguments a path is taken from, described for the model.
const PATH_NOTE: &str = "relative to the root folder, e.g. `src/main.rs`; absolute paths and `..` \
                         above the root are refused";

fn definition(name: &str, description: String, parameters: serde_json::Value, hints: ToolHints) -> ToolDefinition {
    ToolDefinition::new_unchecked(name.to_owned(), description, parameters).with_hints(hints)
}

/// Runs `op` on tokio's blocking pool when there is a runtime (a walk over a large tree must
/// not stall the other tasks), inline otherwise.
async fn blocking(
    fs: &Filesystem,
    arguments: &str,
    op: fn(&Filesystem, &str) -> Result<String, ToolError>,
) -> Result<ToolOutput, ToolError> {
    let text = match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            let (fs, arguments) = (fs.clone(), arguments.to_owned());
            handle
                .spawn_blocking(move || op(&fs, &arguments))
                .await
                .map_err(|e| ToolError::new(format!("the tool stopped unexpectedly: {e}")))??
        }
        Err(_) => op(fs, arguments)?,
    };
    Ok(ToolOutput::text(text))
}

fn refuse_if_read_only(fs: &Filesystem, name: &str) -> Result<(), ToolError> {
    if fs.settings.read_only {
        return Err(ToolError::new(format!(
            "`{name}` is not available: the filesystem is read-only here; only read_file, list_dir, glob \
             and grep can be used"
        )));
    }
    Ok(())
}

macro_rules! fs_tool {
    ($(#[$doc:meta])* $ty:ident, $run:path, |$fs:ident| $body:block) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $ty {
            fs: Filesystem,
            definition: ToolDefinition,
        }

        impl $ty {
            pub(super) fn new($fs: Filesystem) -> Self {
                let definition = $body;
                Self { fs: $fs, definition }
            }
        }

        #[async_trait::async_trait]
        impl Tool for $ty {
            fn definition(&self) -> &ToolDefinition {
                &self.definition
            }

            async fn call(&self, _ctx: &RunContext, arguments: &str) -> Result<ToolOutput, ToolError> {
                $run(&self.fs, arguments, self.definition.name()).await
            }
        }
    };
}

fs_tool! {
    /// `read_file`: a text file's lines, numbered like `cat -n`, a range at a time
    /// (`offset`, `limit`); binary files and non-UTF-8 text are refused with a message.
    ReadFileTool, run_read, |fs| {
        let s = &fs.settings;
        definition(
            "read_file",
            format!(
                "Read a text file inside the root folder. Lines come back numbered (`    12\\tcode`); the \
                 number and tab are not part of the file. Reads at most {} lines or {} bytes per call: read \
                 a long file in parts with `offset` (first line, counting from 1) and `limit` (how many \
                 lines). Binary files are refused.",
                s.max_read_lines, s.max_read_bytes
            ),
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": format!("The file, {PATH_NOTE}.")},
                    "offset": {"type": "integer", "minimum": 1, "description": "The first line to read, counting from 1 (default 1)."},
                    "limit": {"type": "integer", "minimum": 1, "description": format!("How many lines to read (default and at most {}).", s.max_read_lines)}
                },
                "required": ["path"],
                "additionalProperties": false
            }),
            ToolHints::NONE.read_only().idempotent(),
        )
    }
}

fs_tool! {
    /// `write_file`: creates a file or replaces its content, atomically; creates missing
    /// folders unless [`Filesystem::create_parents`] is off. Destructive.
    WriteFileTool, run_write, |fs| {
        let parents = if fs.settings.create_parents { " Missing folders are created." } else { "" };
        definition(
            "write_file",
            format!(
                "Create a file, or replace the whole content of an existing one (the write is atomic).{parents} \
                 To change part of an existing file, prefer edit_file."
            ),
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": format!("The file to write, {PATH_NOTE}.")},
                    "content": {"type": "string", "description": "The complete new content of the file."}
                },
                "required": ["path", "content"],
                "additionalProperties": false
            }),
            ToolHints::NONE.destructive().idempotent(),
        )
    }
}

fs_tool! {
    /// `edit_file`: replaces an exact piece of text; it must occur once unless
    /// `replace_all` is set, and the result says how many occurrences were replaced.
    /// Destructive.
    EditFileTool, run_edit, |_fs| {
        definition(
            "edit_file",
            "Replace an exact piece of text in a file. `old_string` must match the file exactly, including \
             whitespace and indentation (copy it from read_file's output, without the line-number prefix), \
             and must occur exactly once unless `replace_all` is true; add surrounding lines to make it \
             unique. Returns how many occurrences were replaced."
                .to_owned(),
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": format!("The file to edit, {PATH_NOTE}.")},
                    "old_string": {"type": "string", "description": "The exact text to replace (not empty)."},
                    "new_string": {"type": "string", "description": "The text to put in its place (may be empty, to delete)."},
                    "replace_all": {"type": "boolean", "description": "Replace every occurrence instead of exactly one (default false)."}
                },
                "required": ["path", "old_string", "new_string"],
                "additionalProperties": false
            }),
            ToolHints::NONE.destructive(),
        )
    }
}

fs_tool! {
    /// `list_dir`: a folder's entries, sorted by name, each with its type and size.
    ListDirTool, run_list, |fs| {
        definition(
            "list_dir",
            format!(
                "List the entries of a folder inside the root folder, sorted by name: folders end with `/`, \
                 files show their size, symbolic links where they point. At most {} entries. Use glob to find \
                 files deeper down.",
                fs.settings.list_max_entries
            ),
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": format!("The folder, {PATH_NOTE} (default: the root folder).")}
                },
                "additionalProperties": false
            }),
            ToolHints::NONE.read_only().idempotent(),
        )
    }
}

fs_tool! {
    /// `glob`: paths under the root that match a pattern (`src/**/*.rs`), sorted, capped.
    GlobTool, run_glob, |fs| {
        definition(
            "glob",
            format!(
                "Find files and folders by path pattern, relative to the root folder: `*` matches within one \
                 name, `**` any number of folders, `?` one character, `[abc]` one of them, `{{a,b}}` either. \
                 E.g. `src/**/*.rs`, `*.toml`, `docs/*`. Results are sorted, folders end with `/`, at most {}. \
                 Linked folders are not entered.",
                fs.settings.glob_max_results
            ),
            json!({
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "The glob pattern, relative to the root folder."}
                },
                "required": ["pattern"],
                "additionalProperties": false
            }),
            ToolHints::NONE.read_only().idempotent(),
        )
    }
}

fs_tool! {
    /// `grep`: lines that match a regular expression, with context lines, in a file or
    /// under a folder, optionally filtered by a glob; binary files are skipped.
    GrepTool, run_grep, |fs| {
        definition(
            "grep",
            format!(
                "Search file contents for a regular expression (Rust regex syntax, one line at a time). \
                 Matches come back as `path:line:text`, context lines as `path-line-text`, groups separated \
                 by `--`. At most {} matches; binary files, files over {} bytes and symbolic links are skipped.",
                fs.settings.grep_max_matches, fs.settings.max_file_bytes
            ),
            json!({
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "The regular expression, e.g. `fn \\w+_test` or `TODO|FIXME`."},
                    "path": {"type": "string", "description": format!("A file or folder to search, {PATH_NOTE} (default: the root folder).")},
                    "glob": {"type": "string", "description": "Only search files matching this glob: `*.rs` matches file names, `src/**/*.rs` paths."},
                    "context": {"type": "integer", "minimum": 0, "maximum": 10, "description": "Lines of context before and after each match (default 0)."},
                    "before": {"type": "integer", "minimum": 0, "maximum": 10, "description": "Lines of context before each match (overrides `context`)."},
                    "after": {"type": "integer", "minimum": 0, "maximum": 10, "description": "Lines of context after each match (overrides `context`)."},
                    "ignore_case": {"type": "boolean", "description": "Match without regard to case (default false)."}
                },
                "required": ["pattern"],
                "additionalProperties": false
            }),
            ToolHints::NONE.read_only().idempotent(),
        )
    }
}

async fn run_read(fs: &Filesystem, arguments: &str, _name: &str) -> Result<ToolOutput, ToolError> {
    super::read::run(fs, arguments).map(ToolOutput::text)
}

async fn run_write(fs: &Filesystem, arguments: &str, name: &str) -> Result<ToolOutput, ToolError> {
    refuse_if_read_only(fs, name)?;
    super::write::run(fs, arguments).map(ToolOutput::text)
}

async fn run_edit(fs: &Filesystem, arguments: &str, name: &str) -> Result<ToolOutput, ToolError> {
    refuse_if_read_only(fs, name)?;
    super::edit::run(fs, arguments).map(ToolOutput::text)
}

async fn run_list(fs: &Filesystem, arguments: &str, _name: &str) -> Result<ToolOutput, ToolError> {
    super::list::run(fs, arguments).map(ToolOutput::text)
}

async fn run_glob(fs: &Filesystem, arguments: &str, _name: &str) -> Result<ToolOutput, ToolError> {
    blocking(fs, arguments, super::glob::run).await
}

async fn run_grep(fs: &Filesystem, arguments: &str, _name: &str) -> Result<ToolOutput, ToolError> {
    blocking(fs, arguments, super::grep::run).await
}
