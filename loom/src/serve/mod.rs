//! The HTTP server: agents and workflows behind an OpenAI-compatible Chat Completions API,
//! and Loom's own API of background runs, resumable event streams, approvals and sessions.
//!
//! Build a [`Server`], give it named agents and workflows — each name is a *model* to OpenAI
//! clients — choose how callers are authenticated, and [`serve`](Server::serve) it (on
//! `127.0.0.1:8080` by default, until Ctrl-C or SIGTERM), or take its [`router`] and mount
//! it in an axum app of your own.
//!
//! ```no_run
//! use loomflow::prelude::*;
//! use loomflow::serve::Server;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let support = Agent::new("You answer support questions.").model("echo");
//! Server::new()
//!     .agent("support", support)
//!     .bearer_tokens([("token-of-alice", UserId::new("alice")?)])
//!     .serve()
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! Then any OpenAI client talks to it:
//!
//! ```text
//! curl http://127.0.0.1:8080/v1/chat/completions -H 'Authorization: Bearer token-of-alice' \
//!   -d '{"model": "support", "messages": [{"role": "user", "content": "Where is my order?"}]}'
//! ```
//!
//! # The OpenAI-compatible API
//!
//! - `POST /v1/chat/completions`: a `chat.completion`, or with `"stream": true` SSE lines of
//!   `chat.completion.chunk` objects — the assistant's role, the text as the agent writes it,
//!   a last chunk with `finish_reason: "stop"`, a usage chunk when `stream_options.include_usage`
//!   is set, then `data: [DONE]`. A failure before the run has started is answered with its
//!   status code; after, as a `data: {"error": ..}` line before `[DONE]`. Closing the
//!   connection cancels the run.
//! - `GET /v1/models`: the served names.
//!
//! What a request may hold, and what is done with it:
//! - **Messages**: the last one must be the user's: it is the run's input. Content is a string,
//!   null, or a list of `text` and `image_url` parts (`data:` URLs are sent inline). Without a
//!   session, the earlier user and assistant messages are the run's history; **with a
//!   session** (the [`SESSION_HEADER`] header, `x-loom-session: <id>`) only the last message is
//!   new, and the stored session provides the history. `system` and `developer` messages are
//!   accepted and not sent to the model: the served agent's own instructions are its system
//!   prompt, which a client cannot rewrite.
//! - **Tools are the agent's.** The client's `tools` are accepted and ignored, and the agent
//!   never asks the client to run one: its tool calls run on the server. A `tool_choice` other
//!   than `auto` or `none` cannot be honoured and is refused (400), as are `tool` messages and
//!   `n` other than 1.
//! - `temperature`, `max_tokens` / `max_completion_tokens` set the agent's model settings for
//!   the request; `metadata` goes to the run's metadata; `user` names the user on an open
//!   server (below). Every other field (`response_format`, `top_p`, `stop`, `seed` ...) and
//!   every unknown one is accepted and ignored; null is the same as absent.
//! - The response's [`RUN_HEADER`] header (`x-loom-run`) names the run; the completion's id is
//!   `chatcmpl-<run id>`.
//! - Errors have OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`: 400 for a
//!   malformed request (with the field at fault in `param`), 401 without valid credentials,
//!   404 for an unknown model or another user's run or session, 409 for a run that paused
//!   for approval (`code: "approval_pending"`: decide it with the native API), 413 for a body
//!   over the limit, 429 for a budget or rate limit (with `Retry-After`), 502 for a model
//!   provider's failure, 503 while shutting down, 504 when the request timeout passed (the
//!   run is then cancelled).
//!
//! # Loom's API
//!
//! - `POST /runs` with `{"model", "input", "session"?, "metadata"?}`: starts a run in the
//!   background and answers 202 at once with the run (`id`, `status`); the request timeout
//!   does not apply to it.
//! - `GET /runs`, `GET /runs/{id}`: the caller's runs, with status (`running`, `finished`,
//!   `failed`, `waiting_approval`, `interrupted`), output, usage, error, the call waiting
//!   for approval, and `last_event_id`.
//! - `GET /runs/{id}/events`: the run's [`RunEvent`](crate::RunEvent)s as JSON, one SSE event
//!   each with an `id:`; a client that reconnects with `Last-Event-ID` gets only the later
//!   ones. Live events follow as they happen; the stream ends with an `end` event holding the
//!   run's status (a paused run's too: open the stream again after resuming). Each run keeps
//!   its latest [`event_buffer`](Server::event_buffer) events; ids stay consecutive, so a
//!   client that fell further behind sees the gap.
//! - `POST /runs/{id}/resume` with `{"decisions"?: {"<call id>": {"decision": ..}}}`: resumes
//!   a paused or interrupted journaled run in the background (name `model` and `session` for a
//!   run this server did not start).
//! - `GET /approvals`: the caller's calls waiting for a decision (durable approvals:
//!   [`Governance::durable_approvals`](crate::governance::Governance::durable_approvals)), read
//!   from the journal, so they survive a restart. `POST /approvals/{run}/{call}` with
//!   `{"decision": "allow" | "allow_always" | "deny" | "deny_always" | "edit", "reason"?,
//!   "arguments"?}` decides one and resumes its run; the call then runs once.
//! - `GET /sessions`, `GET /sessions/{id}` (its messages), `DELETE /sessions/{id}` (history,
//!   runs and journal, everywhere).
//! - `GET /health`: 200 `{"status": "ok"}`, or 503 while shutting down; not authenticated.
//!
//! A run is journaled — so resumable, and able to pause for approval — when its agent has a
//! store ([`Agent::store`](crate::Agent::store)) and the run has a session.
//!
//! # Who the caller is
//!
//! Every request but `/health` acts for one user, the partition of everything it touches: a
//! user never sees another user's runs, approvals or sessions, and another user's ids are
//! answered 404, as ids that do not exist. Choose one of:
//! - [`bearer_tokens`](Server::bearer_tokens): `Authorization: Bearer <token>`, a token per user;
//! - [`authenticate`](Server::authenticate): a hook of your own ([`Authenticate`]);
//! - [`open`](Server::open): no authentication — for a server on loopback or behind a proxy
//!   that authenticates. The [`USER_HEADER`] header (`x-loom-user`), or else the request's
//!   `user` field, names the user; without either, the anonymous user.
//!
//! A server with none of them does not start (a [`ConfigError`]): serving without
//! authentication is a choice to make, not a default. With authentication, the `user` field
//! of a request is ignored: the credentials say who the caller is.
//!
//! # Limits and shutdown
//!
//! Request bodies are limited ([`max_body`](Server::max_body), 4 MiB; 413 over it), chat
//! completions by a timeout ([`timeout`](Server::timeout), five minutes; 504). The native API
//! keeps at most [`max_runs`](Server::max_runs) runs, forgetting the oldest that have ended.
//!
//! On shutdown the server stops accepting connections, answers 503 to new runs, and gives the
//! requests and background runs in progress a [`grace`](Server::grace) period (30 s) to
//! finish. Runs still going after it are stopped: a journaled one keeps every step it
//! finished and its lease is given back, so it can be resumed (`POST /runs/{id}/resume`) by
//! this or another process; a run without a journal is lost, and its callers see it
//! `interrupted`.

