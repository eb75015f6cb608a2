//! The server: Loom's tools, agents and workflows for any MCP client.
//!
//! [`McpService`] is built here; `hooks` holds what the user plugs in (authentication,
//! resources, prompts, completions), `call` what a served tool sees of its request, and
//! `session` how one MCP session answers.

mod call;
mod hooks;
mod session;
#[cfg(unix)]
mod stdio;

pub use call::McpCall;
use call::{CallInput, level_rank};
use hooks::Tokens;
pub use hooks::{Authenticate, Caller, CompletionHandler, PromptHandler, ResourceHandler};
use session::Session;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rmcp::model::{self as mcp, ProgressToken};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler, ServiceExt as _};
use serde::Serialize;
use serde_json::{Value, json};

use super::{McpError, convert};
use crate::context::{Extensions, RunContext};
use crate::event::{EventKind, RunEvent};
use crate::id::{SessionId, UserId};
use crate::model::ToolCall;
use crate::tool::{Tool, ToolSet};
use crate::workflow::Workflow;
use crate::{Agent, ConfigError};

/// The largest request body the HTTP server accepts, by default.
const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;
/// The clients subscribed to resources: sessions of 2025-11-25 (`resources/subscribe`) and
/// `subscriptions/listen` streams of 2026-07-28, by a key of their own.
#[derive(Default)]
struct Subscribers(Mutex<HashMap<String, Subscriber>>);

struct Subscriber {
    uris: HashSet<String>,
    target: Subscribed,
}

#[derive(Clone)]
enum Subscribed {
    Session(rmcp::Peer<RoleServer>),
    Listen(rmcp::service::SubscriptionSink),
}

impl Subscribers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Subscriber>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How long a sealed request state may be echoed back.
const REQUEST_STATE_TTL: Duration = Duration::from_secs(60 * 60);

/// 32 random bytes: the key request states are sealed with, unless one is configured.
fn random_key() -> Vec<u8> {
    use std::io::Read as _;
    let mut key = vec![0u8; 32];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut key)).is_ok() {
        return key;
    }
    // No /dev/urandom: the standard library's randomly keyed hashers.
    use std::hash::{BuildHasher as _, Hasher as _};
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    for (i, chunk) in key.chunks_mut(8).enumerate() {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_usize(i);
        hasher.write_u128(now);
        chunk.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    key
}

struct Template {
    template: mcp::ResourceTemplate,
    handler: Arc<dyn ResourceHandler>,
}

struct PromptEntry {
    prompt: mcp::Prompt,
    handler: Arc<dyn PromptHandler>,
}

struct Inner {
    info: mcp::Implementation,
    instructions: Option<String>,
    tools: ToolSet,
    /// The tools as MCP lists them, made once.
    listed: OnceLock<Arc<[mcp::Tool]>>,
    resources: Vec<(mcp::Resource, Vec<mcp::ResourceContents>)>,
    templates: Vec<Template>,
    prompts: Vec<PromptEntry>,
    completion: Option<Arc<dyn CompletionHandler>>,
    /// The clients subscribed to resources, shared by every copy of the service.
    subscribers: Arc<Subscribers>,
    /// Seals the request state of stateless calls that ask their client for input.
    request_state: Arc<mcp::RequestStateCodec>,
    authenticate: Option<Arc<dyn Authenticate>>,
    stdio_user: UserId,
    state: Extensions,
    allowed_hosts: Option<Vec<String>>,
    max_body: usize,
    config_error: Option<ConfigError>,
}

/// An MCP server of Loom's tools, agents and workflows, with resources and prompts.
///
/// ```
/// use loomflow::prelude::*;
/// use loomflow::mcp::McpService;
///
/// /// Add two integers.
/// #[tool(read_only)]
/// fn add(a: i64, b: i64) -> i64 {
///     a + b
/// }
///
/// let helper = Agent::new("Answer briefly.").model("echo");
/// let service = McpService::new("calculator")
///     .tool(AddTool)
///     .agent("ask", "Ask the helper agent a question.", &helper)
///     .resource_text("docs://readme", "readme", "The calculator adds.")
///     .bearer_tokens([("token-of-alice", "alice")]);
/// assert_eq!(service.tool_names(), ["add", "ask"]);
/// // service.serve_stdio().await, or service.router() to mount at `/mcp` in an axum app.
/// ```
#[derive(Clone)]
pub struct McpService {
    inner: Arc<Inner>,
}

