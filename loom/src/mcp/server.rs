//! The server: Loom's tools, agents and workflows for any MCP client.

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

/// Who is calling, as an [`Authenticate`] hook sees it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Caller<'a> {
    /// The bearer token of the `Authorization` header, if there is one.
    pub bearer: Option<&'a str>,
    /// Every header of the HTTP request (`None` over stdio).
    pub headers: Option<&'a http::HeaderMap>,
}

/// Turns a caller into the Loom user it acts as, or refuses it (`None`: HTTP 401).
///
/// Every request is authenticated on its own, and an MCP session keeps the user it started
/// with: a request of another user on that session is refused. Closures
/// `Fn(&Caller) -> Option<UserId>` are hooks; so is a map of tokens to users
/// ([`McpService::bearer_tokens`]).
#[async_trait::async_trait]
pub trait Authenticate: Send + Sync + 'static {
    /// The user `caller` acts as, or `None` to refuse it.
    async fn authenticate(&self, caller: &Caller<'_>) -> Option<UserId>;
}

#[async_trait::async_trait]
impl<F> Authenticate for F
where
    F: Fn(&Caller<'_>) -> Option<UserId> + Send + Sync + 'static,
{
    async fn authenticate(&self, caller: &Caller<'_>) -> Option<UserId> {
        self(caller)
    }
}

struct Tokens(HashMap<String, UserId>);

#[async_trait::async_trait]
impl Authenticate for Tokens {
    async fn authenticate(&self, caller: &Caller<'_>) -> Option<UserId> {
        self.0.get(caller.bearer?).cloned()
    }
}

/// Reads a resource of a template (`test://items/{id}`): the URI asked for, and the values
/// of the template's variables in it.
#[async_trait::async_trait]
pub trait ResourceHandler: Send + Sync + 'static {
    /// The contents at `uri`, or a message saying why there are none.
    async fn read(&self, uri: &str, variables: &HashMap<String, String>) -> Result<Vec<mcp::ResourceContents>, String>;
}

#[async_trait::async_trait]
impl<F> ResourceHandler for F
where
    F: Fn(&str, &HashMap<String, String>) -> Result<Vec<mcp::ResourceContents>, String> + Send + Sync + 'static,
{
    async fn read(&self, uri: &str, variables: &HashMap<String, String>) -> Result<Vec<mcp::ResourceContents>, String> {
        self(uri, variables)
    }
}

/// Fills a prompt with the client's arguments.
#[async_trait::async_trait]
pub trait PromptHandler: Send + Sync + 'static {
    /// The prompt's messages for `arguments`, or a message saying what is wrong with them.
    async fn get(&self, arguments: &HashMap<String, String>) -> Result<Vec<mcp::PromptMessage>, String>;

    /// The prompt's messages for `arguments`, with the request being served: a prompt that
    /// asks its client for input ([`McpCall::elicit`], [`McpCall::create_message`]) implements
    /// this, the same way a tool does (over 2026-07-28 an unanswered question ends the request
    /// with an `InputRequiredResult`, and the prompt is asked for again with the answer).
    /// [`get`](Self::get) by default.
    async fn get_with(
        &self,
        arguments: &HashMap<String, String>,
        call: &McpCall,
    ) -> Result<Vec<mcp::PromptMessage>, String> {
        let _ = call;
        self.get(arguments).await
    }
}

#[async_trait::async_trait]
impl<F> PromptHandler for F
where
    F: Fn(&HashMap<String, String>) -> Result<Vec<mcp::PromptMessage>, String> + Send + Sync + 'static,
{
    async fn get(&self, arguments: &HashMap<String, String>) -> Result<Vec<mcp::PromptMessage>, String> {
        self(arguments)
    }
}

/// Suggests values for an argument of a prompt or a resource template as the client's user
/// types it (MCP completions).
#[async_trait::async_trait]
pub trait CompletionHandler: Send + Sync + 'static {
    /// Values for the argument `argument` of `reference` (a prompt, or a resource template)
    /// that fit its partial value `value`, best first; `context` holds the arguments already
    /// filled in. The first 100 are sent. `Err` is a message saying why there are none.
    async fn complete(
        &self,
        reference: &mcp::Reference,
        argument: &str,
        value: &str,
        context: &HashMap<String, String>,
    ) -> Result<Vec<String>, String>;
}

