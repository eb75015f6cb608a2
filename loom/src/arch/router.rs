//! Router: classify the request, hand it to the one specialist it is for.

use std::sync::Arc;

use super::control::RouteChoice;
use super::role::{Named, Role, check_members, refuse, role_methods, roster};
use super::run::ChildSession;
use super::{AgentRun, Architecture};
use crate::agent::Agent;
use crate::error::{ConfigError, Error};

const CLASSIFIER: &str = "You route requests to the specialist who should handle them. Pick the one route that \
fits the request best, and say how sure you are, from 0 to 1.";

/// Which sessions a router's specialists continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RouteSessions {
    /// Each route its own: `{session}/route:{name}`. A specialist remembers what it was asked
    /// before in this session, and never sees what the others were asked.
    #[default]
    PerRoute,
    /// One for every route: `{session}/routed`.
    Shared,
    /// None: each request reaches its specialist alone.
    None,
}

/// Router: a classifier picks one route for the request (a typed [`RouteChoice`]: the route
/// and a confidence); that route's specialist — a full [`Agent`] with its own tools, model,
/// output type and architecture — runs as a child run, and its answer is the run's, word for
/// word.
///
/// A choice below `min_confidence` goes to the fallback route. A choice of a route that does
/// not exist goes back to the classifier with the routes there are; still malformed after that
/// retry, the request goes to the fallback route, or, without one, the run fails with the
/// [`OutputError`](crate::OutputError) (event `control.rejected` either way). Events:
/// `router.classified`, `router.dispatched`, `router.completed`.
///
/// Use it when requests fall into kinds that different specialists handle best: support desks
/// (billing, technical, sales), intent dispatch. One classification, one specialist run.
#[derive(Clone, Debug)]
pub struct Router {
    routes: Vec<Named>,
    fallback: Option<Arc<str>>,
    min_confidence: f64,
    classifier: Role,
    sessions: RouteSessions,
}

impl Default for Router {
    fn default() -> Self {
        Self::new()
    }
}

impl Router {
    /// A router without routes yet: add them with [`route`](Self::route).
    pub fn new() -> Self {
        Self {
            routes: Vec::new(),
            fallback: None,
            min_confidence: 0.0,
            classifier: Role::new(CLASSIFIER),
            sessions: RouteSessions::default(),
        }
    }

    /// Adds route `name` to `agent`. The classifier is shown the agent's
    /// [`description`](Agent::description) (or the first line of its instructions).
    #[must_use]
    pub fn route<O: Send + Sync + 'static>(mut self, name: impl Into<Arc<str>>, agent: Agent<O>) -> Self {
        self.routes.push(Named::new(name, agent));
        self
    }

    /// The route taken when the classifier is unsure or its choice cannot be read.
    #[must_use]
    pub fn fallback(mut self, route: impl Into<Arc<str>>) -> Self {
        self.fallback = Some(route.into());
        self
    }

    /// The confidence, from 0 to 1, below which the fallback route is taken (it needs one).
    #[must_use]
    pub fn min_confidence(mut self, confidence: f64) -> Self {
        self.min_confidence = confidence;
        self
    }

    /// Which sessions the specialists continue.
    #[must_use]
    pub fn sessions(mut self, sessions: RouteSessions) -> Self {
        self.sessions = sessions;
        self
    }

    /// The routes' names, in order.
    pub fn route_names(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|r| &*r.name)
    }
}

role_methods!(Router {
    classifier(classifier_prompt, classifier_model): "the classifier",
});

/// Says whether `route` is one of `names`, with the closest when it is not.
pub(crate) fn known(kind: &str, given: &str, names: &[&str]) -> Result<(), String> {
    if names.contains(&given) {
        return Ok(());
    }
    let hint = loomflow_graph::suggest::did_you_mean(given, names.iter().copied())
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    Err(format!("there is no {kind} `{given}`{hint}; choose one of: {}", names.join(", ")))
}

#[async_trait::async_trait]
impl Architecture for Router {
    fn name(&self) -> &str {
        "router"
    }

    fn check(&self) -> Result<(), ConfigError> {
        check_members("router", "routes", &self.routes, 1)?;
        if let Some(fallback) = &self.fallback {
            let names: Vec<&str> = self.route_names().collect();
            known("route", fallback, &names)
                .map_err(|reason| ConfigError::InvalidSetting { setting: "fallback", reason })?;
        }
        refuse(!(0.0..=1.0).contains(&self.min_confidence), "min_confidence", || {
            format!("a confidence is from 0 to 1, not {}", self.min_confidence)
        })?;
        refuse(
            self.min_confidence > 0.0 && self.fallback.is_none(),
            "min_confidence",
            || "a confidence threshold needs a fallback route for the requests below it; add `.fallback(..)`",
        )?;
        self.classifier.check("classifier")
    }

    async fn run(&self, run: &mut AgentRun<'_>) -> Result<String, Error> {
        let names: Vec<&str> = self.route_names().collect();
        let question =
            self.classifier.messages(format!("Routes:\n{}\nRequest:\n{}", roster(&self.routes), run.input_text()));
        let check = |c: &RouteChoice| known("route", c.route.trim(), &names);
        let choice = run.ask_checked::<RouteChoice>("classifier", self.classifier.model(), question, check).await?;
        let route: &str = match (&choice, self.fallback.as_deref()) {
            (Ok(c), Some(fallback)) if c.confidence < self.min_confidence => fallback,
            (Ok(c), _) => c.route.trim(),
            (Err(_), Some(fallback)) => fallback,
            (Err(e), None) => return Err(e.clone().into()),
        };
        let confidence = choice.as_ref().map(|c| c.confidence).ok();
        run.emit("router.classified", || {
            serde_json::json!({
                "route": route,
                "confidence": confidence,
                "chosen": choice.as_ref().map(|c| c.route.as_str()).ok(),
                "fallback": choice.as_ref().map_or(true, |c| c.route.trim() != route),
            })
        });
        let Some(specialist) = self.routes.iter().find(|r| &*r.name == route) else {
            // The check above and `check` make this unreachable; say so plainly if not.
            return Err(
                ConfigError::InvalidSetting { setting: "fallback", reason: format!("no route `{route}`") }.into()
            );
        };
        let sub = format!("route:{route}");
        let session = match self.sessions {
            RouteSessions::PerRoute => ChildSession::Sub(&sub),
            RouteSessions::Shared => ChildSession::Sub("routed"),
            RouteSessions::None => ChildSession::None,
        };
        run.emit("router.dispatched", || serde_json::json!({"route": route}));
        let input = run.input().cloned().unwrap_or_default();
        let answer = run.member(&sub, 0, &*specialist.agent, input, session).await?;
        run.emit("router.completed", || serde_json::json!({"route": route}));
        Ok(answer)
    }
}
