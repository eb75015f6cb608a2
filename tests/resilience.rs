//! Retries and fallback, on scripted models that fail as real providers do.

mod common;

use std::time::Duration;

use loomflow::model::{ModelErrorKind, RetryPolicy};
use loomflow::prelude::*;

fn overloaded() -> ScriptedTurn {
    ScriptedTurn::error(ModelError::new(ModelErrorKind::Overloaded, "scripted", "overloaded").with_status(529))
}

fn quick() -> RetryPolicy {
    RetryPolicy::attempts(3).with_delays(Duration::from_millis(1), Duration::from_millis(5))
}

#[tokio::test]
async fn transient_errors_are_retried_with_events() -> anyhow::Result<()> {
    let model = ScriptedModel::new([overloaded(), overloaded(), ScriptedTurn::text("finally")]);
    let recorder = common::Recorder::new();
    let agent = Agent::new("x").model(model.clone()).retry(quick());
    let result = agent.run("hi").on_event(recorder.listener()).await?;
    assert_eq!(result.output, "finally");
    assert_eq!(model.calls(), 3);
    let attempts: Vec<u32> = recorder
        .events()
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ModelRetry { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .collect();
    assert_eq!(attempts, [1, 2]);
    Ok(())
}

#[tokio::test]
async fn retries_run_out_and_permanent_errors_fail_at_once() {
    let model = ScriptedModel::new([overloaded(), overloaded(), overloaded(), ScriptedTurn::text("never")]);
    let agent = Agent::new("x").model(model.clone()).retry(quick());
    let err = agent.run("hi").await.err();
    assert!(matches!(&err, Some(Error::Model(e)) if e.kind() == ModelErrorKind::Overloaded && e.status() == Some(529)));
    assert_eq!(model.calls(), 3);

    let model =
        ScriptedModel::new([ScriptedTurn::error(ModelError::new(ModelErrorKind::BadRequest, "scripted", "bad"))]);
    let agent = Agent::new("x").model(model.clone()).retry(quick());
    assert!(agent.run("hi").await.is_err());
    assert_eq!(model.calls(), 1);
}

#[tokio::test]
async fn a_fallback_takes_over_after_the_retries() -> anyhow::Result<()> {
    let primary = ScriptedModel::new([overloaded(), overloaded()]).named("primary");
    let backup = ScriptedModel::new([ScriptedTurn::text("from the backup")]).named("backup");
    let recorder = common::Recorder::new();
    let agent = Agent::new("x")
        .model(primary.clone())
        .fallback(backup.clone())
        .retry(RetryPolicy::attempts(2).with_delays(Duration::from_millis(1), Duration::from_millis(2)));
    let result = agent.run("hi").on_event(recorder.listener()).await?;
    assert_eq!(result.output, "from the backup");
    assert_eq!((primary.calls(), backup.calls()), (2, 1));
    let switch = recorder.events().into_iter().find_map(|e| match e.kind {
        EventKind::ModelFallback { from, to, .. } => Some((from, to)),
        _ => None,
    });
    assert_eq!(switch, Some(("primary".to_owned(), "backup".to_owned())));

    // A permanent error does not fail over: the request itself is wrong.
    let primary =
        ScriptedModel::new([ScriptedTurn::error(ModelError::new(ModelErrorKind::Authentication, "p", "bad key"))]);
    let backup = ScriptedModel::new([ScriptedTurn::text("unused")]);
    let agent = Agent::new("x").model(primary).fallback(backup.clone()).retry(quick());
    assert!(agent.run("hi").await.is_err());
    assert_eq!(backup.calls(), 0);
    Ok(())
}