impl fmt::Debug for McpService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpService")
            .field("name", &self.inner.info.name)
            .field("tools", &self.inner.tools)
            .field("resources", &self.inner.resources.len())
            .field("prompts", &self.inner.prompts.len())
            .finish_non_exhaustive()
    }
}

impl McpService {
    /// A server named `name` (what clients are told), with nothing on it yet.
    pub fn new(name: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                info: mcp::Implementation::new(name, env!("CARGO_PKG_VERSION")),
                instructions: None,
                tools: ToolSet::new(),
                listed: OnceLock::new(),
                resources: Vec::new(),
                templates: Vec::new(),
                prompts: Vec::new(),
                completion: None,
                subscribers: Arc::new(Subscribers::default()),
                request_state: Arc::new(mcp::RequestStateCodec::new_unchecked(random_key())),
                authenticate: None,
                stdio_user: UserId::anonymous(),
                state: Extensions::new(),
                allowed_hosts: None,
                max_body: DEFAULT_MAX_BODY,
                config_error: None,
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        let inner = Arc::get_mut(&mut self.inner);
        match inner {
            Some(inner) => {
                inner.listed = OnceLock::new();
                f(inner);
            }
            None => {
                // Shared already: copy what can be copied, then edit.
                let old = &self.inner;
                let mut fresh = Inner {
                    info: old.info.clone(),
                    instructions: old.instructions.clone(),
                    tools: old.tools.clone(),
                    listed: OnceLock::new(),
                    resources: old.resources.clone(),
                    templates: old
                        .templates
                        .iter()
                        .map(|t| Template { template: t.template.clone(), handler: Arc::clone(&t.handler) })
                        .collect(),
                    prompts: old
                        .prompts
                        .iter()
                        .map(|p| PromptEntry { prompt: p.prompt.clone(), handler: Arc::clone(&p.handler) })
                        .collect(),
                    completion: old.completion.clone(),
                    subscribers: Arc::clone(&old.subscribers),
                    request_state: Arc::clone(&old.request_state),
                    authenticate: old.authenticate.clone(),
                    stdio_user: old.stdio_user.clone(),
                    state: old.state.clone(),
                    allowed_hosts: old.allowed_hosts.clone(),
                    max_body: old.max_body,
                    config_error: old.config_error.clone(),
                };
                f(&mut fresh);
                self.inner = Arc::new(fresh);
            }
        }
        self
    }

    /// What the server tells clients it is for.
    #[must_use]
    pub fn instructions(self, instructions: impl Into<String>) -> Self {
        let instructions = instructions.into();
        self.edit(|i| i.instructions = Some(instructions))
    }

    /// The version the server reports (Loom's by default).
    #[must_use]
    pub fn version(self, version: impl Into<String>) -> Self {
        let version = version.into();
        self.edit(|i| i.info.version = version)
    }

    /// Serves a tool (a `#[tool]`'s `<Name>Tool`, or any [`Tool`]): its schema as its input
    /// schema, its hints as MCP annotations.
    #[must_use]
    pub fn tool(self, tool: impl Tool) -> Self {
        self.tool_arc(Arc::new(tool))
    }

    /// Serves a shared tool.
    #[must_use]
    pub fn tool_arc(self, tool: Arc<dyn Tool>) -> Self {
        self.edit(|i| {
            if let Err(e) = i.tools.insert_arc(tool) {
                i.config_error.get_or_insert(e);
            }
        })
    }

    /// Serves every tool of a set.
    #[must_use]
    pub fn tools(self, tools: &ToolSet) -> Self {
        let tools: Vec<Arc<dyn Tool>> = tools.names().filter_map(|n| tools.get(n).cloned()).collect();
        tools.into_iter().fold(self, Self::tool_arc)
    }

