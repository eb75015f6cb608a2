//! One MCP session: the handler answering a client's requests.

use super::*;

/// One MCP session: the service, the Loom session its runs continue, and the user it is
/// bound to once it has one.
#[derive(Clone)]
pub(super) struct Session {
    inner: Arc<Inner>,
    session: SessionId,
    owner: Arc<OnceLock<UserId>>,
    level: Arc<AtomicU8>,
}

impl Session {
    pub(super) fn new(inner: Arc<Inner>) -> Self {
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
