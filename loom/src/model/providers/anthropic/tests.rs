//! Unit tests of the adapter: request bodies, replies, streams and errors.

use super::*;
use crate::model::ModelSettings;
use crate::tool::ToolDefinition;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn model(name: &str) -> Result<AnthropicModel, ConfigError> {
    AnthropicModel::new(name, HttpConfig::new("http://localhost:1/v1"))
}

fn parse(events: &str) -> (Vec<StreamEvent>, Result<bool, ModelError>) {
    let mut parser = EventParser::new();
    let mut out = Vec::new();
    for data in events.lines().filter(|l| !l.trim().is_empty()) {
        match parser.event(SseEvent { event: None, data: data.to_owned() }, &mut out) {
            Ok(false) => {}
            other => return (out, other),
        }
    }
    let end = parser.end(&mut out).map(|()| false);
    (out, end)
}

#[test]
fn tool_results_and_the_next_user_message_share_one_turn_results_first() {
    let conversation = [
        Message::system("Be brief."),
        Message::user("Weather in Paris and Oslo?"),
        Message::assistant_with_tools(
            "Checking.",
            vec![
                ToolCall::new("toolu_01A", "get_weather", r#"{"city":"Paris"}"#),
                ToolCall::new("toolu_01B", "get_weather", "not json"),
            ],
        ),
        Message::tool(ToolResult::ok("toolu_01A", "get_weather", "sunny")),
        Message::user("And quickly, please."),
        Message::tool(ToolResult::error("toolu_01B", "get_weather", "missing field `city`")),
    ];
    assert_eq!(
        Value::Array(messages(&conversation)),
        json!([
            {"role": "user", "content": "Weather in Paris and Oslo?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_01B", "name": "get_weather", "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_01B", "content": "missing field `city`", "is_error": true},
                {"type": "text", "text": "And quickly, please."}
            ]}
        ])
    );
}