mod auth;
mod body;
mod error;
mod native;
pub(crate) mod openai;
mod runs;
mod service;
mod target;

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use axum::Router;
use serde::Serialize;

pub use auth::{Authenticate, Caller, USER_HEADER};
pub use error::ServeError;
pub use openai::{RUN_HEADER, SESSION_HEADER};
pub use service::{Drained, Service};

use auth::Auth;
use runs::Runs;
pub(crate) use service::Shared;
use service::models_json;
use target::{AgentTarget, Served, WorkflowTarget};

use crate::Agent;
use crate::error::ConfigError;
use crate::id::UserId;
use crate::session::SessionStore;
use crate::workflow::Workflow;

/// Where [`Server::serve`] listens unless told otherwise: loopback, port 8080.
pub const DEFAULT_ADDRESS: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

/// The largest request body accepted by default: 4 MiB.
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;

/// How long a chat completion may take by default: five minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// How long runs in progress may take to finish once shutdown begins, by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// How many events each background run keeps for its event stream, by default.
pub const DEFAULT_EVENT_BUFFER: usize = 1024;

/// How many runs the native API keeps, by default.
pub const DEFAULT_MAX_RUNS: usize = 10_000;

/// The builder of an HTTP server of agents and workflows (see the [module](self)).
///
/// Building never fails; [`build`](Server::build) (and so [`router`](Server::router) and
/// [`serve`](Server::serve)) reports the first misconfiguration.
#[must_use = "a server does nothing until it is served or its router is mounted"]
pub struct Server {
    targets: Vec<(Arc<str>, Arc<dyn Served>)>,
    auth: Option<Auth>,
    address: SocketAddr,
    max_body: usize,
    timeout: Duration,
    grace: Duration,
    event_buffer: usize,
    max_runs: usize,
    config_error: Option<ConfigError>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("targets", &self.targets.iter().map(|(n, t)| (&**n, t.kind())).collect::<Vec<_>>())
            .field("address", &self.address)
            .field("max_body", &self.max_body)
            .field("timeout", &self.timeout)
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl Server {
    /// A server of nothing yet, on [`DEFAULT_ADDRESS`], without authentication chosen.
    pub fn new() -> Self {
        Self {
            targets: Vec::new(),
            auth: None,
            address: DEFAULT_ADDRESS,
            max_body: DEFAULT_MAX_BODY,
            timeout: DEFAULT_TIMEOUT,
            grace: DEFAULT_GRACE,
            event_buffer: DEFAULT_EVENT_BUFFER,
            max_runs: DEFAULT_MAX_RUNS,
            config_error: None,
        }
    }

    fn fail(&mut self, setting: &'static str, reason: String) {
        self.config_error.get_or_insert(ConfigError::InvalidSetting { setting, reason });
    }

    fn add(mut self, name: String, target: Arc<dyn Served>) -> Self {
        if name.is_empty() || name.len() > crate::MAX_ID_LEN || name.chars().any(char::is_control) {
            self.fail(
                "serve",
                format!("`{name}` cannot name a served model: give 1 to {} printable bytes", crate::MAX_ID_LEN),
            );
        } else if self.targets.iter().any(|(n, _)| **n == *name) {
            self.fail("serve", format!("two served models are named `{name}`; names must be unique"));
        }
        self.targets.push((Arc::from(name), target));
        self
    }

    /// Serves `agent` as the model `name`. A typed agent answers with the JSON of its output.
    pub fn agent<O: Send + Sync + 'static>(self, name: impl Into<String>, agent: Agent<O>) -> Self {
        self.add(name.into(), Arc::new(AgentTarget(agent)))
    }

