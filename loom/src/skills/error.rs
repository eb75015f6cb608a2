//! What can be wrong with a skill, and where.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where in a skill a problem is: the file, the line and column (in the `SKILL.md`, counting
/// the `---` line as line 1), and the frontmatter field (`name`, `tools[1].script`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillLocation {
    file: PathBuf,
    line: Option<u32>,
    column: Option<u32>,
    field: Option<String>,
}

impl SkillLocation {
    pub(super) fn file(file: impl Into<PathBuf>) -> Self {
        Self { file: file.into(), line: None, column: None, field: None }
    }

    pub(super) fn at(mut self, line: Option<u32>, column: Option<u32>) -> Self {
        self.line = line;
        self.column = column.filter(|&c| c > 0);
        self
    }

    pub(super) fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The file: the skill's `SKILL.md`, or its folder when the problem is the folder itself.
    /// A skill made from text in code has the path `<inline>`.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// The line in the file, 1-based, when the problem has one.
    pub fn line(&self) -> Option<u32> {
        self.line
    }

    /// The column, 1-based, when known.
    pub fn column(&self) -> Option<u32> {
        self.column
    }

    /// The frontmatter field (`description`, `tools[0].name`), when the problem is in one.
    pub fn field_name(&self) -> Option<&str> {
        self.field.as_deref()
    }
}

impl fmt::Display for SkillLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        Ok(())
    }
}

/// What is wrong with a skill.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SkillErrorKind {
    /// The file or folder could not be read.
    #[error("cannot read it: {detail}")]
    Io {
        /// What the system said.
        detail: String,
    },
    /// A folder has a file named like `SKILL.md` in another case, and no `SKILL.md`.
    #[error("found `{found}`; the file must be named `SKILL.md`")]
    Misnamed {
        /// The name found.
        found: String,
    },
    /// The file is larger than a skill may be.
    #[error("it is {size} bytes; a SKILL.md may be at most {max} bytes (move long material into resource files)")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The file does not start with a `---` line.
    #[error("a SKILL.md must start with a `---` line, then the YAML frontmatter, then `---`")]
    NoFrontmatter,
    /// The frontmatter has no closing `---` line.
    #[error("the frontmatter that starts on line 1 is never closed; end it with a `---` line")]
    UnclosedFrontmatter,
    /// The frontmatter is not valid YAML.
    #[error("invalid YAML: {detail}")]
    Yaml {
        /// What the parser said.
        detail: String,
    },
    /// The frontmatter is valid YAML but not a mapping of keys to values.
    #[error("the frontmatter must be a mapping of keys to values (`name: ...`); it is {found}")]
    NotAMapping {
        /// What it is.
        found: &'static str,
    },
    /// A key is given twice.
    #[error("given twice (first on line {first_line})")]
    DuplicateKey {
        /// Where it was first given.
        first_line: u32,
    },
    /// A required field is missing.
    #[error("missing; every skill needs a `name` and a `description`")]
    Missing,
    /// A field of a script tool is missing.
    #[error("missing; a skill tool needs {needs}")]
    MissingToolField {
        /// What the tool needs.
        needs: &'static str,
    },
    /// A field has a value of the wrong type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What was expected.
        expected: &'static str,
        /// What was found.
        found: &'static str,
    },
    /// A field that must not be empty is empty.
    #[error("must not be empty")]
    Empty,
    /// A field is longer than allowed.
    #[error("is {len} characters long; at most {max} are allowed")]
    TooLong {
        /// Its length, in characters.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The skill name breaks the naming rule.
    #[error(
        "`{name}` is not a valid skill name: {reason} (a name is lowercase letters and digits in words joined by single hyphens, like `pdf-forms`, at most 64 characters)"
    )]
    InvalidName {
        /// The name.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The description contains an XML tag, which the format forbids.
    #[error("must not contain XML tags (found `{tag}`)")]
    XmlTag {
        /// The tag.
        tag: String,
    },
    /// A tool name breaks the providers' naming rules.
    #[error("`{name}` cannot be a tool name: {reason}")]
    InvalidToolName {
        /// The full tool name (`<skill>__<tool>`).
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Two tools of one skill have the same name.
    #[error("the skill already has a tool named `{name}`")]
    DuplicateTool {
        /// The name.
        name: String,
    },
    /// A tool's `parameters` is not a JSON schema of an object.
    #[error("must be a JSON schema of type `object` (`type: object` with `properties`)")]
    InvalidParameters,
    /// A tool's script is not a file inside the skill's folder.
    #[error("`{script}` {reason}")]
    BadScript {
        /// The script path as written.
        script: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A skill with script tools has no folder (it was made from text).
    #[error("a skill made from text has no folder, so it cannot bundle script tools")]
    ToolsWithoutFolder,
    /// A skill requires one that is not in the set.
    #[error("requires `{requirement}`, which is not one of the skills loaded")]
    MissingRequirement {
        /// The required skill.
        requirement: String,
    },
    /// A skill's requirements form a cycle.
    #[error("the requirements form a cycle: {}", .cycle.join(" → "))]
    RequirementCycle {
        /// The skills of the cycle, the first repeated at the end.
        cycle: Vec<String>,
    },
    /// Two folders of one source declare the same skill name.
    #[error("skill `{name}` is already defined in {other} in the same source; the first one is kept")]
    DuplicateName {
        /// The name.
        name: String,
        /// The other skill's file.
        other: String,
    },
}

/// A skill that could not be loaded, or a problem with one that was: where, and what.
///
/// Its message names the file, the line and the field: `skills/pdf/SKILL.md:2:7: field
/// \`name\`: \`PDF\` is not a valid skill name: ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillError {
    location: SkillLocation,
    kind: SkillErrorKind,
}

impl SkillError {
    pub(super) fn new(location: SkillLocation, kind: SkillErrorKind) -> Self {
        Self { location, kind }
    }

    /// Where the problem is.
    pub fn location(&self) -> &SkillLocation {
        &self.location
    }

    /// What the problem is.
    pub fn kind(&self) -> &SkillErrorKind {
        &self.kind
    }
}

impl fmt::Display for SkillError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.kind)
    }
}

