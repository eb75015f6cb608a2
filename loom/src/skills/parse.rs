//! `SKILL.md` text → [`Skill`]: split the frontmatter from the body, parse the YAML, check
//! every field, and collect every problem (not only the first).

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::error::{SkillError, SkillErrorKind, SkillErrors, SkillLocation, SkillWarning, SkillWarningKind};
use super::skill::{Skill, SkillToolSpec};
use super::yaml::{self, Entry, Item, Node, Pos};

/// The longest skill name.
pub const MAX_NAME_LEN: usize = 64;
/// The longest description, in characters.
pub const MAX_DESCRIPTION_LEN: usize = 1024;
/// The longest `compatibility`, in characters.
pub const MAX_COMPATIBILITY_LEN: usize = 500;

/// Checks a skill name against the Agent Skills rule `^[a-z0-9]+(-[a-z0-9]+)*$`, at most 64
/// characters. Returns what is wrong.
///
/// ```
/// use loomflow::skills::validate_skill_name;
/// assert!(validate_skill_name("pdf-forms").is_ok());
/// assert!(validate_skill_name("PDF forms").is_err());
/// assert!(validate_skill_name("pdf--forms").is_err());
/// ```
pub fn validate_skill_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return Err("it is longer than 64 characters");
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("it has uppercase letters");
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err("it has characters other than lowercase letters, digits and hyphens");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("it starts or ends with a hyphen");
    }
    if name.contains("--") {
        return Err("it has two hyphens in a row");
    }
    Ok(())
}

/// Where the frontmatter ends: its YAML, the line the YAML starts on minus one, and the body.
struct Split<'t> {
    yaml: &'t str,
    offset: u32,
    body: &'t str,
}

fn split(text: &str) -> Result<Split<'_>, SkillErrorKind> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or("");
    if first.trim_end() != "---" {
        return Err(SkillErrorKind::NoFrontmatter);
    }
    let start = first.len();
    let mut at = start;
    for line in lines {
        let bare = line.trim_end();
        if bare == "---" || bare == "..." {
            return Ok(Split { yaml: &text[start..at], offset: 1, body: &text[at + line.len()..] });
        }
        at += line.len();
    }
    Err(SkillErrorKind::UnclosedFrontmatter)
}

/// Collects problems while a skill is read.
struct Check<'f> {
    file: &'f Path,
    offset: u32,
    errors: Vec<SkillError>,
    warnings: Vec<SkillWarning>,
}

impl Check<'_> {
    fn here(&self, pos: Option<Pos>, field: &str) -> SkillLocation {
        SkillLocation::file(self.file).at(pos.map(|p| p.line + self.offset), pos.map(|p| p.column)).field(field)
    }

    fn error(&mut self, pos: Option<Pos>, field: &str, kind: SkillErrorKind) {
        let location = self.here(pos, field);
        self.errors.push(SkillError::new(location, kind));
    }

    fn warn(&mut self, pos: Option<Pos>, field: &str, kind: SkillWarningKind) {
        let location = self.here(pos, field);
        self.warnings.push(SkillWarning::new(location, kind));
    }

    fn string(&mut self, item: &Item, field: &str) -> Option<String> {
        match &item.node {
            Node::Scalar(Value::String(s)) => Some(s.clone()),
            other => {
                self.error(item.pos, field, SkillErrorKind::WrongType { expected: "a string", found: other.kind() });
                None
            }
        }
    }

    /// A string, or a list of strings (a single string counts as a list of one, or of its
    /// whitespace-separated words when `words` is set).
    fn strings(&mut self, item: &Item, field: &str, words: bool) -> Vec<(String, Option<Pos>)> {
        match &item.node {
            Node::Scalar(Value::String(s)) if words => s.split_whitespace().map(|w| (w.to_owned(), item.pos)).collect(),
            Node::Scalar(Value::String(s)) => vec![(s.clone(), item.pos)],
            Node::Scalar(Value::Null) => Vec::new(),
            Node::Seq(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, it)| self.string(it, &format!("{field}[{i}]")).map(|s| (s, it.pos)))
                .collect(),
            other => {
                self.error(
                    item.pos,
                    field,
                    SkillErrorKind::WrongType { expected: "a string or a list of strings", found: other.kind() },
                );
                Vec::new()
            }
        }
    }

    /// The entries of a mapping, each key once (a later duplicate is an error).
    fn entries<'i>(&mut self, entries: &'i [Entry], field: &str) -> Vec<&'i Entry> {
        let mut seen: Vec<&Entry> = Vec::with_capacity(entries.len());
        for entry in entries {
            let name = if field.is_empty() { entry.key.clone() } else { format!("{field}.{}", entry.key) };
            match seen.iter().find(|e| e.key == entry.key) {
                Some(first) => {
                    let first_line = first.key_pos.map_or(0, |p| p.line + self.offset);
                    self.error(entry.key_pos, &name, SkillErrorKind::DuplicateKey { first_line });
                }
                None => seen.push(entry),
            }
        }
        seen
    }
}

