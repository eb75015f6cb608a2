//! Parsing and checking `SKILL.md` text: each malformed shape, with its line and field.

use std::path::Path;

use super::*;

const FILE: &str = "skills/demo/SKILL.md";

fn parse_text(text: &str) -> Result<Skill, SkillErrors> {
    parse(text, Path::new(FILE), None)
}

/// The only error of `text`, as (line, field, message).
fn one_error(text: &str) -> (Option<u32>, Option<String>, String) {
    let errors = match parse_text(text) {
        Ok(skill) => panic!("expected an error, got {skill:?}"),
        Err(e) => e.into_vec(),
    };
    assert_eq!(errors.len(), 1, "expected one error: {errors:#?}");
    let e = &errors[0];
    (e.location().line(), e.location().field_name().map(str::to_owned), e.to_string())
}

#[test]
fn a_valid_skill_keeps_every_field() -> Result<(), SkillErrors> {
    let skill = parse_text(
        "---\n\
         name: pdf-forms\n\
         description: >\n  Fill PDF forms.\n  Use for forms.\n\
         license: Apache-2.0\n\
         compatibility: Needs python3\n\
         allowed-tools: Bash(python3:*) Read\n\
         metadata:\n  author: ada\n  version: \"1.2\"\n\
         requires: house-style\n\
         ---\n\n# PDF forms\n\nFill them.\n",
    )?;
    assert_eq!(skill.name(), "pdf-forms");
    assert_eq!(skill.description(), "Fill PDF forms. Use for forms.");
    assert_eq!(skill.license(), Some("Apache-2.0"));
    assert_eq!(skill.compatibility(), Some("Needs python3"));
    assert_eq!(skill.allowed_tools(), ["Bash(python3:*)", "Read"]);
    assert_eq!(skill.metadata().get("author"), Some(&Value::String("ada".into())));
    assert_eq!(skill.requires(), ["house-style"]);
    assert_eq!(skill.body(), "# PDF forms\n\nFill them.");
    assert!(skill.warnings().is_empty(), "{:?}", skill.warnings());
    Ok(())
}

#[test]
fn allowed_tools_split_outside_parentheses() -> Result<(), SkillErrors> {
    let skill = parse_text("---\nname: a\ndescription: b\nallowed-tools: Bash(git add:*) Read,Grep\n---\nbody\n")?;
    assert_eq!(skill.allowed_tools(), ["Bash(git add:*)", "Read", "Grep"]);
    let skill = parse_text("---\nname: a\ndescription: b\nallowed_tools: [Read, \"Bash(ls -la)\"]\n---\nbody\n")?;
    assert_eq!(skill.allowed_tools(), ["Read", "Bash(ls -la)"]);
    Ok(())
}

#[test]
fn the_name_rule_is_the_formats() {
    for good in ["a", "pdf", "pdf-forms", "a1-b2-c3", &"x".repeat(64)] {
        assert_eq!(validate_skill_name(good), Ok(()), "{good}");
    }
    for (bad, reason) in [
        ("", "it is empty"),
        ("PDF", "it has uppercase letters"),
        ("pdf forms", "it has characters other than lowercase letters, digits and hyphens"),
        ("pdf_forms", "it has characters other than lowercase letters, digits and hyphens"),
        ("-pdf", "it starts or ends with a hyphen"),
        ("pdf-", "it starts or ends with a hyphen"),
        ("pdf--forms", "it has two hyphens in a row"),
        ("é", "it has characters other than lowercase letters, digits and hyphens"),
    ] {
        assert_eq!(validate_skill_name(bad), Err(reason), "{bad}");
    }
    assert_eq!(validate_skill_name(&"x".repeat(65)), Err("it is longer than 64 characters"));
}

#[test]
fn a_bad_name_is_reported_on_its_line_and_field() {
    let (line, field, message) = one_error("---\ndescription: Fine.\nname: PDF Forms\n---\nbody\n");
    assert_eq!((line, field.as_deref()), (Some(3), Some("name")));
    assert!(
        message.starts_with("skills/demo/SKILL.md:3:7: field `name`: `PDF Forms` is not a valid skill name"),
        "{message}"
    );
}

#[test]
fn missing_fields_are_all_reported_on_the_first_line() {
    let errors = parse_text("---\nlicense: MIT\n---\nbody\n").err().map(SkillErrors::into_vec).unwrap_or_default();
    let got: Vec<(Option<u32>, Option<&str>, &SkillErrorKind)> =
        errors.iter().map(|e| (e.location().line(), e.location().field_name(), e.kind())).collect();
    assert_eq!(
        got,
        [(Some(1), Some("name"), &SkillErrorKind::Missing), (Some(1), Some("description"), &SkillErrorKind::Missing)]
    );
}

