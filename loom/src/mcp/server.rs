//! The server: Loom's tools, agents and workflows for any MCP client.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rmcp::model::{self as mcp, ProgressToken};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler, ServiceExt as _};
use serde::Serialize;
use serde_json::Value;

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

/// The MCP request a served tool runs for: report progress, send log messages, ask the
/// client's model (sampling).
///
/// A tool served by [`McpService`] finds it in its run's state: `ctx.state::<McpCall>()`
/// (or a `State<McpCall>` parameter of a `#[tool]`). It is absent when the tool runs
/// anywhere else.
#[derive(Clone)]
pub struct McpCall {
    peer: rmcp::Peer<RoleServer>,
    progress: Option<ProgressToken>,
    level: Arc<AtomicU8>,
}

impl fmt::Debug for McpCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpCall").field("progress", &self.progress).finish_non_exhaustive()
    }
}

impl McpCall {
    /// Reports progress, when the client asked for it (a no-op otherwise).
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<String>) {
        let Some(token) = &self.progress else { return };
        let mut params = mcp::ProgressNotificationParam::new(token.clone(), progress);
        params.total = total;
        params.message = message;
        let _ = self.peer.notify_progress(params).await;
    }

    /// Sends a log message to the client, if it is at or above the level the client set
    /// (`info` by default).
    pub async fn log(&self, level: mcp::LoggingLevel, logger: Option<&str>, data: Value) {
        if level_rank(level) < self.level.load(Ordering::Relaxed) {
            return;
        }
        let mut params = mcp::LoggingMessageNotificationParam::new(level, data);
        params.logger = logger.map(str::to_owned);
        let _ = self.peer.notify_logging_message(params).await;
    }

    /// Asks the client's model to answer `prompt` (MCP sampling, protocol 2025-11-25; the
    /// client must offer sampling).
    #[allow(deprecated)]
    pub async fn sample(&self, prompt: &str, max_tokens: u32) -> Result<String, McpError> {
        let message = mcp::SamplingMessage::new(mcp::Role::User, mcp::SamplingMessageContentBlock::text(prompt));
        let params = mcp::CreateMessageRequestParams::new(vec![message], max_tokens);
        let result = self.peer.create_message(params).await.map_err(|e| McpError::Protocol {
            server: "client".to_owned(),
            message: format!("the client did not answer the sampling request: {e}"),
        })?;
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

    /// The `rmcp` peer of the client, for what Loom does not wrap (elicitation, roots).
    pub fn peer(&self) -> &rmcp::Peer<RoleServer> {
        &self.peer
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
        let mut capabilities = mcp::ServerCapabilities::builder().enable_tools().enable_logging();
        let _ = &mut capabilities;
        let mut capabilities = capabilities.build();
        if !self.inner.resources.is_empty() || !self.inner.templates.is_empty() {
            capabilities.resources = Some(mcp::ResourcesCapability::default());
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

    async fn list_tools(
        &self,
        _request: Option<mcp::PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<mcp::ListToolsResult, ErrorData> {
        Ok(mcp::ListToolsResult::with_all_items(self.listed().to_vec()))
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
        let call = McpCall { peer: context.peer.clone(), progress: progress.clone(), level: Arc::clone(&self.level) };
        let mut extensions = self.inner.state.clone();
        extensions.insert(call.clone());
        let mut ctx = RunContext::new(user).with_session(Some(self.session.clone())).with_extensions(extensions);
        // The run's progress, as MCP progress notifications, sent in order by one task.
        let forwarder = progress.map(|_| {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(64);
            ctx = ctx.clone().with_listener(move |event: RunEvent| {
                if let Some(message) = progress_message(&event) {
                    let _ = tx.try_send(message);
                }
            });
            let call = call.clone();
            tokio::spawn(async move {
                let mut n = 0.0;
                while let Some(message) = rx.recv().await {
                    n += 1.0;
                    call.progress(n, None, Some(message)).await;
                }
            })
        });
        let tool_call = ToolCall::new(format!("mcp_{}", context.id), request.name.to_string(), arguments.to_string());
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
        let content = convert::content_to_mcp(&result.content);
        Ok(if result.is_error { mcp::CallToolResult::error(content) } else { mcp::CallToolResult::success(content) }
            .into())
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
                .map_err(|message| ErrorData::resource_not_found(message, None))?;
            return Ok(mcp::ReadResourceResult::new(contents).into());
        }
        Err(ErrorData::resource_not_found(format!("no resource `{}`", request.uri), None))
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
        self.user(&context)?;
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
        let messages = entry.handler.get(&arguments).await.map_err(|m| ErrorData::invalid_params(m, None))?;
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
