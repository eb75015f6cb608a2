//! The client: one connection to one MCP server, kept alive, and its tools as Loom tools.
//!
//! `spec` describes a server to connect to ([`McpServer`]), `handler` answers what the
//! server sends (progress, log messages, changed tools, sampling, elicitation), and this
//! module keeps the connection and makes the calls.

mod handler;
mod spec;

use handler::{Handler, InFlight, Shared};
use spec::Sampling;
pub use spec::{
    ElicitationHandler, ElicitationRequest, McpServer, McpTransport, Protocol, SamplingPolicy, SamplingRequest,
};

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rmcp::model::{self as mcp, NumberOrString, RequestMetaObject};
use rmcp::service::{NotificationContext, RequestContext, RoleClient, RunningService, ServiceError};
use rmcp::{ClientHandler, ErrorData};
use serde_json::{Value, json};

use super::McpError;
use super::convert;
use crate::context::RunContext;
use crate::event::EventKind;
use crate::model::{Content, Message, Model, ModelRequest, ModelSettings, Part};
use crate::tool::{Tool, ToolDefinition, ToolError, ToolOutput};

/// How long a call may take before it fails, by default.
const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long connecting (spawning, the handshake, the first tool list) may take, by default.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest message accepted from a server, by default.
const DEFAULT_MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// How many lines of a server's standard error are kept to explain why it died.
const STDERR_LINES: usize = 20;

/// One live connection.
struct Connection {
    service: RunningService<RoleClient, Handler>,
    /// The stdio server's process group, killed when the connection is dropped.
    _child: Option<ChildGuard>,
}

impl Connection {
    fn is_closed(&self) -> bool {
        self.service.is_closed() || self.service.peer().is_transport_closed()
    }
}

/// Kills a stdio server's whole process group when dropped (`npx` starts `node`, which may
/// start more), and reaps it.
struct ChildGuard {
    child: Option<tokio::process::Child>,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        #[cfg(unix)]
        if let Some(pid) = child.id().and_then(|id| rustix::process::Pid::from_raw(id as i32)) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = child.start_kill();
        // Reaped in the background, so no zombie stays behind.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = child.wait().await;
            });
        }
    }
}

/// A connection to one MCP server: its tools, resources and prompts, and calls with a
/// timeout. A dropped connection is made again on the next call (with backoff); a stdio
/// server is killed, with its process group, when the last clone of the client is dropped.
///
/// Clone it freely: clones share the connection.
#[derive(Clone)]
pub struct McpClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    config: McpServer,
    shared: Arc<Shared>,
    connection: tokio::sync::RwLock<Option<Arc<Connection>>>,
    /// Held while connecting, so a dropped server is reconnected once, not once per caller.
    connecting: tokio::sync::Mutex<()>,
    /// The last lines the stdio server wrote to its standard error.
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl fmt::Debug for McpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpClient").field("server", &self.inner.config.name).finish_non_exhaustive()
    }
}

impl McpClient {
    /// Connects to `server`: starts it or reaches it, does the handshake, and lists its tools.
    pub async fn connect(server: McpServer) -> Result<Self, McpError> {
        let info = client_info(server.sampling.is_some(), server.elicitation.is_some());
        let shared = Arc::new(Shared {
            server: Arc::clone(&server.name),
            calls: Mutex::new(HashMap::new()),
            tools: RwLock::new(Arc::from(Vec::new())),
            generation: AtomicU64::new(0),
            sampling: server.sampling.clone(),
            elicitation: server.elicitation.clone(),
        });
        let client = Self {
            inner: Arc::new(ClientInner {
                config: server,
                shared,
                connection: tokio::sync::RwLock::new(None),
                connecting: tokio::sync::Mutex::new(()),
                stderr: Arc::new(Mutex::new(VecDeque::new())),
            }),
        };
        let connection = client.open(&info).await?;
        *client.inner.connection.write().await = Some(connection);
        Ok(client)
    }