#[test]
fn every_problem_of_a_file_is_reported_at_once() {
    let text = "---\nname: Bad_Name\ndescription: \"\"\nrequires: 7\ntools: nope\n---\nbody\n";
    let errors = parse_text(text).err().map(SkillErrors::into_vec).unwrap_or_default();
    let fields: Vec<(Option<u32>, Option<&str>)> =
        errors.iter().map(|e| (e.location().line(), e.location().field_name())).collect();
    assert_eq!(
        fields,
        [
            (Some(2), Some("name")),
            (Some(3), Some("description")),
            (Some(4), Some("requires")),
            (Some(5), Some("tools"))
        ]
    );
    assert_eq!(
        errors[2].kind(),
        &SkillErrorKind::WrongType { expected: "a string or a list of strings", found: "a number" }
    );
}

#[test]
fn the_description_is_limited_in_length_and_free_of_xml() {
    let long = format!("---\nname: a\ndescription: {}\n---\nbody\n", "x".repeat(1025));
    let (line, field, message) = one_error(&long);
    assert_eq!((line, field.as_deref()), (Some(3), Some("description")));
    assert!(message.ends_with("is 1025 characters long; at most 1024 are allowed"), "{message}");
    let ok = format!("---\nname: a\ndescription: {}\n---\nbody\n", "é".repeat(1024));
    assert!(parse_text(&ok).is_ok(), "1024 characters (not bytes) are allowed");

    let (_, field, message) = one_error("---\nname: a\ndescription: Use <example>this</example>.\n---\nbody\n");
    assert_eq!(field.as_deref(), Some("description"));
    assert!(message.ends_with("must not contain XML tags (found `<example>`)"), "{message}");
    assert!(parse_text("---\nname: a\ndescription: When a < b and c > d.\n---\nbody\n").is_ok());
}

#[test]
fn a_wrong_type_names_what_was_expected_and_found() {
    let (line, field, message) = one_error("---\nname: a\ndescription: [x, y]\n---\nbody\n");
    assert_eq!((line, field.as_deref()), (Some(3), Some("description")));
    assert!(message.ends_with("expected a string, found a list"), "{message}");
    let (_, field, message) = one_error("---\nname: a\ndescription: d\nmetadata: [1]\n---\nbody\n");
    assert_eq!(field.as_deref(), Some("metadata"));
    assert!(message.ends_with("expected a mapping, found a list"), "{message}");
}

#[test]
fn frontmatter_shapes_that_are_not_frontmatter() {
    let (line, _, message) = one_error("# Just markdown\n");
    assert_eq!(line, Some(1));
    assert!(message.contains("must start with a `---` line"), "{message}");
    let (_, _, message) = one_error("---\nname: a\ndescription: b\n");
    assert!(message.contains("never closed"), "{message}");
    let (_, _, message) = one_error("---\n- a\n- b\n---\nbody\n");
    assert!(message.contains("must be a mapping of keys to values"), "{message}");
    assert!(message.contains("it is a list"), "{message}");
    let (_, _, message) = one_error("---\n---\nbody\n");
    assert!(message.contains("it is nothing (null)"), "{message}");
}

#[test]
fn yaml_syntax_errors_count_lines_in_the_file() {
    let (line, field, message) = one_error("---\nname: a\ndescription: [unclosed\n---\nbody\n");
    assert_eq!(line, Some(3), "{message}");
    assert_eq!(field, None);
    assert!(message.starts_with("skills/demo/SKILL.md:3:"), "{message}");
    assert!(message.contains("invalid YAML"), "{message}");
}

#[test]
fn a_key_given_twice_names_both_lines() {
    let (line, field, message) = one_error("---\nname: a\ndescription: b\nname: c\n---\nbody\n");
    assert_eq!((line, field.as_deref()), (Some(4), Some("name")));
    assert!(message.ends_with("given twice (first on line 2)"), "{message}");
}

#[test]
fn unknown_keys_are_kept_and_reported() -> Result<(), SkillErrors> {
    let skill = parse_text("---\nname: a\ndescription: b\nversion: 1.0.2\ntags: [x]\n---\nbody\n")?;
    assert_eq!(skill.extra().get("version"), Some(&Value::String("1.0.2".into())));
    assert_eq!(skill.extra().get("tags"), Some(&serde_json::json!(["x"])));
    let warned: Vec<(Option<u32>, Option<&str>)> =
        skill.warnings().iter().map(|w| (w.location().line(), w.location().field_name())).collect();
    assert_eq!(warned, [(Some(4), Some("version")), (Some(5), Some("tags"))]);
    Ok(())
}

#[test]
fn crlf_files_and_a_byte_order_mark_are_read() -> Result<(), SkillErrors> {
    let skill = parse_text("\u{feff}---\r\nname: a\r\ndescription: b\r\n---\r\nbody\r\n")?;
    assert_eq!((skill.name(), skill.description(), skill.body()), ("a", "b", "body"));
    Ok(())
}

#[test]
fn an_empty_body_is_a_warning() -> Result<(), SkillErrors> {
    let skill = parse_text("---\nname: a\ndescription: b\n---\n\n")?;
    assert!(matches!(skill.warnings()[0].kind(), SkillWarningKind::EmptyBody));
    Ok(())
}

