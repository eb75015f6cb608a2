//! A set of skills from layered sources: reading the folders, layering by name, checking the
//! requirements across skills, and resolving a skill with its requirements in order.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{SkillError, SkillErrorKind, SkillErrors, SkillLoadError, SkillWarning, SkillWarningKind};
use super::report::{LoadedSkill, SkillLayer, SkillOverride, SkillReport};
use super::skill::{INLINE, SKILL_FILE, Skill, misnamed_skill_file};

/// Skills, each under a unique name, and the report of how they were loaded.
///
/// Build one with [`SkillSet::builder`]: give it folders in layers (built-in, user, project —
/// a later layer's skill replaces an earlier one of the same name), then
/// [`load`](SkillSetBuilder::load). One bad `SKILL.md` does not hide the others: it is left
/// out and reported in [`report`](SkillSet::report). Give the set to an agent with
/// [`Agent::skills`](crate::Agent::skills).
///
/// Cheap to clone (shared).
///
/// ```
/// use loomflow::skills::{Skill, SkillSet};
///
/// let style = Skill::from_text("---\nname: house-style\ndescription: How we write.\n---\nShort sentences.\n")?;
/// let notes = Skill::from_text(
///     "---\nname: release-notes\ndescription: Write release notes.\nrequires: [house-style]\n---\nGroup by kind.\n",
/// )?;
/// let skills = SkillSet::builder().skill(style).skill(notes).load();
/// assert!(skills.report().is_ok());
///
/// // The prompt shows names and descriptions only.
/// let section = skills.prompt_section();
/// assert!(section.contains("- release-notes: Write release notes."));
/// assert!(!section.contains("Group by kind."));
///
/// // Loading a skill brings its requirements first.
/// let order: Vec<&str> = skills.resolve("release-notes")?.iter().map(|s| s.name()).collect();
/// assert_eq!(order, ["house-style", "release-notes"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct SkillSet {
    pub(super) inner: Arc<Inner>,
}

#[derive(Default)]
pub(super) struct Inner {
    /// By name.
    pub(super) skills: Vec<Skill>,
    pub(super) index: HashMap<String, usize>,
    pub(super) report: SkillReport,
    #[cfg(target_os = "linux")]
    pub(super) script_tools: Vec<Arc<super::script::ScriptTool>>,
}

impl fmt::Debug for SkillSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl SkillSet {
    /// A builder: add sources, then [`load`](SkillSetBuilder::load).
    pub fn builder() -> SkillSetBuilder {
        SkillSetBuilder::default()
    }

    /// The skill named `name`.
    pub fn get(&self, name: &str) -> Option<&Skill> {
        self.inner.index.get(name).map(|&i| &self.inner.skills[i])
    }

