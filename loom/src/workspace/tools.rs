//! The tools a member's agent works the workspace with.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use serde_json::{Value, json};

use super::Workspace;
use super::error::WorkspaceError;
use super::types::{NewNote, Note, NoteEdit, NoteFilter, NoteKind, SearchMode, SearchQuery};
use crate::context::RunContext;
use crate::id::RunId;
use crate::tool::{ArgumentError, Arguments, Tool, ToolDefinition, ToolError, ToolHints, ToolOutput};

/// What a member's tools share: the workspace, the member's name, and the version of each
/// note each run last saw (an `update_note` without a `version` is checked against it).
pub(crate) struct Seat {
    workspace: Workspace,
    member: String,
    seen: Mutex<HashMap<(RunId, String), u64>>,
}

/// How many notes' versions a seat remembers before it starts over.
const SEEN: usize = 10_000;

impl Seat {
    pub(crate) fn new(workspace: Workspace, member: String) -> Self {
        Self { workspace, member, seen: Mutex::default() }
    }

    fn saw(&self, run: RunId, note: &Note) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= SEEN {
            seen.clear();
        }
        seen.insert((run, note.slug.clone()), note.version);
    }

    fn seen(&self, run: RunId, slug: &str) -> Option<u64> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).get(&(run, slug.to_owned())).copied()
    }
}

/// The run a member's reads count for: the run it is nested in, when it is one (a team's
/// member, an agent in a workflow's node), else its own.
pub(crate) fn citing_run(ctx: &RunContext) -> RunId {
    ctx.parent().unwrap_or_else(|| ctx.run_id())
}

/// Which tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Note,
    Read,
    List,
    Search,
    Update,
    Archive,
    Ask,
    Answer,
    OpenQuestions,
}

/// One of a member's tools.
pub(crate) struct WorkspaceTool {
    seat: std::sync::Arc<Seat>,
    op: Op,
    definition: ToolDefinition,
}

fn kinds() -> Vec<&'static str> {
    NoteKind::ALL.iter().map(|k| k.as_str()).collect()
}

