//! What loading a skill set did: the skills and where each came from, which overrode which,
//! and every problem found.

use std::fmt;
use std::path::{Path, PathBuf};

use super::error::{SkillError, SkillErrors, SkillWarning};

/// Where a skill came from. Later layers win: a project skill replaces a user skill of the
/// same name, which replaces a built-in one; a skill given in code replaces them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum SkillLayer {
    /// Skills that ship with the application.
    Builtin,
    /// The user's own skills (for instance `~/.config/<app>/skills`).
    User,
    /// The project's skills (for instance `<repo>/.skills`).
    Project,
    /// Skills given in code ([`SkillSetBuilder::skill`](super::SkillSetBuilder::skill)).
    Inline,
}

impl SkillLayer {
    /// The layer's name: `builtin`, `user`, `project`, `inline`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Builtin => "builtin",
            Self::User => "user",
            Self::Project => "project",
            Self::Inline => "inline",
        }
    }
}

impl fmt::Display for SkillLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A skill in the set, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedSkill {
    pub(super) name: String,
    pub(super) layer: SkillLayer,
    pub(super) path: PathBuf,
}

impl LoadedSkill {
    /// The skill's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The layer it came from.
    pub fn layer(&self) -> SkillLayer {
        self.layer
    }

    /// Its `SKILL.md` (`<inline>` for a skill given in code).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A skill that replaced one of the same name from an earlier source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillOverride {
    pub(super) name: String,
    pub(super) winner: (SkillLayer, PathBuf),
    pub(super) replaced: (SkillLayer, PathBuf),
}

impl SkillOverride {
    /// The skill's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The layer and file of the skill kept.
    pub fn winner(&self) -> (SkillLayer, &Path) {
        (self.winner.0, &self.winner.1)
    }

    /// The layer and file of the skill replaced.
    pub fn replaced(&self) -> (SkillLayer, &Path) {
        (self.replaced.0, &self.replaced.1)
    }
}

impl fmt::Display for SkillOverride {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} `{}` overrides {} `{}` ({} replaces {})",
            self.winner.0,
            self.name,
            self.replaced.0,
            self.name,
            self.winner.1.display(),
            self.replaced.1.display()
        )
    }
}

/// What loading a [`SkillSet`](super::SkillSet) did.
///
/// Its `Display` is a summary for a log or a terminal: the skills and their layers, each
/// override (`project \`review\` overrides user \`review\``), then every error and warning with
/// its file, line and field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkillReport {
    pub(super) loaded: Vec<LoadedSkill>,
    pub(super) overrides: Vec<SkillOverride>,
    pub(super) errors: Vec<SkillError>,
    pub(super) warnings: Vec<SkillWarning>,
    pub(super) missing_sources: Vec<(SkillLayer, PathBuf)>,
}

impl SkillReport {
    /// The skills in the set, by name, with their layers.
    pub fn loaded(&self) -> &[LoadedSkill] {
        &self.loaded
    }

    /// The skills that replaced others of the same name, in the order the sources were read.
    pub fn overrides(&self) -> &[SkillOverride] {
        &self.overrides
    }

    /// The problems: skills that could not be loaded (the others were), and requirements that
    /// cannot be met.
    pub fn errors(&self) -> &[SkillError] {
        &self.errors
    }

    /// What was noticed about skills loaded anyway.
    pub fn warnings(&self) -> &[SkillWarning] {
        &self.warnings
    }

    /// Source folders that do not exist (not an error: a user or project may have no skills).
    pub fn missing_sources(&self) -> &[(SkillLayer, PathBuf)] {
        &self.missing_sources
    }

    /// Whether there were no errors.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Ok` when there were no errors; otherwise every error.
    pub fn check(&self) -> Result<(), SkillErrors> {
        if self.errors.is_empty() { Ok(()) } else { Err(SkillErrors::new(self.errors.clone())) }
    }
}

impl fmt::Display for SkillReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} skill(s) loaded", self.loaded.len())?;
        if !self.loaded.is_empty() {
            f.write_str(": ")?;
            for (i, s) in self.loaded.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{} ({})", s.name, s.layer)?;
            }
        }
        for o in &self.overrides {
            write!(f, "\n{o}")?;
        }
        for (layer, path) in &self.missing_sources {
            write!(f, "\nnote: the {layer} skills folder {} does not exist", path.display())?;
        }
        for e in &self.errors {
            write!(f, "\nerror: {e}")?;
        }
        for w in &self.warnings {
            write!(f, "\nwarning: {w}")?;
        }
        Ok(())
    }
}
