//! What every provider adapter must do against a server that fails, run by each provider's
//! tests with its own fixtures: typed errors, retries, a cut stream, a timeout.

use std::time::Duration;

use futures::StreamExt as _;
use loomflow::model::providers::{ApiKey, HttpConfig};
use loomflow::model::{ModelErrorKind, ModelRequest, ModelResponse, ResponseAccumulator, RetryPolicy, StreamEvent};
use loomflow::prelude::*;

use super::Recorder;
use super::http::{MockServer, Reply};

/// One adapter, as the shared scenarios see it.
pub struct Provider<M> {
    /// The fixture folder under `tests/fixtures`.
    pub fixtures: &'static str,
    /// The path of the API root on the test server (`/v1`, `/v1beta`).
    pub root: &'static str,
    /// A test key.
    pub key: &'static str,
    /// The model for a configuration.
    pub make: fn(HttpConfig) -> M,
    /// The fixture of a plain text reply, and its text.
    pub text_reply: &'static str,
    pub text: &'static str,
}

/// Retries fast enough for tests.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy::attempts(3).with_delays(Duration::from_millis(1), Duration::from_millis(50))
}

impl<M: Model + 'static> Provider<M> {
    /// A fixture's text.
    pub fn fixture(&self, name: &str) -> String {
        let path = format!("{}/fixtures/{}/{name}", env!("CARGO_MANIFEST_DIR"), self.fixtures);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// A configuration that talks to `server`, with a test key.
    pub fn config(&self, server: &MockServer) -> HttpConfig {
        let mut config = HttpConfig::new(format!("{}{}", server.url, self.root));
        config.api_key = Some(ApiKey::new(self.key));
        config.read_timeout = Duration::from_secs(5);
        config
    }

    /// The model, talking to `server`.
    pub fn model(&self, server: &MockServer) -> M {
        (self.make)(self.config(server))
    }

    /// The error of a request answered by `reply`.
    pub async fn error_of(&self, reply: Reply) -> ModelError {
        let server = MockServer::start(vec![reply]).await;
        let messages = [Message::user("hi")];
        match self.model(&server).complete(&ModelRequest::new(&messages)).await {
            Err(e) => e,
            Ok(r) => panic!("expected an error, got {r:?}"),
        }
    }

    /// `limited` (a 429 that asks to wait 40 ms) is retried after at least that long, and the
    /// retry succeeds.
    pub async fn a_rate_limit_is_waited_out_then_retried(&self, limited: Reply) -> anyhow::Result<()> {
        let ok = Reply::json(200, &self.fixture(self.text_reply));
        let server = MockServer::start(vec![limited, ok]).await;
        let recorder = Recorder::new();
        let agent = Agent::new("x").model(self.model(&server)).retry(fast_retries());
        let result = agent.run("hi").on_event(recorder.listener()).await?;
        assert_eq!(result.output, self.text);
        assert_eq!(server.requests().len(), 2);
        let delay = recorder.events().iter().find_map(|e| match &e.kind {
            EventKind::ModelRetry { delay, attempt: 1, .. } => Some(*delay),
            _ => None,
        });
        // Retry-After is a floor under the (tiny) backoff.
        assert!(delay.is_some_and(|d| d >= Duration::from_millis(40)), "{delay:?}");
        Ok(())
    }

    /// A 500 is retried and the retry succeeds; `permanent` (an authentication error) is not
    /// retried.
    pub async fn a_500_is_retried_and_a_permanent_error_is_not(&self, permanent: Reply) -> anyhow::Result<()> {
        let server = MockServer::start(vec![
            Reply::json(500, &self.fixture("error_500.json")),
            Reply::json(200, &self.fixture(self.text_reply)),
        ])
        .await;
        let agent = Agent::new("x").model(self.model(&server)).retry(fast_retries());
        assert_eq!(agent.run("hi").await?.output, self.text);
        assert_eq!(server.requests().len(), 2);

        let server = MockServer::start(vec![permanent]).await;
        let agent = Agent::new("x").model(self.model(&server)).retry(fast_retries());
        let err = agent.run("hi").await.err();
        assert!(matches!(&err, Some(Error::Model(e)) if e.kind() == ModelErrorKind::Authentication), "{err:?}");
        assert_eq!(server.requests().len(), 1);
        Ok(())
    }

    /// A connection dropped after some text streamed (`stream_text.sse`, cut before
    /// ` wörld`) is a transient error, and the run does not quietly start over.
    pub async fn a_dropped_stream_is_transient_and_not_restarted(&self) -> anyhow::Result<()> {
        let body = self.fixture("stream_text.sse");
        let cut = body.find(" wörld").unwrap_or(body.len() / 2);
        let server = MockServer::start(vec![Reply::sse_dropped(&body, cut), Reply::sse(&body, 8)]).await;
        let agent = Agent::new("x").model(self.model(&server)).retry(fast_retries());
        match agent.run("hi").stream().finish().await {
            Err(Error::Model(e)) => assert!(e.is_transient(), "{e}"),
            other => anyhow::bail!("expected a model error, got {other:?}"),
        }
        assert_eq!(server.requests().len(), 1);
        Ok(())
    }

    /// `body`, a stream with malformed data, ends in a transient stream error.
    pub async fn malformed_stream_data_is_a_transient_error(&self, body: &str) {
        let server = MockServer::start(vec![Reply::sse(body, 4)]).await;
        let messages = [Message::user("hi")];
        let events: Vec<_> = self.model(&server).stream(&ModelRequest::new(&messages)).collect().await;
        let err = events.into_iter().find_map(Result::err);
        assert!(
            err.as_ref().is_some_and(|e| e.kind() == ModelErrorKind::Stream
                && e.is_transient()
                && e.message().contains("malformed")),
            "{err:?}"
        );
    }

    /// A server that never answers hits the timeout, streamed or not.
    pub async fn a_slow_server_hits_the_timeout(&self) {
        for streamed in [false, true] {
            let server = MockServer::start(vec![Reply::Hang]).await;
            let mut config = self.config(&server);
            config.read_timeout = Duration::from_millis(200);
            config.timeout = Duration::from_millis(300);
            let m = (self.make)(config);
            let messages = [Message::user("hi")];
            let request = ModelRequest::new(&messages);
            let err = if streamed { stream_all(&m, &request).await.err() } else { m.complete(&request).await.err() };
            assert!(
                err.as_ref().is_some_and(|e| e.kind() == ModelErrorKind::Timeout && e.is_transient()),
                "streamed: {streamed}, {err:?}"
            );
        }
    }
}

/// Streams `request` and assembles the reply, with the events it came as; the first error
/// ends it.
pub async fn stream_all(
    m: &dyn Model,
    request: &ModelRequest<'_>,
) -> Result<(Vec<StreamEvent>, ModelResponse), ModelError> {
    let mut events = Vec::new();
    let mut acc = ResponseAccumulator::new();
    let mut stream = m.stream(request);
    while let Some(e) = stream.next().await {
        let e = e?;
        acc.push(&e);
        events.push(e);
    }
    Ok((events, acc.finish(m.name())?))
}