    /// Serves `workflow` as the model `name`: its input is the text of the request's last user
    /// message; its output is the answer (as text when it is a string, as JSON otherwise).
    /// A workflow reports no token usage of its own: its usage is zero.
    pub fn workflow<I, O>(self, name: impl Into<String>, workflow: Workflow<I, O>) -> Self
    where
        I: From<String> + Send + 'static,
        O: Serialize + Send + 'static,
    {
        self.add(name.into(), Arc::new(WorkflowTarget(workflow)))
    }

    /// Serves without authentication: the `x-loom-user` header, or else the request's `user`
    /// field, names the user; without either, the anonymous user. Anyone who can reach the
    /// server can act as anyone: keep it on loopback, or behind a proxy that authenticates.
    pub fn open(mut self) -> Self {
        self.auth = Some(Auth::Open);
        self
    }

    /// Authenticates with bearer tokens: `Authorization: Bearer <token>` acts as the token's
    /// user; a request without a known token is refused (401).
    pub fn bearer_tokens<T: Into<String>>(mut self, tokens: impl IntoIterator<Item = (T, UserId)>) -> Self {
        let tokens: HashMap<String, UserId> = tokens.into_iter().map(|(t, u)| (t.into(), u)).collect();
        if tokens.keys().any(String::is_empty) {
            self.fail("bearer_tokens", "an empty token would let anyone in".to_owned());
        }
        self.auth = Some(Auth::Tokens(Arc::new(tokens)));
        self
    }

    /// Authenticates with `hook`: it maps each request's credentials to a user, or refuses
    /// it (401).
    pub fn authenticate(mut self, hook: impl Authenticate) -> Self {
        self.auth = Some(Auth::Hook(Arc::new(hook)));
        self
    }

    /// Where [`serve`](Server::serve) listens ([`DEFAULT_ADDRESS`] by default).
    pub fn address(mut self, address: SocketAddr) -> Self {
        self.address = address;
        self
    }

    /// The largest request body accepted, in bytes ([`DEFAULT_MAX_BODY`]); larger ones are
    /// answered 413.
    pub fn max_body(mut self, bytes: usize) -> Self {
        if bytes == 0 {
            self.fail("max_body", "a limit of 0 bytes refuses every request".to_owned());
        }
        self.max_body = bytes;
        self
    }