    /// The skills, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Skill> {
        self.inner.skills.iter()
    }

    /// The names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.inner.skills.iter().map(Skill::name)
    }

    /// How many skills there are.
    pub fn len(&self) -> usize {
        self.inner.skills.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.inner.skills.is_empty()
    }

    /// What loading did: the skills and their layers, overrides, errors and warnings.
    pub fn report(&self) -> &SkillReport {
        &self.inner.report
    }

    /// The skill named `name` and the skills it requires, transitively: dependencies first,
    /// each once, in the order the `requires` lists give. A requirement that is not in the
    /// set, or a cycle, is an error.
    pub fn resolve(&self, name: &str) -> Result<Vec<&Skill>, SkillLoadError> {
        let Some(&start) = self.inner.index.get(name) else {
            return Err(self.unknown_skill(name));
        };
        let mut order = Vec::new();
        let mut state = vec![Visit::New; self.inner.skills.len()];
        let mut path = Vec::new();
        self.visit(start, &mut state, &mut path, &mut order)?;
        Ok(order.into_iter().map(|i| &self.inner.skills[i]).collect())
    }

    fn visit(
        &self,
        at: usize,
        state: &mut [Visit],
        path: &mut Vec<usize>,
        order: &mut Vec<usize>,
    ) -> Result<(), SkillLoadError> {
        match state[at] {
            Visit::Done => return Ok(()),
            Visit::Open => {
                let from = path.iter().position(|&p| p == at).unwrap_or(0);
                let mut cycle: Vec<String> = path[from..].iter().map(|&i| self.inner.skills[i].name.clone()).collect();
                cycle.push(self.inner.skills[at].name.clone());
                return Err(SkillLoadError::Cycle { cycle });
            }
            Visit::New => {}
        }
        state[at] = Visit::Open;
        path.push(at);
        let skill = &self.inner.skills[at];
        for requirement in &skill.requires {
            let Some(&next) = self.inner.index.get(requirement) else {
                return Err(SkillLoadError::MissingRequirement {
                    skill: skill.name.clone(),
                    requirement: requirement.clone(),
                });
            };
            self.visit(next, state, path, order)?;
        }
        path.pop();
        state[at] = Visit::Done;
        order.push(at);
        Ok(())
    }

    pub(super) fn unknown_skill(&self, name: &str) -> SkillLoadError {
        let suggestion = crate::tool::args::closest(name, self.names()).map(str::to_owned);
        let available = if self.is_empty() {
            "none".to_owned()
        } else {
            self.names().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
        };
        let name = crate::tool::args::shown(name).into_owned();
        SkillLoadError::Unknown { name, suggestion, available }
    }

    /// The system-prompt section that tells the model which skills there are: a heading, a
    /// line on how to use them, then one line per skill with its name and description (and
    /// how many tools it bundles). Bodies are not in it: the model loads those with the
    /// `load_skill` tool. Empty when the set is.
    pub fn prompt_section(&self) -> String {
        if self.is_empty() {
            return String::new();
        }
        let mut out = String::from(
            "## Available skills\n\nSkills are instructions for particular tasks. When a task fits one, call \
             `load_skill` with its name before you start, then follow what it says.\n",
        );
        for skill in self.iter() {
            out.push_str("\n- ");
            out.push_str(&skill.name);
            let tools = self.offered_tools(skill);
            if tools > 0 {
                out.push_str(&format!(" [+{tools} tool{}]", if tools == 1 { "" } else { "s" }));
            }
            out.push_str(": ");
            // One line per skill, whatever the YAML's line breaks.
            let mut words = skill.description.split_whitespace();
            if let Some(first) = words.next() {
                out.push_str(first);
                for word in words {
                    out.push(' ');
                    out.push_str(word);
                }
            }
        }
        out
    }

    /// How many of the skill's script tools the model is offered (none without a shell).
    pub(super) fn offered_tools(&self, skill: &Skill) -> usize {
        #[cfg(target_os = "linux")]
        {
            self.inner.script_tools.iter().filter(|t| t.skill() == skill.name).count()
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = skill;
            0
        }
    }

    /// What the `load_skill` tool returns for `name`: the instructions of the skill and of
    /// the skills it requires, dependencies first, each with the files in its folder and the
    /// tools it bundles.
    pub fn load(&self, name: &str) -> Result<String, SkillLoadError> {
        let order = self.resolve(name)?;
        let mut out = String::new();
        if order.len() > 1 {
            let names: Vec<&str> = order.iter().map(|s| s.name()).collect();
            out.push_str(&format!(
                "Skill `{name}` builds on other skills; here are all of them, the ones it requires first: {}.\n\n",
                names.join(", ")
            ));
        }
        for (i, skill) in order.iter().enumerate() {
            if i > 0 {
                out.push_str("\n\n");
            }
            out.push_str(&format!("<skill name=\"{}\">\n", skill.name));
            out.push_str(&skill.body);
            if !skill.resources.is_empty() {
                let shown: Vec<String> = skill.resources.iter().map(|r| format!("`{r}`")).collect();
                out.push_str(&format!(
                    "\n\nFiles in this skill's folder (read one with `read_skill_file`, skill `{}`): {}",
                    skill.name,
                    shown.join(", ")
                ));
            }
            if self.offered_tools(skill) > 0 {
                let tools: Vec<String> = skill.tools.iter().map(|t| format!("`{}`", t.full_name)).collect();
                out.push_str(&format!("\n\nTools of this skill: {}", tools.join(", ")));
            }
            out.push_str("\n</skill>");
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Visit {
    New,
    Open,
    Done,
}

/// Builds a [`SkillSet`] from folders in layers and skills given in code.
///
/// A source folder holds one folder per skill (each with a `SKILL.md`), or is itself one
/// skill's folder. Sub-folders without a `SKILL.md` are not skills and are passed over, as are
/// hidden ones. A source folder that does not exist is noted in the report, not an error.
#[derive(Default)]
pub struct SkillSetBuilder {
    sources: Vec<(SkillLayer, PathBuf)>,
    inline: Vec<Skill>,
    #[cfg(target_os = "linux")]
    shell: Option<crate::tools::shell::Shell>,
}

impl fmt::Debug for SkillSetBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SkillSetBuilder")
            .field("sources", &self.sources)
            .field("inline", &self.inline.iter().map(Skill::name).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl SkillSetBuilder {
    /// Adds a folder of skills that ship with the application (the lowest layer).
    #[must_use]
    pub fn builtin(self, dir: impl Into<PathBuf>) -> Self {
        self.source(SkillLayer::Builtin, dir)
    }

    /// Adds a folder of the user's skills (above the built-in ones).
    #[must_use]
    pub fn user(self, dir: impl Into<PathBuf>) -> Self {
        self.source(SkillLayer::User, dir)
    }

    /// Adds a folder of the project's skills (above the user's).
    #[must_use]
    pub fn project(self, dir: impl Into<PathBuf>) -> Self {
        self.source(SkillLayer::Project, dir)
    }

    /// Adds a folder of skills in `layer`. Within one layer, a later folder's skill replaces
    /// an earlier one's of the same name.
    #[must_use]
    pub fn source(mut self, layer: SkillLayer, dir: impl Into<PathBuf>) -> Self {
        self.sources.push((layer, dir.into()));
        self
    }

    /// Adds a skill made in code ([`Skill::from_text`] or [`Skill::from_dir`]); it replaces a
    /// skill of the same name from any folder.
    #[must_use]
    pub fn skill(mut self, skill: Skill) -> Self {
        self.inline.push(skill);
        self
    }

    /// Offers the skills' script tools (their frontmatter `tools`), run through `shell`: its
    /// sandbox, its work root, its limits. Without a shell, script tools are not offered (and
    /// the report says so). The script of a call runs with its skill's folder visible
    /// read-only.
    #[cfg(target_os = "linux")]
    #[must_use]
    pub fn shell(mut self, shell: crate::tools::shell::Shell) -> Self {
        self.shell = Some(shell);
        self
    }

    /// Reads every source and builds the set. Never fails: a skill that cannot be read is
    /// left out and its problems are in [`SkillSet::report`].
    pub fn load(self) -> SkillSet {
        let mut layered: Vec<(SkillLayer, usize, PathBuf)> =
            self.sources.into_iter().enumerate().map(|(i, (layer, dir))| (layer, i, dir)).collect();
        // By layer, then in the order given: later entries win.
        layered.sort_by_key(|(layer, i, _)| (*layer, *i));

        let mut report = SkillReport::default();
        // name → (skill, layer, source index)
        let mut chosen: HashMap<String, (Skill, SkillLayer, usize)> = HashMap::new();
        let mut add = |skill: Skill, layer: SkillLayer, source: usize, report: &mut SkillReport| {
            report.warnings.extend(skill.warnings.iter().cloned());
            let path = skill_path(&skill);
            match chosen.get(&skill.name) {
                Some((existing, _, existing_source)) if *existing_source == source => {
                    let other = skill_path(existing).display().to_string();
                    report.errors.push(SkillError::new(
                        skill.location().field("name"),
                        SkillErrorKind::DuplicateName { name: skill.name.clone(), other },
                    ));
                    return;
                }
                Some((existing, existing_layer, _)) => report.overrides.push(SkillOverride {
                    name: skill.name.clone(),
                    winner: (layer, path),
                    replaced: (*existing_layer, skill_path(existing)),
                }),
                None => {}
            }
            chosen.insert(skill.name.clone(), (skill, layer, source));
        };

        for (layer, source, dir) in &layered {
            for found in scan(dir, *layer, &mut report) {
                match found {
                    Ok(skill) => add(skill, *layer, *source, &mut report),
                    Err(errors) => report.errors.extend(errors.into_vec()),
                }
            }
        }
        let inline_source = usize::MAX;
        for (i, skill) in self.inline.into_iter().enumerate() {
            // Each skill given in code is its own source: two with one name is an override.
            add(skill, SkillLayer::Inline, inline_source - i, &mut report);
        }

        let mut entries: Vec<(Skill, SkillLayer)> = chosen.into_values().map(|(s, l, _)| (s, l)).collect();
        entries.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        report.loaded = entries
            .iter()
            .map(|(s, layer)| LoadedSkill { name: s.name.clone(), layer: *layer, path: skill_path(s) })
            .collect();
        let skills: Vec<Skill> = entries.into_iter().map(|(s, _)| s).collect();
        let index = skills.iter().enumerate().map(|(i, s)| (s.name.clone(), i)).collect();
        #[cfg(target_os = "linux")]
        let has_shell = self.shell.is_some();
        #[cfg(not(target_os = "linux"))]
        let has_shell = false;
        #[cfg(target_os = "linux")]
        let script_tools = {
            let (tools, errors) = super::script::build(&skills, self.shell.as_ref());
            report.errors.extend(errors);
            tools
        };
        let set = SkillSet {
            inner: Arc::new(Inner {
                skills,
                index,
                report,
                #[cfg(target_os = "linux")]
                script_tools,
            }),
        };
        let problems = requirement_problems(&set);
        let tool_warnings = if has_shell { Vec::new() } else { tool_warnings(&set) };
        // Only this function holds the set so far: the report can still be completed.
        let mut set = set;
        if let Some(inner) = Arc::get_mut(&mut set.inner) {
            inner.report.errors.extend(problems);
            inner.report.warnings.extend(tool_warnings);
        }
        set
    }

    /// Like [`load`](Self::load), but any error fails: for a CI check of a skills folder, or
    /// an application that wants every skill or none.
    pub fn load_strict(self) -> Result<SkillSet, SkillErrors> {
        let set = self.load();
        set.report().check()?;
        Ok(set)
    }
}

fn skill_path(skill: &Skill) -> PathBuf {
    skill.file().unwrap_or_else(|| PathBuf::from(INLINE))
}

/// The skills of one source folder: the folder itself when it holds a `SKILL.md`, else each
/// sub-folder that does, by name.
fn scan(dir: &Path, layer: SkillLayer, report: &mut SkillReport) -> Vec<Result<Skill, SkillErrors>> {
    let io_error = |path: &Path, e: std::io::Error| {
        SkillErrors::new(vec![SkillError::new(
            super::error::SkillLocation::file(path),
            SkillErrorKind::Io { detail: e.to_string() },
        )])
    };
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            report.missing_sources.push((layer, dir.to_path_buf()));
            return Vec::new();
        }
        Err(e) => return vec![Err(io_error(dir, e))],
        Ok(meta) if !meta.is_dir() => {
            return vec![Err(io_error(dir, std::io::Error::other("it is not a folder")))];
        }
        Ok(_) => {}
    }
    if dir.join(SKILL_FILE).is_file() {
        return vec![Skill::from_dir(dir)];
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => return vec![Err(io_error(dir, e))],
    };
    let mut folders: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .filter(|(name, path)| !name.starts_with('.') && path.is_dir())
        .collect();
    folders.sort();
    folders
        .into_iter()
        .filter(|(_, path)| path.join(SKILL_FILE).is_file() || misnamed_skill_file(path).is_some())
        .map(|(_, path)| Skill::from_dir(path))
        .collect()
}

/// Requirements that are not in the set, and cycles (each reported once, on the skill where
/// it was found).
fn requirement_problems(set: &SkillSet) -> Vec<SkillError> {
    let mut problems = Vec::new();
    let mut cycles_seen: Vec<Vec<String>> = Vec::new();
    for skill in set.iter() {
        let at = || skill.location().at(skill.requires_line, None).field("requires");
        for requirement in &skill.requires {
            if set.get(requirement).is_none() {
                let kind = SkillErrorKind::MissingRequirement { requirement: requirement.clone() };
                problems.push(SkillError::new(at(), kind));
            }
        }
        if let Err(SkillLoadError::Cycle { cycle }) = set.resolve(&skill.name) {
            let mut key: Vec<String> = cycle[..cycle.len().saturating_sub(1)].to_vec();
            key.sort();
            if !cycles_seen.contains(&key) {
                cycles_seen.push(key);
                problems.push(SkillError::new(at(), SkillErrorKind::RequirementCycle { cycle }));
            }
        }
    }
    problems
}

fn tool_warnings(set: &SkillSet) -> Vec<SkillWarning> {
    set.iter()
        .filter(|s| !s.tools.is_empty())
        .map(|s| {
            SkillWarning::new(s.location().field("tools"), SkillWarningKind::ToolsWithoutShell { count: s.tools.len() })
        })
        .collect()
}
