//! Unit tests of the adapter: request bodies, replies, streams and errors.

use super::*;
use crate::id::UserId;
use crate::model::{ModelSettings, ToolResult};
use crate::tool::ToolDefinition;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn model(name: &str) -> Result<GeminiModel, ConfigError> {
    let mut config = HttpConfig::new("http://localhost:9/v1beta/");
    config.api_key = Some(ApiKey::new("k"));
    GeminiModel::new(name, config)
}

fn body(m: &GeminiModel, messages: &[Message]) -> Value {
    m.request_body(&ModelRequest::new(messages), false)
}

#[test]
fn model_names_become_resource_paths() -> TestResult {
    let m = model("gemini-2.5-flash")?;
    assert_eq!(&*m.generate_url, "http://localhost:9/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(&*m.stream_url, "http://localhost:9/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
    let tuned = model("tunedModels/my-model")?;
    assert_eq!(&*tuned.generate_url, "http://localhost:9/v1beta/tunedModels/my-model:generateContent");
    assert_eq!(model("models/gemini-2.5-pro")?.base_name(), "gemini-2.5-pro");
    for bad in ["", "gemini 2.5", "gemini?x", "gemini:generateContent"] {
        assert!(matches!(model(bad), Err(ConfigError::InvalidSetting { setting: "model", .. })), "{bad}");
    }
    let caps = m.capabilities();
    assert!(caps.tools && caps.streaming && caps.vision && caps.native_structured_output && !caps.prompt_caching);
    // The key never shows in debug output.
    assert!(!format!("{m:?}").contains("\"k\""));
    Ok(())
}

#[test]
fn contents_merge_turns_of_one_role_and_carry_media() -> TestResult {
    let m = model("gemini-2.5-flash")?;
    let messages = [
        Message::system("Be brief."),
        Message::system("Answer in French."),
        Message::user(vec![
            Part::text("What is in these?"),
            Part::image_base64("image/png", "iVBORw0KGgo="),
            Part::image_url("https://example.com/cat.JPG?size=large#top"),
            Part::Audio { source: MediaSource::Base64 { media_type: "audio/wav".into(), data: "UklGRg==".into() } },
            Part::Document { source: MediaSource::Url { url: "gs://bucket/report.pdf".into() }, name: None },
            Part::Document { source: MediaSource::Url { url: "https://example.com/data".into() }, name: None },
        ]),
        Message::user(""),
        Message::user("Also this."),
        Message::assistant("Un chat."),
    ];
    assert_eq!(
        body(&m, &messages),
        json!({
            "contents": [
                {"role": "user", "parts": [
                    {"text": "What is in these?"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                    {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.JPG?size=large#top"}},
                    {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
                    {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://bucket/report.pdf"}},
                    {"fileData": {"mimeType": "application/octet-stream", "fileUri": "https://example.com/data"}},
                    {"text": "Also this."}
                ]},
                {"role": "model", "parts": [{"text": "Un chat."}]}
            ],
            "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Answer in French."}]}
        })
    );
    Ok(())
}

#[test]
fn tool_calls_and_results_round_trip() -> TestResult {
    let m = model("gemini-2.5-flash")?;
    let messages = [
        Message::user("Go."),
        Message::assistant_with_tools(
            "On it.",
            vec![
                ToolCall::new("call_1", "add", r#"{"a": 1, "b": 2}"#),
                ToolCall::new("fc_7Yx", "add", "not json"),
                ToolCall::new("call_3", "add", "[1, 2]"),
            ],
        ),
        Message::tool(ToolResult::ok("call_1", "add", "3")),
        Message::tool(ToolResult {
            call_id: "fc_7Yx".into(),
            name: String::new(),
            content: "?".into(),
            is_error: true,
        }),
        Message::tool(ToolResult::ok("call_3", "add", "")),
    ];
    assert_eq!(
        body(&m, &messages)["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Go."}]},
            {"role": "model", "parts": [
                {"text": "On it."},
                {"functionCall": {"name": "add", "args": {"a": 1, "b": 2}}},
                {"functionCall": {"id": "fc_7Yx", "name": "add", "args": {}}},
                {"functionCall": {"name": "add", "args": {}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "add", "response": {"result": "3"}}},
                {"functionResponse": {"name": "add", "id": "fc_7Yx", "response": {"error": "?"}}},
                {"functionResponse": {"name": "add", "response": {"result": ""}}}
            ]}
        ])
    );
    assert!(sends_id("call_x1") && sends_id("call_") && !sends_id("call_12") && !sends_id(""));
    Ok(())
}