#[test]
fn empty_turns_are_dropped_and_neighbours_merge() {
    let conversation = [
        Message::user("one"),
        Message::assistant(""),
        Message::user(" "),
        Message::user("two"),
        Message::assistant("Sure, "),
    ];
    assert_eq!(
        Value::Array(messages(&conversation)),
        json!([
            {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
            {"role": "assistant", "content": "Sure,"}
        ])
    );
}

#[test]
fn attachments_become_image_and_document_blocks() {
    let content = Content::Parts(vec![
        Part::text("Compare:"),
        Part::image_url("https://example.com/a.png"),
        Part::image_base64("image/png", "iVBORw0KGgo="),
        Part::Document {
            source: MediaSource::Base64 { media_type: "application/pdf".into(), data: "JVBERi0x".into() },
            name: Some("report.pdf".into()),
        },
        Part::Document {
            source: MediaSource::Base64 { media_type: "text/plain".into(), data: "aMOpbGxv".into() },
            name: None,
        },
    ]);
    assert_eq!(
        Value::Array(content_blocks(&content)),
        json!([
            {"type": "text", "text": "Compare:"},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "document", "title": "report.pdf",
             "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "héllo"}}
        ])
    );
}

#[test]
fn foreign_tool_ids_are_made_to_fit() {
    assert_eq!(tool_id("toolu_01A-b"), "toolu_01A-b");
    assert_eq!(tool_id("call:1/é"), "call_1__");
}

#[test]
fn thinking_is_left_out_where_the_api_would_refuse_it() -> TestResult {
    let m = model("claude-sonnet-4-5")?;
    let mut settings = ModelSettings::new();
    settings.effort = Some(Effort::Low);
    settings.temperature = Some(0.3);
    settings.top_p = Some(0.9);
    settings.max_tokens = Some(1000);
    let fresh = [Message::user("Think.")];
    let body = m.request_body(&ModelRequest::new(&fresh).with_settings(&settings), false);
    assert_eq!(body["thinking"], json!({"type": "enabled", "budget_tokens": 2048}));
    assert_eq!(body["max_tokens"], 2048 + 4096);
    assert!(body.get("temperature").is_none() && body.get("top_p").is_none(), "{body}");

    let looping = [
        Message::user("Think."),
        Message::assistant_with_tools("", vec![ToolCall::new("toolu_1", "f", "{}")]),
        Message::tool(ToolResult::ok("toolu_1", "f", "done")),
    ];
    let body = m.request_body(&ModelRequest::new(&looping).with_settings(&settings), false);
    assert!(body.get("thinking").is_none(), "{body}");
    assert_eq!(body["temperature"], 0.3);

    let tools = [ToolDefinition::new("f", "F.", json!({"type": "object", "properties": {}}))?];
    let choice = ToolChoice::Tool("f".into());
    let request = ModelRequest::new(&fresh).with_settings(&settings).with_tools(&tools).with_tool_choice(&choice);
    let body = m.request_body(&request, false);
    assert!(body.get("thinking").is_none(), "{body}");
    assert_eq!(body["tool_choice"], json!({"type": "tool", "name": "f"}));
    Ok(())
}

#[test]
fn tool_choice_forms_and_parallel_calls() -> TestResult {
    let m = model("claude-haiku-4-5")?.with_prompt_caching(false);
    let tools = [ToolDefinition::new("f", "F.", json!({"type": "object", "properties": {}}))?];
    let messages = [Message::user("go")];
    let mut settings = ModelSettings::new();
    settings.parallel_tool_calls = Some(false);
    for (choice, wire) in [
        (ToolChoice::Auto, json!({"type": "auto", "disable_parallel_tool_use": true})),
        (ToolChoice::Required, json!({"type": "any", "disable_parallel_tool_use": true})),
        (ToolChoice::Tool("f".into()), json!({"type": "tool", "name": "f", "disable_parallel_tool_use": true})),
        (ToolChoice::None, json!({"type": "none"})),
    ] {
        let request =
            ModelRequest::new(&messages).with_tools(&tools).with_tool_choice(&choice).with_settings(&settings);
        let body = m.request_body(&request, true);
        assert_eq!(body["tool_choice"], wire);
        assert_eq!(
            body["tools"],
            json!([{"name": "f", "description": "F.", "input_schema": {"type": "object", "properties": {}}}])
        );
        assert_eq!(body["stream"], true);
    }
    // Without tools, no tool choice; Claude 3 Haiku gets its own output limit.
    let body = model("claude-3-haiku-20240307")?.request_body(&ModelRequest::new(&messages), false);
    assert!(body.get("tool_choice").is_none() && body.get("tools").is_none() && body.get("system").is_none());
    assert_eq!(body["max_tokens"], 4096);
    Ok(())
}

#[test]
fn errors_are_classified_by_status_type_and_message() {
    let body = |t: &str, m: &str| json!({"type": "error", "error": {"type": t, "message": m}}).to_string();
    let too_long = body("invalid_request_error", "prompt is too long: 208764 tokens > 200000 maximum");
    assert_eq!(classify(400, &too_long), Some(ModelErrorKind::ContextLengthExceeded));
    let broke = body("invalid_request_error", "Your credit balance is too low to access the Anthropic API.");
    assert_eq!(classify(400, &broke), Some(ModelErrorKind::QuotaExceeded));
    assert_eq!(
        classify(400, &body("invalid_request_error", "max_tokens: must be positive")),
        Some(ModelErrorKind::BadRequest)
    );
    assert_eq!(classify(413, "<html>too big</html>"), Some(ModelErrorKind::ContextLengthExceeded));
    assert_eq!(classify(529, &body("overloaded_error", "Overloaded")), Some(ModelErrorKind::Overloaded));
    assert_eq!(classify(429, &body("rate_limit_error", "slow down")), None);
    assert_eq!(classify(500, "not json"), None);
}

#[test]
fn tool_calls_stream_with_their_own_index_and_empty_input_is_an_object() {
    let (events, done) = parse(concat!(
        r#"{"type":"message_start","message":{"id":"msg_1","model":"claude-sonnet-4-5","usage":{"input_tokens":9,"output_tokens":1,"cache_read_input_tokens":5}}}"#,
        "\n",
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        "\n",
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
        "\n",
        r#"{"type":"content_block_stop","index":0}"#,
        "\n",
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_A","name":"now","input":{}}}"#,
        "\n",
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#,
        "\n",
        r#"{"type":"content_block_stop","index":1}"#,
        "\n",
        r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_B","name":"add","input":{}}}"#,
        "\n",
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}"#,
        "\n",
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"1}"}}"#,
        "\n",
        r#"{"type":"content_block_stop","index":2}"#,
        "\n",
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":30}}"#,
        "\n",
        r#"{"type":"message_stop"}"#,
    ));
    assert!(matches!(done, Ok(true)), "{done:?}");
    assert_eq!(
        events,
        [
            StreamEvent::TextDelta("Hi".into()),
            StreamEvent::ToolCallStart { index: 0, id: "toolu_A".into(), name: "now".into() },
            StreamEvent::ToolCallDelta { index: 0, arguments: "{}".into() },
            StreamEvent::ToolCallStart { index: 1, id: "toolu_B".into(), name: "add".into() },
            StreamEvent::ToolCallDelta { index: 1, arguments: "{\"a\":".into() },
            StreamEvent::ToolCallDelta { index: 1, arguments: "1}".into() },
            StreamEvent::Usage(Usage::new(9, 30).with_cached_input_tokens(5)),
            StreamEvent::Finish(FinishReason::ToolCalls),
        ]
    );
}

