//! Typed outputs: parsing, feedback and retries, validation, and the three output modes.

mod common;

use loomflow::model::{Capabilities, Message, ModelResponse, ToolChoice};
use loomflow::output::{FINAL_ANSWER_TOOL, OutputError};
use loomflow::prelude::*;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
struct CityTemp {
    city: String,
    temp_c: f64,
}

impl Validate for CityTemp {
    fn validate(&self) -> Result<(), String> {
        if (-90.0..=60.0).contains(&self.temp_c) {
            Ok(())
        } else {
            Err(format!("temp_c must be between -90 and 60, not {}", self.temp_c))
        }
    }
}

fn paris() -> CityTemp {
    CityTemp { city: "Paris".into(), temp_c: 21.5 }
}

fn output_error(err: Error) -> anyhow::Result<OutputError> {
    match err {
        Error::Output(e) => Ok(e),
        other => anyhow::bail!("expected an output error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_malformed_answer_is_corrected_after_feedback() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::text(r#"{"city": "Paris", "temp_c": 21.5"#),
        ScriptedTurn::text(r#"{"city": "Paris", "temp_c": 21.5}"#),
    ]);
    let recorder = common::Recorder::new();
    let agent = Agent::new("Extract.").model(model.clone()).output::<CityTemp>();
    let result = agent.run("Paris is at 21.5 degrees").on_event(recorder.listener()).await?;
    assert_eq!(result.output, paris());
    assert_eq!(result.turns, 2);

    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    // The second request carries the bad answer and the feedback, which names the problem.
    let feedback = requests[1].last_text();
    assert!(matches!(requests[1].messages.last(), Some(Message::User { .. })));
    assert!(
        feedback.starts_with("That answer could not be used: the JSON is malformed: EOF while parsing"),
        "{feedback}"
    );
    assert_eq!(requests[1].messages[requests[1].messages.len() - 2].text(), r#"{"city": "Paris", "temp_c": 21.5"#);
    // Retry turns offer no tools.
    assert!(requests[1].tools.is_empty());
    assert!(recorder.kinds().contains(&"output_rejected"), "{:?}", recorder.kinds());
    Ok(())
}

#[tokio::test]
async fn retries_run_out_with_every_attempt_kept() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::text("It is warm in Paris."),
        ScriptedTurn::text(r#"{"city": "Paris", "temp_c": "warm"}"#),
        ScriptedTurn::text("never asked"),
    ]);
    let agent = Agent::new("Extract.").model(model.clone()).output::<CityTemp>();
    let err = output_error(agent.run("Paris?").await.err().ok_or_else(|| anyhow::anyhow!("must fail"))?)?;
    assert_eq!(err.attempts.len(), 2);
    assert_eq!(err.attempts[0].raw, "It is warm in Paris.");
    assert_eq!(err.attempts[0].error, "the answer contains no JSON object");
    assert_eq!(err.raw(), r#"{"city": "Paris", "temp_c": "warm"}"#);
    assert_eq!(err.error(), "`temp_c`: invalid type: string \"warm\", expected f64");
    assert_eq!(
        err.to_string(),
        "the model's answer did not match `CityTemp` after 2 attempt(s): `temp_c`: invalid type: string \"warm\", expected f64"
    );
    assert_eq!(model.calls(), 2);
    Ok(())
}

#[tokio::test]
async fn zero_retries_fail_at_the_first_bad_answer() -> anyhow::Result<()> {
    let model = ScriptedModel::new([ScriptedTurn::text("{}")]);
    let agent = Agent::new("Extract.").model(model.clone()).output::<CityTemp>().output_retries(0);
    let err = output_error(agent.run("x").await.err().ok_or_else(|| anyhow::anyhow!("must fail"))?)?;
    assert_eq!(err.error(), "missing field `city`");
    assert_eq!(model.calls(), 1);
    Ok(())
}

#[tokio::test]
async fn fenced_and_prose_wrapped_json_parse() -> anyhow::Result<()> {
    for reply in [
        "```json\n{\"city\": \"Paris\", \"temp_c\": 21.5}\n```",
        "Here is the data you asked for: {\"city\": \"Paris\", \"temp_c\": 21.5}. Anything else?",
    ] {
        let model = ScriptedModel::new([ScriptedTurn::text(reply)]);
        let agent = Agent::new("Extract.").model(model).output::<CityTemp>();
        let result = agent.run("x").await?;
        assert_eq!(result.output, paris());
        assert_eq!(result.turns, 1);
    }
    Ok(())
}

#[tokio::test]
async fn a_trailing_comma_is_not_accepted_silently() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::text(r#"{"city": "Paris", "temp_c": 21.5,}"#),
        ScriptedTurn::text(r#"{"city": "Paris", "temp_c": 21.5}"#),
    ]);
    let agent = Agent::new("Extract.").model(model.clone()).output::<CityTemp>();
    agent.run("x").await?;
    assert!(model.requests()[1].last_text().contains("trailing comma"));
    Ok(())
}

#[tokio::test]
async fn validation_failures_go_back_to_the_model() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::text(r#"{"city": "Paris", "temp_c": 215}"#),
        ScriptedTurn::text(r#"{"city": "Paris", "temp_c": 21.5}"#),
    ]);
    let agent = Agent::new("Extract.")
        .model(model.clone())
        .output::<CityTemp>()
        .validated()
        .validator(|t| if t.city.is_empty() { Err("city must not be empty".into()) } else { Ok(()) });
    let result = agent.run("x").await?;
    assert_eq!(result.output, paris());
    assert_eq!(
        model.requests()[1].last_text(),
        "That answer could not be used: temp_c must be between -90 and 60, not 215. Reply again with only the corrected JSON."
    );
    Ok(())
}

