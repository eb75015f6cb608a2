//! A server to connect to, and how the client behaves with it.

use super::*;

/// Which MCP lifecycle the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// Ask the server with `server/discover` whether it speaks the stateless protocol
    /// (2026-07-28), and fall back to the `initialize` handshake (2025-11-25 and older) when
    /// it does not.
    #[default]
    Auto,
    /// The `initialize` handshake only (2025-11-25 and older).
    Initialize,
    /// The stateless protocol only (2026-07-28): no handshake, each request says who it is.
    Stateless,
}

/// How to reach a server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum McpTransport {
    /// A child process speaking MCP on its standard input and output. It runs in a process
    /// group of its own, killed with the client.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Environment variables set for it (on top of the client's own).
        env: Vec<(String, String)>,
        /// Its working directory (the client's by default).
        cwd: Option<PathBuf>,
    },
    /// A server at a streamable-HTTP URL (`https://host/mcp`).
    Http {
        /// The URL.
        url: String,
        /// Headers sent with every request (`Authorization`, API keys).
        headers: Vec<(String, String)>,
    },
}

/// Decides whether a server may have the configured model answer one sampling request.
pub type SamplingPolicy = Arc<dyn Fn(&SamplingRequest<'_>) -> bool + Send + Sync>;

/// A server's request to have a model answer, as a [`SamplingPolicy`] sees it.
#[derive(Debug)]
#[non_exhaustive]
pub struct SamplingRequest<'a> {
    /// The server asking.
    pub server: &'a str,
    /// The conversation it wants answered.
    pub messages: &'a [Message],
    /// Its system prompt, if any.
    pub system: Option<&'a str>,
    /// The most tokens it wants.
    pub max_tokens: u32,
}

/// Answers a server's elicitation requests: forms the server asks the user to fill in.
///
/// Closures `Fn(&ElicitationRequest) -> ElicitResult` are handlers.
#[async_trait::async_trait]
pub trait ElicitationHandler: Send + Sync + 'static {
    /// The user's answer to `request`: accept (with the form's content), decline or cancel.
    async fn elicit(&self, request: &ElicitationRequest<'_>) -> mcp::ElicitResult;
}

#[async_trait::async_trait]
impl<F> ElicitationHandler for F
where
    F: Fn(&ElicitationRequest<'_>) -> mcp::ElicitResult + Send + Sync + 'static,
{
    async fn elicit(&self, request: &ElicitationRequest<'_>) -> mcp::ElicitResult {
        self(request)
    }
}

/// A server's request for the user to fill in a form, as an [`ElicitationHandler`] sees it.
#[derive(Debug)]
#[non_exhaustive]
pub struct ElicitationRequest<'a> {
    /// The server asking.
    pub server: &'a str,
    /// What it tells the user.
    pub message: &'a str,
    /// The form: a flat object schema of strings, numbers, booleans and enums.
    pub schema: &'a mcp::ElicitationSchema,
}

#[derive(Clone)]
pub(super) struct Sampling {
    pub(super) model: Arc<dyn Model>,
    pub(super) policy: SamplingPolicy,
    pub(super) max_tokens: u32,
}

/// One MCP server a client connects to: a name, a transport, and how calls behave.
///
/// ```
/// use std::time::Duration;
/// use loomflow::mcp::McpServer;
///
/// let files = McpServer::stdio("files", "npx")
///     .args(["-y", "@modelcontextprotocol/server-filesystem", "/srv/docs"])
///     .call_timeout(Duration::from_secs(20));
/// let search = McpServer::http("search", "https://search.example.com/mcp")
///     .header("Authorization", "Bearer sk-example");
/// assert_eq!(files.name(), "files");
/// assert_eq!(search.name(), "search");
/// ```
#[derive(Clone)]
pub struct McpServer {
    pub(super) name: Arc<str>,
    pub(super) transport: McpTransport,
    pub(super) call_timeout: Duration,
    pub(super) connect_timeout: Duration,
    pub(super) max_message: usize,
    pub(super) reconnect_attempts: u32,
    pub(super) reconnect_delay: Duration,
    pub(super) protocol: Protocol,
    pub(super) sampling: Option<Sampling>,
    pub(super) elicitation: Option<Arc<dyn ElicitationHandler>>,
    pub(super) log_level: Option<mcp::LoggingLevel>,
}

impl fmt::Debug for McpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values may be secrets: their names only.
        let transport = match &self.transport {
            McpTransport::Stdio { command, args, .. } => format!("stdio: {command} {}", args.join(" ")),
            McpTransport::Http { url, headers } => {
                let names: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
                format!("http: {url} (headers: {})", names.join(", "))
            }
        };
        f.debug_struct("McpServer")
            .field("name", &self.name)
            .field("transport", &transport)
            .field("call_timeout", &self.call_timeout)
            .field("protocol", &self.protocol)
            .field("sampling", &self.sampling.is_some())
            .field("elicitation", &self.elicitation.is_some())
            .finish_non_exhaustive()
    }
}