#[test]
fn thought_signatures_go_back_with_their_calls() -> TestResult {
    let reply = json!({"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"id": "a1", "name": "f", "args": {"x": 1}}, "thoughtSignature": "SIG"},
        {"functionCall": {"id": "a2", "name": "f", "args": {"x": 2}}}
    ]}, "finishReason": "STOP"}]});
    for name in ["gemini-2.5-flash", "gemini-3-pro-preview"] {
        let m = model(name)?;
        let response = parse_response(reply.to_string().as_bytes(), &m.signatures, None)?;
        assert_eq!(response.finish_reason, FinishReason::ToolCalls);
        let messages = [Message::user("q"), response.into_message()];
        assert_eq!(
            body(&m, &messages)["contents"][1]["parts"],
            json!([
                {"functionCall": {"id": "a1", "name": "f", "args": {"x": 1}}, "thoughtSignature": "SIG"},
                {"functionCall": {"id": "a2", "name": "f", "args": {"x": 2}}}
            ]),
            "{name}"
        );
    }
    // Calls Gemini 3 did not sign (another model's, or a restored history) say so; older
    // models need nothing.
    let foreign = [
        Message::user("q"),
        Message::assistant_with_tools(
            "",
            vec![ToolCall::new("call_abc", "f", "{}"), ToolCall::new("call_def", "f", "{}")],
        ),
    ];
    let parts = body(&model("gemini-3-flash-preview")?, &foreign)["contents"][1]["parts"].clone();
    assert_eq!(parts[0]["thoughtSignature"], UNSIGNED_CALL);
    assert!(parts[1].get("thoughtSignature").is_none());
    let parts = body(&model("gemini-2.5-pro")?, &foreign)["contents"][1]["parts"].clone();
    assert!(parts[0].get("thoughtSignature").is_none());
    Ok(())
}

#[test]
fn signatures_are_kept_per_user() -> TestResult {
    let m = model("gemini-3-flash-preview")?;
    let (alice, bob) = (UserId::new("alice")?, UserId::new("bob")?);
    let call = ToolCall::new("call_1", "f", "{}");
    m.signatures.record(Some(&alice), &call, "alice-reasoning".into());
    let history = [Message::user("q"), Message::assistant_with_tools("", vec![call])];
    let signed = |user: &UserId| {
        let request = ModelRequest::new(&history).with_user(user);
        m.request_body(&request, false)["contents"][1]["parts"][0]["thoughtSignature"].clone()
    };
    assert_eq!(signed(&alice), "alice-reasoning");
    // Bob's identical call does not get alice's signature: it goes out unsigned.
    assert_eq!(signed(&bob), UNSIGNED_CALL);
    Ok(())
}

#[test]
fn signatures_are_bounded() {
    let signatures = Signatures::default();
    for i in 0..MAX_SIGNATURES + 10 {
        signatures.record(None, &ToolCall::new(format!("c{i}"), "f", "{}"), format!("s{i}"));
    }
    assert_eq!(signatures.get(None, &ToolCall::new("c0", "f", "{}")), None);
    let last = MAX_SIGNATURES + 9;
    assert_eq!(signatures.get(None, &ToolCall::new(format!("c{last}"), "f", "{}")), Some(format!("s{last}")));
    assert_eq!(signatures.lock().order.len(), MAX_SIGNATURES);
    assert_eq!(format!("{signatures:?}"), format!("Signatures({MAX_SIGNATURES} calls)"));
}

#[test]
fn tool_choice_and_settings_map_to_the_wire() -> TestResult {
    let m = model("gemini-2.5-pro")?;
    let tools = [ToolDefinition::new("add", "Add.", json!({"type": "object", "properties": {}}))?];
    let messages = [Message::user("q")];
    let settings = ModelSettings {
        top_p: Some(0.9),
        stop: vec!["END".into()],
        effort: Some(Effort::Low),
        parallel_tool_calls: Some(false),
        ..ModelSettings::default()
    };
    for (choice, config) in [
        (ToolChoice::Auto, json!({"mode": "AUTO"})),
        (ToolChoice::None, json!({"mode": "NONE"})),
        (ToolChoice::Required, json!({"mode": "ANY"})),
        (ToolChoice::Tool("add".into()), json!({"mode": "ANY", "allowedFunctionNames": ["add"]})),
    ] {
        let request =
            ModelRequest::new(&messages).with_tools(&tools).with_tool_choice(&choice).with_settings(&settings);
        let body = m.request_body(&request, true);
        assert_eq!(body["toolConfig"], json!({"functionCallingConfig": config}));
        assert_eq!(
            body["generationConfig"],
            json!({"topP": 0.9, "stopSequences": ["END"], "thinkingConfig": {"thinkingBudget": 1024}})
        );
    }
    Ok(())
}

#[test]
fn classify_reads_gemini_error_bodies() {
    let body = |code: u16, status: &str, message: &str| {
        json!({"error": {"code": code, "message": message, "status": status}}).to_string()
    };
    let tokens =
        body(400, "INVALID_ARGUMENT", "The input token count (5) exceeds the maximum number of tokens allowed (4).");
    assert_eq!(classify(400, &tokens), Some(ModelErrorKind::ContextLengthExceeded));
    assert_eq!(classify(400, &format!("[{tokens}]")), Some(ModelErrorKind::ContextLengthExceeded));
    let billing = body(400, "FAILED_PRECONDITION", "Please enable billing on your project.");
    assert_eq!(classify(400, &billing), Some(ModelErrorKind::QuotaExceeded));
    let location = body(400, "FAILED_PRECONDITION", "User location is not supported for the API use.");
    assert_eq!(classify(400, &location), Some(ModelErrorKind::PermissionDenied));
    let key = json!({"error": {"code": 400, "message": "Bad key.", "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_EXPIRED"}]}});
    assert_eq!(classify(400, &key.to_string()), Some(ModelErrorKind::Authentication));
    assert_eq!(classify(400, &body(400, "INVALID_ARGUMENT", "Unknown name \"x\".")), None);
    assert_eq!(classify(429, &body(429, "RESOURCE_EXHAUSTED", "Check your plan and billing details.")), None);
    assert_eq!(classify(500, "<html>oops</html>"), None);
}

