//! A member of a team on a workspace: its name, its teammates, the tools it is given and the
//! section of its prompt that tells it how to use them.

use std::fmt::Write as _;
use std::sync::Arc;

use super::Workspace;
use super::store::validate_member_name;
use super::tools::{Op, Seat, WorkspaceTool};
use crate::agent::Agent;
use crate::error::ConfigError;
use crate::tool::{Tool, ToolSet};

/// One agent's seat on a [`Workspace`]: the name it writes under, the teammates it shares the
/// workspace with, and which tools it gets.
///
/// Give it to an agent with [`Agent::workspace`]: the agent gets the tools and a section of
/// its prompt that names the teammates and says how the team keeps notes. Or take the parts
/// apart: [`tools`](Self::tools) and [`prompt`](Self::prompt).
///
/// The tools: `note`, `read_note`, `list_notes`, `search_notes`, `update_note` (own notes
/// only), `archive_note` (own notes only; on unless [`archive(false)`](Self::archive)), and
/// with [`questions(true)`](Self::questions) `ask_question`, `answer_question` and
/// `list_open_questions`. Each works in the run's user's partition, and `read_note` records
/// the read for the run (see [`Workspace::cited`]).
#[derive(Clone)]
pub struct Member {
    workspace: Workspace,
    name: String,
    teammates: Vec<String>,
    questions: bool,
    archive: bool,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("name", &self.name)
            .field("teammates", &self.teammates)
            .field("questions", &self.questions)
            .field("archive", &self.archive)
            .finish_non_exhaustive()
    }
}

impl Member {
    pub(crate) fn new(workspace: Workspace, name: &str) -> Self {
        Self { workspace, name: name.to_owned(), teammates: Vec::new(), questions: false, archive: true }
    }

    /// The members this one shares the workspace with, named in its prompt.
    #[must_use]
    pub fn teammates(mut self, names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        for name in names {
            let name = name.into();
            if !self.teammates.contains(&name) {
                self.teammates.push(name);
            }
        }
        self
    }

    /// Gives the member the question tools: `ask_question`, `answer_question`,
    /// `list_open_questions` (off by default).
    #[must_use]
    pub fn questions(mut self, on: bool) -> Self {
        self.questions = on;
        self
    }

    /// Gives the member `archive_note` (on by default).
    #[must_use]
    pub fn archive(mut self, on: bool) -> Self {
        self.archive = on;
        self
    }

    /// The name it writes under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its teammates.
    pub fn teammate_names(&self) -> &[String] {
        &self.teammates
    }