#[async_trait::async_trait]
impl<F> CompletionHandler for F
where
    F: Fn(&mcp::Reference, &str, &str, &HashMap<String, String>) -> Result<Vec<String>, String> + Send + Sync + 'static,
{
    async fn complete(
        &self,
        reference: &mcp::Reference,
        argument: &str,
        value: &str,
        context: &HashMap<String, String>,
    ) -> Result<Vec<String>, String> {
        self(reference, argument, value, context)
    }
}

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
    pub async fn serve_stdio(self) -> Result<(), McpError> {
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
                        let headers = request.headers();
                        let bearer = headers
                            .get(http::header::AUTHORIZATION)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
                            .map(str::trim);
                        let caller = Caller { bearer, headers: Some(headers) };
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

/// The MCP request a served tool runs for: report progress, send log messages, and ask the
/// client for input: its model (sampling), its user (elicitation), its roots.
///
/// A tool served by [`McpService`] finds it in its run's state: `ctx.state::<McpCall>()`
/// (or a `State<McpCall>` parameter of a `#[tool]`). It is absent when the tool runs
/// anywhere else. A prompt gets it in [`PromptHandler::get_with`] (with no progress token).
///
/// **Input from the client.** Over protocol 2025-11-25 [`create_message`](Self::create_message),
/// [`elicit`](Self::elicit) and [`list_roots`](Self::list_roots) send the client a request
/// and wait for its answer. Over the stateless 2026-07-28 a server sends no requests: each
/// one instead becomes an input request under its `key` and fails with
/// [`McpError::InputRequired`]; let it through (`?`), and the call ends with an
/// `InputRequiredResult` asking for every input the tool asked for. The client calls again
/// with the answers, the tool runs again from the start, and this time the same calls
/// return them. Answers of earlier rounds travel in the result's `requestState`, sealed
/// (HMAC) and bound to the tool and the user, so a tool may ask in several rounds. A tool
/// that asks for input over 2026-07-28 runs once per round: keep what it does before its
/// last question free of side effects.
///
/// A client that does not offer what a call asks for fails it with
/// [`McpError::MissingCapability`]; over 2026-07-28 a tool that fails after that answers
/// the JSON-RPC error `MissingRequiredClientCapability` (-32021) naming the capability.
#[derive(Clone)]
pub struct McpCall {
    peer: rmcp::Peer<RoleServer>,
    progress: Option<ProgressToken>,
    level: Arc<AtomicU8>,
    input: Arc<CallInput>,
}

/// What one call knows of its client, and what it asked the client for.
struct CallInput {
    /// The call is stateless (2026-07-28): client input is asked for in the result.
    stateless: bool,
    /// The capabilities the client declared (for this request, or at `initialize`).
    capabilities: Option<mcp::ClientCapabilities>,
    /// The log level the request asked for, over 2026-07-28 (`None`: no log messages).
    log_level: Option<u8>,
    /// The client's answers: this round's, and those sealed in the request state.
    answers: mcp::InputResponses,
    /// The keys of the answers the tool read.
    used: Mutex<BTreeSet<String>>,
    /// The input the tool asked for and has no answer to yet.
    asked: Mutex<mcp::InputRequests>,
    /// The capabilities the tool needed and the client does not offer.
    missing: Mutex<mcp::ClientCapabilities>,
    /// The last progress sent: progress only grows.
    last_progress: tokio::sync::Mutex<Option<f64>>,
}

impl CallInput {
    fn new(stateless: bool, capabilities: Option<mcp::ClientCapabilities>) -> Self {
        Self {
            stateless,
            capabilities,
            log_level: None,
            answers: mcp::InputResponses::new(),
            used: Mutex::new(BTreeSet::new()),
            asked: Mutex::new(mcp::InputRequests::new()),
            missing: Mutex::new(mcp::ClientCapabilities::default()),
            last_progress: tokio::sync::Mutex::new(None),
        }
    }

    /// The capabilities the call missed, if it missed any.
    fn missing(&self) -> Option<mcp::ClientCapabilities> {
        let missing = self.missing.lock().unwrap_or_else(|e| e.into_inner()).clone();
        (missing != mcp::ClientCapabilities::default()).then_some(missing)
    }

    /// The answers the tool read, to seal into the next request state.
    fn used_answers(&self) -> mcp::InputResponses {
        let used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        self.answers.iter().filter(|(k, _)| used.contains(*k)).map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl fmt::Debug for McpCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpCall")
            .field("progress", &self.progress)
            .field("stateless", &self.input.stateless)
            .finish_non_exhaustive()
    }
}

impl McpCall {
    /// Reports progress, when the client asked for it (a no-op otherwise). Progress only
    /// grows: a value not above the last one sent is dropped.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<String>) {
        let Some(token) = &self.progress else { return };
        let mut last = self.input.last_progress.lock().await;
        if last.is_some_and(|l| progress <= l) {
            return;
        }
        let mut params = mcp::ProgressNotificationParam::new(token.clone(), progress);
        params.total = total;
        params.message = message;
        let _ = self.peer.notify_progress(params).await;
        *last = Some(progress);
    }

    /// One more step of progress (the run's own events), one above the last value sent.
    async fn step(&self, message: String) {
        let Some(token) = &self.progress else { return };
        let mut last = self.input.last_progress.lock().await;
        let progress = last.map_or(1.0, |l| l.floor() + 1.0);
        let mut params = mcp::ProgressNotificationParam::new(token.clone(), progress);
        params.message = Some(message);
        let _ = self.peer.notify_progress(params).await;
        *last = Some(progress);
    }

    /// Sends a log message to the client, if it is at or above the level the client set
    /// (`info` by default). Over 2026-07-28 the level is the request's own, and a request
    /// that sets none gets no log messages.
    pub async fn log(&self, level: mcp::LoggingLevel, logger: Option<&str>, data: Value) {
        let threshold = if self.input.stateless {
            match self.input.log_level {
                Some(l) => l,
                None => return,
            }
        } else {
            self.level.load(Ordering::Relaxed)
        };
        if level_rank(level) < threshold {
            return;
        }
        let mut params = mcp::LoggingMessageNotificationParam::new(level, data);
        params.logger = logger.map(str::to_owned);
        let _ = self.peer.notify_logging_message(params).await;
    }

    /// Asks the client's model to answer `prompt` (MCP sampling) and returns the text of its
    /// answer: [`create_message`](Self::create_message) under the key `sampling`.
    #[allow(deprecated)]
    pub async fn sample(&self, prompt: &str, max_tokens: u32) -> Result<String, McpError> {
        let message = mcp::SamplingMessage::new(mcp::Role::User, mcp::SamplingMessageContentBlock::text(prompt));
        let params = mcp::CreateMessageRequestParams::new(vec![message], max_tokens);
        let result = self.create_message("sampling", params).await?;
        let text: Vec<String> = result
            .message
            .content
            .into_vec()
            .into_iter()
            .filter_map(|b| match b {
                mcp::SamplingMessageContentBlock::Text(t) => Some(t.text),
                _ => None,
            })
            .collect();
        Ok(text.join("\n"))
    }

    /// Asks the client's model for a message (MCP sampling; the client must offer it). Over
    /// 2026-07-28 it is the input request `key` (see [`McpCall`]).
    #[allow(deprecated)]
    pub async fn create_message(
        &self,
        key: &str,
        params: mcp::CreateMessageRequestParams,
    ) -> Result<mcp::CreateMessageResult, McpError> {
        self.require("sampling", |c| c.sampling.is_some(), |m| m.sampling = Some(Default::default()))?;
        if self.input.stateless {
            return self
                .answer_or_ask(key, || mcp::InputRequest::CreateMessage(mcp::CreateMessageRequest::new(params)));
        }
        self.peer.create_message(params).await.map_err(|e| client_failed("sampling", &e))
    }

    /// Asks the client's user to fill in a form (MCP elicitation; the client must offer it).
    /// Over 2026-07-28 it is the input request `key` (see [`McpCall`]).
    pub async fn elicit(
        &self,
        key: &str,
        message: &str,
        schema: mcp::ElicitationSchema,
    ) -> Result<mcp::ElicitResult, McpError> {
        self.require("elicitation", |c| c.elicitation.is_some(), |m| m.elicitation = Some(Default::default()))?;
        let params = mcp::ElicitRequestParams::FormElicitationParams {
            meta: None,
            message: message.to_owned(),
            requested_schema: schema,
        };
        if self.input.stateless {
            return self.answer_or_ask(key, || mcp::InputRequest::Elicitation(mcp::ElicitRequest::new(params)));
        }
        match self.peer.send_request(mcp::ServerRequest::ElicitRequest(mcp::ElicitRequest::new(params))).await {
            Ok(mcp::ClientResult::ElicitResult(result)) => Ok(result),
            Ok(_) => Err(McpError::Protocol {
                server: "client".to_owned(),
                message: "the client answered the elicitation with something else".to_owned(),
            }),
            Err(e) => Err(client_failed("elicitation", &e)),
        }
    }

    /// The client's roots (MCP roots; the client must offer them). Over 2026-07-28 it is the
    /// input request `key` (see [`McpCall`]).
    #[allow(deprecated)]
    pub async fn list_roots(&self, key: &str) -> Result<Vec<mcp::Root>, McpError> {
        self.require("roots", |c| c.roots.is_some(), |m| m.roots = Some(Default::default()))?;
        if self.input.stateless {
            let result: mcp::ListRootsResult =
                self.answer_or_ask(key, || mcp::InputRequest::ListRoots(mcp::ListRootsRequest::default()))?;
            return Ok(result.roots);
        }
        Ok(self.peer.list_roots().await.map_err(|e| client_failed("roots", &e))?.roots)
    }

    /// Whether the client offers `capability`; the call remembers it when it does not.
    fn require(
        &self,
        capability: &str,
        offered: impl Fn(&mcp::ClientCapabilities) -> bool,
        mark: impl FnOnce(&mut mcp::ClientCapabilities),
    ) -> Result<(), McpError> {
        if self.input.capabilities.as_ref().is_some_and(offered) {
            return Ok(());
        }
        mark(&mut self.input.missing.lock().unwrap_or_else(|e| e.into_inner()));
        Err(McpError::MissingCapability { capability: capability.to_owned() })
    }

    /// The client's answer under `key`, or an input request for it. An answer that is not
    /// what was asked for is asked for again.
    fn answer_or_ask<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        request: impl FnOnce() -> mcp::InputRequest,
    ) -> Result<T, McpError> {
        if let Some(answer) = self.input.answers.get(key)
            && let Ok(answer) = serde_json::from_value::<T>(answer.clone())
        {
            self.input.used.lock().unwrap_or_else(|e| e.into_inner()).insert(key.to_owned());
            return Ok(answer);
        }
        self.input.asked.lock().unwrap_or_else(|e| e.into_inner()).insert(key.to_owned(), request());
        Err(McpError::InputRequired { request: key.to_owned() })
    }

    /// Whether the call is stateless (protocol 2026-07-28): input from the client is asked
    /// for in the result rather than by a request.
    pub fn is_stateless(&self) -> bool {
        self.input.stateless
    }

    /// The capabilities the client declared (for this request over 2026-07-28, at
    /// `initialize` over 2025-11-25).
    pub fn client_capabilities(&self) -> Option<&mcp::ClientCapabilities> {
        self.input.capabilities.as_ref()
    }

    /// The `rmcp` peer of the client, for what Loom does not wrap.
    pub fn peer(&self) -> &rmcp::Peer<RoleServer> {
        &self.peer
    }
}