/// Reads a skill from its `SKILL.md` text. `file` names it in problems; `dir` is its folder
/// (script paths are checked against it; `None` for a skill made from text).
pub(super) fn parse(text: &str, file: &Path, dir: Option<&Path>) -> Result<Skill, SkillErrors> {
    let split = split(text)
        .map_err(|kind| SkillErrors::new(vec![SkillError::new(SkillLocation::file(file).at(Some(1), None), kind)]))?;
    let mut check = Check { file, offset: split.offset, errors: Vec::new(), warnings: Vec::new() };
    let root = yaml::parse(split.yaml).map_err(|e| {
        let location = SkillLocation::file(file).at(e.pos.map(|p| p.line + split.offset), e.pos.map(|p| p.column));
        SkillErrors::new(vec![SkillError::new(location, SkillErrorKind::Yaml { detail: e.message })])
    })?;
    let entries = match &root.node {
        Node::Map(entries) => entries.as_slice(),
        other => {
            let kind = SkillErrorKind::NotAMapping { found: other.kind() };
            let location = SkillLocation::file(file).at(Some(root.pos.map_or(1, |p| p.line) + split.offset), None);
            return Err(SkillErrors::new(vec![SkillError::new(location, kind)]));
        }
    };

    let mut fields = Fields::default();
    for entry in check.entries(entries, "") {
        fields.read(&mut check, entry);
    }
    // A missing field is reported on the frontmatter's first line.
    let missing = |check: &mut Check<'_>, field: &str| {
        let location = SkillLocation::file(file).at(Some(1), None).field(field);
        check.errors.push(SkillError::new(location, SkillErrorKind::Missing));
    };
    let name = fields.name.unwrap_or_else(|| {
        if !fields.saw_name {
            missing(&mut check, "name");
        }
        String::new()
    });
    let description = fields.description.unwrap_or_else(|| {
        if !fields.saw_description {
            missing(&mut check, "description");
        }
        String::new()
    });
    let tools = fields.tools.map(|items| read_tools(&mut check, &items, &name, dir)).unwrap_or_default();

    if let (Some(dir), false) = (dir, name.is_empty())
        && let Some(folder) = dir.file_name().and_then(|f| f.to_str())
        && folder != name
    {
        check.warn(
            fields.name_pos,
            "name",
            SkillWarningKind::NameNotFolder { name: name.clone(), folder: folder.to_owned() },
        );
    }
    let body = split.body.trim_start_matches(['\r', '\n']).trim_end();
    if body.is_empty() {
        check.warnings.push(SkillWarning::new(SkillLocation::file(file), SkillWarningKind::EmptyBody));
    }
    if !check.errors.is_empty() {
        check.errors.sort_by_key(|e| e.location().line().unwrap_or(0));
        return Err(SkillErrors::new(check.errors));
    }
    Ok(Skill {
        name,
        description,
        license: fields.license,
        compatibility: fields.compatibility,
        allowed_tools: fields.allowed_tools,
        metadata: fields.metadata,
        requires: fields.requires,
        requires_line: fields.requires_pos.map(|p| p.line + split.offset),
        tools,
        extra: fields.extra,
        body: Arc::from(body),
        dir: None,
        resources: Vec::new(),
        warnings: check.warnings,
    })
}

/// The frontmatter's fields as they are read.
#[derive(Default)]
struct Fields<'i> {
    name: Option<String>,
    name_pos: Option<Pos>,
    saw_name: bool,
    description: Option<String>,
    saw_description: bool,
    license: Option<String>,
    compatibility: Option<String>,
    allowed_tools: Vec<String>,
    metadata: Map<String, Value>,
    requires: Vec<String>,
    requires_pos: Option<Pos>,
    tools: Option<Vec<&'i Item>>,
    extra: Map<String, Value>,
}