#[test]
fn unknown_events_are_skipped_and_a_missing_message_stop_is_a_cut_stream() {
    let (events, end) = parse(concat!(
        r#"{"type":"ping"}"#,
        "\n",
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}}"#,
        "\n",
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"citations_delta","citation":{}}}"#,
        "\n",
        r#"{"type":"brand_new_event","x":1}"#,
        "\n",
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}"#,
    ));
    assert!(events.is_empty(), "{events:?}");
    assert!(end.is_err_and(|e| e.kind() == ModelErrorKind::Stream && e.is_transient()));
}

#[test]
fn stream_errors_are_typed() {
    for (kind, expected) in [
        ("overloaded_error", ModelErrorKind::Overloaded),
        ("api_error", ModelErrorKind::Overloaded),
        ("rate_limit_error", ModelErrorKind::RateLimited),
        ("invalid_request_error", ModelErrorKind::BadRequest),
        ("authentication_error", ModelErrorKind::Authentication),
        ("permission_error", ModelErrorKind::PermissionDenied),
        ("not_found_error", ModelErrorKind::NotFound),
    ] {
        let line = json!({"type": "error", "error": {"type": kind, "message": "Overloaded"}}).to_string();
        let (_, result) = parse(&line);
        let error = result.err();
        assert_eq!(error.as_ref().map(ModelError::kind), Some(expected), "{kind}");
        assert_eq!(error.as_ref().map(ModelError::message), Some("Overloaded"));
    }
    let (_, result) =
        parse(r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{"}}"#);
    assert!(result.is_err_and(|e| e.kind() == ModelErrorKind::Stream));
}

#[test]
fn a_whole_reply_with_thinking_and_an_error_body() -> TestResult {
    let reply = json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [
            {"type": "thinking", "thinking": "Add them.", "signature": "EqQB"},
            {"type": "redacted_thinking", "data": "EmwK"},
            {"type": "text", "text": "It is "},
            {"type": "text", "text": "3."},
            {"type": "tool_use", "id": "toolu_1", "name": "log", "input": {"n": 3}}
        ],
        "stop_reason": "refusal", "stop_sequence": null,
        "usage": {"input_tokens": 4, "output_tokens": 7, "cache_creation_input_tokens": null}
    });
    let r = parse_message(reply.to_string().as_bytes())?;
    assert_eq!((r.text.as_str(), r.reasoning.as_deref()), ("It is 3.", Some("Add them.")));
    assert_eq!(r.tool_calls, [ToolCall::new("toolu_1", "log", r#"{"n":3}"#)]);
    assert_eq!(r.finish_reason, FinishReason::ContentFilter);
    assert_eq!(r.usage, Usage::new(4, 7));
    assert_eq!(r.model.as_deref(), Some("claude-sonnet-4-5-20250929"));

    let error = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    let e = parse_message(error.to_string().as_bytes()).err();
    assert!(e.is_some_and(|e| e.kind() == ModelErrorKind::Overloaded && e.message() == "Overloaded"));
    let e = parse_message(b"{\"content\": 5}").err();
    assert!(e.is_some_and(|e| e.kind() == ModelErrorKind::InvalidResponse));
    Ok(())
}

#[test]
fn the_environment_base_url_gets_its_version_segment() {
    assert_eq!(versioned("https://api.anthropic.com"), "https://api.anthropic.com/v1");
    assert_eq!(versioned("https://api.anthropic.com/v1/"), "https://api.anthropic.com/v1");
    assert_eq!(versioned("http://localhost:8080/proxy"), "http://localhost:8080/proxy/v1");
}

#[test]
fn the_key_and_extra_headers_stay_out_of_debug() -> TestResult {
    let mut config = HttpConfig::new("http://localhost:1/v1");
    config.api_key = Some(ApiKey::new("sk-ant-test"));
    config.headers = vec![("x-proxy-token".into(), "proxy-secret".into())];
    let m = AnthropicModel::new("claude-sonnet-4-5", config)?;
    assert_eq!(&*m.url, "http://localhost:1/v1/messages");
    let shown = format!("{m:?}");
    assert!(!shown.contains("sk-ant-test") && !shown.contains("proxy-secret"), "{shown}");
    Ok(())
}