/// A request to the client that failed.
fn client_failed(what: &str, error: &rmcp::service::ServiceError) -> McpError {
    McpError::Protocol {
        server: "client".to_owned(),
        message: format!("the client did not answer the {what} request: {error}"),
    }
}

fn level_rank(level: mcp::LoggingLevel) -> u8 {
    match level {
        mcp::LoggingLevel::Debug => 0,
        mcp::LoggingLevel::Info => 1,
        mcp::LoggingLevel::Notice => 2,
        mcp::LoggingLevel::Warning => 3,
        mcp::LoggingLevel::Error => 4,
        mcp::LoggingLevel::Critical => 5,
        mcp::LoggingLevel::Alert => 6,
        _ => 7,
    }
}

/// One MCP session: the service, the Loom session its runs continue, and the user it is
/// bound to once it has one.
#[derive(Clone)]
struct Session {
    inner: Arc<Inner>,
    session: SessionId,
    owner: Arc<OnceLock<UserId>>,
    level: Arc<AtomicU8>,
}

impl Session {
    fn new(inner: Arc<Inner>) -> Self {
        Self {
            inner,
            session: SessionId::generate(),
            owner: Arc::new(OnceLock::new()),
            level: Arc::new(AtomicU8::new(level_rank(mcp::LoggingLevel::Info))),
        }
    }