fn definition(op: Op) -> ToolDefinition {
    let (name, description, parameters, hints) = match op {
        Op::Note => (
            "note",
            "Write a note to the team's shared workspace: a finding, decision, question, summary, artifact or \
             plan that your teammates should be able to find and read. Give it a title that says what it is. \
             Returns the note's slug (its name) and version.",
            json!({
                "type": "object",
                "properties": {
                    "title": {"type": "string", "description": "What the note is, in a line."},
                    "body": {"type": "string", "description": "The note itself (Markdown)."},
                    "kind": {"type": "string", "enum": kinds(), "description": "What it is (default finding)."},
                    "tags": {"type": "array", "items": {"type": "string"}, "description": "Words to find it by."},
                    "parent": {"type": "string", "description": "The slug of the note this one follows up."}
                },
                "required": ["title", "body"]
            }),
            ToolHints::NONE,
        ),
        Op::Read => (
            "read_note",
            "Read a note of the shared workspace in full, by its slug (or its exact title). Returns the note \
             with its version: pass that version to update_note.",
            json!({
                "type": "object",
                "properties": {"slug": {"type": "string", "description": "The note's slug, e.g. `q3-pricing`."}},
                "required": ["slug"]
            }),
            ToolHints::NONE.read_only().idempotent(),
        ),
        Op::List => (
            "list_notes",
            "List the notes of the shared workspace, most recently changed first, optionally only those of an \
             author, a kind or a tag, or the follow-ups of a note.",
            json!({
                "type": "object",
                "properties": {
                    "author": {"type": "string", "description": "Only this member's notes."},
                    "kind": {"type": "string", "enum": kinds()},
                    "tag": {"type": "string"},
                    "parent": {"type": "string", "description": "Only the notes that follow up this slug."},
                    "include_archived": {"type": "boolean", "description": "Archived notes too (default false)."},
                    "limit": {"type": "integer", "minimum": 1, "description": "At most this many (default 50)."}
                }
            }),
            ToolHints::NONE.read_only().idempotent(),
        ),
        Op::Search => (
            "search_notes",
            "Search the shared workspace's notes by words and meaning. Returns the best matches with their slugs \
             and the start of each; read a note in full with read_note.",
            json!({
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "What you are looking for."},
                    "mode": {"type": "string", "enum": ["hybrid", "bm25", "semantic"],
                             "description": "hybrid (default): words and meaning; bm25: words; semantic: meaning."},
                    "kind": {"type": "string", "enum": kinds()},
                    "author": {"type": "string"},
                    "limit": {"type": "integer", "minimum": 1, "description": "At most this many (default 10)."}
                },
                "required": ["query"]
            }),
            ToolHints::NONE.read_only().idempotent(),
        ),
        Op::Update => (
            "update_note",
            "Change one of your own notes; the version before is kept. Pass the version you read: if the note \
             changed since, the update is refused and you should read it again.",
            json!({
                "type": "object",
                "properties": {
                    "slug": {"type": "string"},
                    "body": {"type": "string", "description": "The new body, whole."},
                    "title": {"type": "string"},
                    "kind": {"type": "string", "enum": kinds()},
                    "tags": {"type": "array", "items": {"type": "string"}, "description": "The new tags, all of them."},
                    "version": {"type": "integer", "minimum": 1, "description": "The version your change is made to."}
                },
                "required": ["slug"]
            }),
            ToolHints::NONE,
        ),
        Op::Archive => (
            "archive_note",
            "Archive one of your own notes that no longer holds: it leaves lists and searches, and can still be \
             read by its slug.",
            json!({"type": "object", "properties": {"slug": {"type": "string"}}, "required": ["slug"]}),
            ToolHints::NONE.idempotent(),
        ),
        Op::Ask => (
            "ask_question",
            "Ask the team a question, as a note of kind question that teammates see in list_open_questions.",
            json!({
                "type": "object",
                "properties": {
                    "question": {"type": "string", "description": "The question, in a line."},
                    "details": {"type": "string", "description": "What you need and why."},
                    "tags": {"type": "array", "items": {"type": "string"}}
                },
                "required": ["question"]
            }),
            ToolHints::NONE,
        ),
        Op::Answer => (
            "answer_question",
            "Answer an open question: writes your answer as a note that follows up the question, and marks the \
             question answered.",
            json!({
                "type": "object",
                "properties": {
                    "slug": {"type": "string", "description": "The question's slug."},
                    "answer": {"type": "string"}
                },
                "required": ["slug", "answer"]
            }),
            ToolHints::NONE,
        ),
        Op::OpenQuestions => (
            "list_open_questions",
            "List the team's questions that nobody has answered yet.",
            json!({"type": "object", "properties": {}}),
            ToolHints::NONE.read_only().idempotent(),
        ),
    };
    ToolDefinition::new_unchecked(name.to_owned(), description.to_owned(), parameters).with_hints(hints)
}

impl WorkspaceTool {
    pub(crate) fn new(seat: std::sync::Arc<Seat>, op: Op) -> Self {
        Self { seat, op, definition: definition(op) }
    }
}

/// A workspace error as the model reads it.
fn told(e: WorkspaceError) -> ToolError {
    match e {
        WorkspaceError::Invalid(message) => ToolError::invalid_arguments(message),
        other => ToolError::from(other),
    }
}

fn bad(e: ArgumentError) -> ToolError {
    ToolError::invalid_arguments(e.to_string())
}

/// Tags as a list, or as one string of comma-separated tags.
fn take_tags(args: &mut Arguments<'_>) -> Result<Option<Vec<String>>, ToolError> {
    match args.take::<Option<Value>>("tags").map_err(bad)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.split(',').map(str::to_owned).collect())),
        Some(Value::Array(items)) => Ok(Some(
            items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect(),
        )),
        Some(_) => Err(ToolError::invalid_arguments("argument `tags`: give a list of strings")),
    }
}

fn take_kind(args: &mut Arguments<'_>) -> Result<Option<NoteKind>, ToolError> {
    args.take::<Option<String>>("kind").map_err(bad)?.map(|k| k.parse::<NoteKind>().map_err(told)).transpose()
}

/// The text of a required argument, or of its first synonym that is given.
fn take_text(args: &mut Arguments<'_>, names: &[&str]) -> Result<Option<String>, ToolError> {
    let mut found = None;
    for name in names {
        let value: Option<String> = args.take(name).map_err(bad)?;
        found = found.or(value);
    }
    Ok(found)
}

fn required(value: Option<String>, name: &str) -> Result<String, ToolError> {
    value.ok_or_else(|| ToolError::invalid_arguments(format!("missing required argument `{name}`")))
}

/// The start of a text, on one line, cut at a character boundary.
fn snippet(text: &str, chars: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(chars) {
        Some((end, _)) => format!("{}…", &flat[..end]),
        None => flat,
    }
}

