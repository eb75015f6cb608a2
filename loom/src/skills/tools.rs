//! The tools a skill set gives an agent: `load_skill`, and `read_skill_file` for the files in
//! the skills' folders.

use serde_json::json;

use super::SkillSet;
use crate::context::RunContext;
use crate::tool::{Arguments, Tool, ToolDefinition, ToolError, ToolHints, ToolOutput};

/// The name of the tool that loads a skill.
pub const LOAD_SKILL: &str = "load_skill";

/// The name of the tool that reads a file of a skill.
pub const READ_SKILL_FILE: &str = "read_skill_file";

/// `load_skill`: returns a skill's instructions, with those of the skills it requires first
/// (each once), and lists the files in its folder and the tools it bundles.
///
/// The name is checked when the tool is called, not by an enum in its schema: a long list of
/// names would repeat the catalog in every request. An unknown name, a missing requirement or
/// a cycle is an error the model reads (with the closest name, and the names there are).
#[derive(Debug, Clone)]
pub struct LoadSkillTool {
    skills: SkillSet,
    definition: ToolDefinition,
}

impl LoadSkillTool {
    pub(super) fn new(skills: SkillSet) -> Self {
        let definition = ToolDefinition::new_unchecked(
            LOAD_SKILL.to_owned(),
            "Load a skill: its full instructions, with those of the skills it builds on. Call it before a task \
             that one of the available skills (listed in your instructions) fits, and follow what it says."
                .to_owned(),
            json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "The skill's name, as listed under Available skills."}
                },
                "required": ["name"],
                "additionalProperties": false
            }),
        )
        .with_hints(ToolHints::NONE.read_only().idempotent());
        Self { skills, definition }
    }
}

#[async_trait::async_trait]
impl Tool for LoadSkillTool {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, _ctx: &RunContext, arguments: &str) -> Result<ToolOutput, ToolError> {
        let mut args = Arguments::parse(arguments)?;
        let name: String = args.take("name")?;
        args.finish(&["name"])?;
        let text = self.skills.load(name.trim()).map_err(|e| ToolError::new(e.to_string()))?;
        Ok(ToolOutput::text(text))
    }
}

/// `read_skill_file`: reads a text file in a skill's folder (a reference, a template, a
/// script), through a read-only [`Filesystem`](crate::tools::fs::Filesystem) rooted at that
/// folder: the same numbered lines, ranges and refusals as `read_file` (no absolute paths, no
/// `..` above the folder, no symbolic link out of it).
#[cfg(unix)]
#[derive(Debug, Clone)]
pub struct ReadSkillFileTool {
    skills: SkillSet,
    definition: ToolDefinition,
}

#[cfg(unix)]
impl ReadSkillFileTool {
    pub(super) fn new(skills: SkillSet) -> Self {
        let definition = ToolDefinition::new_unchecked(
            READ_SKILL_FILE.to_owned(),
            "Read a file in a skill's folder, as listed when the skill was loaded: its lines, numbered, a range at \
             a time."
                .to_owned(),
            json!({
                "type": "object",
                "properties": {
                    "skill": {"type": "string", "description": "The skill's name."},
                    "path": {
                        "type": "string",
                        "description": "The file, relative to the skill's folder, e.g. `reference.md` or `scripts/fill.py`."
                    },
                    "offset": {"type": "integer", "minimum": 1, "description": "The first line to read (from 1)."},
                    "limit": {"type": "integer", "minimum": 1, "description": "How many lines to read."}
                },
                "required": ["skill", "path"],
                "additionalProperties": false
            }),
        )
        .with_hints(ToolHints::NONE.read_only().idempotent());
        Self { skills, definition }
    }
}

#[cfg(unix)]
#[async_trait::async_trait]
impl Tool for ReadSkillFileTool {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, ctx: &RunContext, arguments: &str) -> Result<ToolOutput, ToolError> {
        let mut args = Arguments::parse(arguments)?;
        let skill: String = args.take("skill")?;
        let path: String = args.take("path")?;
        let offset: Option<u64> = args.take("offset")?;
        let limit: Option<u64> = args.take("limit")?;
        args.finish(&["skill", "path", "offset", "limit"])?;
        let skill = skill.trim();
        let Some(found) = self.skills.get(skill) else {
            return Err(ToolError::new(self.skills.unknown_skill(skill).to_string()));
        };
        let Some(dir) = found.dir() else {
            return Err(ToolError::new(format!("skill `{skill}` was given in code and has no folder, so no files")));
        };
        let fs = crate::tools::fs::Filesystem::new(dir)
            .map_err(|e| ToolError::new(format!("the folder of skill `{skill}` cannot be read: {e}")))?
            .read_only();
        let mut forwarded = json!({"path": path});
        if let Some(offset) = offset {
            forwarded["offset"] = offset.into();
        }
        if let Some(limit) = limit {
            forwarded["limit"] = limit.into();
        }
        fs.read_file().call(ctx, &forwarded.to_string()).await
    }
}