    fn listed(&self) -> Arc<[mcp::Tool]> {
        Arc::clone(
            self.inner.listed.get_or_init(|| self.inner.tools.definitions().iter().map(convert::tool_to_mcp).collect()),
        )
    }

    /// The user of a request: the authenticated one over HTTP, the stdio user otherwise; a
    /// session keeps its first user.
    fn user(&self, context: &RequestContext<RoleServer>) -> Result<UserId, ErrorData> {
        let parts = context.extensions.get::<http::request::Parts>();
        let user = match parts {
            Some(parts) => match (parts.extensions.get::<Authenticated>(), &self.inner.authenticate) {
                (Some(Authenticated(user)), _) => user.clone(),
                (None, Some(_)) => return Err(ErrorData::new(mcp::ErrorCode(-32001), "authentication required", None)),
                (None, None) => UserId::anonymous(),
            },
            None => self.inner.stdio_user.clone(),
        };
        let owner = self.owner.get_or_init(|| user.clone());
        if *owner != user {
            return Err(ErrorData::invalid_request("this MCP session belongs to another user", None));
        }
        Ok(user)
    }

    fn find_template(&self, uri: &str) -> Option<(&Template, HashMap<String, String>)> {
        self.inner.templates.iter().find_map(|t| match_template(&t.template.uri_template, uri).map(|vars| (t, vars)))
    }

