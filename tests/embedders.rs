//! The embedders beside the hashing one: OpenAI's `/embeddings` (and compatible servers) against
//! a local server that answers as they do, and a local BERT model run with candle.

mod common;

use std::time::Duration;

use common::http::{MockServer, Reply};
use common::provider::fast_retries;
use loomflow::memory::{CandleEmbedder, Embedder, Memory, OpenAiEmbedder};
use loomflow::model::providers::{ApiKey, HttpConfig};
use loomflow::model::{ModelError, ModelErrorKind, RetryPolicy};
use loomflow::{ConfigError, UserId};
use serde_json::json;

/// A configuration that talks to `server`'s `/v1`, with a test key.
fn config(server: &MockServer) -> HttpConfig {
    let mut config = HttpConfig::new(format!("{}/v1", server.url));
    config.api_key = Some(ApiKey::new("sk-test"));
    config.read_timeout = Duration::from_secs(5);
    config
}

/// An embedder of a model Loom does not know (its length is learned), without retries.
fn local(server: &MockServer) -> anyhow::Result<OpenAiEmbedder> {
    Ok(OpenAiEmbedder::new("nomic-embed-text", config(server))?.retry(RetryPolicy::disabled()))
}

/// The error of embedding `texts` with `embedder`.
async fn error_of(embedder: &OpenAiEmbedder, texts: &[&str]) -> ModelError {
    match embedder.embed(texts).await {
        Err(e) => e,
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

#[tokio::test]
async fn a_reply_as_the_api_reference_shows_it_and_the_exact_request() -> anyhow::Result<()> {
    let reply = json!({
        "object": "list",
        "data": [
            {"object": "embedding", "embedding": [0.1, -0.2, 0.3, 0.4], "index": 0},
            {"object": "embedding", "embedding": [0.5, 0.6, -0.7, 0.8], "index": 1}
        ],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 8, "total_tokens": 8}
    });
    let server =
        MockServer::start(vec![Reply::json(200, &reply.to_string()).with_header("x-request-id", "req_1")]).await;
    let embedder = OpenAiEmbedder::new("text-embedding-3-small", config(&server))?.dimensions(4);
    assert_eq!((embedder.name(), embedder.dims()), ("openai:text-embedding-3-small@4", 4));
    let vectors = embedder.embed(&["The food was delicious", "and the waiter..."]).await?;
    assert_eq!(vectors, [vec![0.1, -0.2, 0.3, 0.4], vec![0.5, 0.6, -0.7, 0.8]]);

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/embeddings"));
    assert_eq!(r.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({
            "model": "text-embedding-3-small",
            "input": ["The food was delicious", "and the waiter..."],
            "encoding_format": "float",
            "dimensions": 4
        })
    );
    // Nothing to embed, nothing sent.
    assert!(embedder.embed(&[]).await?.is_empty());
    assert_eq!(server.requests().len(), 1);
    Ok(())
}

#[tokio::test]
async fn vectors_are_put_in_input_order_by_their_index() -> anyhow::Result<()> {
    let reply = json!({"object": "list", "data": [
        {"object": "embedding", "index": 2, "embedding": [0.0, 0.0, 1.0]},
        {"object": "embedding", "index": 0, "embedding": [1.0, 0.0, 0.0]},
        {"object": "embedding", "index": 1, "embedding": [0.0, 1.0, 0.0]}
    ]});
    let server = MockServer::start(vec![Reply::json(200, &reply.to_string())]).await;
    let embedder = local(&server)?;
    assert_eq!(embedder.dims(), 0, "not known before the first reply");
    let vectors = embedder.embed(&["a", "b", "c"]).await?;
    assert_eq!(vectors, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
    assert_eq!(embedder.dims(), 3, "learned from the reply");
    Ok(())
}

#[tokio::test]
async fn nulls_missing_indices_and_unknown_fields_are_tolerated() -> anyhow::Result<()> {
    // As some compatible servers send it: no `index`, `usage` null, `model` null, extra fields.
    let reply = r#"{
        "object": "list",
        "data": [
            {"object": "embedding", "embedding": [1, 2], "extra": {"a": null}},
            {"embedding": [3.5, 4], "index": null}
        ],
        "model": null,
        "usage": null,
        "id": "embd-1",
        "created": 1733000000
    }"#;
    let no_usage = r#"{"data": [{"embedding": [5, 6], "index": 0}]}"#;
    let server = MockServer::start(vec![Reply::json(200, reply), Reply::json(200, no_usage)]).await;
    let embedder = local(&server)?;
    assert_eq!(embedder.embed(&["a", "b"]).await?, [[1.0, 2.0], [3.5, 4.0]]);
    assert_eq!(embedder.embed(&["c"]).await?, [[5.0, 6.0]]);
    Ok(())
}

#[tokio::test]
async fn base64_vectors_are_decoded_as_little_endian_floats() -> anyhow::Result<()> {
    // A server that ignores `encoding_format: float` and answers base64.
    let reply = json!({"object": "list", "data": [
        {"object": "embedding", "index": 0, "embedding": "AACAPwAAIMAAAAA/"},
        {"object": "embedding", "index": 1, "embedding": "AACAPgAAAAAAAIC/"}
    ]});
    let server = MockServer::start(vec![Reply::json(200, &reply.to_string())]).await;
    let vectors = local(&server)?.embed(&["a", "b"]).await?;
    assert_eq!(vectors, [[1.0, -2.5, 0.5], [0.25, 0.0, -1.0]]);
    Ok(())
}

#[tokio::test]
async fn inputs_go_in_batches_and_blank_texts_get_zeros_without_a_request() -> anyhow::Result<()> {
    let one = |x: f32| json!({"data": [{"index": 0, "embedding": [x, 1.0]}]}).to_string();
    let two = |x: f32| json!({"data": [{"index": 0, "embedding": [x, 1.0]}, {"index": 1, "embedding": [x, 2.0]}]});
    let server = MockServer::start(vec![
        Reply::json(200, &two(1.0).to_string()),
        Reply::json(200, &two(2.0).to_string()),
        Reply::json(200, &one(3.0)),
        Reply::json(200, &one(4.0)),
    ])
    .await;
    let embedder = local(&server)?.max_batch(2);
    let vectors = embedder.embed(&["a", "b", "c", "d", "e"]).await?;
    assert_eq!(vectors, [[1.0, 1.0], [1.0, 2.0], [2.0, 1.0], [2.0, 2.0], [3.0, 1.0]]);
    let inputs: Vec<_> = server.requests().iter().map(|r| r.json()["input"].clone()).collect();
    assert_eq!(inputs, [json!(["a", "b"]), json!(["c", "d"]), json!(["e"])]);

    // OpenAI refuses an empty input: a blank text's vector is zeros, and it is not sent.
    let vectors = embedder.embed(&["", "f", "  "]).await?;
    assert_eq!(vectors, [[0.0, 0.0], [4.0, 1.0], [0.0, 0.0]]);
    assert_eq!(server.requests().last().map(|r| r.json()["input"].clone()), Some(json!(["f"])));
    assert_eq!(embedder.embed(&[""]).await?, [[0.0, 0.0]]);
    assert_eq!(server.requests().len(), 4);
    Ok(())
}

#[tokio::test]
async fn a_429_carries_its_retry_after_and_is_retried_then_succeeds() -> anyhow::Result<()> {
    let limited = || {
        Reply::json(429, r#"{"error": {"message": "Rate limit reached for requests", "type": "requests", "code": "rate_limit_exceeded"}}"#)
            .with_header("retry-after", "7")
            .with_header("x-request-id", "req_429")
    };
    let server = MockServer::start(vec![limited()]).await;
    let e = error_of(&local(&server)?, &["a"]).await;
    assert_eq!(e.kind(), ModelErrorKind::RateLimited);
    assert!(e.is_transient());
    assert_eq!(
        (e.status(), e.retry_after(), e.request_id()),
        (Some(429), Some(Duration::from_secs(7)), Some("req_429"))
    );
    assert!(e.message().contains("Rate limit reached"), "{e}");

    // With retries: a short Retry-After is waited for, then the call succeeds.
    let short = Reply::json(429, r#"{"error": {"message": "slow down"}}"#).with_header("retry-after-ms", "30");
    let ok = Reply::json(200, r#"{"data": [{"index": 0, "embedding": [1, 0]}]}"#);
    let server = MockServer::start(vec![short, ok]).await;
    let embedder = local(&server)?.retry(fast_retries());
    let started = std::time::Instant::now();
    assert_eq!(embedder.embed(&["a"]).await?, [[1.0, 0.0]]);
    assert!(started.elapsed() >= Duration::from_millis(30));
    assert_eq!(server.requests().len(), 2);

    // A wait past the policy's max_delay is not slept: the error says so, still transient.
    let server = MockServer::start(vec![limited()]).await;
    let e = error_of(&local(&server)?.retry(fast_retries()), &["a"]).await;
    assert!(e.is_transient() && e.message().contains("max_delay"), "{e}");
    assert_eq!(server.requests().len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_401_is_permanent_and_not_retried() -> anyhow::Result<()> {
    let body = r#"{"error": {"message": "Incorrect API key provided: sk-test.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}"#;
    let server = MockServer::start(vec![Reply::json(401, body)]).await;
    let embedder = local(&server)?.retry(fast_retries());
    let e = error_of(&embedder, &["a"]).await;
    assert_eq!((e.kind(), e.status(), e.is_transient()), (ModelErrorKind::Authentication, Some(401), false));
    assert_eq!(e.message(), "Incorrect API key provided: sk-test.");
    assert_eq!(server.requests().len(), 1);
    // A 5xx is transient.
    let server = MockServer::start(vec![Reply::json(503, r#"{"error": {"message": "busy"}}"#)]).await;
    let e = error_of(&local(&server)?, &["a"]).await;
    assert_eq!((e.kind(), e.is_transient()), (ModelErrorKind::Overloaded, true));
    Ok(())
}

#[tokio::test]
async fn malformed_and_inconsistent_replies_are_typed_errors_that_say_what_to_do() -> anyhow::Result<()> {
    let cases: [(&str, &[&str], &str); 8] = [
        ("<html>oops</html>", &["a"], "could not be read"),
        (r#"{"data": [{"index": 0, "embedding": {"x": 1}}]}"#, &["a"], "could not be read"),
        (r#"{"data": [{"index": 0, "embedding": "not base64!"}]}"#, &["a"], "not base64"),
        (r#"{"data": [{"index": 0, "embedding": [1, 2]}]}"#, &["a", "b"], "max_batch(1)"),
        (
            r#"{"data": [{"index": 0, "embedding": [1]}, {"index": 0, "embedding": [2]}]}"#,
            &["a", "b"],
            "two embeddings",
        ),
        (r#"{"data": [{"index": 5, "embedding": [1]}]}"#, &["a"], "input 5 of 1"),
        (
            r#"{"data": [{"index": 0, "embedding": [1, 2]}, {"index": 1, "embedding": [1]}]}"#,
            &["a", "b"],
            "of 2 and of 1",
        ),
        (r#"{"data": [{"index": 0}]}"#, &["a"], "no vector"),
    ];
    for (body, texts, says) in cases {
        let server = MockServer::start(vec![Reply::json(200, body)]).await;
        let e = error_of(&local(&server)?.retry(fast_retries()), texts).await;
        assert_eq!(e.kind(), ModelErrorKind::InvalidResponse, "{body}: {e}");
        assert!(!e.is_transient() && e.message().contains(says), "{body}: {e}");
        assert_eq!(server.requests().len(), 1, "not retried: {body}");
    }

    // Vectors of another length than the model's.
    let server = MockServer::start(vec![Reply::json(200, r#"{"data": [{"index": 0, "embedding": [1, 2, 3]}]}"#)]).await;
    let e = error_of(&local(&server)?.with_dims(768), &["a"]).await;
    assert_eq!(e.kind(), ModelErrorKind::InvalidResponse);
    assert!(e.message().contains("3 dimensions where 768") && e.message().contains("with_dims"), "{e}");

    // An error object in a 200 (some proxies) is the error it names.
    let server =
        MockServer::start(vec![Reply::json(200, r#"{"error": {"message": "no such model", "code": 404}}"#)]).await;
    let e = error_of(&local(&server)?, &["a"]).await;
    assert_eq!((e.kind(), e.message()), (ModelErrorKind::NotFound, "no such model"));
    Ok(())
}

#[tokio::test]
async fn memory_recalls_by_the_servers_vectors() -> anyhow::Result<()> {
    let vector = |v: [f32; 3]| Reply::json(200, &json!({"data": [{"index": 0, "embedding": v}]}).to_string());
    let server = MockServer::start(vec![
        vector([1.0, 0.0, 0.0]), // "Ann prefers trains to planes"
        vector([0.0, 1.0, 0.0]), // "Ann's cat is called Tom"
        vector([0.9, 0.1, 0.0]), // the query, which shares no word with either
    ])
    .await;
    let memory = Memory::in_memory().embedder(local(&server)?);
    let ann = UserId::new("ann")?;
    memory.remember(&ann, "note", "Ann prefers trains to planes").await?;
    memory.remember(&ann, "note", "Ann's cat is called Tom").await?;
    let recalled = memory.recall(&ann, "rail journeys").await?;
    assert_eq!(recalled[0].episode.text, "Ann prefers trains to planes");
    assert_eq!((recalled[0].word_rank, recalled[0].meaning_rank), (None, Some(1)));
    let inputs: Vec<_> = server.requests().iter().map(|r| r.json()["input"].clone()).collect();
    assert_eq!(
        inputs,
        [json!(["Ann prefers trains to planes"]), json!(["Ann's cat is called Tom"]), json!(["rail journeys"])]
    );
    Ok(())
}

#[test]
fn missing_or_wrong_model_files_are_errors_that_name_the_file() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("loom-embed-{}-missing", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let problem = |e: ConfigError| match e {
        ConfigError::ModelFile { path, problem } => (path, problem),
        other => panic!("expected a model-file error, got {other}"),
    };

    let (path, says) =
        problem(CandleEmbedder::from_dir(&dir).map(drop).err().ok_or_else(|| anyhow::anyhow!("loaded"))?);
    assert_eq!(path, dir.join("config.json"));
    assert!(says.contains("does not exist") && says.contains("model.safetensors"), "{says}");

    std::fs::create_dir_all(&dir)?;
    let config = json!({
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 384, "initializer_range": 0.02,
        "intermediate_size": 1536, "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
        "num_attention_heads": 12, "num_hidden_layers": 6, "pad_token_id": 0, "type_vocab_size": 2, "vocab_size": 30522
    });
    std::fs::write(dir.join("config.json"), config.to_string())?;
    let (path, says) =
        problem(CandleEmbedder::from_dir(&dir).map(drop).err().ok_or_else(|| anyhow::anyhow!("loaded"))?);
    assert_eq!(path, dir.join("tokenizer.json"));
    assert!(says.contains("missing"), "{says}");

    let mut roberta = config.clone();
    roberta["model_type"] = json!("xlm-roberta");
    std::fs::write(dir.join("config.json"), roberta.to_string())?;
    let (path, says) =
        problem(CandleEmbedder::from_dir(&dir).map(drop).err().ok_or_else(|| anyhow::anyhow!("loaded"))?);
    assert_eq!(path, dir.join("config.json"));
    assert!(says.contains("xlm-roberta"), "{says}");

    std::fs::write(dir.join("config.json"), r#"{"hidden_size": 384}"#)?;
    let e = CandleEmbedder::from_dir(&dir).map(drop).err().ok_or_else(|| anyhow::anyhow!("loaded"))?;
    assert!(e.to_string().contains("config.json") && e.to_string().contains("not a BERT config"), "{e}");

    std::fs::write(dir.join("config.json"), config.to_string())?;
    std::fs::write(dir.join("tokenizer.json"), "{}")?;
    let (path, _) = problem(CandleEmbedder::from_dir(&dir).map(drop).err().ok_or_else(|| anyhow::anyhow!("loaded"))?);
    assert_eq!(path, dir.join("tokenizer.json"));
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// The directory of all-MiniLM-L6-v2 (`.ci/run` fetches it). The test that needs it is
/// `#[ignore]`d: without the variable it fails, it never passes by skipping.
fn minilm() -> CandleEmbedder {
    CandleEmbedder::from_env().unwrap_or_else(|e| {
        panic!(
            "{e}; `.ci/run` fetches all-MiniLM-L6-v2 and sets LOOM_EMBED_MODEL_DIR, or run without --include-ignored"
        )
    })
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>() / (norm(a) * norm(b))
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[tokio::test]
#[ignore = "needs the all-MiniLM-L6-v2 files: LOOM_EMBED_MODEL_DIR (.ci/run fetches them)"]
async fn minilm_gives_the_published_sentence_transformers_similarities() -> anyhow::Result<()> {
    let embedder = minilm();
    assert_eq!(embedder.dims(), 384);
    let texts = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."];
    let v = embedder.embed(&texts).await?;
    assert_eq!(v.len(), 3);
    assert!(v.iter().all(|v| v.len() == 384 && (norm(v) - 1.0).abs() < 1e-4));
    let (sunny, stadium) = (cosine(&v[0], &v[1]), cosine(&v[0], &v[2]));
    assert!((sunny - 0.6660).abs() < 1e-3, "{sunny}");
    assert!((stadium - 0.1046).abs() < 1e-3, "{stadium}");

    // One at a time (no padding at all) or in a batch with a long text: the same vectors.
    let long = "word ".repeat(2000);
    let batch = embedder.max_batch(2).embed_blocking(&[texts[0], long.as_str(), texts[1]])?;
    for (alone, batched) in [(&v[0], &batch[0]), (&v[1], &batch[2])] {
        assert!(cosine(alone, batched) > 0.9999, "{}", cosine(alone, batched));
    }

    // Through memory: recall by meaning with no shared word.
    let memory = Memory::in_memory().embedder(minilm());
    let ann = UserId::new("ann")?;
    memory.remember(&ann, "note", "Ann takes the train to work every day").await?;
    memory.remember(&ann, "note", "The quarterly invoice totals are due").await?;
    let recalled = memory.recall(&ann, "how does she commute by rail?").await?;
    assert_eq!(recalled[0].episode.text, "Ann takes the train to work every day");
    Ok(())
}