    /// The workspace.
    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }

    /// Checks the names: the member's and its teammates' must be valid member names
    /// ([`validate_member_name`]), and no teammate may be the member itself.
    pub fn check(&self) -> Result<(), ConfigError> {
        let bad = |reason: String| ConfigError::InvalidSetting { setting: "workspace member", reason };
        validate_member_name(&self.name).map_err(|e| bad(e.to_string()))?;
        for teammate in &self.teammates {
            validate_member_name(teammate).map_err(|e| bad(format!("teammate: {e}")))?;
            if *teammate == self.name {
                return Err(bad(format!("`{teammate}` is listed as its own teammate")));
            }
        }
        Ok(())
    }

    fn ops(&self) -> Vec<Op> {
        let mut ops = vec![Op::Note, Op::Read, Op::List, Op::Search, Op::Update];
        if self.archive {
            ops.push(Op::Archive);
        }
        if self.questions {
            ops.extend([Op::Ask, Op::Answer, Op::OpenQuestions]);
        }
        ops
    }

    /// The member's tools, for [`Agent::tools`]. They share what the member has seen: an
    /// `update_note` without a `version` is checked against the version this run last read
    /// or wrote.
    pub fn tools(&self) -> Vec<Arc<dyn Tool>> {
        let seat = Arc::new(Seat::new(self.workspace.clone(), self.name.clone()));
        self.ops().into_iter().map(|op| Arc::new(WorkspaceTool::new(Arc::clone(&seat), op)) as Arc<dyn Tool>).collect()
    }

    /// The member's tools as a set.
    pub fn tool_set(&self) -> Result<ToolSet, ConfigError> {
        let mut set = ToolSet::new();
        for tool in self.tools() {
            set.insert_arc(tool)?;
        }
        Ok(set)
    }

    /// The section of the prompt that tells the member who it is, who its teammates are, and
    /// how the team keeps notes.
    pub fn prompt(&self) -> String {
        let mut out = String::with_capacity(1_024);
        out.push_str("## Shared workspace\n\n");
        let _ = write!(out, "You are `{}`", self.name);
        match self.teammates.as_slice() {
            [] => out.push_str(", on a team that shares a workspace of notes."),
            names => {
                let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
                let list = match names.split_last() {
                    Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
                    _ => names.join(""),
                };
                let _ = write!(out, ", on a team that shares a workspace of notes with {list}.");
            }
        }
        out.push_str(
            " Put what the team needs in notes, not in your answer: findings, decisions, open questions, \
             summaries, artifacts. A note stands alone: a title that says what it is, then the content, \
             short and to the point.\n\n",
        );
        out.push_str(
            "- Start from what is there: `search_notes` (by words and meaning) or `list_notes`, then \
             `read_note` for the notes that matter. Cite notes by their slug.\n",
        );
        out.push_str("- Write with `note`; set `parent` to the slug of the note a new one follows up.\n");
        out.push_str(
            "- Change only your own notes, with `update_note` and the `version` you read. If the note changed \
             in the meantime, read it again and redo your change on the current text.\n",
        );
        if self.archive {
            out.push_str("- `archive_note` hides one of your notes that no longer holds.\n");
        }
        if self.questions {
            out.push_str(
                "- Ask the team with `ask_question`; see what is asked with `list_open_questions`, and answer \
                 with `answer_question`.\n",
            );
        }
        out
    }

    /// `agent`, with the member's tools and prompt section ([`Agent::workspace`]).
    pub(crate) fn join<O>(&self, mut agent: Agent<O>) -> Agent<O> {
        if let Err(e) = self.check() {
            agent.config_error.get_or_insert(e);
        }
        for tool in self.tools() {
            if let Err(e) = agent.tools.insert_arc(tool) {
                agent.config_error.get_or_insert(e);
            }
        }
        let instructions = if agent.instructions.trim().is_empty() {
            self.prompt()
        } else {
            format!("{}\n\n{}", agent.instructions.trim_end(), self.prompt())
        };
        agent.instructions = instructions.into();
        // The living plan (`update_plan`) of an agent on a workspace mirrors into a note.
        agent.extensions.insert(PlanMirror(self.clone()));
        agent.changed()
    }
}

/// What lets the living plan of an agent seated on a workspace mirror into its `plan` note:
/// the member, in the agent's state.
pub(crate) struct PlanMirror(Member);

impl PlanMirror {
    /// Writes `plan` (the rendered table) as the member's plan note for `user`: the note
    /// titled `Plan of {member}`, of kind `plan`, a new version on each update. Returns the
    /// note's slug and version.
    pub(crate) async fn write(&self, user: &crate::UserId, plan: &str) -> Result<(String, u64), super::WorkspaceError> {
        let member = &self.0;
        let title = format!("Plan of {}", member.name());
        let ws = member.workspace();
        let note = match ws.get(user, &title).await {
            Ok(note) if note.author == member.name() && note.kind == super::NoteKind::Plan => {
                ws.update(user, member.name(), &note.slug, super::NoteEdit::new().body(plan)).await?
            }
            Ok(_) | Err(super::WorkspaceError::NotFound { .. }) => {
                ws.write(user, member.name(), super::NewNote::new(title, plan).kind(super::NoteKind::Plan)).await?
            }
            Err(e) => return Err(e),
        };
        Ok((note.slug, note.version))
    }
}
