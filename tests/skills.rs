//! Skills through the public API: real-world `SKILL.md` packages of several shapes in three
//! layered sources (`tests/fixtures/skills/{builtin,user,project}`), progressive disclosure,
//! `load_skill` order, resources read through the scoped filesystem, and script tools run
//! through the sandboxed shell.

mod common;

use common::tool_results;

use std::path::{Path, PathBuf};

use loomflow::prelude::*;
use loomflow::skills::{SkillErrorKind, SkillLayer, SkillLoadError, SkillSet, SkillWarningKind};
use serde_json::json;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/skills")
}

fn layered() -> SkillSet {
    let root = fixtures();
    SkillSet::builder().builtin(root.join("builtin")).user(root.join("user")).project(root.join("project")).load()
}

/// The errors of the report that concern `dir`'s files, as (line, field, kind).
fn errors_in<'r>(skills: &'r SkillSet, dir: &str) -> Vec<(Option<u32>, Option<&'r str>, &'r SkillErrorKind)> {
    let needle = format!("/{dir}/");
    skills
        .report()
        .errors()
        .iter()
        .filter(|e| e.location().path().to_string_lossy().contains(&needle))
        .map(|e| (e.location().line(), e.location().field_name(), e.kind()))
        .collect()
}

#[test]
fn the_layers_are_merged_by_name_and_the_later_wins() {
    let skills = layered();
    let names: Vec<&str> = skills.names().collect();
    assert_eq!(
        names,
        [
            "brand-voice",
            "calc",
            "chart-basics",
            "house-style",
            "loop-a",
            "loop-b",
            "needs-ghost",
            "pdf-forms",
            "report-writer",
            "review"
        ],
        "the broken and misnamed skills, the hidden folder and the folder without SKILL.md are left out"
    );
    assert_eq!(
        skills.get("review").map(|s| s.body()),
        Some("PROJECT-REVIEW-BODY: run the linter, then read the diff.")
    );

    let report = skills.report();
    let layer_of = |name: &str| report.loaded().iter().find(|l| l.name() == name).map(|l| l.layer());
    assert_eq!(layer_of("house-style"), Some(SkillLayer::Builtin));
    assert_eq!(layer_of("chart-basics"), Some(SkillLayer::User));
    assert_eq!(layer_of("review"), Some(SkillLayer::Project));

    let overrides: Vec<String> = report.overrides().iter().map(ToString::to_string).collect();
    assert_eq!(overrides.len(), 2, "{overrides:?}");
    assert!(overrides[0].starts_with("user `review` overrides builtin `review`"), "{overrides:?}");
    assert!(overrides[1].starts_with("project `review` overrides user `review`"), "{overrides:?}");
    assert!(overrides[1].contains("project/review/SKILL.md replaces"), "{overrides:?}");
    let text = report.to_string();
    assert!(text.contains("project `review` overrides user `review`"), "{text}");
}

#[test]
fn skills_in_code_win_and_absent_folders_are_only_noted() -> anyhow::Result<()> {
    let root = fixtures();
    let mine =
        loomflow::skills::Skill::from_text("---\nname: review\ndescription: Review it my way.\n---\nINLINE-REVIEW\n")?;
    let skills =
        SkillSet::builder().project(root.join("project/review")).user(root.join("does-not-exist")).skill(mine).load();
    assert!(skills.report().is_ok(), "{}", skills.report());
    assert_eq!(skills.names().collect::<Vec<_>>(), ["review"], "a source folder may be one skill's folder");
    assert_eq!(skills.get("review").map(|s| s.body()), Some("INLINE-REVIEW"));
    let overrides: Vec<String> = skills.report().overrides().iter().map(ToString::to_string).collect();
    assert!(overrides[0].starts_with("inline `review` overrides project `review`"), "{overrides:?}");
    assert_eq!(skills.report().missing_sources(), [(SkillLayer::User, root.join("does-not-exist"))]);
    assert!(skills.report().to_string().contains("note: the user skills folder"), "{}", skills.report());
    Ok(())
}

