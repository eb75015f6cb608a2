//! Skills: Anthropic-format `SKILL.md` packages, layered from several sources, disclosed
//! progressively through the `load_skill` tool.
//!
//! # The format
//!
//! A skill is a folder with a `SKILL.md`: YAML frontmatter between `---` lines, then markdown
//! instructions. Other files in the folder (references, templates, scripts) are its
//! resources.
//!
//! ```text
//! pdf-forms/
//! ├── SKILL.md
//! ├── reference.md
//! └── scripts/fill.py
//! ```
//!
//! ```markdown
//! ---
//! name: pdf-forms
//! description: Fill in PDF forms from data the user gives. Use when a form must be completed.
//! license: MIT
//! requires: [house-style]        # Loom: skills loaded first, in dependency order
//! tools:                         # Loom: scripts offered as tools (`pdf-forms__fill`)
//!   - name: fill
//!     description: Fill the form fields from a JSON object.
//!     script: scripts/fill.py
//! ---
//! # Filling PDF forms
//! Read `reference.md` for the field names, then ...
//! ```
//!
//! | key | | rule |
//! |---|---|---|
//! | `name` | required | `^[a-z0-9]+(-[a-z0-9]+)*$`, at most 64 characters |
//! | `description` | required | not empty, at most 1024 characters, no XML tags |
//! | `license` | | a string |
//! | `compatibility` | | a string of at most 500 characters |
//! | `allowed-tools` | | a space-separated string or a list (`allowed_tools` is accepted too); recorded, not enforced |
//! | `metadata` | | a mapping |
//! | `requires` | Loom | a skill name or a list of them |
//! | `tools` | Loom | a list of script tools ([`SkillToolSpec`]) |
//!
//! Decisions where the format leaves room, or where real packages stray from it:
//!
//! - **Unknown keys** (`version`, `tags`, ... are common) are accepted: kept in
//!   [`Skill::extra`] and reported as warnings. A package that works elsewhere loads here.
//! - **The name and the folder.** The format asks for the folder to be named like the skill.
//!   Loom uses the frontmatter's `name` and reports a warning when the folder differs.
//! - **YAML** is parsed by a real YAML parser (`serde-saphyr`: pure Rust, panic-free, limits
//!   on alias expansion), with YAML 1.2 booleans (`yes` stays a string). A key given twice is
//!   an error.
//! - **Errors** name the file, the line in the `SKILL.md` (the `---` line is line 1) and the
//!   field, and a file's every problem is reported at once:
//!   `skills/pdf/SKILL.md:2:7: field \`name\`: \`PDF\` is not a valid skill name: it has
//!   uppercase letters (...)`.
//!
//! # Sources and layers
//!
//! [`SkillSet::builder`] takes folders in layers: built-in < user < project < skills given in
//! code. A later layer's skill replaces an earlier one of the same name, and the
//! [`SkillReport`] says so (`project \`review\` overrides user \`review\``). A malformed
//! `SKILL.md` is left out and reported; the other skills load.
//!
//! # Progressive disclosure
//!
//! [`Agent::skills`](crate::Agent::skills) puts only the catalog in the system prompt, a line
//! per skill with its name and description ([`SkillSet::prompt_section`]). The model calls
//! `load_skill` to read a skill's instructions; they come with those of the skills it
//! `requires`, dependencies first, each once (a cycle or a missing requirement is an error the
//! model reads), and with the list of the files in its folder, which the model reads with
//! `read_skill_file` — a read-only [`Filesystem`](crate::tools::fs::Filesystem) rooted at the
//! skill's folder, so nothing outside it can be reached.
//!
//! # Script tools
//!
//! A skill's `tools` are offered only when the set has a sandboxed
//! [`Shell`](crate::tools::shell::Shell) ([`SkillSetBuilder::shell`]). Each call runs its
//! script through that shell — inside its sandbox unless the shell itself was built without
//! one, by name — with the skill's folder bound read-only. The tools are marked
//! [`destructive`](crate::tool::ToolHints::destructive): a script can do anything its sandbox
//! lets it, so approval policies treat it like any other destructive tool.
//!
//! The model is offered a skill's script tools from the start of a run (an agent's tool list
//! is fixed when it is built, and providers cache it), with descriptions that point at the
//! skill: the catalog shows how many tools each skill has (`pdf-forms [+1 tool]`).
//!
//! ```
//! use loomflow::skills::{SkillLayer, SkillSet};
//!
//! # let root = std::env::temp_dir().join(format!("loom-skills-doc-{}", std::process::id()));
//! # for (dir, text) in [
//! #     ("user/review", "---\nname: review\ndescription: Review code (user's own).\n---\nLook closely.\n"),
//! #     ("project/review", "---\nname: review\ndescription: Review code the project's way.\n---\nRun the linter.\n"),
//! #     ("project/broken", "---\nname: Broken Skill\ndescription: x\n---\n"),
//! # ] {
//! #     std::fs::create_dir_all(root.join(dir))?;
//! #     std::fs::write(root.join(dir).join("SKILL.md"), text)?;
//! # }
//! let skills = SkillSet::builder().user(root.join("user")).project(root.join("project")).load();
//! let review = skills.get("review").map(|s| s.description());
//! assert_eq!(review, Some("Review code the project's way."));
//!
//! let report = skills.report();
//! assert_eq!(report.overrides()[0].winner().0, SkillLayer::Project);
//! assert!(report.to_string().contains("project `review` overrides user `review`"));
//! // The broken skill is reported with its file, line and field; the others loaded.
//! let error = report.errors()[0].to_string();
//! assert!(error.contains("broken/SKILL.md:2:7: field `name`"), "{error}");
//! # std::fs::remove_dir_all(&root)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod agent;
mod error;
mod parse;
mod report;
#[cfg(target_os = "linux")]
mod script;
mod set;
mod skill;
mod tools;
mod yaml;

pub use error::{
    SkillError, SkillErrorKind, SkillErrors, SkillLoadError, SkillLocation, SkillWarning, SkillWarningKind,
};
pub use parse::{MAX_COMPATIBILITY_LEN, MAX_DESCRIPTION_LEN, MAX_NAME_LEN, validate_skill_name};
pub use report::{LoadedSkill, SkillLayer, SkillOverride, SkillReport};
#[cfg(target_os = "linux")]
pub use script::{ARGS_ENV, SKILL_DIR_ENV, ScriptTool};
pub use set::{SkillSet, SkillSetBuilder};
pub use skill::{MAX_RESOURCES, MAX_SKILL_FILE_BYTES, SKILL_FILE, Skill, SkillToolSpec};
#[cfg(unix)]
pub use tools::ReadSkillFileTool;
pub use tools::{LOAD_SKILL, LoadSkillTool, READ_SKILL_FILE};