impl<'i> Fields<'i> {
    fn read(&mut self, check: &mut Check<'_>, entry: &'i Entry) {
        let value = &entry.value;
        let key = entry.key.as_str();
        match key {
            "name" => {
                self.saw_name = true;
                self.name_pos = value.pos;
                if let Some(name) = check.string(value, key) {
                    match validate_skill_name(&name) {
                        Ok(()) => self.name = Some(name),
                        Err(reason) => check.error(value.pos, key, SkillErrorKind::InvalidName { name, reason }),
                    }
                }
            }
            "description" => {
                self.saw_description = true;
                if let Some(text) = check.string(value, key) {
                    let text = text.trim().to_owned();
                    let len = text.chars().count();
                    if text.is_empty() {
                        check.error(value.pos, key, SkillErrorKind::Empty);
                    } else if len > MAX_DESCRIPTION_LEN {
                        check.error(value.pos, key, SkillErrorKind::TooLong { len, max: MAX_DESCRIPTION_LEN });
                    } else if let Some(tag) = xml_tag(&text) {
                        check.error(value.pos, key, SkillErrorKind::XmlTag { tag: tag.to_owned() });
                    } else {
                        self.description = Some(text);
                    }
                }
            }
            "license" => self.license = check.string(value, key),
            "compatibility" => {
                if let Some(text) = check.string(value, key) {
                    let len = text.chars().count();
                    if len > MAX_COMPATIBILITY_LEN {
                        check.error(value.pos, key, SkillErrorKind::TooLong { len, max: MAX_COMPATIBILITY_LEN });
                    } else {
                        self.compatibility = Some(text);
                    }
                }
            }
            "allowed-tools" | "allowed_tools" => match &value.node {
                Node::Scalar(Value::String(list)) => self.allowed_tools.extend(split_tool_list(list)),
                _ => self.allowed_tools.extend(check.strings(value, key, false).into_iter().map(|(s, _)| s)),
            },
            "metadata" => match &value.node {
                Node::Map(_) | Node::Scalar(Value::Null) => {
                    if let Value::Object(map) = value.node.to_json() {
                        self.metadata = map;
                    }
                }
                other => check.error(
                    value.pos,
                    key,
                    SkillErrorKind::WrongType { expected: "a mapping", found: other.kind() },
                ),
            },
            "requires" => {
                self.requires_pos = entry.key_pos;
                for (i, (name, pos)) in check.strings(value, key, false).into_iter().enumerate() {
                    let field =
                        if matches!(value.node, Node::Seq(_)) { format!("requires[{i}]") } else { key.to_owned() };
                    match validate_skill_name(&name) {
                        Ok(()) if !self.requires.contains(&name) => self.requires.push(name),
                        Ok(()) => {}
                        Err(reason) => check.error(pos, &field, SkillErrorKind::InvalidName { name, reason }),
                    }
                }
            }
            "tools" => match &value.node {
                Node::Seq(items) => self.tools = Some(items.iter().collect()),
                Node::Scalar(Value::Null) => {}
                other => check.error(
                    value.pos,
                    key,
                    SkillErrorKind::WrongType { expected: "a list of tools", found: other.kind() },
                ),
            },
            _ => {
                check.warn(entry.key_pos, key, SkillWarningKind::UnknownKey { key: key.to_owned() });
                self.extra.insert(key.to_owned(), value.node.to_json());
            }
        }
    }
}

/// The tools of an `allowed-tools` string: separated by spaces or commas, except inside
/// parentheses (`Bash(git add:*) Read, Grep` is three tools).
fn split_tool_list(list: &str) -> Vec<String> {
    let mut tools = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for c in list.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if depth == 0 && (c.is_whitespace() || c == ',') => {
                if !current.is_empty() {
                    tools.push(std::mem::take(&mut current));
                }
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.is_empty() {
        tools.push(current);
    }
    tools
}

/// The first XML tag in `text` (`<example>`, `</b>`), if there is one.
fn xml_tag(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(i) = text[from..].find('<').map(|i| i + from) {
        let mut j = i + 1;
        if bytes.get(j) == Some(&b'/') {
            j += 1;
        }
        if bytes.get(j).is_some_and(u8::is_ascii_alphabetic) {
            let rest = &text[j..];
            let end = rest.find(['>', '<', '\n']).map(|e| e + j);
            if let Some(end) = end.filter(|&e| bytes[e] == b'>') {
                return Some(&text[i..=end]);
            }
        }
        from = i + 1;
    }
    None
}

fn read_tools(check: &mut Check<'_>, items: &[&Item], skill: &str, dir: Option<&Path>) -> Vec<SkillToolSpec> {
    if dir.is_none() && !items.is_empty() {
        check.error(items[0].pos, "tools", SkillErrorKind::ToolsWithoutFolder);
        return Vec::new();
    }
    let mut tools: Vec<SkillToolSpec> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("tools[{i}]");
        let Node::Map(entries) = &item.node else {
            check.error(item.pos, &field, SkillErrorKind::WrongType { expected: "a mapping", found: item.node.kind() });
            continue;
        };
        let mut tool = ToolFields::default();
        for entry in check.entries(entries, &field) {
            tool.read(check, entry, &field, dir);
        }
        let missing = |check: &mut Check<'_>, what: &str, needs| {
            check.error(item.pos, &format!("{field}.{what}"), SkillErrorKind::MissingToolField { needs });
        };
        if !tool.saw_name {
            missing(check, "name", "a `name` (the model calls it `<skill>__<name>`)");
        }
        if !tool.saw_description {
            missing(check, "description", "a `description` for the model");
        }
        if !tool.saw_script {
            missing(check, "script", "a `script`: the path of a file in the skill's folder");
        }
        let (Some((name, name_pos)), Some(description), Some(script)) = (tool.name, tool.description, tool.script)
        else {
            continue;
        };
        let full_name = format!("{skill}__{name}");
        if !skill.is_empty()
            && let Err(reason) = crate::tool::validate_tool_name(&full_name)
        {
            check.error(
                name_pos,
                &format!("{field}.name"),
                SkillErrorKind::InvalidToolName { name: full_name, reason },
            );
            continue;
        }
        if tools.iter().any(|t| t.name == name) {
            check.error(name_pos, &format!("{field}.name"), SkillErrorKind::DuplicateTool { name });
            continue;
        }
        let interpreter = tool.interpreter.unwrap_or_else(|| default_interpreter(&script));
        tools.push(SkillToolSpec {
            name,
            full_name,
            description,
            script,
            interpreter,
            parameters: tool.parameters.unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
            timeout: tool.timeout,
        });
    }
    tools
}