    /// What a request knows of its client. Over 2026-07-28 the client's input comes with
    /// the request: this round's answers, and the earlier rounds' sealed in its request
    /// state, bound to `bound` (the method, the tool or prompt, the user).
    fn call_input(
        &self,
        context: &RequestContext<RoleServer>,
        meta: Option<&mcp::RequestMetaObject>,
        bound: &str,
        request_state: Option<&str>,
        responses: Option<mcp::InputResponses>,
    ) -> Result<CallInput, ErrorData> {
        let stateless =
            context.protocol_version().is_some_and(|v| v.as_str() >= mcp::ProtocolVersion::V_2026_07_28.as_str());
        let mut input = CallInput::new(stateless, context.client_capabilities());
        if stateless {
            if let Some(state) = request_state {
                input.answers = self
                    .inner
                    .request_state
                    .open_json_with::<mcp::InputResponses>(state, bound.as_bytes())
                    .map_err(|_| {
                        ErrorData::invalid_params(
                            "the requestState is not one this server gave for this request (altered, expired, or for another tool, prompt or user)",
                            None,
                        )
                    })?;
            }
            input.answers.extend(responses.unwrap_or_default());
            input.log_level = meta.and_then(|m| m.log_level()).or_else(|| context.meta.log_level()).map(level_rank);
        }
        Ok(input)
    }

    /// The `InputRequiredResult` of a stateless request that asked its client for input,
    /// with the answers it read sealed in its request state.
    fn input_required(&self, input: &CallInput, bound: &str) -> Result<Option<mcp::InputRequiredResult>, ErrorData> {
        let asked = std::mem::take(&mut *input.asked.lock().unwrap_or_else(|e| e.into_inner()));
        if !input.stateless || asked.is_empty() {
            return Ok(None);
        }
        let options = mcp::SealOptions::new().associated_data(bound.as_bytes()).ttl(REQUEST_STATE_TTL);
        let state = self
            .inner
            .request_state
            .seal_json_with(&input.used_answers(), &options)
            .map_err(|e| ErrorData::internal_error(format!("sealing the request state failed: {e}"), None))?;
        Ok(Some(mcp::InputRequiredResult::new(Some(asked), Some(state))))
    }
}

