//! What the architectures share: a role (its prompt and, optionally, its own model), a team's
//! member (an agent of any output type), and the text helpers their control flow uses.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::run::{AgentRun, ChildKey, ChildSession};
use crate::agent::Agent;
use crate::error::{ConfigError, Error};
use crate::model::{Content, IntoModel, Message, Model};

/// Refuses a configuration: `Err` with `setting` and the reason (made only when refused) when
/// `refused` holds.
pub(crate) fn refuse<R: Into<String>>(
    refused: bool,
    setting: &'static str,
    reason: impl FnOnce() -> R,
) -> Result<(), ConfigError> {
    if refused { Err(ConfigError::InvalidSetting { setting, reason: reason().into() }) } else { Ok(()) }
}

/// A role an architecture asks: its system prompt and, when it has one, its own model (the
/// agent's otherwise, with its retries and fallbacks).
#[derive(Clone)]
pub(crate) struct Role {
    pub(crate) prompt: Arc<str>,
    model: Option<Arc<dyn Model>>,
    /// A model that could not be resolved, reported by `check`.
    error: Option<ConfigError>,
}

impl Role {
    pub(crate) fn new(prompt: &str) -> Self {
        Self { prompt: Arc::from(prompt), model: None, error: None }
    }

    pub(crate) fn set_prompt(&mut self, prompt: impl Into<Arc<str>>) {
        self.prompt = prompt.into();
    }

    pub(crate) fn set_model(&mut self, model: impl IntoModel) {
        match model.into_model() {
            Ok(model) => self.model = Some(model),
            Err(e) => self.error = Some(e),
        }
    }

    /// The role's own model, if it has one.
    pub(crate) fn model(&self) -> Option<&dyn Model> {
        self.model.as_deref()
    }

    pub(crate) fn check(&self, role: &str) -> Result<(), ConfigError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        refuse(self.prompt.trim().is_empty(), "prompt", || {
            format!("the {role}'s prompt is empty; give it instructions or keep the default")
        })?;
        Ok(())
    }

    /// The role's conversation: its prompt, and `user`.
    pub(crate) fn messages(&self, user: String) -> Vec<Message> {
        vec![Message::system(Arc::clone(&self.prompt)), Message::user(user)]
    }
}

impl std::fmt::Debug for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Role").field("model", &self.model.as_ref().map(|m| m.name())).finish_non_exhaustive()
    }
}

/// Builder methods for an architecture's roles: `<role>_prompt` and `<role>_model`.
macro_rules! role_methods {
    ($ty:ident { $($field:ident ($prompt:ident, $model:ident): $what:literal),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!("Replaces the prompt of ", $what, ".")]
                #[must_use]
                pub fn $prompt(mut self, prompt: impl Into<::std::sync::Arc<str>>) -> Self {
                    self.$field.set_prompt(prompt);
                    self
                }

                #[doc = concat!(
                    "Gives ", $what, " a model of its own (a model string or value); without one it uses \
                     the agent's. A string that names no model is a `ConfigError` when the agent is checked."
                )]
                #[must_use]
                pub fn $model(mut self, model: impl $crate::model::IntoModel) -> Self {
                    self.$field.set_model(model);
                    self
                }
            )*
        }
    };
}
pub(crate) use role_methods;

/// An agent of a team, whatever its output type: it runs as a child run and answers in text
/// (a typed agent's answer is the JSON it gave).
pub(crate) trait Member: Send + Sync + 'static {
    /// The agent's configuration problem, if it has one.
    fn check(&self) -> Result<(), ConfigError>;
    /// What the agent says it is for.
    fn description(&self) -> Option<&str>;
    /// The agent's instructions.
    fn instructions(&self) -> &str;
    /// Runs the agent on `input` as a child of `run`.
    fn answer<'a>(
        &'a self,
        run: &'a AgentRun<'_>,
        key: ChildKey<'a>,
        input: Content,
        session: ChildSession<'a>,
    ) -> BoxFuture<'a, Result<String, Error>>;
}