    /// Serves an agent as a tool named `name` taking `{"input": "..."}`
    /// ([`Agent::as_tool`]); each call is a run of the agent for the calling user.
    #[must_use]
    pub fn agent<O: Serialize + Send + Sync + 'static>(self, name: &str, description: &str, agent: &Agent<O>) -> Self {
        match agent.as_tool(name, description) {
            Ok(tool) => self.tool(tool),
            Err(e) => self.edit(|i| {
                i.config_error.get_or_insert(e);
            }),
        }
    }

    /// Serves a workflow as a tool named `name` taking `{"input": "..."}`
    /// ([`Workflow::as_tool`]).
    #[must_use]
    pub fn workflow<I, O>(self, name: &str, description: &str, workflow: &Workflow<I, O>) -> Self
    where
        I: From<String> + Send + 'static,
        O: Serialize + Send + 'static,
    {
        match workflow.as_tool(name, description) {
            Ok(tool) => self.tool(tool),
            Err(e) => self.edit(|i| {
                i.config_error.get_or_insert(e);
            }),
        }
    }

    /// Serves a resource whose contents never change.
    #[must_use]
    pub fn resource(self, resource: mcp::Resource, contents: Vec<mcp::ResourceContents>) -> Self {
        self.edit(|i| i.resources.push((resource, contents)))
    }

    /// Serves a text resource (`text/plain`).
    #[must_use]
    pub fn resource_text(self, uri: &str, name: &str, text: impl Into<String>) -> Self {
        let mut resource = mcp::Resource::new(uri, name);
        resource.mime_type = Some("text/plain".to_owned());
        let contents = vec![mcp::ResourceContents::text(text.into(), uri)];
        self.resource(resource, contents)
    }

    /// Serves resources of a URI template (`docs://pages/{id}`), read by `handler`.
    #[must_use]
    pub fn resource_template(self, template: mcp::ResourceTemplate, handler: impl ResourceHandler) -> Self {
        let handler: Arc<dyn ResourceHandler> = Arc::new(handler);
        self.edit(|i| i.templates.push(Template { template, handler }))
    }

    /// Serves a prompt, filled by `handler`.
    #[must_use]
    pub fn prompt(self, prompt: mcp::Prompt, handler: impl PromptHandler) -> Self {
        let handler: Arc<dyn PromptHandler> = Arc::new(handler);
        self.edit(|i| i.prompts.push(PromptEntry { prompt, handler }))
    }

    /// Suggests values for the arguments of prompts and resource templates (MCP
    /// completions), with `handler`.
    #[must_use]
    pub fn completion(self, handler: impl CompletionHandler) -> Self {
        let handler: Arc<dyn CompletionHandler> = Arc::new(handler);
        self.edit(|i| i.completion = Some(handler))
    }

    /// The key (at least 32 bytes) the `requestState` of a stateless call that asks its
    /// client for input is sealed with ([`McpCall`]). Each server has a random one by
    /// default; give every instance of a server behind a load balancer the same key.
    #[must_use]
    pub fn request_state_key(self, key: impl Into<Vec<u8>>) -> Self {
        match mcp::RequestStateCodec::try_new(key) {
            Ok(codec) => self.edit(|i| i.request_state = Arc::new(codec)),
            Err(e) => self.edit(|i| {
                i.config_error
                    .get_or_insert(ConfigError::InvalidSetting { setting: "request_state_key", reason: e.to_string() });
            }),
        }
    }

    /// Tells every client subscribed to the resource at `uri` that it changed
    /// (`notifications/resources/updated`); each reads it again if it wants to. Clients
    /// subscribe with `resources/subscribe` (2025-11-25) or `subscriptions/listen`
    /// (2026-07-28). Call it on a clone of the service that is serving.
    pub async fn notify_resource_updated(&self, uri: &str) {
        let targets: Vec<(String, Subscribed)> = self
            .inner
            .subscribers
            .lock()
            .iter()
            .filter(|(_, s)| s.uris.contains(uri))
            .map(|(k, s)| (k.clone(), s.target.clone()))
            .collect();
        let params = mcp::ResourceUpdatedNotificationParam::new(uri);
        for (key, target) in targets {
            let gone = match target {
                Subscribed::Session(peer) => {
                    peer.is_transport_closed() || peer.notify_resource_updated(params.clone()).await.is_err()
                }
                Subscribed::Listen(sink) => {
                    let notification = mcp::ServerNotification::ResourceUpdatedNotification(
                        mcp::ResourceUpdatedNotification::new(params.clone()),
                    );
                    matches!(
                        sink.send(notification).await,
                        Err(rmcp::service::SubscriptionSendError::SubscriptionClosed)
                    )
                }
            };
            if gone {
                self.inner.subscribers.lock().remove(&key);
            }
        }
    }

    /// Authenticates every HTTP request with `hook` (see [`Authenticate`]). Without a hook,
    /// every caller is the anonymous user: fine on a loopback address, not beyond it.
    #[must_use]
    pub fn authenticate(self, hook: impl Authenticate) -> Self {
        let hook: Arc<dyn Authenticate> = Arc::new(hook);
        self.edit(|i| i.authenticate = Some(hook))
    }

    /// Authenticates HTTP requests by bearer token: each token acts as its user; any other
    /// request is refused.
    #[must_use]
    pub fn bearer_tokens<T: Into<String>, U: AsRef<str>>(self, tokens: impl IntoIterator<Item = (T, U)>) -> Self {
        let mut map = HashMap::new();
        let mut error = None;
        for (token, user) in tokens {
            match UserId::new(user.as_ref()) {
                Ok(user) => {
                    map.insert(token.into(), user);
                }
                Err(e) => error = Some(ConfigError::from(e)),
            }
        }
        let this = self.authenticate(Tokens(map));
        match error {
            Some(e) => this.edit(|i| {
                i.config_error.get_or_insert(e);
            }),
            None => this,
        }
    }

    /// The user a stdio client acts as (the anonymous user by default): a stdio server runs
    /// for the one client that started it.
    #[must_use]
    pub fn stdio_user(self, user: UserId) -> Self {
        self.edit(|i| i.stdio_user = user)
    }

    /// Shared state the served tools read through [`State<T>`](crate::State).
    #[must_use]
    pub fn state<T: std::any::Any + Send + Sync>(self, value: T) -> Self {
        self.edit(|i| i.state.insert(value))
    }

    /// The host names the HTTP server answers to (`Host` header). By default only loopback
    /// names are, which stops DNS-rebinding attacks on a local server; list yours to serve
    /// beyond it.
    #[must_use]
    pub fn allowed_hosts<S: Into<String>>(self, hosts: impl IntoIterator<Item = S>) -> Self {
        let hosts: Vec<String> = hosts.into_iter().map(Into::into).collect();
        self.edit(|i| i.allowed_hosts = Some(hosts))
    }

    /// The largest request body the HTTP server accepts (4 MiB by default).
    #[must_use]
    pub fn max_request_bytes(self, bytes: usize) -> Self {
        self.edit(|i| i.max_body = bytes)
    }

    /// The names of the served tools, in the order they were added.
    pub fn tool_names(&self) -> Vec<&str> {
        self.inner.tools.names().collect()
    }

    /// Checks the configuration: the first problem met while building (a duplicate tool
    /// name, a bad user id).
    pub fn check(&self) -> Result<(), ConfigError> {
        match &self.inner.config_error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Serves one client on standard input and output until it disconnects.
    ///
    /// When both are pipes (the way an MCP client starts a server), they are read and written
    /// without blocking on the runtime's own reactor, which saves the round trip through
    /// tokio's blocking-thread pool on every message; they are put back in blocking mode when
    /// the client disconnects. Anything else (a file, a terminal) is served through tokio's
    /// standard streams.
    pub async fn serve_stdio(self) -> Result<(), McpError> {
        #[cfg(unix)]
        if let Some(pipes) = stdio::Pipes::open() {
            let (reader, writer, restore) = pipes.split();
            let served = self.serve_io(reader, writer).await;
            restore.blocking();
            return served;
        }
        self.serve_io(tokio::io::stdin(), tokio::io::stdout()).await
    }

    /// Serves one client on any byte stream (a Unix socket, a pipe, an in-memory duplex),
    /// one JSON-RPC message a line as on stdio, until it disconnects.
    pub async fn serve_io<R, W>(self, reader: R, writer: W) -> Result<(), McpError>
    where
        R: tokio::io::AsyncRead + Send + Unpin + 'static,
        W: tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        self.check().map_err(|e| McpError::Serve { message: e.to_string() })?;
        let handler = Session::new(Arc::clone(&self.inner));
        let transport = rmcp::transport::async_rw::AsyncRwTransport::new_server(reader, writer)
            .with_max_line_length(self.inner.max_body);
        let running = handler
            .serve(transport)
            .await
            .map_err(|e| McpError::Serve { message: format!("the handshake failed: {e}") })?;
        running.waiting().await.map_err(|e| McpError::Serve { message: e.to_string() })?;
        Ok(())
    }

    /// The streamable-HTTP endpoint as an axum router serving `/mcp`: mount it in an app, or
    /// serve it with [`serve_http`](Self::serve_http). Requests are authenticated by the
    /// [`Authenticate`] hook before they reach MCP; a refused one gets `401` and a
    /// `WWW-Authenticate: Bearer` challenge.
    pub fn router(&self) -> Result<axum::Router, ConfigError> {
        self.check()?;
        use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
        let inner = Arc::clone(&self.inner);
        let mut config =
            rmcp::transport::StreamableHttpServerConfig::default().with_max_request_body_bytes(inner.max_body);
        if let Some(hosts) = &inner.allowed_hosts {
            config = config.with_allowed_hosts(hosts.clone());
        }
        let factory = {
            let inner = Arc::clone(&inner);
            move || Ok(Session::new(Arc::clone(&inner)))
        };
        let service =
            rmcp::transport::StreamableHttpService::new(factory, Arc::new(LocalSessionManager::default()), config);
        let auth = inner.authenticate.clone();
        let router = axum::Router::new().nest_service("/mcp", service).layer(axum::middleware::from_fn(
            move |mut request: axum::extract::Request, next: axum::middleware::Next| {
                let auth = auth.clone();
                async move {
                    if let Some(auth) = auth {
                        let caller = Caller::http(request.headers());
                        match auth.authenticate(&caller).await {
                            Some(user) => {
                                request.extensions_mut().insert(Authenticated(user));
                            }
                            None => return unauthorized(),
                        }
                    }
                    next.run(request).await
                }
            },
        ));
        Ok(router)
    }

    /// Serves the streamable-HTTP endpoint at `/mcp` on `listener` until the future is
    /// dropped (bind `127.0.0.1:0` to get a free port: `listener.local_addr()` tells it).
    pub async fn serve_http(self, listener: tokio::net::TcpListener) -> Result<(), McpError> {
        let router = self.router().map_err(|e| McpError::Serve { message: e.to_string() })?;
        axum::serve(listener, router).await.map_err(|e| McpError::Serve { message: e.to_string() })
    }
}