impl std::error::Error for SkillError {}

/// Every problem found in one skill (at least one): all of them, not only the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillErrors(Vec<SkillError>);

impl SkillErrors {
    pub(super) fn new(errors: Vec<SkillError>) -> Self {
        Self(errors)
    }

    /// The problems, in the order they are in the file.
    pub fn errors(&self) -> &[SkillError] {
        &self.0
    }

    /// The problems, owned.
    pub fn into_vec(self) -> Vec<SkillError> {
        self.0
    }
}

impl fmt::Display for SkillErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SkillErrors {}

impl From<SkillErrors> for crate::ConfigError {
    fn from(e: SkillErrors) -> Self {
        Self::InvalidSetting { setting: "skills", reason: e.to_string() }
    }
}

impl From<SkillErrors> for crate::Error {
    fn from(e: SkillErrors) -> Self {
        Self::Config(e.into())
    }
}

/// Something Loom noticed about a skill it loaded anyway.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SkillWarningKind {
    /// A frontmatter key the format does not define; its value is kept in
    /// [`Skill::extra`](super::Skill::extra).
    #[error("`{key}` is not a key of the Agent Skills format; kept as extra data, not used by Loom")]
    UnknownKey {
        /// The key.
        key: String,
    },
    /// The skill's name differs from its folder's, which the Agent Skills format asks for;
    /// Loom uses the name.
    #[error(
        "the skill is named `{name}` but its folder is `{folder}`; the format asks for the same name (Loom uses `{name}`)"
    )]
    NameNotFolder {
        /// The skill's name.
        name: String,
        /// The folder's name.
        folder: String,
    },
    /// The body after the frontmatter is empty: loading the skill tells the model nothing.
    #[error("the skill has no instructions after its frontmatter")]
    EmptyBody,
    /// The skill bundles script tools but the set has no shell to run them in, so they are
    /// not offered.
    #[error(
        "the skill's {count} script tool(s) are not offered: give the skill set a sandboxed shell with `.shell(..)` to run them"
    )]
    ToolsWithoutShell {
        /// How many tools.
        count: usize,
    },
    /// The folder has more files than are listed as resources.
    #[error("the folder has more than {max} files; only the first {max} are listed as resources")]
    TooManyResources {
        /// How many are listed.
        max: usize,
    },
}

/// Something noticed about a skill that was loaded anyway: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillWarning {
    location: SkillLocation,
    kind: SkillWarningKind,
}

impl SkillWarning {
    pub(super) fn new(location: SkillLocation, kind: SkillWarningKind) -> Self {
        Self { location, kind }
    }

    /// Where.
    pub fn location(&self) -> &SkillLocation {
        &self.location
    }

    /// What.
    pub fn kind(&self) -> &SkillWarningKind {
        &self.kind
    }
}

impl fmt::Display for SkillWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.kind)
    }
}

/// Why a skill could not be loaded for the model: what the `load_skill` tool tells it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SkillLoadError {
    /// No skill has that name.
    #[error("there is no skill named `{name}`{}; available skills: {available}", did_you_mean(.suggestion))]
    Unknown {
        /// The name asked for.
        name: String,
        /// A close name, if there is one.
        suggestion: Option<String>,
        /// The names there are.
        available: String,
    },
    /// The skill, or one it requires, requires a skill that is not in the set.
    #[error(
        "skill `{skill}` requires skill `{requirement}`, which is not available, so it cannot be loaded; do the task without it or tell the user the skill is incomplete"
    )]
    MissingRequirement {
        /// The skill that requires it.
        skill: String,
        /// The missing skill.
        requirement: String,
    },
    /// The requirements form a cycle.
    #[error("the skills' requirements form a cycle ({}), so they cannot be loaded in order", .cycle.join(" → "))]
    Cycle {
        /// The skills of the cycle, the first repeated at the end.
        cycle: Vec<String>,
    },
}

fn did_you_mean(s: &Option<String>) -> String {
    s.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default()
}