    /// How long a chat completion may take ([`DEFAULT_TIMEOUT`]); past it the run is
    /// cancelled and the request answered 504 (a streamed one ends with an error line). Runs
    /// of `POST /runs` are not bounded by it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        if timeout.is_zero() {
            self.fail("timeout", "a zero timeout fails every request".to_owned());
        }
        self.timeout = timeout;
        self
    }

    /// How long requests and runs in progress may take to finish once shutdown begins
    /// ([`DEFAULT_GRACE`]).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How many of its latest events each background run keeps for its event stream
    /// ([`DEFAULT_EVENT_BUFFER`]).
    pub fn event_buffer(mut self, events: usize) -> Self {
        if events == 0 {
            self.fail("event_buffer", "a run must keep at least one event".to_owned());
        }
        self.event_buffer = events;
        self
    }

    /// How many runs the native API keeps ([`DEFAULT_MAX_RUNS`]); past it the oldest that
    /// have ended are forgotten, and a new run is refused (429) when none has.
    pub fn max_runs(mut self, runs: usize) -> Self {
        if runs == 0 {
            self.fail("max_runs", "a server that keeps no run cannot start one".to_owned());
        }
        self.max_runs = runs;
        self
    }

    /// The server, ready to serve: the first misconfiguration otherwise (nothing served, two
    /// names alike, no authentication chosen, a limit of zero).
    pub fn build(self) -> Result<Service, ConfigError> {
        if let Some(e) = self.config_error {
            return Err(e);
        }
        if self.targets.is_empty() {
            return Err(ConfigError::InvalidSetting {
                setting: "serve",
                reason: "the server serves nothing: add an agent or a workflow with `.agent(..)` or `.workflow(..)`"
                    .to_owned(),
            });
        }
        let Some(auth) = self.auth else {
            return Err(ConfigError::InvalidSetting {
                setting: "serve",
                reason: "the server has no authentication: give it `.bearer_tokens(..)` or `.authenticate(..)`, \
                         or call `.open()` to serve without any"
                    .to_owned(),
            });
        };
        let names: Vec<Arc<str>> = self.targets.iter().map(|(n, _)| Arc::clone(n)).collect();
        let map = self.targets.iter().map(|(n, t)| (Box::from(&**n), (Arc::clone(n), Arc::clone(t)))).collect();
        // Each store once: agents that share one list its sessions once.
        let mut stores: Vec<Arc<dyn SessionStore>> = Vec::new();
        for (_, target) in &self.targets {
            if let Some(store) = target.sessions()
                && !stores.iter().any(|s| std::ptr::addr_eq(Arc::as_ptr(s), Arc::as_ptr(store)))
            {
                stores.push(Arc::clone(store));
            }
        }
        let models = models_json(&names, runs::now_secs());
        Ok(Service {
            shared: Arc::new(Shared {
                map,
                list: self.targets,
                names,
                stores,
                auth,
                max_body: self.max_body,
                timeout: self.timeout,
                models,
                runs: Arc::new(Runs::new(self.max_runs, self.event_buffer)),
                draining: AtomicBool::new(false),
            }),
            address: self.address,
            grace: self.grace,
        })
    }

    /// The server's routes as an axum router, to mount in an app of your own
    /// (`app.merge(router)`). Call [`Service::drain`] when the app shuts down to let
    /// background runs finish; [`build`](Server::build) gives the service to call it on.
    pub fn router(self) -> Result<Router, ConfigError> {
        Ok(self.build()?.router())
    }

    /// Binds the [`address`](Server::address) and serves until Ctrl-C or SIGTERM, then shuts
    /// down gracefully (see the [module](self)).
    pub async fn serve(self) -> Result<(), ServeError> {
        let address = self.address;
        let service = self.build()?;
        let listener =
            tokio::net::TcpListener::bind(address).await.map_err(|source| ServeError::Bind { address, source })?;
        tracing::info!(%address, models = ?service.shared.names, "loom serve: listening");
        service.serve(listener, shutdown_signal()).await
    }
}

/// The routes of `server` as an axum router: [`Server::router`].
pub fn router(server: Server) -> Result<Router, ConfigError> {
    server.router()
}

/// Serves `server` on its address until Ctrl-C or SIGTERM: [`Server::serve`].
pub async fn serve(server: Server) -> Result<(), ServeError> {
    server.serve().await
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No signal handler can be installed: serve until the process is stopped.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    () = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => ctrl_c.await,
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}