impl McpServer {
    fn new(name: &str, transport: McpTransport) -> Self {
        Self {
            name: Arc::from(name),
            transport,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_message: DEFAULT_MAX_MESSAGE,
            reconnect_attempts: 3,
            reconnect_delay: Duration::from_millis(250),
            protocol: Protocol::Auto,
            sampling: None,
            elicitation: None,
            log_level: Some(mcp::LoggingLevel::Info),
        }
    }

    /// A server run as a child process: `command` with no arguments yet.
    pub fn stdio(name: &str, command: impl Into<String>) -> Self {
        Self::new(name, McpTransport::Stdio { command: command.into(), args: Vec::new(), env: Vec::new(), cwd: None })
    }

    /// A server at a streamable-HTTP URL.
    pub fn http(name: &str, url: impl Into<String>) -> Self {
        Self::new(name, McpTransport::Http { url: url.into(), headers: Vec::new() })
    }

    /// A server reached through `transport`.
    pub fn with_transport(name: &str, transport: McpTransport) -> Self {
        Self::new(name, transport)
    }

    /// Adds arguments of a stdio server.
    #[must_use]
    pub fn args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        if let McpTransport::Stdio { args: a, .. } = &mut self.transport {
            a.extend(args.into_iter().map(Into::into));
        }
        self
    }

    /// Sets an environment variable of a stdio server.
    #[must_use]
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        if let McpTransport::Stdio { env, .. } = &mut self.transport {
            env.push((key.into(), value.into()));
        }
        self
    }

    /// Sets the working directory of a stdio server.
    #[must_use]
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        if let McpTransport::Stdio { cwd, .. } = &mut self.transport {
            *cwd = Some(dir.into());
        }
        self
    }

    /// Adds a header sent with every request to an HTTP server.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        if let McpTransport::Http { headers, .. } = &mut self.transport {
            headers.push((name.into(), value.into()));
        }
        self
    }

    /// How long one call (a tool call, a resource read) may take before it fails with
    /// [`McpError::Timeout`] and is cancelled on the server (60 s by default).
    #[must_use]
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// How long connecting may take: starting the process or reaching the URL, the
    /// handshake, and the first tool list (30 s by default).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The largest message accepted from a stdio server (16 MiB by default); a longer one is
    /// dropped, so the call it answers times out rather than filling memory.
    #[must_use]
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message = bytes;
        self
    }

    /// How a dropped connection is made again: up to `attempts` tries, waiting `delay`
    /// before the first and twice as long before each next one (3 tries from 250 ms by
    /// default). `0` never reconnects.
    #[must_use]
    pub fn reconnect(mut self, attempts: u32, delay: Duration) -> Self {
        self.reconnect_attempts = attempts;
        self.reconnect_delay = delay;
        self
    }

    /// Which lifecycle to speak ([`Protocol::Auto`] by default).
    #[must_use]
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Lets the server ask `model` for completions (MCP sampling), each request capped at
    /// 4,096 tokens. Without it, sampling requests are refused.
    #[must_use]
    pub fn sampling(self, model: impl Model) -> Self {
        self.sampling_with(model, |_| true)
    }

    /// Lets the server ask `model` for completions when `policy` allows the request. A
    /// policy that panics refuses.
    #[must_use]
    pub fn sampling_with(
        mut self,
        model: impl Model,
        policy: impl Fn(&SamplingRequest<'_>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.sampling = Some(Sampling { model: Arc::new(model), policy: Arc::new(policy), max_tokens: 4096 });
        self
    }

    /// The most tokens one sampling request may ask for (4,096 by default); larger requests
    /// are capped.
    #[must_use]
    pub fn sampling_max_tokens(mut self, max_tokens: u32) -> Self {
        if let Some(s) = &mut self.sampling {
            s.max_tokens = max_tokens;
        }
        self
    }

    /// Lets the server ask the user to fill in forms (MCP elicitation), answered by `handler`.
    /// An accepted form gets the default of each property the answer leaves out (SEP-1034).
    /// Without a handler the client does not offer elicitation, and declines requests for it.
    #[must_use]
    pub fn elicitation(mut self, handler: impl ElicitationHandler) -> Self {
        self.elicitation = Some(Arc::new(handler));
        self
    }

    /// The least severe log messages the server is asked to send during a call (`info` by
    /// default; `None` asks for none). They arrive as `mcp.log` events of the run whose call
    /// they belong to, and in `tracing`.
    #[must_use]
    pub fn log_level(mut self, level: Option<mcp::LoggingLevel>) -> Self {
        self.log_level = level;
        self
    }

    /// The server's name: how its tools are told apart, and how events and errors name it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How the server is reached.
    pub fn transport(&self) -> &McpTransport {
        &self.transport
    }
}
