//! What the client answers when the server speaks first.

use super::*;

/// What a connection's handler shares with its client: in-flight calls, the latest tool
/// list, the sampling model.
pub(super) struct Shared {
    pub(super) server: Arc<str>,
    /// The calls in flight, by progress token: where their progress and the server's log
    /// messages are reported.
    pub(super) calls: Mutex<HashMap<NumberOrString, InFlight>>,
    /// The server's tools as last listed.
    pub(super) tools: RwLock<Arc<[mcp::Tool]>>,
    /// Bumped whenever `tools` changes.
    pub(super) generation: AtomicU64,
    pub(super) sampling: Option<Sampling>,
    pub(super) elicitation: Option<Arc<dyn ElicitationHandler>>,
}

pub(super) struct InFlight {
    pub(super) ctx: RunContext,
    pub(super) tool: Arc<str>,
}

impl Shared {
    pub(super) fn set_tools(&self, tools: Vec<mcp::Tool>) {
        let tools: Arc<[mcp::Tool]> = tools.into();
        let mut slot = self.tools.write().unwrap_or_else(|e| e.into_inner());
        if **slot != *tools {
            *slot = tools;
            self.generation.fetch_add(1, Ordering::Release);
        }
    }

    pub(super) fn tools(&self) -> Arc<[mcp::Tool]> {
        Arc::clone(&self.tools.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Sends an event to every call in flight on this server.
    pub(super) fn emit_to_calls(&self, name: &str, payload: impl Fn(&str) -> Value) {
        let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        for call in calls.values() {
            call.ctx.emit(|| EventKind::Mcp { name: name.to_owned(), payload: payload(&call.tool) });
        }
    }
}

/// Answers the server: progress, log messages, changed tool lists, sampling.
#[derive(Clone)]
pub(super) struct Handler {
    pub(super) shared: Arc<Shared>,
    pub(super) info: mcp::ClientConfig,
}

impl ClientHandler for Handler {
    fn get_info(&self) -> mcp::ClientConfig {
        self.info.clone()
    }

    async fn on_progress(&self, params: mcp::ProgressNotificationParam, _context: NotificationContext<RoleClient>) {
        let token = params.progress_token.0;
        let calls = self.shared.calls.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(call) = calls.get(&token) {
            call.ctx.emit(|| EventKind::Mcp {
                name: "mcp.progress".to_owned(),
                payload: json!({
                    "server": &*self.shared.server,
                    "tool": &*call.tool,
                    "progress": params.progress,
                    "total": params.total,
                    "message": params.message,
                }),
            });
        }
    }

    async fn on_logging_message(
        &self,
        params: mcp::LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let level = serde_json::to_value(params.level).unwrap_or(Value::Null);
        let server = &*self.shared.server;
        match params.level {
            mcp::LoggingLevel::Debug => tracing::debug!(server, logger = ?params.logger, "{}", params.data),
            mcp::LoggingLevel::Info | mcp::LoggingLevel::Notice => {
                tracing::info!(server, logger = ?params.logger, "{}", params.data);
            }
            mcp::LoggingLevel::Warning => tracing::warn!(server, logger = ?params.logger, "{}", params.data),
            _ => tracing::error!(server, logger = ?params.logger, "{}", params.data),
        }
        self.shared.emit_to_calls("mcp.log", |tool| {
            json!({"server": server, "tool": tool, "level": level, "logger": params.logger, "data": params.data})
        });
    }

    async fn on_tool_list_changed(&self, context: NotificationContext<RoleClient>) {
        // Listed in the background: the notification must not hold up the connection.
        let shared = Arc::clone(&self.shared);
        let peer = context.peer;
        tokio::spawn(async move {
            match peer.list_all_tools().await {
                Ok(tools) => {
                    tracing::debug!(server = &*shared.server, tools = tools.len(), "the MCP server's tools changed");
                    shared.set_tools(tools);
                }
                Err(e) => tracing::warn!(server = &*shared.server, "listing the changed tools failed: {e}"),
            }
        });
    }

    async fn create_message(
        &self,
        params: mcp::CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<mcp::CreateMessageResult, ErrorData> {
        let Some(sampling) = &self.shared.sampling else {
            return Err(ErrorData::new(
                mcp::ErrorCode::METHOD_NOT_FOUND,
                "this Loom client answers no sampling requests (give the server a model with `McpServer::sampling`)",
                None,
            ));
        };
        sample(&self.shared.server, sampling, params).await
    }

    async fn create_elicitation(
        &self,
        params: mcp::ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<mcp::ElicitResult, ErrorData> {
        let (Some(handler), mcp::ElicitRequestParams::FormElicitationParams { message, requested_schema, .. }) =
            (&self.shared.elicitation, &params)
        else {
            // No handler, or a URL to open: Loom opens no browsers.
            return Ok(mcp::ElicitResult::new(mcp::ElicitationAction::Decline));
        };
        let request = ElicitationRequest { server: &self.shared.server, message, schema: requested_schema };
        let mut result = handler.elicit(&request).await;
        if result.action == mcp::ElicitationAction::Accept {
            result.content = Some(with_defaults(result.content.take(), requested_schema));
        }
        Ok(result)
    }
}

/// An accepted form's content, with the default of each property it leaves out.
fn with_defaults(content: Option<Value>, schema: &mcp::ElicitationSchema) -> Value {
    let mut content = match content {
        Some(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    if let Ok(Value::Object(schema)) = serde_json::to_value(schema)
        && let Some(Value::Object(properties)) = schema.get("properties")
    {
        for (name, property) in properties {
            if let Some(default) = property.get("default")
                && !content.contains_key(name)
            {
                content.insert(name.clone(), default.clone());
            }
        }
    }
    Value::Object(content)
}

/// Answers one sampling request with the configured model, if the policy allows it.
#[allow(deprecated)]
async fn sample(
    server: &str,
    sampling: &Sampling,
    params: mcp::CreateMessageRequestParams,
) -> Result<mcp::CreateMessageResult, ErrorData> {
    let mut messages = Vec::with_capacity(params.messages.len() + 1);
    if let Some(system) = params.system_prompt.as_deref().filter(|s| !s.is_empty()) {
        messages.push(Message::system(system));
    }
    for message in params.messages {
        let mut parts = Vec::new();
        for block in message.content.into_vec() {
            match block {
                mcp::SamplingMessageContentBlock::Text(t) => parts.push(Part::text(t.text)),
                mcp::SamplingMessageContentBlock::Image(i) => parts.push(Part::image_base64(i.mime_type, i.data)),
                mcp::SamplingMessageContentBlock::Audio(a) => parts.push(Part::Audio {
                    source: crate::model::MediaSource::Base64 { media_type: a.mime_type, data: a.data },
                }),
                _ => {
                    return Err(ErrorData::invalid_params(
                        "Loom answers sampling requests of text, images and audio; tool use is not supported",
                        None,
                    ));
                }
            }
        }
        let content = match parts.as_slice() {
            [Part::Text { text }] => Content::from(text.clone()),
            _ => Content::Parts(parts),
        };
        messages.push(match message.role {
            mcp::Role::Assistant => Message::assistant(content),
            _ => Message::user(content),
        });
    }
    let max_tokens = params.max_tokens.min(sampling.max_tokens);
    let system = params.system_prompt.as_deref();
    let request = SamplingRequest { server, messages: &messages, system, max_tokens };
    let allowed = std::panic::catch_unwind(AssertUnwindSafe(|| (sampling.policy)(&request))).unwrap_or(false);
    if !allowed {
        return Err(ErrorData::new(
            mcp::ErrorCode(-1),
            "the sampling request was refused by the client's policy",
            None,
        ));
    }
    let mut settings = ModelSettings::new();
    settings.max_tokens = Some(max_tokens);
    settings.temperature = params.temperature.map(f64::from);
    settings.stop = params.stop_sequences.unwrap_or_default();
    let mut model_request = ModelRequest::new(&messages);
    model_request.settings = &settings;
    let response = sampling
        .model
        .complete(&model_request)
        .await
        .map_err(|e| ErrorData::internal_error(format!("the model failed: {e}"), None))?;
    let stop = match response.finish_reason {
        crate::model::FinishReason::Length => mcp::CreateMessageResult::STOP_REASON_END_MAX_TOKEN,
        _ => mcp::CreateMessageResult::STOP_REASON_END_TURN,
    };
    let model = response.model.clone().unwrap_or_else(|| sampling.model.name().to_owned());
    Ok(mcp::CreateMessageResult::new(
        mcp::SamplingMessage::new(
            mcp::Role::Assistant,
            mcp::SamplingMessageContentBlock::text(response.text.to_string()),
        ),
        model,
    )
    .with_stop_reason(stop))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accepted_form_gets_the_defaults_it_leaves_out() -> Result<(), serde_json::Error> {
        let schema: mcp::ElicitationSchema = serde_json::from_value(json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "default": "John Doe"},
                "age": {"type": "integer", "default": 30},
                "email": {"type": "string"}
            }
        }))?;
        let filled = with_defaults(Some(json!({"name": "Ada"})), &schema);
        assert_eq!(filled, json!({"name": "Ada", "age": 30}));
        assert_eq!(with_defaults(None, &schema), json!({"name": "John Doe", "age": 30}));
        Ok(())
    }
}