    /// The server's name.
    pub fn name(&self) -> &str {
        &self.inner.config.name
    }

    /// How the server was configured.
    pub fn server(&self) -> &McpServer {
        &self.inner.config
    }

    /// What the server said about itself when it connected (name, version, protocol,
    /// capabilities).
    pub async fn server_info(&self) -> Result<mcp::ServerPeerInfo, McpError> {
        let connection = self.connection().await?;
        connection.service.peer().peer_info().map(|info| (*info).clone()).ok_or_else(|| McpError::Protocol {
            server: self.name().to_owned(),
            message: "the server has not said who it is".to_owned(),
        })
    }

    /// The server's tools as Loom tools, named as the server names them (made valid for
    /// the providers: `files.read` becomes `files_read`). [`McpServers`](super::McpServers)
    /// names them apart when several servers are used together.
    pub fn tools(&self) -> Vec<Arc<dyn Tool>> {
        self.inner.shared.tools().iter().map(|t| self.tool(t, convert::tool_name(&t.name))).collect()
    }

    pub(crate) fn tool(&self, tool: &mcp::Tool, name: String) -> Arc<dyn Tool> {
        Arc::new(McpTool {
            client: self.clone(),
            remote: Arc::from(&*tool.name),
            definition: convert::tool_from_mcp(tool, name, self.name()),
        })
    }

    /// The server's tools as it described them, as last listed.
    pub fn mcp_tools(&self) -> Arc<[mcp::Tool]> {
        self.inner.shared.tools()
    }

    /// Changes whenever the server's tool list changes (it says so with
    /// `notifications/tools/list_changed`, or a reconnection finds other tools).
    pub fn generation(&self) -> u64 {
        self.inner.shared.generation.load(Ordering::Acquire)
    }

    /// Lists the tools again now.
    pub async fn refresh_tools(&self) -> Result<(), McpError> {
        let connection = self.connection().await?;
        let tools = self.timed("tools/list", connection.service.peer().list_all_tools()).await?;
        self.inner.shared.set_tools(tools);
        Ok(())
    }

    /// Calls the tool the server names `name` with `arguments` (a JSON object, or `null`).
    ///
    /// A result the server marks as an error is `Ok` with `is_error` set: the tool ran and
    /// failed. `Err` means the call itself failed: a timeout, a closed connection, a protocol
    /// error.
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Result<mcp::CallToolResult, McpError> {
        self.call(None, name, arguments).await
    }

    async fn call(
        &self,
        ctx: Option<(&RunContext, &Arc<str>)>,
        name: &str,
        arguments: Value,
    ) -> Result<mcp::CallToolResult, McpError> {
        let arguments = match arguments {
            Value::Object(map) => Some(map),
            Value::Null => None,
            other => {
                return Err(McpError::InvalidArguments {
                    server: self.name().to_owned(),
                    message: format!("tool arguments must be a JSON object, not {other}"),
                });
            }
        };
        let connection = self.connection().await?;
        let mut params = mcp::CallToolRequestParams::new(name.to_owned());
        params.arguments = arguments;
        let mut meta = RequestMetaObject::new();
        if let Some(level) = self.inner.config.log_level {
            meta.set_log_level(level);
        }
        let operation = format!("tools/call {name}");
        let peer = connection.service.peer();
        // Sent by hand, not with `call_tool`, to learn the progress token the SDK gives the
        // request: the server's progress notifications name it.
        let sent = self.timed(&operation, async {
            let request = mcp::ClientRequest::CallToolRequest(mcp::CallToolRequest::new(params.clone()));
            let options = rmcp::service::PeerRequestOptions::no_options().with_meta(meta);
            let handle = peer.send_request_with_option(request, options).await?;
            let _registered = ctx.map(|(ctx, tool)| {
                let token = handle.progress_token.0.clone();
                let mut calls = self.inner.shared.calls.lock().unwrap_or_else(|e| e.into_inner());
                calls.insert(token.clone(), InFlight { ctx: ctx.clone(), tool: Arc::clone(tool) });
                Registered { shared: &self.inner.shared, token }
            });
            // A call given up on (a timeout, a cancelled run) is cancelled on the server.
            let mut abandoned = Abandoned { peer, id: Some(handle.id.clone()) };
            let result = handle.await_response().await;
            abandoned.id = None;
            result
        });
        match sent.await? {
            mcp::ServerResult::CallToolResult(result) => Ok(result),
            // The server needs answers first (sampling over 2026-07-28): the SDK drives those
            // rounds, and the call runs to its end there.
            mcp::ServerResult::InputRequiredResult(_) => {
                self.timed(&operation, connection.service.call_tool(params)).await
            }
            mcp::ServerResult::EmptyResult(_) => Ok(mcp::CallToolResult::success(Vec::new())),
            mcp::ServerResult::CustomResult(mcp::CustomResult(value)) => convert::lenient_tool_result(value)
                .ok_or_else(|| McpError::Protocol {
                    server: self.name().to_owned(),
                    message: format!(
                        "`{operation}` was answered with something that is not a tool result (no `content` list)"
                    ),
                }),
            _ => Err(McpError::Protocol {
                server: self.name().to_owned(),
                message: format!("`{operation}` was answered with a result of another request"),
            }),
        }
    }