#[test]
fn a_strict_load_fails_on_any_error_and_says_them_all() {
    let root = fixtures();
    let strict = SkillSet::builder().builtin(root.join("builtin")).load_strict();
    assert!(strict.is_ok(), "the built-in fixtures are clean");
    let message = SkillSet::builder().project(root.join("project")).load_strict().err().map(|e| e.to_string());
    let message = message.unwrap_or_default();
    for part in [
        "broken/SKILL.md:2:7: field `name`",
        "broken/SKILL.md:3:14: field `description`",
        "misnamed/skill.md",
        "requires `ghost`",
    ] {
        assert!(message.contains(part), "{part:?} missing from:\n{message}");
    }
}

#[test]
fn a_malformed_skill_is_reported_with_file_line_and_field_and_hides_no_other() {
    let skills = layered();
    let broken = errors_in(&skills, "broken");
    assert_eq!(broken.len(), 2, "both problems of the file are reported: {broken:?}");
    assert_eq!((broken[0].0, broken[0].1), (Some(2), Some("name")));
    assert!(matches!(broken[0].2, SkillErrorKind::InvalidName { name, .. } if name == "Broken Skill"));
    assert_eq!((broken[1].0, broken[1].1), (Some(3), Some("description")));
    assert!(matches!(broken[1].2, SkillErrorKind::XmlTag { tag } if tag == "<b>"));

    let message =
        skills.report().errors().iter().map(ToString::to_string).find(|m| m.contains("broken")).unwrap_or_default();
    assert!(
        message.contains("project/broken/SKILL.md:2:7: field `name`: `Broken Skill` is not a valid skill name"),
        "{message}"
    );

    let misnamed = errors_in(&skills, "misnamed");
    assert_eq!(misnamed.len(), 1);
    assert!(matches!(misnamed[0].2, SkillErrorKind::Misnamed { found } if found == "skill.md"));
}

#[test]
fn requirement_problems_are_reported_on_the_requires_line() {
    let skills = layered();
    let ghost = errors_in(&skills, "needs-ghost");
    assert_eq!(ghost.len(), 1, "{ghost:?}");
    assert_eq!((ghost[0].0, ghost[0].1), (Some(4), Some("requires")));
    assert!(matches!(ghost[0].2, SkillErrorKind::MissingRequirement { requirement } if requirement == "ghost"));

    let cycles: Vec<&Vec<String>> = skills
        .report()
        .errors()
        .iter()
        .filter_map(|e| match e.kind() {
            SkillErrorKind::RequirementCycle { cycle } => Some(cycle),
            _ => None,
        })
        .collect();
    assert_eq!(cycles, [&vec!["loop-a".to_owned(), "loop-b".to_owned(), "loop-a".to_owned()]], "reported once");
}

