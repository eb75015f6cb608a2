//! What a served tool sees of the MCP request it runs for.

use super::*;

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
    pub(super) peer: rmcp::Peer<RoleServer>,
    pub(super) progress: Option<ProgressToken>,
    pub(super) level: Arc<AtomicU8>,
    pub(super) input: Arc<CallInput>,
}

/// What one call knows of its client, and what it asked the client for.
pub(super) struct CallInput {
    /// The call is stateless (2026-07-28): client input is asked for in the result.
    pub(super) stateless: bool,
    /// The capabilities the client declared (for this request, or at `initialize`).
    pub(super) capabilities: Option<mcp::ClientCapabilities>,
    /// The log level the request asked for, over 2026-07-28 (`None`: no log messages).
    pub(super) log_level: Option<u8>,
    /// The client's answers: this round's, and those sealed in the request state.
    pub(super) answers: mcp::InputResponses,
    /// The keys of the answers the tool read.
    pub(super) used: Mutex<BTreeSet<String>>,
    /// The input the tool asked for and has no answer to yet.
    pub(super) asked: Mutex<mcp::InputRequests>,
    /// The capabilities the tool needed and the client does not offer.
    pub(super) missing: Mutex<mcp::ClientCapabilities>,
    /// The last progress sent: progress only grows.
    pub(super) last_progress: tokio::sync::Mutex<Option<f64>>,
}

impl CallInput {
    pub(super) fn new(stateless: bool, capabilities: Option<mcp::ClientCapabilities>) -> Self {
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
    pub(super) fn missing(&self) -> Option<mcp::ClientCapabilities> {
        let missing = self.missing.lock().unwrap_or_else(|e| e.into_inner()).clone();
        (missing != mcp::ClientCapabilities::default()).then_some(missing)
    }

    /// The answers the tool read, to seal into the next request state.
    pub(super) fn used_answers(&self) -> mcp::InputResponses {
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
    pub(super) async fn step(&self, message: String) {
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
    pub(super) fn require(
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
    pub(super) fn answer_or_ask<T: serde::de::DeserializeOwned>(
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
pub(super) fn client_failed(what: &str, error: &rmcp::service::ServiceError) -> McpError {
    McpError::Protocol {
        server: "client".to_owned(),
        message: format!("the client did not answer the {what} request: {error}"),
    }
}

pub(super) fn level_rank(level: mcp::LoggingLevel) -> u8 {
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