/// The program that runs a script, by its extension: none for an unknown one (the script
/// runs itself, by its `#!` line).
fn default_interpreter(script: &str) -> Vec<String> {
    let program = match Path::new(script).extension().and_then(|e| e.to_str()) {
        Some("py") => "python3",
        Some("sh") => "sh",
        Some("bash") => "bash",
        Some("js" | "mjs") => "node",
        _ => return Vec::new(),
    };
    vec![program.to_owned()]
}

#[derive(Default)]
struct ToolFields {
    name: Option<(String, Option<Pos>)>,
    saw_name: bool,
    description: Option<String>,
    saw_description: bool,
    script: Option<String>,
    saw_script: bool,
    interpreter: Option<Vec<String>>,
    parameters: Option<Value>,
    timeout: Option<Duration>,
}

impl ToolFields {
    fn read(&mut self, check: &mut Check<'_>, entry: &Entry, tool: &str, dir: Option<&Path>) {
        let value = &entry.value;
        let field = format!("{tool}.{}", entry.key);
        match entry.key.as_str() {
            "name" => {
                self.saw_name = true;
                if let Some(name) = check.string(value, &field) {
                    match crate::tool::validate_tool_name(&name) {
                        Ok(()) => self.name = Some((name, value.pos)),
                        Err(reason) => check.error(value.pos, &field, SkillErrorKind::InvalidToolName { name, reason }),
                    }
                }
            }
            "description" => {
                self.saw_description = true;
                match check.string(value, &field).map(|d| d.trim().to_owned()) {
                    Some(d) if d.is_empty() => check.error(value.pos, &field, SkillErrorKind::Empty),
                    d => self.description = d,
                }
            }
            "script" => {
                self.saw_script = true;
                if let Some(script) = check.string(value, &field) {
                    match check_script(&script, dir) {
                        Ok(()) => self.script = Some(script),
                        Err(reason) => check.error(value.pos, &field, SkillErrorKind::BadScript { script, reason }),
                    }
                }
            }
            "interpreter" => {
                let words = check.strings(value, &field, true);
                self.interpreter = Some(words.into_iter().map(|(w, _)| w).collect());
            }
            "parameters" => {
                let schema = value.node.to_json();
                if schema.get("type").and_then(Value::as_str) == Some("object") {
                    self.parameters = Some(schema);
                } else {
                    check.error(value.pos, &field, SkillErrorKind::InvalidParameters);
                }
            }
            "timeout" => match &value.node {
                Node::Scalar(Value::Number(n)) if n.as_f64().is_some_and(|s| s > 0.0 && s <= 86_400.0) => {
                    self.timeout = n.as_f64().map(Duration::from_secs_f64);
                }
                other => check.error(
                    value.pos,
                    &field,
                    SkillErrorKind::WrongType { expected: "a number of seconds (at most a day)", found: other.kind() },
                ),
            },
            key => {
                check.warn(entry.key_pos, &field, SkillWarningKind::UnknownKey { key: key.to_owned() });
            }
        }
    }
}

/// Checks that `script` names a file inside the skill's folder.
fn check_script(script: &str, dir: Option<&Path>) -> Result<(), &'static str> {
    let path = Path::new(script);
    if script.trim().is_empty() {
        return Err("is empty");
    }
    if !path.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err("must be a relative path inside the skill's folder, without `..`");
    }
    let Some(dir) = dir else { return Ok(()) };
    let full: PathBuf = dir.join(path);
    let (Ok(real), Ok(root)) = (full.canonicalize(), dir.canonicalize()) else {
        return Err("does not exist in the skill's folder");
    };
    if !real.starts_with(&root) {
        return Err("leads out of the skill's folder (through a symbolic link)");
    }
    if !real.is_file() {
        return Err("is not a file");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