impl<O: Send + Sync + 'static> Member for Agent<O> {
    fn check(&self) -> Result<(), ConfigError> {
        Agent::check(self)
    }

    fn description(&self) -> Option<&str> {
        self.agent_description()
    }

    fn instructions(&self) -> &str {
        Agent::instructions(self)
    }

    fn answer<'a>(
        &'a self,
        run: &'a AgentRun<'_>,
        key: ChildKey<'a>,
        input: Content,
        session: ChildSession<'a>,
    ) -> BoxFuture<'a, Result<String, Error>> {
        Box::pin(async move {
            let result = run.run_child(key, self, input, session).await?;
            Ok(result.text().to_owned())
        })
    }
}

/// A named member of a team.
#[derive(Clone)]
pub(crate) struct Named {
    pub(crate) name: Arc<str>,
    pub(crate) agent: Arc<dyn Member>,
}

impl Named {
    pub(crate) fn new<O: Send + Sync + 'static>(name: impl Into<Arc<str>>, agent: Agent<O>) -> Self {
        Self { name: name.into(), agent: Arc::new(agent) }
    }

    /// What the member is for: its description, or the first line of its instructions.
    pub(crate) fn about(&self) -> &str {
        self.agent.description().unwrap_or_else(|| self.agent.instructions().lines().next().unwrap_or("").trim())
    }
}

impl std::fmt::Debug for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// Checks a team's members: at least `min`, unique names that are not empty, each agent
/// well configured (the first problem is reported, naming the member).
pub(crate) fn check_members(architecture: &str, what: &str, members: &[Named], min: usize) -> Result<(), ConfigError> {
    if members.len() < min {
        let have = members.len();
        return Err(ConfigError::InvalidSetting {
            setting: "architecture",
            reason: format!("a {architecture} needs at least {min} {what}, and has {have}"),
        });
    }
    for (i, m) in members.iter().enumerate() {
        refuse(m.name.trim().is_empty(), "architecture", || {
            format!("a {architecture}'s {what} need names; #{} has none", i + 1)
        })?;
        refuse(members[..i].iter().any(|o| o.name == m.name), "architecture", || {
            format!("the {architecture} has two {what} named `{}`", m.name)
        })?;
        m.agent.check().map_err(|e| ConfigError::InvalidSetting {
            setting: "architecture",
            reason: format!("the {architecture}'s member `{}` is misconfigured: {e}", m.name),
        })?;
    }
    Ok(())
}

/// A list of members for a prompt: `- name: what it is for`.
pub(crate) fn roster(members: &[Named]) -> String {
    let mut out = String::new();
    for m in members {
        let about = m.about();
        if about.is_empty() {
            out.push_str(&format!("- {}\n", m.name));
        } else {
            out.push_str(&format!("- {}: {about}\n", m.name));
        }
    }
    out
}

/// A reply reduced to what matters for comparing it: lowercase words, without markdown,
/// punctuation or surrounding space.
pub(crate) fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(|c: char| !c.is_alphanumeric() && c != '.' && c != '-').filter(|w| !w.is_empty()) {
        let word = word.trim_matches(|c: char| c == '.' || c == '-');
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// Word-set Jaccard similarity of two texts, 0 to 1.
pub(crate) fn similarity(a: &str, b: &str) -> f64 {
    let a = normalise(a);
    let b = normalise(b);
    let a: std::collections::BTreeSet<&str> = a.split(' ').filter(|w| !w.is_empty()).collect();
    let b: std::collections::BTreeSet<&str> = b.split(' ').filter(|w| !w.is_empty()).collect();
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let shared = a.intersection(&b).count();
    shared as f64 / (a.len() + b.len() - shared) as f64
}

/// A score in `[0, 1]` from what a model wrote: `0.7`, `7/10`, `70%`, or `7` on a ten-point
/// scale.
pub(crate) fn unit_score(raw: f64) -> f64 {
    let score = if raw > 1.0 && raw <= 10.0 {
        raw / 10.0
    } else if raw > 10.0 {
        raw / 100.0
    } else {
        raw
    };
    if score.is_finite() { score.clamp(0.0, 1.0) } else { 0.0 }
}
