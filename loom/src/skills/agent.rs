//! Giving an agent skills: the catalog in its instructions, the skill tools in its tool set.

use std::sync::Arc;

use super::SkillSet;
use super::tools::LoadSkillTool;
use crate::agent::Agent;
use crate::tool::Tool;

impl SkillSet {
    /// The `load_skill` tool for this set.
    pub fn load_skill_tool(&self) -> LoadSkillTool {
        LoadSkillTool::new(self.clone())
    }

    /// The `read_skill_file` tool for this set.
    #[cfg(unix)]
    pub fn read_skill_file_tool(&self) -> super::tools::ReadSkillFileTool {
        super::tools::ReadSkillFileTool::new(self.clone())
    }

    /// The tools an agent needs to use the set: `load_skill`; `read_skill_file` when a skill
    /// has files in its folder; and the skills' script tools when the set has a shell. None
    /// for an empty set.
    pub fn tools(&self) -> Vec<Arc<dyn Tool>> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut tools: Vec<Arc<dyn Tool>> = vec![Arc::new(self.load_skill_tool())];
        #[cfg(unix)]
        {
            if self.iter().any(|s| !s.resources().is_empty()) {
                tools.push(Arc::new(self.read_skill_file_tool()));
            }
        }
        #[cfg(target_os = "linux")]
        tools.extend(self.inner.script_tools.iter().map(|t| Arc::clone(t) as Arc<dyn Tool>));
        tools
    }
}

impl<O> Agent<O> {
    /// Gives the agent skills, disclosed progressively: the [`prompt_section`] (names and
    /// descriptions only) is appended to the instructions, and the set's [`tools`] are added
    /// (`load_skill`, which returns a skill's body with its requirements first;
    /// `read_skill_file`, for the files in a skill's folder; the skills' script tools, when
    /// the set has a shell). After this, [`instructions`](Agent::instructions) includes the
    /// catalog.
    ///
    /// Give an agent one set: a second would add a second `load_skill`, which is a
    /// [`ConfigError`](crate::ConfigError) (merge the sources into one set instead). An empty
    /// set changes nothing.
    ///
    /// [`prompt_section`]: SkillSet::prompt_section
    /// [`tools`]: SkillSet::tools
    ///
    /// ```
    /// use loomflow::prelude::*;
    /// use loomflow::skills::{Skill, SkillSet};
    /// use serde_json::json;
    ///
    /// let haiku = Skill::from_text("---\nname: haiku\ndescription: Write a haiku.\n---\nFive, seven, five syllables.\n")?;
    /// let skills = SkillSet::builder().skill(haiku).load();
    /// let model = ScriptedModel::new([
    ///     ScriptedTurn::tool_call("load_skill", json!({"name": "haiku"})),
    ///     ScriptedTurn::text("Autumn moonlight..."),
    /// ]);
    /// let agent = Agent::new("You write poems.").model(model.clone()).skills(skills);
    /// assert!(agent.instructions().contains("- haiku: Write a haiku."));
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// let result = rt.block_on(async { agent.run("A haiku about the moon").await })?;
    /// assert_eq!(result.output, "Autumn moonlight...");
    /// // The model read the body only once it loaded the skill.
    /// assert!(!model.requests()[0].messages[0].text().contains("Five, seven, five"));
    /// assert!(model.requests()[1].last_text().contains("Five, seven, five syllables."));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn skills(self, skills: SkillSet) -> Self {
        if skills.is_empty() {
            return self;
        }
        let section = skills.prompt_section();
        let instructions =
            if self.instructions.is_empty() { section } else { format!("{}\n\n{section}", self.instructions) };
        self.replace_instructions(instructions).tools(skills.tools())
    }
}
