//! One skill: its frontmatter, its instructions, its folder and the files in it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::error::{SkillError, SkillErrorKind, SkillErrors, SkillLocation, SkillWarning, SkillWarningKind};
use super::parse;

/// The file every skill folder has.
pub const SKILL_FILE: &str = "SKILL.md";

/// The largest `SKILL.md` Loom reads.
pub const MAX_SKILL_FILE_BYTES: u64 = 1024 * 1024;

/// The most files listed as one skill's resources.
pub const MAX_RESOURCES: usize = 1000;

/// How deep the resource listing goes into a skill's folder.
const MAX_RESOURCE_DEPTH: usize = 8;

/// A skill: an Anthropic Agent Skills package, a folder whose `SKILL.md` has YAML frontmatter
/// (`name`, `description`, and optionally `license`, `compatibility`, `allowed-tools`,
/// `metadata`, and Loom's `requires` and `tools`) and a markdown body of instructions, plus
/// any files next to it (references, templates, scripts).
///
/// ```
/// use loomflow::skills::Skill;
///
/// let skill = Skill::from_text(
///     "---\nname: release-notes\ndescription: Write release notes from a list of merged changes.\n\
///      requires: [house-style]\n---\n# Release notes\nGroup the changes by kind.\n",
/// )?;
/// assert_eq!(skill.name(), "release-notes");
/// assert_eq!(skill.requires(), ["house-style"]);
/// assert!(skill.body().starts_with("# Release notes"));
/// # Ok::<(), loomflow::skills::SkillErrors>(())
/// ```
#[derive(Debug, Clone)]
pub struct Skill {
    pub(super) name: String,
    pub(super) description: String,
    pub(super) license: Option<String>,
    pub(super) compatibility: Option<String>,
    pub(super) allowed_tools: Vec<String>,
    pub(super) metadata: Map<String, Value>,
    pub(super) requires: Vec<String>,
    /// The line of the `requires` key in the file, for problems found across skills.
    pub(super) requires_line: Option<u32>,
    pub(super) tools: Vec<SkillToolSpec>,
    pub(super) extra: Map<String, Value>,
    pub(super) body: Arc<str>,
    pub(super) dir: Option<PathBuf>,
    pub(super) resources: Vec<String>,
    pub(super) warnings: Vec<SkillWarning>,
}

impl Skill {
    /// Reads the skill in folder `dir` (its `SKILL.md`, and the list of the other files).
    ///
    /// Every problem in the file is reported, each with the file, the line and the field.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, SkillErrors> {
        let dir = dir.as_ref();
        let file = dir.join(SKILL_FILE);
        let text = read_skill_file(dir, &file).map_err(|e| SkillErrors::new(vec![e]))?;
        let mut skill = parse::parse(&text, &file, Some(dir))?;
        skill.dir = Some(dir.to_path_buf());
        let (resources, truncated) = list_resources(dir);
        skill.resources = resources;
        if truncated {
            skill.warnings.push(SkillWarning::new(
                SkillLocation::file(dir),
                SkillWarningKind::TooManyResources { max: MAX_RESOURCES },
            ));
        }
        Ok(skill)
    }

    /// A skill from the text of a `SKILL.md`, with no folder: no resources, and no script
    /// tools. Problems are reported against the path `<inline>`.
    pub fn from_text(text: &str) -> Result<Self, SkillErrors> {
        parse::parse(text, Path::new(INLINE), None)
    }

    /// The name (`^[a-z0-9]+(-[a-z0-9]+)*$`, at most 64 characters): what the model loads it by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the skill is for and when to use it (at most 1024 characters): all the model sees
    /// of it until it loads it.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The license, as the frontmatter gives it.
    pub fn license(&self) -> Option<&str> {
        self.license.as_deref()
    }

    /// What the skill needs of its environment (`compatibility`), as written.
    pub fn compatibility(&self) -> Option<&str> {
        self.compatibility.as_deref()
    }

    /// The tools the skill expects to use (`allowed-tools`), as written: a record for the
    /// application; Loom does not grant or deny anything from it.
    pub fn allowed_tools(&self) -> &[String] {
        &self.allowed_tools
    }

    /// The `metadata` mapping (author, version, ...).
    pub fn metadata(&self) -> &Map<String, Value> {
        &self.metadata
    }

    /// The skills whose instructions this one builds on (Loom's `requires`): loaded first,
    /// in dependency order, when this one is loaded.
    pub fn requires(&self) -> &[String] {
        &self.requires
    }

    /// The script tools the skill bundles (Loom's `tools`).
    pub fn tools(&self) -> &[SkillToolSpec] {
        &self.tools
    }

    /// Frontmatter keys the format does not define, kept as they were (each also reported
    /// as a warning).
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }

    /// The instructions: the markdown after the frontmatter.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The skill's folder, if it has one.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The `SKILL.md`, if the skill has a folder.
    pub fn file(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(SKILL_FILE))
    }

    /// The other files of the folder, relative to it with `/` separators, sorted (hidden
    /// files and folders, and symbolic links, are left out).
    pub fn resources(&self) -> &[String] {
        &self.resources
    }

    /// What Loom noticed while reading the skill (unknown keys, a name that differs from the
    /// folder's, an empty body).
    pub fn warnings(&self) -> &[SkillWarning] {
        &self.warnings
    }

    /// Where a problem with this skill is reported: its file, or `<inline>`.
    pub(super) fn location(&self) -> SkillLocation {
        SkillLocation::file(self.file().unwrap_or_else(|| PathBuf::from(INLINE)))
    }
}