#[test]
fn real_world_extras_are_kept_and_warned_about() {
    let skills = layered();
    let brand = skills.get("brand-voice");
    assert_eq!(brand.and_then(|s| s.extra().get("version")), Some(&json!("1.0.2")));
    assert_eq!(brand.and_then(|s| s.extra().get("tags")), Some(&json!(["writing", "brand"])));
    let warned: Vec<&str> = skills
        .report()
        .warnings()
        .iter()
        .filter_map(|w| match w.kind() {
            SkillWarningKind::UnknownKey { key } => Some(key.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(warned, ["version", "tags"]);

    let pdf = skills.get("pdf-forms");
    assert_eq!(pdf.map(|s| s.allowed_tools().to_vec()), Some(vec!["Read".to_owned(), "Bash(python3:*)".to_owned()]));
    assert_eq!(pdf.and_then(|s| s.metadata().get("version")), Some(&json!("2.1")));
    assert_eq!(
        pdf.map(|s| s.resources().to_vec()),
        Some(vec!["reference.md".to_owned(), "templates/cover-letter.md".to_owned()])
    );

    // Script tools are declared, but without a shell they are not offered, and the report says so.
    assert_eq!(skills.get("calc").map(|s| s.tools().len()), Some(2));
    assert!(
        skills.report().warnings().iter().any(|w| matches!(w.kind(), SkillWarningKind::ToolsWithoutShell { count: 2 })),
        "{}",
        skills.report()
    );
    let names: Vec<String> = skills.tools().iter().map(|t| t.definition().name().to_owned()).collect();
    assert_eq!(names, ["load_skill", "read_skill_file"]);
}

#[test]
fn the_prompt_shows_names_and_descriptions_only() {
    let skills = layered();
    let section = skills.prompt_section();
    assert!(section.starts_with("## Available skills\n"), "{section}");
    for skill in skills.iter() {
        let line = format!("\n- {}: ", skill.name());
        assert!(section.contains(&line), "{line:?} missing from:\n{section}");
        assert!(!section.contains(skill.body()), "the body of {} is in the prompt", skill.name());
    }
    // A folded description is one line.
    assert!(
        section.contains("- pdf-forms: Fill in PDF forms from data the user gives. Use when a form must be completed.")
    );
    assert!(!section.contains("BODY"), "{section}");
}

#[test]
fn load_skill_brings_requirements_first_each_once() -> anyhow::Result<()> {
    let skills = layered();
    let order: Vec<&str> = skills.resolve("report-writer")?.iter().map(|s| s.name()).collect();
    assert_eq!(order, ["house-style", "chart-basics", "report-writer"]);

    let text = skills.load("report-writer")?;
    let at = |marker: &str| text.find(marker).unwrap_or(usize::MAX);
    assert!(at("HOUSE-STYLE-BODY") < at("CHART-BASICS-BODY"), "{text}");
    assert!(at("CHART-BASICS-BODY") < at("REPORT-WRITER-BODY"), "{text}");
    assert!(at("REPORT-WRITER-BODY") < usize::MAX, "{text}");
    assert_eq!(text.matches("HOUSE-STYLE-BODY").count(), 1, "a shared requirement comes once: {text}");
    assert!(!text.contains("PROJECT-REVIEW-BODY"), "{text}");

    // A skill's files are listed when it is loaded.
    let pdf = skills.load("pdf-forms")?;
    assert!(pdf.contains("`reference.md`, `templates/cover-letter.md`"), "{pdf}");
    Ok(())
}

#[test]
fn load_skill_errors_are_for_the_model() {
    let skills = layered();
    assert_eq!(
        skills.resolve("loop-a").err(),
        Some(SkillLoadError::Cycle { cycle: vec!["loop-a".into(), "loop-b".into(), "loop-a".into()] })
    );
    assert_eq!(
        skills.resolve("needs-ghost").err(),
        Some(SkillLoadError::MissingRequirement { skill: "needs-ghost".into(), requirement: "ghost".into() })
    );
    let unknown = skills.load("pdf-form").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(unknown.starts_with("there is no skill named `pdf-form` (did you mean `pdf-forms`?)"), "{unknown}");
    assert!(unknown.contains("`report-writer`"), "{unknown}");
}

#[tokio::test]
async fn an_agent_loads_a_skill_then_reads_its_reference() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("load_skill", json!({"name": "pdf-forms"})),
        ScriptedTurn::tool_call("read_skill_file", json!({"skill": "pdf-forms", "path": "reference.md"})),
        ScriptedTurn::tool_call("read_skill_file", json!({"skill": "pdf-forms", "path": "../../user/review/SKILL.md"})),
        ScriptedTurn::tool_call("load_skill", json!({"name": "loop-a"})),
        ScriptedTurn::text("The form needs applicant_name, date_of_birth and signed."),
    ]);
    let agent = Agent::new("You fill in forms.").model(model.clone()).skills(layered());
    let result = agent.run("Fill in my visa form.").user("ada").await?;
    assert_eq!(result.output, "The form needs applicant_name, date_of_birth and signed.");

    let requests = model.requests();
    // Progressive disclosure: the catalog is in the system prompt, the bodies are not.
    let system = requests[0].messages[0].text().into_owned();
    assert!(system.starts_with("You fill in forms.\n\n## Available skills"), "{system}");
    assert!(system.contains("- pdf-forms: Fill in PDF forms"), "{system}");
    assert!(!system.contains("PDF-FORMS-BODY"), "{system}");
    assert_eq!(requests[0].tool_names(), ["load_skill", "read_skill_file"]);

    let results = tool_results(&result);
    assert!(!results[0].is_error && results[0].content.text().contains("PDF-FORMS-BODY"), "{:?}", results[0]);
    assert!(!results[1].is_error && results[1].content.text().contains("PDF-REFERENCE"), "{:?}", results[1]);
    // The scoped filesystem refuses to leave the skill's folder.
    assert!(results[2].is_error, "{:?}", results[2]);
    assert!(!results[2].content.text().contains("USER-REVIEW-BODY"), "{:?}", results[2]);
    // A cycle is an error the model reads.
    assert!(results[3].is_error && results[3].content.text().contains("loop-a → loop-b → loop-a"), "{:?}", results[3]);
    Ok(())
}

