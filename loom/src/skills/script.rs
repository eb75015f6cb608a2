//! A skill's script tools: each call runs its script through the set's sandboxed shell, with
//! the skill's folder bound read-only.

use std::path::PathBuf;
use std::sync::Arc;

use super::SkillSet;
use super::error::{SkillError, SkillErrorKind};
use super::skill::{Skill, SkillToolSpec};
use crate::context::RunContext;
use crate::tool::{Tool, ToolDefinition, ToolError, ToolHints, ToolOutput};
use crate::tools::shell::{Shell, ShellCommand, ShellOutput};

/// The environment variable that holds a call's arguments (as JSON) for a script.
pub const ARGS_ENV: &str = "LOOM_TOOL_ARGS";

/// The environment variable that holds the skill's folder for a script.
pub const SKILL_DIR_ENV: &str = "LOOM_SKILL_DIR";

/// One script tool of a skill (`<skill>__<tool>`), run through a [`Shell`].
///
/// A call runs the script with the shell's sandbox, root and limits, plus the skill's folder
/// visible read-only at its own path; the script reads the model's arguments as one JSON
/// object on its standard input (and in `LOOM_TOOL_ARGS`; the folder is in `LOOM_SKILL_DIR`).
/// Its standard output is the result (with standard error after it, when there is any); a
/// non-zero exit, a signal or the time limit make the result an error the model reads, with
/// both streams. Marked [`destructive`](ToolHints::destructive): approval policies apply.
#[derive(Clone)]
pub struct ScriptTool {
    definition: ToolDefinition,
    skill: String,
    spec: SkillToolSpec,
    /// The script's absolute path (inside `dir`).
    script: PathBuf,
    dir: PathBuf,
    shell: Shell,
}

impl std::fmt::Debug for ScriptTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptTool")
            .field("name", &self.definition.name())
            .field("script", &self.script)
            .field("shell", &self.shell)
            .finish_non_exhaustive()
    }
}

impl ScriptTool {
    /// The tools of `skill`, run through `shell` with the skill's folder bound read-only.
    pub(super) fn for_skill(skill: &Skill, shell: &Shell) -> Result<Vec<Self>, SkillError> {
        let Some(dir) = skill.dir() else { return Ok(Vec::new()) };
        if skill.tools().is_empty() {
            return Ok(Vec::new());
        }
        let io = |e: std::io::Error| {
            SkillError::new(skill.location().field("tools"), SkillErrorKind::Io { detail: e.to_string() })
        };
        let dir = dir.canonicalize().map_err(io)?;
        let shell = shell.clone().bind_read_only(dir.clone());
        skill
            .tools()
            .iter()
            .map(|spec| {
                let script = dir.join(spec.script()).canonicalize().map_err(io)?;
                let description = format!(
                    "{} (A tool of skill `{}`: load the skill with `load_skill` first to learn how to use it.)",
                    spec.description(),
                    skill.name()
                );
                // The name and the schema were checked when the frontmatter was read.
                let definition =
                    ToolDefinition::new_unchecked(spec.tool_name().to_owned(), description, spec.parameters().clone())
                        .with_hints(ToolHints::NONE.destructive());
                Ok(Self {
                    definition,
                    skill: skill.name().to_owned(),
                    spec: spec.clone(),
                    script,
                    dir: dir.clone(),
                    shell: shell.clone(),
                })
            })
            .collect()
    }

    /// The skill the tool belongs to.
    pub fn skill(&self) -> &str {
        &self.skill
    }

    /// The tool as the frontmatter declares it.
    pub fn spec(&self) -> &SkillToolSpec {
        &self.spec
    }

    /// The shell the script runs through (the set's, with the skill's folder bound).
    pub fn shell(&self) -> &Shell {
        &self.shell
    }

    fn command(&self, arguments: &str) -> ShellCommand {
        let mut words = self.spec.interpreter().iter();
        let mut command = match words.next() {
            Some(program) => ShellCommand::program(program).args(words).arg(&self.script),
            None => ShellCommand::program(&self.script),
        };
        command = command.stdin(arguments.as_bytes().to_vec()).env(ARGS_ENV, arguments).env(SKILL_DIR_ENV, &self.dir);
        if let Some(timeout) = self.spec.timeout() {
            command = command.timeout(timeout);
        }
        command
    }
}

#[async_trait::async_trait]
impl Tool for ScriptTool {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, _ctx: &RunContext, arguments: &str) -> Result<ToolOutput, ToolError> {
        let arguments = match arguments.trim() {
            "" | "null" => "{}".to_owned(),
            raw => match serde_json::from_str::<serde_json::Value>(raw) {
                Ok(value @ serde_json::Value::Object(_)) => value.to_string(),
                Ok(_) => return Err(ToolError::invalid_arguments("the arguments must be one JSON object")),
                Err(e) => {
                    return Err(ToolError::invalid_arguments(format!(
                        "the arguments are not valid JSON ({e}); send one JSON object matching the tool's schema"
                    )));
                }
            },
        };
        let output =
            self.shell.run(self.command(&arguments)).await.map_err(|e| {
                ToolError::new(format!("the script of `{}` could not be run: {e}", self.definition.name()))
            })?;
        result(output)
    }
}

fn result(output: ShellOutput) -> Result<ToolOutput, ToolError> {
    if !output.success() {
        return Err(ToolError::new(format!("the script failed: {output}")));
    }
    let mut text = output.stdout.text().to_owned();
    if !output.stderr.is_empty() {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str("[stderr]\n");
        text.push_str(output.stderr.text());
    }
    Ok(ToolOutput::text(text))
}

impl SkillSet {
    /// The skills' script tools, when the set has a shell (see
    /// [`SkillSetBuilder::shell`](super::SkillSetBuilder::shell)); none otherwise.
    pub fn script_tools(&self) -> Vec<ScriptTool> {
        self.inner.script_tools.iter().map(|t| (**t).clone()).collect()
    }
}

/// Builds every skill's script tools; a skill whose tools cannot be made is reported and
/// offers none.
pub(super) fn build(skills: &[Skill], shell: Option<&Shell>) -> (Vec<Arc<ScriptTool>>, Vec<SkillError>) {
    let Some(shell) = shell else { return (Vec::new(), Vec::new()) };
    let mut tools = Vec::new();
    let mut errors = Vec::new();
    for skill in skills {
        match ScriptTool::for_skill(skill, shell) {
            Ok(made) => tools.extend(made.into_iter().map(Arc::new)),
            Err(e) => errors.push(e),
        }
    }
    (tools, errors)
}