/// A note in a listing.
fn summary(note: &Note) -> Value {
    let mut v = json!({
        "slug": note.slug,
        "title": note.title,
        "author": note.author,
        "kind": note.kind,
        "version": note.version,
        "updated_at": note.updated_at,
    });
    if !note.tags.is_empty() {
        v["tags"] = json!(note.tags);
    }
    if let Some(parent) = &note.parent {
        v["parent"] = json!(parent);
    }
    if note.is_archived() {
        v["archived"] = json!(true);
    }
    if let Some(by) = &note.answered_by {
        v["answered_by"] = json!(by);
    }
    v
}

fn output(value: &Value) -> Result<ToolOutput, ToolError> {
    ToolOutput::json(value).map_err(ToolError::from)
}

#[async_trait::async_trait]
impl Tool for WorkspaceTool {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, ctx: &RunContext, arguments: &str) -> Result<ToolOutput, ToolError> {
        let mut args = Arguments::parse(arguments).map_err(bad)?;
        let ws = &self.seat.workspace;
        let member = self.seat.member.as_str();
        let user = ctx.user();
        let run = citing_run(ctx);
        match self.op {
            Op::Note => {
                let title = required(take_text(&mut args, &["title"])?, "title")?;
                let body = take_text(&mut args, &["body", "content", "text"])?.unwrap_or_default();
                let kind = take_kind(&mut args)?.unwrap_or_default();
                let tags = take_tags(&mut args)?.unwrap_or_default();
                let parent = take_text(&mut args, &["parent", "parent_slug"])?;
                args.finish(&["title", "body", "kind", "tags", "parent"]).map_err(bad)?;
                let mut new = NewNote::new(title, body).kind(kind).tags(tags);
                new.parent = parent;
                let note = ws.write(user, member, new).await.map_err(told)?;
                self.seat.saw(run, &note);
                ctx.emit_custom("workspace", || json!({"op": "note", "member": member, "slug": note.slug}));
                output(&json!({
                    "slug": note.slug,
                    "version": note.version,
                    "kind": note.kind,
                    "message": format!("Saved as `{}` (version {}).", note.slug, note.version),
                }))
            }
            Op::Read => {
                let slug = required(take_text(&mut args, &["slug", "title", "slug_or_title", "id"])?, "slug")?;
                args.finish(&["slug"]).map_err(bad)?;
                let note = ws.read(user, &slug, run).await.map_err(told)?;
                self.seat.saw(run, &note);
                let mut v = summary(&note);
                v["created_at"] = json!(note.created_at);
                v["body"] = json!(note.body);
                v["citations"] = json!([{"kind": "note", "id": note.slug, "title": note.title}]);
                output(&v)
            }
            Op::List => {
                let mut filter = NoteFilter::new();
                filter.author = take_text(&mut args, &["author"])?;
                filter.kind = take_kind(&mut args)?;
                filter.tag = take_text(&mut args, &["tag"])?;
                filter.parent = take_text(&mut args, &["parent"])?;
                filter.include_archived = args.take::<Option<bool>>("include_archived").map_err(bad)?.unwrap_or(false);
                let limit = args.take::<Option<usize>>("limit").map_err(bad)?.unwrap_or(50).max(1);
                args.finish(&["author", "kind", "tag", "parent", "include_archived", "limit"]).map_err(bad)?;
                let notes = ws.list(user, filter.limit(limit.saturating_add(1))).await.map_err(told)?;
                let more = notes.len() > limit;
                let shown: Vec<Value> = notes.iter().take(limit).map(summary).collect();
                let mut v = json!({"count": shown.len(), "notes": shown});
                if more {
                    v["more"] = json!(true);
                }
                output(&v)
            }
            Op::Search => {
                let text = required(take_text(&mut args, &["query", "text", "q"])?, "query")?;
                let mode = match args.take::<Option<String>>("mode").map_err(bad)? {
                    None => SearchMode::Hybrid,
                    Some(m) => SearchMode::from_word(&m).ok_or_else(|| {
                        ToolError::invalid_arguments(format!(
                            "unknown mode `{}`; use hybrid, bm25 or semantic",
                            crate::tool::args::shown(&m)
                        ))
                    })?,
                };
                let mut filter = NoteFilter::new();
                filter.kind = take_kind(&mut args)?;
                filter.author = take_text(&mut args, &["author"])?;
                let limit = args.take::<Option<usize>>("limit").map_err(bad)?.unwrap_or(10).max(1);
                args.finish(&["query", "mode", "kind", "author", "limit"]).map_err(bad)?;
                let query = SearchQuery::new(text).mode(mode).filter(filter).limit(limit);
                let (mode, found) = ws.search_with_mode(user, &query).await.map_err(told)?;
                let results: Vec<Value> = found
                    .iter()
                    .map(|f| {
                        let mut v = summary(&f.note);
                        v["score"] = json!((f.score * 10_000.0).round() / 10_000.0);
                        v["snippet"] = json!(snippet(&f.note.body, 240));
                        v
                    })
                    .collect();
                output(&json!({"mode": mode.as_str(), "count": results.len(), "results": results}))
            }
            Op::Update => {
                let slug = required(take_text(&mut args, &["slug"])?, "slug")?;
                let mut edit = NoteEdit::new();
                edit.body = take_text(&mut args, &["body", "content", "text"])?;
                edit.title = take_text(&mut args, &["title"])?;
                edit.kind = take_kind(&mut args)?;
                edit.tags = take_tags(&mut args)?;
                let version: Option<u64> = args.take("version").map_err(bad)?;
                args.finish(&["slug", "body", "title", "kind", "tags", "version"]).map_err(bad)?;
                let slug = ws.resolve(user, &slug).await.map_err(told)?;
                edit.expected_version = version.or_else(|| self.seat.seen(run, &slug));
                let note = ws.update(user, member, &slug, edit).await.map_err(told)?;
                self.seat.saw(run, &note);
                ctx.emit_custom(
                    "workspace",
                    || json!({"op": "update", "member": member, "slug": note.slug, "version": note.version}),
                );
                output(&json!({
                    "slug": note.slug,
                    "version": note.version,
                    "message": format!("Updated `{}` to version {}.", note.slug, note.version),
                }))
            }
            Op::Archive => {
                let slug = required(take_text(&mut args, &["slug"])?, "slug")?;
                args.finish(&["slug"]).map_err(bad)?;
                let slug = ws.resolve(user, &slug).await.map_err(told)?;
                let note = ws.archive(user, member, &slug).await.map_err(told)?;
                ctx.emit_custom("workspace", || json!({"op": "archive", "member": member, "slug": note.slug}));
                output(&json!({
                    "slug": note.slug,
                    "archived_at": note.archived_at,
                    "message": format!("Archived `{}`: it is left out of lists and searches.", note.slug),
                }))
            }
            Op::Ask => {
                let question = required(take_text(&mut args, &["question", "title"])?, "question")?;
                let details = take_text(&mut args, &["details", "body", "context"])?.unwrap_or_default();
                let tags = take_tags(&mut args)?.unwrap_or_default();
                args.finish(&["question", "details", "tags"]).map_err(bad)?;
                let note = ws.ask(user, member, NewNote::new(question, details).tags(tags)).await.map_err(told)?;
                self.seat.saw(run, &note);
                ctx.emit_custom("workspace", || json!({"op": "ask", "member": member, "slug": note.slug}));
                output(&json!({
                    "slug": note.slug,
                    "message": format!("Asked as `{}`; answers will follow it up.", note.slug),
                }))
            }
            Op::Answer => {
                let slug = required(take_text(&mut args, &["slug", "question"])?, "slug")?;
                let answer = required(take_text(&mut args, &["answer", "body"])?, "answer")?;
                args.finish(&["slug", "answer"]).map_err(bad)?;
                let (question, note) = ws.answer(user, member, &slug, answer).await.map_err(told)?;
                self.seat.saw(run, &note);
                ctx.emit_custom(
                    "workspace",
                    || json!({"op": "answer", "member": member, "question": question.slug, "slug": note.slug}),
                );
                output(&json!({
                    "question": question.slug,
                    "answer": note.slug,
                    "answered_by": question.answered_by,
                    "message": format!("Answered `{}` with `{}`.", question.slug, note.slug),
                }))
            }
            Op::OpenQuestions => {
                args.finish(&[]).map_err(bad)?;
                let open = ws.open_questions(user).await.map_err(told)?;
                let questions: Vec<Value> = open
                    .iter()
                    .map(|q| {
                        let mut v = summary(q);
                        if !q.body.is_empty() {
                            v["details"] = json!(snippet(&q.body, 240));
                        }
                        v
                    })
                    .collect();
                output(&json!({"count": questions.len(), "questions": questions}))
            }
        }
    }
}