/// The path reported for a skill made from text.
pub(super) const INLINE: &str = "<inline>";

/// A script tool a skill bundles, as its frontmatter declares it:
///
/// ```yaml
/// tools:
///   - name: add                 # the model calls it `<skill>__add`
///     description: Add two numbers.
///     script: scripts/add.py    # a file in the skill's folder
///     interpreter: python3      # optional; else by extension (.py, .sh, .js), else run directly
///     parameters:               # optional JSON schema of the arguments
///       type: object
///       properties:
///         a: { type: number }
///         b: { type: number }
///       required: [a, b]
///     timeout: 30               # optional, seconds
/// ```
///
/// The script receives the model's arguments as one JSON object on its standard input and in
/// the `LOOM_TOOL_ARGS` environment variable; what it prints is the tool's result, and a
/// non-zero exit status makes the result an error the model reads.
#[derive(Debug, Clone, PartialEq)]
pub struct SkillToolSpec {
    pub(super) name: String,
    pub(super) full_name: String,
    pub(super) description: String,
    pub(super) script: String,
    pub(super) interpreter: Vec<String>,
    pub(super) parameters: Value,
    pub(super) timeout: Option<Duration>,
}

impl SkillToolSpec {
    /// The name as the frontmatter gives it (`add`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name the model calls it by: `<skill>__<name>` (`calc__add`).
    pub fn tool_name(&self) -> &str {
        &self.full_name
    }

    /// What the tool does, for the model.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The script, relative to the skill's folder.
    pub fn script(&self) -> &str {
        &self.script
    }

    /// The program (and its first arguments) that runs the script; empty to run the script
    /// itself.
    pub fn interpreter(&self) -> &[String] {
        &self.interpreter
    }

    /// The JSON schema of the arguments.
    pub fn parameters(&self) -> &Value {
        &self.parameters
    }

    /// How long one call may run, if the skill says.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
}

fn read_skill_file(dir: &Path, file: &Path) -> Result<String, SkillError> {
    let io =
        |e: std::io::Error| SkillError::new(SkillLocation::file(file), SkillErrorKind::Io { detail: e.to_string() });
    match std::fs::metadata(file) {
        Ok(meta) if meta.len() > MAX_SKILL_FILE_BYTES => {
            return Err(SkillError::new(
                SkillLocation::file(file),
                SkillErrorKind::TooLarge { size: meta.len(), max: MAX_SKILL_FILE_BYTES },
            ));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(found) = misnamed_skill_file(dir) {
                return Err(SkillError::new(SkillLocation::file(dir.join(&found)), SkillErrorKind::Misnamed { found }));
            }
            return Err(io(e));
        }
        Err(e) => return Err(io(e)),
    }
    let bytes = std::fs::read(file).map_err(io)?;
    String::from_utf8(bytes).map_err(|e| {
        SkillError::new(
            SkillLocation::file(file),
            SkillErrorKind::Io {
                detail: format!("it is not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()),
            },
        )
    })
}

/// A `skill.md` (or `Skill.md`, ...) in `dir`, when there is no `SKILL.md`.
pub(super) fn misnamed_skill_file(dir: &Path) -> Option<String> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .find(|name| name != SKILL_FILE && name.eq_ignore_ascii_case(SKILL_FILE))
}

/// The files of a skill's folder other than `SKILL.md`: relative paths, sorted; and whether
/// the listing stopped at [`MAX_RESOURCES`].
fn list_resources(dir: &Path) -> (Vec<String>, bool) {
    let mut found = Vec::new();
    let mut truncated = false;
    let mut pending = vec![(dir.to_path_buf(), String::new(), 0usize)];
    while let Some((path, prefix, depth)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else { continue };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let Ok(name) = entry.file_name().into_string() else { continue };
            if name.starts_with('.') || (depth == 0 && name == SKILL_FILE) {
                continue;
            }
            // `file_type` does not follow symbolic links: links are left out.
            let Ok(kind) = entry.file_type() else { continue };
            let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            if kind.is_dir() && depth + 1 < MAX_RESOURCE_DEPTH {
                pending.push((entry.path(), rel, depth + 1));
            } else if kind.is_file() {
                if found.len() == MAX_RESOURCES {
                    truncated = true;
                    break;
                }
                found.push(rel);
            }
        }
    }
    found.sort();
    (found, truncated)
}