#[test]
fn finish_reasons_map() {
    assert_eq!(finish_reason(Some("STOP"), false), FinishReason::Stop);
    assert_eq!(finish_reason(None, true), FinishReason::ToolCalls);
    assert_eq!(finish_reason(Some("STOP"), true), FinishReason::ToolCalls);
    assert_eq!(finish_reason(Some("MAX_TOKENS"), true), FinishReason::Length);
    for r in ["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"] {
        assert_eq!(finish_reason(Some(r), false), FinishReason::ContentFilter, "{r}");
    }
    assert_eq!(
        finish_reason(Some("MALFORMED_FUNCTION_CALL"), false),
        FinishReason::Other("MALFORMED_FUNCTION_CALL".into())
    );
}

#[test]
fn replies_without_candidates_or_json_are_typed_errors() {
    let signatures = Signatures::default();
    let empty = parse_response(br#"{"modelVersion": "gemini-2.5-flash"}"#, &signatures, None).err();
    assert!(empty.is_some_and(|e| e.kind() == ModelErrorKind::InvalidResponse));
    let html = parse_response(b"<html>", &signatures, None).err();
    assert!(html.is_some_and(|e| e.kind() == ModelErrorKind::InvalidResponse));
    let blocked = json!({"promptFeedback": {"blockReason": "OTHER", "blockReasonMessage": "Not allowed."}});
    let blocked = parse_response(blocked.to_string().as_bytes(), &signatures, None).err();
    assert!(blocked.is_some_and(|e| e.kind() == ModelErrorKind::ContentFiltered
        && e.message() == "the prompt was blocked (OTHER): Not allowed."));
    // A safety stop with no content is an empty, filtered reply.
    let stopped = json!({"candidates": [{"finishReason": "SAFETY"}], "usageMetadata": {"promptTokenCount": 3}});
    let stopped = parse_response(stopped.to_string().as_bytes(), &signatures, None);
    assert!(stopped.is_ok_and(|r| r.text.is_empty()
        && r.finish_reason == FinishReason::ContentFilter
        && r.usage == Usage::new(3, 0)));
}

#[test]
fn stream_errors_are_typed_by_code_or_status() {
    let mut parser = ChunkParser::new(Arc::default(), None);
    let mut out = Vec::new();
    let event = |data: &str| SseEvent { event: None, data: data.to_owned() };
    let e = parser.event(event(r#"{"error": {"message": "slow down", "status": "RESOURCE_EXHAUSTED"}}"#), &mut out);
    assert!(e.is_err_and(|e| e.kind() == ModelErrorKind::RateLimited && e.message() == "slow down"));
    let e = parser.event(event(r#"[{"error": {"code": 400, "message": "The input token count (9) exceeds the maximum number of tokens allowed (8)."}}]"#), &mut out);
    assert!(e.is_err_and(|e| e.kind() == ModelErrorKind::ContextLengthExceeded));
    let e = parser.event(event(r#"{"error": {"message": "?"}}"#), &mut out);
    assert!(e.is_err_and(|e| e.kind() == ModelErrorKind::Overloaded));
    assert!(parser.event(event("  "), &mut out).is_ok_and(|done| !done));
    assert!(out.is_empty());
    assert!(parser.end(&mut out).is_err_and(|e| e.kind() == ModelErrorKind::Stream));
}

#[test]
fn usage_subtracts_the_cache_and_adds_thoughts() {
    let u = UsageMetadata {
        prompt_token_count: 100,
        candidates_token_count: 10,
        cached_content_token_count: 60,
        thoughts_token_count: 5,
        tool_use_prompt_token_count: 2,
    };
    assert_eq!(u.usage(), Usage::new(42, 15).with_cached_input_tokens(60).with_reasoning_tokens(5));
    assert_eq!(UsageMetadata { cached_content_token_count: 9, ..UsageMetadata::default() }.usage().input_tokens, 0);
}

#[test]
fn mime_types_come_from_the_extension() {
    assert_eq!(mime_from_url("https://x.test/a/b.webp"), "image/webp");
    assert_eq!(mime_from_url("https://x.test/song.MP3?dl=1"), "audio/mp3");
    assert_eq!(mime_from_url("https://x.test/v1.2/file"), "application/octet-stream");
    assert_eq!(mime_from_url("https://x.test/notes.txt#l3"), "text/plain");
    assert_eq!(mime_from_url(""), "application/octet-stream");
}