#[tokio::test]
async fn prompted_mode_puts_the_schema_in_the_instructions() -> anyhow::Result<()> {
    let model = ScriptedModel::new([ScriptedTurn::text(r#"{"city": "Paris", "temp_c": 21.5}"#)]);
    let agent = Agent::new("Extract the weather.").model(model.clone()).output::<CityTemp>();
    agent.run("x").await?;
    let request = &model.requests()[0];
    let system = request.messages[0].text();
    assert!(system.starts_with("Extract the weather.\n\nOutput format:"), "{system}");
    assert!(system.contains("\"temp_c\""));
    assert!(request.response_format.is_none());
    Ok(())
}

/// Look up the temperature of a city.
#[tool(read_only)]
fn temperature(city: String) -> f64 {
    if city == "Paris" { 21.5 } else { 0.0 }
}

#[tokio::test]
async fn tool_mode_calls_tools_first_then_answers_through_final_answer() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("temperature", json!({"city": "Paris"})),
        ScriptedTurn::tool_call(FINAL_ANSWER_TOOL, json!({"city": "Paris", "temp_c": 21.5})),
    ]);
    let agent = Agent::new("Report the weather.")
        .model(model.clone())
        .tool(TemperatureTool)
        .output::<CityTemp>()
        .output_mode(OutputMode::Tool);
    let result = agent.run("How warm is Paris?").await?;
    assert_eq!(result.output, paris());
    assert_eq!((result.turns, result.tool_calls), (2, 1));

    let requests = model.requests();
    // Tool turns are not forced towards the answer, and no response format is sent.
    for r in &requests {
        assert_eq!(r.tool_choice, ToolChoice::Auto);
        assert!(r.response_format.is_none());
        assert_eq!(r.tool_names(), ["temperature", FINAL_ANSWER_TOOL]);
    }
    // The final answer call is closed with a result, so the history stays valid.
    assert!(matches!(result.messages.last(), Some(Message::Tool(r)) if r.name == FINAL_ANSWER_TOOL && !r.is_error));
    Ok(())
}