    /// The server's resources.
    pub async fn list_resources(&self) -> Result<Vec<mcp::Resource>, McpError> {
        let connection = self.connection().await?;
        self.timed("resources/list", connection.service.peer().list_all_resources()).await
    }

    /// The server's resource templates (`file:///{path}`).
    pub async fn list_resource_templates(&self) -> Result<Vec<mcp::ResourceTemplate>, McpError> {
        let connection = self.connection().await?;
        self.timed("resources/templates/list", connection.service.peer().list_all_resource_templates()).await
    }

    /// Reads the resource at `uri`: its contents (text, or base64 for binary ones).
    pub async fn read_resource(&self, uri: &str) -> Result<Vec<mcp::ResourceContents>, McpError> {
        let connection = self.connection().await?;
        let params = mcp::ReadResourceRequestParams::new(uri.to_owned());
        let result = self.timed("resources/read", connection.service.read_resource(params)).await?;
        Ok(result.contents)
    }

    /// The server's prompts.
    pub async fn list_prompts(&self) -> Result<Vec<mcp::Prompt>, McpError> {
        let connection = self.connection().await?;
        self.timed("prompts/list", connection.service.peer().list_all_prompts()).await
    }

    /// The prompt `name` filled with `arguments`, as the server returns it.
    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: impl IntoIterator<Item = (String, String)>,
    ) -> Result<mcp::GetPromptResult, McpError> {
        let connection = self.connection().await?;
        let mut params = mcp::GetPromptRequestParams::new(name.to_owned());
        let arguments: serde_json::Map<String, Value> =
            arguments.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        if !arguments.is_empty() {
            params.arguments = Some(arguments);
        }
        self.timed("prompts/get", connection.service.get_prompt(params)).await
    }

    /// The prompt `name` filled with `arguments`, as Loom messages to start a conversation
    /// with (a system message first when the prompt has a description).
    pub async fn prompt_messages(
        &self,
        name: &str,
        arguments: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Vec<Message>, McpError> {
        let prompt = self.get_prompt(name, arguments).await?;
        Ok(prompt
            .messages
            .into_iter()
            .map(|m| {
                let content = convert::content_from_block(m.content);
                match m.role {
                    mcp::Role::Assistant => Message::assistant(content),
                    _ => Message::user(content),
                }
            })
            .collect())
    }

    /// The `rmcp` peer of the live connection, for what Loom does not wrap (completions,
    /// subscriptions, tasks).
    pub async fn peer(&self) -> Result<rmcp::Peer<RoleClient>, McpError> {
        Ok(self.connection().await?.service.peer().clone())
    }

    /// Closes the connection (a stdio server is stopped). Later calls connect again.
    pub async fn close(&self) {
        let connection = self.inner.connection.write().await.take();
        drop(connection);
    }

    /// Runs one request with the call timeout, and makes its failure an [`McpError`]; a
    /// closed transport drops the connection, so the next call reconnects.
    async fn timed<T>(
        &self,
        operation: &str,
        request: impl Future<Output = Result<T, ServiceError>>,
    ) -> Result<T, McpError> {
        let timeout = self.inner.config.call_timeout;
        match tokio::time::timeout(timeout, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                let error = self.error(operation, e);
                if matches!(error, McpError::Closed { .. }) {
                    self.drop_connection().await;
                }
                Err(error)
            }
            Err(_) => Err(McpError::Timeout {
                server: self.name().to_owned(),
                operation: operation.to_owned(),
                after: timeout,
            }),
        }
    }

    fn error(&self, operation: &str, error: ServiceError) -> McpError {
        let server = self.name().to_owned();
        match error {
            ServiceError::McpError(e) => {
                McpError::Server { server, operation: operation.to_owned(), code: e.code.0, message: e.message.into() }
            }
            ServiceError::TransportClosed | ServiceError::TransportSend(_) => {
                McpError::Closed { server, detail: self.stderr_tail() }
            }
            ServiceError::Timeout { timeout } => {
                McpError::Timeout { server, operation: operation.to_owned(), after: timeout }
            }
            ServiceError::Cancelled { reason } => McpError::Protocol {
                server,
                message: format!("`{operation}` was cancelled: {}", reason.as_deref().unwrap_or("no reason given")),
            },
            other => McpError::Protocol { server, message: format!("`{operation}` failed: {other}") },
        }
    }

    async fn drop_connection(&self) {
        let mut slot = self.inner.connection.write().await;
        if slot.as_ref().is_some_and(|c| c.is_closed()) {
            *slot = None;
        }
    }

    /// The live connection, made again (with backoff) if the server went away.
    async fn connection(&self) -> Result<Arc<Connection>, McpError> {
        if let Some(c) = self.inner.connection.read().await.as_ref()
            && !c.is_closed()
        {
            return Ok(Arc::clone(c));
        }
        let _connecting = self.inner.connecting.lock().await;
        if let Some(c) = self.inner.connection.read().await.as_ref()
            && !c.is_closed()
        {
            return Ok(Arc::clone(c));
        }
        let config = &self.inner.config;
        let info = client_info(config.sampling.is_some(), config.elicitation.is_some());
        let mut delay = config.reconnect_delay;
        let mut last = McpError::Closed { server: self.name().to_owned(), detail: self.stderr_tail() };
        for attempt in 1..=config.reconnect_attempts {
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
            match self.open(&info).await {
                Ok(connection) => {
                    tracing::info!(server = self.name(), attempt, "reconnected to the MCP server");
                    *self.inner.connection.write().await = Some(Arc::clone(&connection));
                    return Ok(connection);
                }
                Err(e) => {
                    tracing::warn!(server = self.name(), attempt, "reconnecting to the MCP server failed: {e}");
                    last = e;
                }
            }
        }
        Err(last)
    }

    /// Opens a connection and lists the tools, within the connect timeout.
    async fn open(&self, info: &mcp::ClientConfig) -> Result<Arc<Connection>, McpError> {
        let config = &self.inner.config;
        let opened = tokio::time::timeout(config.connect_timeout, async {
            let handler = Handler { shared: Arc::clone(&self.inner.shared), info: info.clone() };
            let lifecycle = lifecycle(config.protocol);
            let (service, child) = match &config.transport {
                McpTransport::Stdio { command, args, env, cwd } => {
                    let mut cmd = tokio::process::Command::new(command);
                    cmd.args(args)
                        .envs(env.iter().map(|(k, v)| (k, v)))
                        .stdin(std::process::Stdio::piped())
                        .stdout(std::process::Stdio::piped())
                        .stderr(std::process::Stdio::piped())
                        .kill_on_drop(true);
                    #[cfg(unix)]
                    cmd.process_group(0);
                    if let Some(dir) = cwd {
                        cmd.current_dir(dir);
                    }
                    let mut child = cmd.spawn().map_err(|e| McpError::Spawn {
                        server: self.name().to_owned(),
                        command: command.clone(),
                        message: e.to_string(),
                    })?;
                    let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) else {
                        return Err(McpError::Spawn {
                            server: self.name().to_owned(),
                            command: command.clone(),
                            message: "its standard input or output could not be opened".to_owned(),
                        });
                    };
                    let stderr_reader = child.stderr.take().map(|stderr| {
                        tokio::spawn(keep_stderr(
                            Arc::clone(&self.inner.shared.server),
                            stderr,
                            Arc::clone(&self.inner.stderr),
                        ))
                    });
                    let guard = ChildGuard { child: Some(child) };
                    let transport = rmcp::transport::async_rw::AsyncRwTransport::<RoleClient, _, _>::new(stdout, stdin)
                        .with_max_line_length(config.max_message);
                    let service = match rmcp::service::serve_client_with_lifecycle(handler, transport, lifecycle).await
                    {
                        Ok(service) => service,
                        Err(e) => {
                            // A server that quit on startup said why on its standard error:
                            // let the reader take in its last words (briefly) before quoting them.
                            if let Some(reader) = stderr_reader {
                                let _ = tokio::time::timeout(Duration::from_millis(250), reader).await;
                            }
                            return Err(self.connect_error(e.to_string()));
                        }
                    };
                    (service, Some(guard))
                }
                McpTransport::Http { url, headers } => {
                    let transport = http_transport(self.name(), url, headers, config.max_message)?;
                    let service = rmcp::service::serve_client_with_lifecycle(handler, transport, lifecycle)
                        .await
                        .map_err(|e| self.connect_error(e.to_string()))?;
                    (service, None)
                }
            };
            let connection = Arc::new(Connection { service, _child: child });
            // A session (2025-11-25) has one log level, set once; stateless requests carry
            // theirs in `_meta`.
            if let Some(level) = config.log_level
                && let Some(info) = connection.service.peer().peer_info()
                && info.capabilities.logging.is_some()
                && info.protocol_version < mcp::ProtocolVersion::V_2026_07_28
            {
                let set = connection.service.peer().set_level(mcp::SetLevelRequestParams::new(level));
                if let Err(e) = set.await {
                    tracing::debug!(server = self.name(), "the server refused the log level: {e}");
                }
            }
            let tools = connection.service.peer().list_all_tools().await.map_err(|e| self.error("tools/list", e))?;
            self.inner.shared.set_tools(tools);
            Ok(connection)
        })
        .await;
        match opened {
            Ok(result) => result,
            Err(_) => Err(McpError::Timeout {
                server: self.name().to_owned(),
                operation: "connecting".to_owned(),
                after: config.connect_timeout,
            }),
        }
    }

    fn connect_error(&self, message: String) -> McpError {
        let tail = self.stderr_tail();
        McpError::Connect {
            server: self.name().to_owned(),
            message: if tail.is_empty() { message } else { format!("{message}; the server wrote: {tail}") },
        }
    }

    fn stderr_tail(&self) -> String {
        let lines = self.inner.stderr.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().map(String::as_str).collect::<Vec<_>>().join(" | ")
    }
}