#[test]
fn requires_are_skill_names() {
    let (line, field, message) = one_error("---\nname: a\ndescription: b\nrequires:\n  - ok\n  - Not OK\n---\nbody\n");
    assert_eq!((line, field.as_deref()), (Some(6), Some("requires[1]")));
    assert!(message.contains("`Not OK` is not a valid skill name"), "{message}");
}

#[test]
fn tools_need_a_folder() {
    let (line, field, message) = one_error(
        "---\nname: calc\ndescription: b\ntools:\n  - name: add\n    description: Add.\n    script: add.py\n---\nbody\n",
    );
    assert_eq!((line, field.as_deref()), (Some(5), Some("tools")));
    assert!(message.contains("has no folder"), "{message}");
}

mod with_folder {
    use super::*;

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> std::io::Result<Self> {
            let root = std::env::temp_dir().join(format!("loom-skill-parse-{}-{name}", std::process::id()));
            let dir = root.join("calc");
            std::fs::create_dir_all(dir.join("scripts"))?;
            std::fs::write(dir.join("scripts/add.py"), "print(1)\n")?;
            std::fs::write(dir.join("scripts/run"), "#!/bin/sh\n")?;
            Ok(Self(dir))
        }

        fn parse(&self, text: &str) -> Result<Skill, SkillErrors> {
            parse(text, &self.0.join("SKILL.md"), Some(&self.0))
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            if let Some(root) = self.0.parent() {
                let _ = std::fs::remove_dir_all(root);
            }
        }
    }

    const HEAD: &str = "---\nname: calc\ndescription: Sums.\ntools:\n";

    #[test]
    fn a_tool_manifest_becomes_a_spec() -> Result<(), Box<dyn std::error::Error>> {
        let dir = Dir::new("spec")?;
        let skill = dir.parse(&format!(
            "{HEAD}  - name: add\n    description: Add two numbers.\n    script: scripts/add.py\n    \
             parameters:\n      type: object\n      properties:\n        a: {{type: number}}\n    timeout: 5\n  \
             - name: run\n    description: Run it.\n    script: ./scripts/run\n---\nbody\n"
        ))?;
        let tools = skill.tools();
        assert_eq!(tools.len(), 2);
        assert_eq!((tools[0].tool_name(), tools[0].script()), ("calc__add", "scripts/add.py"));
        assert_eq!(tools[0].interpreter(), ["python3"]);
        assert_eq!(tools[0].parameters()["properties"]["a"]["type"], "number");
        assert_eq!(tools[0].timeout(), Some(Duration::from_secs(5)));
        assert!(tools[1].interpreter().is_empty(), "no known extension: the script runs itself");
        assert_eq!(tools[1].parameters(), &serde_json::json!({"type": "object", "properties": {}}));
        Ok(())
    }

    #[test]
    fn each_bad_tool_field_is_named_with_its_index() -> Result<(), Box<dyn std::error::Error>> {
        let dir = Dir::new("bad")?;
        let errors = dir
            .parse(&format!(
                "{HEAD}  - name: add\n    description: Add.\n    script: ../outside.py\n  \
                 - name: has space\n    description: x\n    script: scripts/add.py\n  \
                 - description: no name\n    script: scripts/missing.py\n    parameters: {{type: string}}\n\
                 ---\nbody\n"
            ))
            .err()
            .map(SkillErrors::into_vec)
            .unwrap_or_default();
        let got: Vec<(Option<u32>, Option<&str>)> =
            errors.iter().map(|e| (e.location().line(), e.location().field_name())).collect();
        assert_eq!(
            got,
            [
                (Some(7), Some("tools[0].script")),
                (Some(8), Some("tools[1].name")),
                (Some(11), Some("tools[2].name")),
                (Some(12), Some("tools[2].script")),
                (Some(13), Some("tools[2].parameters")),
            ],
            "{errors:#?}"
        );
        assert!(errors[0].to_string().contains("without `..`"));
        assert!(errors[3].to_string().contains("does not exist in the skill's folder"));
        Ok(())
    }

    #[test]
    fn a_tool_name_too_long_with_its_skill_prefix_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = Dir::new("long")?;
        let name = "n".repeat(60);
        let errors = dir
            .parse(&format!("{HEAD}  - name: {name}\n    description: x\n    script: scripts/add.py\n---\nbody\n"))
            .err()
            .map(SkillErrors::into_vec)
            .unwrap_or_default();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].location().field_name(), Some("tools[0].name"));
        assert!(errors[0].to_string().contains(&format!("`calc__{name}` cannot be a tool name")));
        Ok(())
    }

    #[test]
    fn a_name_unlike_the_folder_is_a_warning() -> Result<(), Box<dyn std::error::Error>> {
        let dir = Dir::new("folder")?;
        let skill = dir.parse("---\nname: calculator\ndescription: Sums.\n---\nbody\n")?;
        let warning = skill.warnings().first().map(ToString::to_string).unwrap_or_default();
        assert!(warning.contains("named `calculator` but its folder is `calc`"), "{warning}");
        assert!(warning.contains("SKILL.md:2:7: field `name`"), "{warning}");
        Ok(())
    }
}