#[tokio::test]
async fn a_bad_final_answer_call_gets_an_error_result_and_a_forced_retry() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call(FINAL_ANSWER_TOOL, json!({"city": "Paris"})),
        ScriptedTurn::tool_call(FINAL_ANSWER_TOOL, json!({"city": "Paris", "temp_c": 21.5})),
    ]);
    let agent = Agent::new("Report.").model(model.clone()).output::<CityTemp>().output_mode(OutputMode::Tool);
    let result = agent.run("x").await?;
    assert_eq!(result.output, paris());
    let requests = model.requests();
    // Without tools of its own, the agent forces the final answer from the start.
    assert_eq!(requests[0].tool_choice, ToolChoice::Tool(FINAL_ANSWER_TOOL.into()));
    match requests[1].messages.last() {
        Some(Message::Tool(r)) => {
            assert!(r.is_error);
            assert_eq!(
                r.content.text(),
                "That answer could not be used: missing field `temp_c`. Call `final_answer` again with arguments that match its schema."
            );
        }
        other => anyhow::bail!("expected a tool result, got {other:?}"),
    }
    assert_eq!(requests[1].tool_names(), [FINAL_ANSWER_TOOL]);
    Ok(())
}

#[tokio::test]
async fn native_mode_sends_the_schema_only_on_turns_without_tools() -> anyhow::Result<()> {
    let native = Capabilities::default().with_native_structured_output(true);
    // No tools: the response format constrains the first answer.
    let model =
        ScriptedModel::new([ScriptedTurn::text(r#"{"city": "Paris", "temp_c": 21.5}"#)]).with_capabilities(native);
    let agent = Agent::new("Extract.").model(model.clone()).output::<CityTemp>();
    agent.run("x").await?;
    let format = model.requests()[0].response_format.clone().ok_or_else(|| anyhow::anyhow!("no format"))?;
    assert_eq!(format.name, "CityTemp");
    assert_eq!(format.strict.as_deref().map(|s| &s["additionalProperties"]), Some(&json!(false)));
    // The instructions carry no schema in native mode.
    assert_eq!(model.requests()[0].messages[0].text(), "Extract.");

    // With tools: tool turns go without the format; the retry after a bad answer has it.
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("temperature", json!({"city": "Paris"})),
        ScriptedTurn::text("It is 21.5 degrees."),
        ScriptedTurn::text(r#"{"city": "Paris", "temp_c": 21.5}"#),
    ])
    .with_capabilities(native);
    let agent = Agent::new("Extract.").model(model.clone()).tool(TemperatureTool).output::<CityTemp>();
    let result = agent.run("x").await?;
    assert_eq!(result.output, paris());
    let requests = model.requests();
    assert!(requests[0].response_format.is_none());
    assert!(requests[1].response_format.is_none());
    assert!(requests[2].response_format.is_some());
    assert!(requests[2].tools.is_empty());
    Ok(())
}

#[tokio::test]
async fn non_object_outputs_are_wrapped_for_the_providers() -> anyhow::Result<()> {
    #[derive(Debug, PartialEq, Deserialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    enum Sentiment {
        Positive,
        Negative,
    }
    let model = ScriptedModel::new([ScriptedTurn::tool_call(FINAL_ANSWER_TOOL, json!({"value": "negative"}))]);
    let agent = Agent::new("Classify.").model(model.clone()).output::<Sentiment>().output_mode(OutputMode::Tool);
    assert_eq!(agent.run("awful").await?.output, Sentiment::Negative);
    let params = model.requests()[0].tools[0].parameters().clone();
    assert_eq!(params["properties"]["value"]["enum"], json!(["positive", "negative"]));

    // A bare value is accepted too.
    let model = ScriptedModel::new([ScriptedTurn::text("\"positive\"")]);
    let agent = Agent::new("Classify.").model(model).output::<Sentiment>();
    assert_eq!(agent.run("great").await?.output, Sentiment::Positive);
    Ok(())
}

#[tokio::test]
async fn a_typed_run_continues_a_session() -> anyhow::Result<()> {
    let model =
        ScriptedModel::new([ScriptedTurn::text("Noted."), ScriptedTurn::text(r#"{"city": "Oslo", "temp_c": -3}"#)]);
    let chat = Agent::new("Chat.").model(model.clone());
    chat.run("It is -3 in Oslo.").user("u").session("s").await?;
    let extract = Agent::new("Chat.").model(model).sessions(chat.session_store().clone()).output::<CityTemp>();
    let result = extract.run("Give me that as data.").user("u").session("s").await?;
    assert_eq!(result.output, CityTemp { city: "Oslo".into(), temp_c: -3.0 });
    Ok(())
}

#[tokio::test]
async fn a_streamed_typed_output_fills_in_field_by_field() -> anyhow::Result<()> {
    use futures::StreamExt as _;

    let model = ScriptedModel::new([ScriptedTurn::text(r#"{"city": "Paris", "temp_c": 21.5}"#)]);
    let agent = Agent::new("Extract.").model(model).output::<CityTemp>();
    let mut stream = agent.run("x").stream();
    let mut partials = Vec::new();
    while let Some(event) = stream.next().await {
        if let EventKind::PartialOutput { value, .. } = event.kind {
            partials.push(value);
        }
    }
    assert_eq!(partials, [json!({}), json!({"city": "Paris"}), json!({"city": "Paris", "temp_c": 21.5})]);
    assert_eq!(stream.into_result()?.output, paris());

    // In tool mode the partial value comes from the final answer's arguments.
    let model =
        ScriptedModel::new([ScriptedTurn::tool_call(FINAL_ANSWER_TOOL, json!({"city": "Paris", "temp_c": 21.5}))]);
    let agent = Agent::new("Extract.").model(model).output::<CityTemp>().output_mode(OutputMode::Tool);
    let mut stream = agent.run("x").stream();
    let mut last = None;
    while let Some(event) = stream.next().await {
        if let EventKind::PartialOutput { value, .. } = event.kind {
            last = Some(value);
        }
    }
    assert_eq!(last, Some(json!({"city": "Paris", "temp_c": 21.5})));
    Ok(())
}

/// Streams the start of a `final_answer` call, then the connection drops; counts its calls.
struct CutAfterAPartialAnswer(std::sync::atomic::AtomicUsize);

#[async_trait]
impl Model for CutAfterAPartialAnswer {
    fn name(&self) -> &str {
        "cut"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default().with_tools(true).with_streaming(true)
    }

    async fn complete(&self, _: &loomflow::model::ModelRequest<'_>) -> Result<ModelResponse, ModelError> {
        Err(ModelError::new(loomflow::ModelErrorKind::Connection, "cut", "not used"))
    }

    fn stream<'a>(&'a self, _: &'a loomflow::model::ModelRequest<'a>) -> loomflow::model::ModelStream<'a> {
        use loomflow::model::StreamEvent;
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(futures::stream::iter([
            Ok(StreamEvent::ToolCallStart { index: 0, id: "c1".into(), name: FINAL_ANSWER_TOOL.into() }),
            Ok(StreamEvent::ToolCallDelta { index: 0, arguments: r#"{"city": "Paris", "#.into() }),
            Err(ModelError::new(loomflow::ModelErrorKind::Connection, "cut", "connection reset")),
        ]))
    }
}

#[tokio::test]
async fn a_stream_that_showed_a_partial_value_is_not_restarted() -> anyhow::Result<()> {
    use futures::StreamExt as _;

    let model = std::sync::Arc::new(CutAfterAPartialAnswer(std::sync::atomic::AtomicUsize::new(0)));
    let agent = Agent::new("Extract.")
        .model(std::sync::Arc::clone(&model) as std::sync::Arc<dyn Model>)
        .output::<CityTemp>()
        .output_mode(OutputMode::Tool)
        .retry(loomflow::model::RetryPolicy::attempts(3));
    let mut stream = agent.run("x").stream();
    let mut partials = Vec::new();
    while let Some(event) = stream.next().await {
        if let EventKind::PartialOutput { value, .. } = event.kind {
            partials.push(value);
        }
    }
    assert_eq!(partials.last(), Some(&json!({"city": "Paris"})));
    let result = stream.into_result();
    assert!(matches!(&result, Err(Error::Model(e)) if e.is_transient()), "{result:?}");
    // The listener saw part of an answer: the call was not quietly made again.
    assert_eq!(model.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    Ok(())
}