/// Removes a call from the in-flight table when it ends (or is dropped).
struct Registered<'a> {
    shared: &'a Shared,
    token: NumberOrString,
}

/// Tells the server a request was given up on, if it is dropped before its answer came.
struct Abandoned<'a> {
    peer: &'a rmcp::Peer<RoleClient>,
    id: Option<mcp::RequestId>,
}

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let peer = self.peer.clone();
        let reason = "the Loom run gave up on the call (a timeout, or the run was cancelled)";
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = peer
                    .notify_cancelled(mcp::CancelledNotificationParam::new(Some(id), Some(reason.to_owned())))
                    .await;
            });
        }
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.shared.calls.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.token);
    }
}

/// Forwards a stdio server's standard error to the log, keeping its last lines.
async fn keep_stderr(server: Arc<str>, stderr: tokio::process::ChildStderr, tail: Arc<Mutex<VecDeque<String>>>) {
    use tokio::io::AsyncBufReadExt as _;
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    while let Ok(Some(mut line)) = lines.next_line().await {
        if line.len() > 500 {
            let mut cut = 500;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
        }
        tracing::debug!(server = &*server, "stderr: {line}");
        let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
        if tail.len() == STDERR_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}

fn lifecycle(protocol: Protocol) -> rmcp::service::ClientLifecycleMode {
    match protocol {
        Protocol::Initialize => rmcp::service::ClientLifecycleMode::Initialize,
        Protocol::Stateless => {
            rmcp::service::ClientLifecycleMode::Discover { preferred_versions: vec![mcp::ProtocolVersion::LATEST] }
        }
        Protocol::Auto => rmcp::service::ClientLifecycleMode::Auto {
            preferred_versions: vec![mcp::ProtocolVersion::LATEST],
            legacy_version: None,
        },
    }
}

fn client_info(sampling: bool, elicitation: bool) -> mcp::ClientConfig {
    let mut capabilities = mcp::ClientCapabilities::default();
    if sampling {
        capabilities.sampling = Some(Default::default());
    }
    if elicitation {
        capabilities.elicitation = Some(mcp::ElicitationCapability::new().with_form(Default::default()));
    }
    mcp::ClientConfig::new(capabilities, mcp::Implementation::new("loom", env!("CARGO_PKG_VERSION")))
}

fn http_transport(
    server: &str,
    url: &str,
    headers: &[(String, String)],
    max_message: usize,
) -> Result<rmcp::transport::StreamableHttpClientTransport<reqwest::Client>, McpError> {
    use reqwest::header::{HeaderName, HeaderValue};
    let mut config = rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(url);
    for (name, value) in headers {
        let invalid = |what: &str| McpError::Connect {
            server: server.to_owned(),
            message: format!("the header `{name}` has an invalid {what}"),
        };
        let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid("name"))?;
        let mut header_value = HeaderValue::from_str(value).map_err(|_| invalid("value"))?;
        header_value.set_sensitive(true);
        config.custom_headers.insert(header_name, header_value);
    }
    config.max_json_response_size = max_message;
    config.max_sse_event_size = max_message;
    Ok(rmcp::transport::StreamableHttpClientTransport::from_config(config))
}

/// One tool of an MCP server, as a Loom tool.
struct McpTool {
    client: McpClient,
    /// The name the server knows it by.
    remote: Arc<str>,
    definition: ToolDefinition,
}

#[async_trait::async_trait]
impl Tool for McpTool {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, ctx: &RunContext, arguments: &str) -> Result<ToolOutput, ToolError> {
        let arguments: Value = if arguments.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(arguments)
                .map_err(|e| ToolError::invalid_arguments(format!("the arguments are not valid JSON: {e}")))?
        };
        if !matches!(arguments, Value::Object(_) | Value::Null) {
            return Err(ToolError::invalid_arguments("the arguments must be a JSON object"));
        }
        let result = self.client.call(Some((ctx, &self.remote)), &self.remote, arguments).await.map_err(|e| {
            // The model reads it; the run goes on.
            ToolError::new(e.to_string())
        })?;
        convert::output_from_mcp(result).map_err(ToolError::new)
    }
}