/// The values of a URI template's `{variables}` in `uri`, if `uri` matches it.
fn match_template(template: &str, uri: &str) -> Option<HashMap<String, String>> {
    let mut vars = HashMap::new();
    let mut rest = uri;
    let mut pattern = template;
    while !pattern.is_empty() {
        match pattern.find('{') {
            None => return (rest == pattern).then_some(vars),
            Some(open) => {
                let literal = &pattern[..open];
                rest = rest.strip_prefix(literal)?;
                let close = pattern[open..].find('}')? + open;
                let name = &pattern[open + 1..close];
                pattern = &pattern[close + 1..];
                // A variable runs to the next literal character (or the end).
                let end = match pattern.chars().next() {
                    None => rest.len(),
                    Some(next) => rest.find(next)?,
                };
                if end == 0 {
                    return None;
                }
                vars.insert(name.to_owned(), rest[..end].to_owned());
                rest = &rest[end..];
            }
        }
    }
    rest.is_empty().then_some(vars)
}

/// A short account of a run event, for an MCP progress notification.
fn progress_message(event: &RunEvent) -> Option<String> {
    match &event.kind {
        EventKind::ModelRequest { turn, role, .. } => Some(format!("{role}: model turn {turn}")),
        EventKind::ToolCallStarted { name, .. } => Some(format!("calling {name}")),
        EventKind::NodeStarted { node, .. } => Some(format!("node {node}")),
        _ => None,
    }
}

impl ServerHandler for Session {
    fn get_info(&self) -> mcp::ServerConfig {
        let mut capabilities = mcp::ServerCapabilities::builder().enable_tools().enable_logging().build();
        if !self.inner.resources.is_empty() || !self.inner.templates.is_empty() {
            // Clients may subscribe to any resource: `McpService::notify_resource_updated`.
            let mut resources = mcp::ResourcesCapability::default();
            resources.subscribe = Some(true);
            capabilities.resources = Some(resources);
        }
        if self.inner.completion.is_some() {
            capabilities.completions = Some(Default::default());
        }
        if !self.inner.prompts.is_empty() {
            capabilities.prompts = Some(mcp::PromptsCapability::default());
        }
        let mut info = mcp::ServerConfig::new(capabilities).with_server_info(self.inner.info.clone());
        if let Some(instructions) = &self.inner.instructions {
            info = info.with_instructions(instructions.clone());
        }
        info
    }

