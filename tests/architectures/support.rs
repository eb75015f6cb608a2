#![allow(dead_code)]
//! What the architecture tests share: who was asked what, in which order; a model that proves
//! calls run at once; a model that stops dead (a crash) at a chosen call.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use loomflow::model::{Capabilities, Message, Model, ModelError, ModelRequest, ModelResponse, Role};
use loomflow::prelude::*;
use loomflow::{EventKind, RunId};
use tokio::sync::{Barrier, Notify};

use crate::common::Recorder;

/// Each model call in order: the role for the run's own calls, `name:role` for a nested run's
/// (by the nested agent's name).
pub fn calls(recorder: &Recorder) -> Vec<String> {
    let events = recorder.events();
    let mut names: HashMap<RunId, String> = HashMap::new();
    let mut out = Vec::new();
    for e in &events {
        match &e.kind {
            EventKind::RunStarted { name, .. } => {
                names.insert(e.run_id, name.as_deref().unwrap_or("?").to_owned());
            }
            EventKind::ModelRequest { role, .. } => match e.parent {
                None => out.push(role.to_string()),
                Some(_) => {
                    let name = names.get(&e.run_id).cloned().unwrap_or_default();
                    out.push(format!("{name}:{role}"));
                }
            },
            _ => {}
        }
    }
    out
}

/// The architecture events, by name, with their payloads.
pub fn arch_events(recorder: &Recorder) -> Vec<(String, serde_json::Value)> {
    recorder
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Architecture { name, payload } => Some((name, payload)),
            _ => None,
        })
        .collect()
}

/// The names of the architecture events, in order.
pub fn arch_event_names(recorder: &Recorder) -> Vec<String> {
    arch_events(recorder).into_iter().map(|(n, _)| n).collect()
}

/// The system prompt of a request.
pub fn system(request: &ModelRequest<'_>) -> String {
    request.messages.iter().find(|m| m.role() == Role::System).map(|m| m.text().into_owned()).unwrap_or_default()
}

/// Every message of a request, as one text.
pub fn all_text(request: &ModelRequest<'_>) -> String {
    request.messages.iter().map(|m| m.text().into_owned()).collect::<Vec<_>>().join("\n")
}

/// The text of a request's last user message.
pub fn last_user(request: &ModelRequest<'_>) -> String {
    request.last_user_text().map(|t| t.into_owned()).unwrap_or_default()
}

/// Runs `run`, failing (instead of hanging) when calls meant to run at once ran one after
/// another and left a barrier waiting.
pub async fn at_once<T>(run: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(20), run).await {
        Ok(out) => out,
        Err(_) => panic!("the run did not finish: calls that should run at once ran one after another"),
    }
}

/// A model that answers like `inner`, after waiting at `barrier` when `gated` says so: the
/// gated calls can only finish when all of them are in flight together.
pub struct Gate {
    pub inner: ScriptedModel,
    pub barrier: Arc<Barrier>,
    pub gated: fn(&ModelRequest<'_>) -> bool,
}

impl Gate {
    pub fn all(inner: ScriptedModel, at_once: usize) -> Self {
        Self { inner, barrier: Arc::new(Barrier::new(at_once)), gated: |_| true }
    }
}

#[loomflow::async_trait]
impl Model for Gate {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn complete(&self, request: &ModelRequest<'_>) -> Result<ModelResponse, ModelError> {
        if (self.gated)(request) {
            self.barrier.wait().await;
        }
        self.inner.complete(request).await
    }
}

/// A model that answers like `inner` until call `dies_at` (from 1), which never returns: the
/// process died there. `reached` is notified when it gets there.
pub struct Crash {
    pub inner: ScriptedModel,
    pub dies_at: Option<usize>,
    pub calls: AtomicUsize,
    pub reached: Arc<Notify>,
    pub dies_when: Option<fn(&ModelRequest<'_>) -> bool>,
}

impl Crash {
    /// Dies at the `n`-th call.
    pub fn at(inner: ScriptedModel, n: usize) -> Self {
        Self { inner, dies_at: Some(n), calls: AtomicUsize::new(0), reached: Arc::new(Notify::new()), dies_when: None }
    }

    /// Dies at the first call `when` says.
    pub fn when(inner: ScriptedModel, when: fn(&ModelRequest<'_>) -> bool) -> Self {
        Self {
            inner,
            dies_at: None,
            calls: AtomicUsize::new(0),
            reached: Arc::new(Notify::new()),
            dies_when: Some(when),
        }
    }

    /// Never dies: the resumed process.
    pub fn never(inner: ScriptedModel) -> Self {
        Self { inner, dies_at: None, calls: AtomicUsize::new(0), reached: Arc::new(Notify::new()), dies_when: None }
    }
}

#[loomflow::async_trait]
impl Model for Crash {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn complete(&self, request: &ModelRequest<'_>) -> Result<ModelResponse, ModelError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.dies_at == Some(n) || self.dies_when.is_some_and(|f| f(request)) {
            self.reached.notify_one();
            std::future::pending::<()>().await;
        }
        self.inner.complete(request).await
    }
}

/// Runs `run` until `reached` is notified, then drops it: the process died mid-run.
pub async fn crash<T: std::fmt::Debug>(run: impl Future<Output = T>, reached: &Notify) {
    let run = std::pin::pin!(run);
    tokio::select! {
        out = run => panic!("the run was meant to die, and finished: {out:?}"),
        () = reached.notified() => {}
    }
}

/// A message's text.
pub fn text(m: &Message) -> String {
    m.text().into_owned()
}

/// The usage of every model call recorded, nested runs' included.
pub fn all_usage(recorder: &Recorder) -> Usage {
    let mut total = Usage::default();
    for e in recorder.events() {
        if let EventKind::ModelResponse { usage, .. } = e.kind {
            total += usage;
        }
    }
    total
}
