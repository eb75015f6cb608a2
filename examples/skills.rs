//! Skills: `SKILL.md` packages in layers, shown to the model by name and description, loaded
//! on demand — offline, on the scripted model.
//!
//! The skills are in `examples/skill-library/`: a built-in layer and a project layer whose
//! `house-style` replaces the built-in one.
//!
//! ```sh
//! cargo run --example skills
//! ```

use std::path::Path;

use loomflow::prelude::*;
use loomflow::skills::SkillSet;
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let library = Path::new(env!("CARGO_MANIFEST_DIR")).join("skill-library");
    let builder = SkillSet::builder().builtin(library.join("builtin")).project(library.join("project"));

    // Script tools run through a sandboxed shell whose root is the work folder; without a
    // shell they are not offered.
    let work = std::env::temp_dir().join(format!("loom-skills-example-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    #[cfg(target_os = "linux")]
    let builder = builder.shell(loomflow::tools::shell::Shell::new(&work)?);
    let skills = builder.load();

    println!("== what was loaded");
    for skill in skills.report().loaded() {
        println!("{:<14} from the {} layer", skill.name(), skill.layer());
    }
    for o in skills.report().overrides() {
        println!("{} `{}` overrides {} `{}`", o.winner().0, o.name(), o.replaced().0, o.name());
    }
    assert!(skills.report().is_ok(), "{}", skills.report());

    // The model plays its part from a script: it loads the skill (which brings `house-style`
    // with it), reads the file the skill points at, then answers.
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("load_skill", json!({"name": "release-notes"})),
        ScriptedTurn::tool_call("read_skill_file", json!({"skill": "release-notes", "path": "format.md"})),
        ScriptedTurn::text("## 2.4 — 2025-03-01\n### New\n- We now export reports as PDF."),
    ]);
    let agent =
        Agent::new("You write for our customers.").model(loomflow::model::from_env_or(model)?).skills(skills.clone());

    println!("\n== the system prompt (names and descriptions only)\n{}", agent.instructions());
    let tools: Vec<String> = agent.tool_set_ref().names().map(str::to_owned).collect();
    println!("\n== tools offered: {tools:?}");

    let result = agent.run("Write the release notes for: PDF export (#812), refactor of the cache (#813).").await?;
    println!("\n== the run");
    for message in &result.messages {
        match message {
            Message::User { content } => println!("user      │ {}", content.text()),
            Message::Assistant { content, tool_calls } => {
                for call in tool_calls {
                    println!("tool call │ {}({})", call.name, call.arguments);
                }
                if !content.is_empty() {
                    println!("assistant │ {}", content.text().replace('\n', "\n          │ "));
                }
            }
            Message::Tool(r) => println!("tool      │ {} →\n{}", r.name, indent(&r.content.text())),
            _ => {}
        }
    }
    println!("\n{} model calls, {} tool calls", result.turns, result.tool_calls);
    std::fs::remove_dir_all(&work)?;
    Ok(())
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("          │ {l}")).collect::<Vec<_>>().join("\n")
}