/// Script tools run through the sandboxed shell, which needs bubblewrap.
mod scripts {
    use loomflow::tools::shell::Shell;

    use super::*;

    /// A scratch copy of the fixtures (a script must never write next to the real ones) and
    /// a work folder for the shell.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> anyhow::Result<Self> {
            let root = std::env::temp_dir().join(format!("loom-skills-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            let calc = root.join("skills/calc");
            std::fs::create_dir_all(calc.join("scripts"))?;
            std::fs::create_dir_all(root.join("work"))?;
            let from = fixtures().join("project/calc");
            for file in ["SKILL.md", "scripts/add.py", "scripts/scribble.sh"] {
                std::fs::copy(from.join(file), calc.join(file))?;
            }
            Ok(Self(root))
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn bubblewrap() {
        assert!(
            ["/usr/bin/bwrap", "/bin/bwrap", "/usr/local/bin/bwrap"].iter().any(|p| Path::new(p).is_file()),
            "bubblewrap is not installed: install it (`apt-get install bubblewrap`; `.ci/run` does), or run \
             without --include-ignored to leave the sandboxed script tests out"
        );
    }

    #[test]
    fn with_a_shell_script_tools_are_offered_as_destructive_tools() -> anyhow::Result<()> {
        let scratch = Scratch::new("offered")?;
        let shell = Shell::new(scratch.0.join("work"))?;
        let skills = SkillSet::builder().project(scratch.0.join("skills")).shell(shell).load();
        assert!(skills.report().is_ok(), "{}", skills.report());
        let tools = skills.tools();
        let names: Vec<&str> = tools.iter().map(|t| t.definition().name()).collect();
        assert_eq!(names, ["load_skill", "read_skill_file", "calc__add", "calc__scribble"]);
        assert!(tools[2].definition().hints().destructive);
        assert_eq!(tools[2].definition().parameters()["required"], json!(["a", "b"]));
        assert!(skills.prompt_section().contains("- calc [+2 tools]: Exact arithmetic"));
        assert!(skills.load("calc")?.contains("Tools of this skill: `calc__add`, `calc__scribble`"));
        Ok(())
    }

    #[tokio::test]
    #[ignore = "needs bubblewrap (.ci/run installs it)"]
    async fn a_script_tool_runs_in_the_sandbox_with_its_folder_read_only() -> anyhow::Result<()> {
        bubblewrap();
        let scratch = Scratch::new("run")?;
        let shell = Shell::new(scratch.0.join("work"))?;
        let skills = SkillSet::builder().project(scratch.0.join("skills")).shell(shell).load();
        let model = ScriptedModel::new([
            ScriptedTurn::tool_call("load_skill", json!({"name": "calc"})),
            ScriptedTurn::tool_call("calc__add", json!({"a": 2, "b": 40})),
            ScriptedTurn::tool_call("calc__scribble", json!({})),
            ScriptedTurn::tool_call("calc__add", json!({"a": 1})),
            ScriptedTurn::text("2 + 40 = 42"),
        ]);
        let agent = Agent::new("You do sums.").model(model).skills(skills);
        let result = agent.run("What is 2 + 40?").user("ada").await?;
        assert_eq!(result.output, "2 + 40 = 42");
        let results = tool_results(&result);
        assert!(results[0].content.text().contains("CALC-BODY"), "{:?}", results[0]);
        assert!(!results[1].is_error, "the script failed (is bubblewrap usable here?): {:?}", results[1]);
        assert_eq!(results[1].content.text().trim(), "42");
        let scribble = results[2].content.text();
        assert!(!results[2].is_error, "{scribble}");
        assert!(scribble.contains("skill folder: read-only"), "{scribble}");
        assert!(scribble.contains("work folder: writable"), "{scribble}");
        assert!(scratch.0.join("work/scribbled.txt").is_file());
        assert!(!scratch.0.join("skills/calc/scribbled.txt").exists());
        // A failing script is an error result with its exit code and stderr.
        assert!(results[3].is_error, "{:?}", results[3]);
        assert!(results[3].content.text().contains("KeyError"), "{:?}", results[3]);
        Ok(())
    }
}