/// Where [`serve`] serves: standard input and output, or streamable HTTP at
/// `http://ADDR/mcp`.
///
/// Parses from `stdio`, `http ADDR`, `http://ADDR` or a bare `ADDR`
/// (`"http 127.0.0.1:8080".parse::<Listen>()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Listen {
    /// One client on standard input and output.
    Stdio,
    /// Streamable HTTP on this address, at `/mcp`.
    Http(std::net::SocketAddr),
}

impl std::str::FromStr for Listen {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "stdio" {
            return Ok(Self::Stdio);
        }
        let addr = s
            .strip_prefix("http://")
            .or_else(|| s.strip_prefix("http ").map(str::trim))
            .unwrap_or(s)
            .trim_end_matches("/mcp")
            .trim_end_matches('/');
        addr.parse().map(Self::Http).map_err(|_| ConfigError::InvalidSetting {
            setting: "listen",
            reason: format!("`{s}` is not where an MCP server can listen: say `stdio`, or `http HOST:PORT` (e.g. `http 127.0.0.1:8080`)"),
        })
    }
}

/// Serves `service` over stdio or streamable HTTP until the client disconnects (stdio) or
/// the future is dropped (HTTP).
///
/// ```no_run
/// use loomflow::mcp::{self, McpService};
/// use loomflow::ToolSet;
///
/// # async fn run(tools: ToolSet) -> Result<(), loomflow::Error> {
/// let service = McpService::new("my-tools").tools(&tools);
/// mcp::serve(service, "http 127.0.0.1:8080".parse()?).await?;
/// # Ok(())
/// # }
/// ```
pub async fn serve(service: McpService, listen: Listen) -> Result<(), McpError> {
    match listen {
        Listen::Stdio => service.serve_stdio().await,
        Listen::Http(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| McpError::Serve { message: format!("cannot listen on {addr}: {e}") })?;
            service.serve_http(listener).await
        }
    }
}

fn unauthorized() -> axum::response::Response {
    use axum::response::IntoResponse as _;
    (
        http::StatusCode::UNAUTHORIZED,
        [(http::header::WWW_AUTHENTICATE, "Bearer"), (http::header::CONTENT_TYPE, "application/json")],
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"authentication required: send a bearer token this server knows"}}"#,
    )
        .into_response()
}

/// The user an HTTP request was authenticated as.
#[derive(Debug, Clone)]
struct Authenticated(UserId);