    async fn initialize(
        &self,
        request: mcp::InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<mcp::InitializeResult, ErrorData> {
        // The session belongs to the user who opened it, from its first message on.
        self.user(&context)?;
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
    }

    async fn list_tools(
        &self,
        _request: Option<mcp::PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<mcp::ListToolsResult, ErrorData> {
        self.user(&context)?;
        Ok(mcp::ListToolsResult::with_all_items(self.listed().to_vec()))
    }

    fn get_tool(&self, name: &str) -> Option<mcp::Tool> {
        // The transport checks a request's `Mcp-Param-*` headers against the tool's schema.
        self.listed().iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: mcp::CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<mcp::CallToolResponse, ErrorData> {
        let user = self.user(&context)?;
        if self.inner.tools.get(&request.name).is_none() {
            return Err(ErrorData::invalid_params(format!("unknown tool `{}`", request.name), None));
        }
        let arguments = request.arguments.map(Value::Object).unwrap_or_else(|| Value::Object(Default::default()));
        let progress =
            request.meta.as_ref().and_then(|m| m.get_progress_token()).or_else(|| context.meta.get_progress_token());
        let bound = format!("tools/call\u{0}{}\u{0}{user}", request.name);
        let input = Arc::new(self.call_input(
            &context,
            request.meta.as_ref(),
            &bound,
            request.request_state.as_deref(),
            request.input_responses,
        )?);
        let stateless = input.stateless;
        let call = McpCall {
            peer: context.peer.clone(),
            progress: progress.clone(),
            level: Arc::clone(&self.level),
            input: Arc::clone(&input),
        };
        let mut extensions = self.inner.state.clone();
        extensions.insert(call.clone());
        let mut ctx = RunContext::new(user).with_session(Some(self.session.clone())).with_extensions(extensions);
        let call_id = format!("mcp_{}", context.id);
        // The run's progress, as MCP progress notifications, sent in order by one task. The
        // call's own start is no news to the client.
        let forwarder = progress.map(|_| {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(64);
            let own = call_id.clone();
            ctx = ctx.clone().with_listener(move |event: RunEvent| {
                if matches!(&event.kind, EventKind::ToolCallStarted { call_id, .. } if *call_id == own) {
                    return;
                }
                if let Some(message) = progress_message(&event) {
                    let _ = tx.try_send(message);
                }
            });
            let call = call.clone();
            tokio::spawn(async move {
                while let Some(message) = rx.recv().await {
                    call.step(message).await;
                }
            })
        });
        drop(call);
        let tool_call = ToolCall::new(call_id, request.name.to_string(), arguments.to_string());
        let result = tokio::select! {
            result = self.inner.tools.call(&ctx, &tool_call) => result,
            () = context.ct.cancelled() => {
                return Err(ErrorData::new(mcp::ErrorCode::INTERNAL_ERROR, "the call was cancelled by the client", None));
            }
        };
        drop(ctx);
        if let Some(forwarder) = forwarder {
            // Every progress notification goes out before the result.
            let _ = tokio::time::timeout(Duration::from_secs(1), forwarder).await;
        }
        if stateless {
            // The tool asked its client for input: the call ends here, and is made again
            // with the answers.
            if let Some(required) = self.input_required(&input, &bound)? {
                return Ok(mcp::CallToolResponse::InputRequired(required));
            }
            if result.is_error
                && let Some(missing) = input.missing()
            {
                return Err(ErrorData::missing_required_client_capability(missing));
            }
        }
        let content = convert::content_to_mcp(&result.content);
        Ok(if result.is_error { mcp::CallToolResult::error(content) } else { mcp::CallToolResult::success(content) }
            .into())
    }

    async fn complete(
        &self,
        request: mcp::CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<mcp::CompleteResult, ErrorData> {
        self.user(&context)?;
        let Some(handler) = &self.inner.completion else {
            return Err(ErrorData::new(mcp::ErrorCode::METHOD_NOT_FOUND, "this server completes no arguments", None));
        };
        let filled = request.context.and_then(|c| c.arguments).unwrap_or_default();
        let mut values = handler
            .complete(&request.r#ref, &request.argument.name, &request.argument.value, &filled)
            .await
            .map_err(|m| ErrorData::invalid_params(m, None))?;
        let total = u32::try_from(values.len()).ok();
        let more = values.len() > mcp::CompletionInfo::MAX_VALUES;
        values.truncate(mcp::CompletionInfo::MAX_VALUES);
        let info = mcp::CompletionInfo::with_pagination(values, total, more)
            .map_err(|m| ErrorData::internal_error(m, None))?;
        Ok(mcp::CompleteResult::new(info))
    }

    async fn subscribe(
        &self,
        request: mcp::SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.user(&context)?;
        let mut subscribers = self.inner.subscribers.lock();
        subscribers
            .entry(self.session.to_string())
            .or_insert_with(|| Subscriber { uris: HashSet::new(), target: Subscribed::Session(context.peer.clone()) })
            .uris
            .insert(request.uri);
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: mcp::UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.user(&context)?;
        let key = self.session.to_string();
        let mut subscribers = self.inner.subscribers.lock();
        if let Some(subscriber) = subscribers.get_mut(&key) {
            subscriber.uris.remove(&request.uri);
            if subscriber.uris.is_empty() {
                subscribers.remove(&key);
            }
        }
        Ok(())
    }

    fn accepted_subscription_filter(&self, requested: &mcp::SubscriptionFilter) -> Option<mcp::SubscriptionFilter> {
        // Updates of any resource (the SDK keeps what was asked for and advertised).
        let mut accepted = mcp::SubscriptionFilter::new();
        accepted.resource_subscriptions = requested.resource_subscriptions.clone();
        Some(accepted)
    }

    async fn listen(&self, subscription: rmcp::service::SubscriptionContext) -> Result<(), ErrorData> {
        self.user(subscription.request_context())?;
        let uris: HashSet<String> = subscription.accepted().resource_subscriptions.iter().flatten().cloned().collect();
        let key = SessionId::generate().to_string();
        if !uris.is_empty() {
            let target = Subscribed::Listen(subscription.sink().clone());
            self.inner.subscribers.lock().insert(key.clone(), Subscriber { uris, target });
        }
        subscription.cancelled().await;
        self.inner.subscribers.lock().remove(&key);
        Ok(())
    }

    async fn set_level(
        &self,
        request: mcp::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.level.store(level_rank(request.level), Ordering::Relaxed);
        Ok(())
    }

    async fn list_resources(
        &self,
        _request: Option<mcp::PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<mcp::ListResourcesResult, ErrorData> {
        self.user(&context)?;
        Ok(mcp::ListResourcesResult::with_all_items(self.inner.resources.iter().map(|(r, _)| r.clone()).collect()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<mcp::PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<mcp::ListResourceTemplatesResult, ErrorData> {
        self.user(&context)?;
        Ok(mcp::ListResourceTemplatesResult::with_all_items(
            self.inner.templates.iter().map(|t| t.template.clone()).collect(),
        ))
    }

    async fn read_resource(
        &self,
        request: mcp::ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<mcp::ReadResourceResponse, ErrorData> {
        self.user(&context)?;
        if let Some((_, contents)) = self.inner.resources.iter().find(|(r, _)| r.uri == request.uri) {
            return Ok(mcp::ReadResourceResult::new(contents.clone()).into());
        }
        if let Some((template, vars)) = self.find_template(&request.uri) {
            let contents = template
                .handler
                .read(&request.uri, &vars)
                .await
                .map_err(|message| ErrorData::resource_not_found(message, Some(json!({"uri": &request.uri}))))?;
            return Ok(mcp::ReadResourceResult::new(contents).into());
        }
        Err(ErrorData::resource_not_found(format!("no resource `{}`", request.uri), Some(json!({"uri": &request.uri}))))
    }

    async fn list_prompts(
        &self,
        _request: Option<mcp::PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<mcp::ListPromptsResult, ErrorData> {
        self.user(&context)?;
        Ok(mcp::ListPromptsResult::with_all_items(self.inner.prompts.iter().map(|p| p.prompt.clone()).collect()))
    }

    async fn get_prompt(
        &self,
        request: mcp::GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<mcp::GetPromptResponse, ErrorData> {
        let user = self.user(&context)?;
        let Some(entry) = self.inner.prompts.iter().find(|p| p.prompt.name == request.name) else {
            return Err(ErrorData::invalid_params(format!("no prompt `{}`", request.name), None));
        };
        let arguments: HashMap<String, String> = request
            .arguments
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
            .collect();
        for required in entry.prompt.arguments.iter().flatten().filter(|a| a.required == Some(true)) {
            if !arguments.contains_key(&required.name) {
                return Err(ErrorData::invalid_params(format!("the argument `{}` is required", required.name), None));
            }
        }
        let bound = format!("prompts/get\u{0}{}\u{0}{user}", request.name);
        let input = Arc::new(self.call_input(
            &context,
            request.meta.as_ref(),
            &bound,
            request.request_state.as_deref(),
            request.input_responses,
        )?);
        let call = McpCall { peer: context.peer.clone(), progress: None, level: Arc::clone(&self.level), input };
        let messages = entry.handler.get_with(&arguments, &call).await;
        if let Some(required) = self.input_required(&call.input, &bound)? {
            return Ok(mcp::GetPromptResponse::InputRequired(required));
        }
        let messages = messages.map_err(|m| ErrorData::invalid_params(m, None))?;
        let mut result = mcp::GetPromptResult::new(messages);
        if let Some(d) = &entry.prompt.description {
            result = result.with_description(d.clone());
        }
        Ok(result.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_and_bind_their_variables() {
        let vars = match_template("test://template/{id}/data", "test://template/42/data");
        assert_eq!(vars.and_then(|v| v.get("id").cloned()).as_deref(), Some("42"));
        assert!(match_template("test://template/{id}/data", "test://template//data").is_none());
        assert!(match_template("test://template/{id}/data", "test://other/42/data").is_none());
        let end = match_template("file:///{path}", "file:///etc");
        assert_eq!(end.and_then(|v| v.get("path").cloned()).as_deref(), Some("etc"));
    }
}
