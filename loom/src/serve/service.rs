//! A built server: what its requests share, its routes, and how it serves and shuts down.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use bytes::Bytes;
use serde::Serialize;

use super::auth::Auth;
use super::error::ServeError;
use super::runs::Runs;
use super::target::Served;
use super::{native, openai};
use crate::session::SessionStore;

/// `GET /v1/models`, written once.
pub(super) fn models_json(names: &[Arc<str>], created: u64) -> Bytes {
    #[derive(Serialize)]
    struct Model<'a> {
        id: &'a str,
        object: &'static str,
        created: u64,
        owned_by: &'static str,
    }
    #[derive(Serialize)]
    struct Models<'a> {
        object: &'static str,
        data: Vec<Model<'a>>,
    }
    let data = names.iter().map(|n| Model { id: n, object: "model", created, owned_by: "loom" }).collect();
    Bytes::from(serde_json::to_vec(&Models { object: "list", data }).unwrap_or_default())
}

/// A served target, with its name.
pub(super) type Named = (Arc<str>, Arc<dyn Served>);

/// What every request of a built server shares.
pub(crate) struct Shared {
    pub(super) map: HashMap<Box<str>, Named, foldhash::fast::RandomState>,
    /// The targets in the order they were added.
    pub(crate) list: Vec<Named>,
    pub(crate) names: Vec<Arc<str>>,
    /// The distinct session stores of the served agents.
    pub(crate) stores: Vec<Arc<dyn SessionStore>>,
    pub(crate) auth: Auth,
    pub(crate) max_body: usize,
    pub(crate) timeout: Duration,
    pub(crate) models: Bytes,
    pub(crate) runs: Arc<Runs>,
    pub(super) draining: AtomicBool,
}

impl Shared {
    /// The target named `name`, with its name.
    pub(crate) fn target(&self, name: &str) -> Option<(&Arc<str>, &Arc<dyn Served>)> {
        // A few names are found faster by comparing them than by hashing.
        if self.list.len() <= 8 {
            return self.list.iter().find(|(n, _)| **n == *name).map(|(n, t)| (n, t));
        }
        self.map.get(name).map(|(n, t)| (n, t))
    }

    /// Whether shutdown has begun.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

/// How a shutdown went: the runs that finished within the grace period, and those stopped
/// after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Drained {
    /// Background runs that finished within the grace period.
    pub finished: usize,
    /// Background runs stopped after it (resumable when journaled).
    pub interrupted: usize,
}

/// A built server: its routes, and its shutdown.
#[derive(Clone)]
pub struct Service {
    pub(super) shared: Arc<Shared>,
    pub(super) address: SocketAddr,
    pub(super) grace: Duration,
}

impl fmt::Debug for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service")
            .field("models", &self.shared.names)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// The served names, in the order they were added.
    pub fn models(&self) -> impl Iterator<Item = &str> {
        self.shared.names.iter().map(|n| &**n)
    }

    /// The routes, as an axum router to serve or to mount in an app of your own.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/chat/completions", post(openai::chat))
            .route("/v1/models", get(openai::models))
            .route("/runs", post(native::start_run).get(native::list_runs))
            .route("/runs/{id}", get(native::get_run))
            .route("/runs/{id}/events", get(native::run_events))
            .route("/runs/{id}/resume", post(native::resume_run))
            .route("/approvals", get(native::list_approvals))
            .route("/approvals/{run}/{call}", post(native::decide))
            .route("/sessions", get(native::list_sessions))
            .route("/sessions/{id}", get(native::get_session).delete(native::delete_session))
            .route("/health", get(native::health))
            .fallback(native::not_found)
            .with_state(Arc::clone(&self.shared))
    }

    /// Binds the server's address and serves until `shutdown` completes, then shuts down
    /// gracefully.
    pub async fn bind_and_serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
        let address = self.address;
        let listener =
            tokio::net::TcpListener::bind(address).await.map_err(|source| ServeError::Bind { address, source })?;
        self.serve(listener, shutdown).await
    }

    /// Serves on `listener` until `shutdown` completes; then stops accepting connections,
    /// lets the requests and runs in progress finish within the grace period, stops the
    /// runs still going after it (see [`drain`](Service::drain)) and returns.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let (fired, signalled) = tokio::sync::oneshot::channel::<()>();
        let shared = Arc::clone(&self.shared);
        let signal = async move {
            shutdown.await;
            shared.draining.store(true, Ordering::Relaxed);
            let _ = fired.send(());
        };
        let server = axum::serve(listener, self.router()).with_graceful_shutdown(signal);
        let mut server = std::pin::pin!(std::future::IntoFuture::into_future(server));
        tokio::select! {
            served = server.as_mut() => return served.map_err(ServeError::Io),
            _ = signalled => {}
        }
        let deadline = tokio::time::Instant::now() + self.grace;
        let running = self.shared.runs.running();
        // The connections close as their requests end; then the background runs.
        let mut closed = false;
        let settled = async {
            let _ = server.as_mut().await;
            closed = true;
            self.shared.runs.idle().await;
        };
        if tokio::time::timeout_at(deadline, settled).await.is_err() {
            let stopped = self.shared.runs.interrupt().await;
            tracing::info!(stopped, "loom serve: runs still going after the grace period were stopped");
            // Their event streams end now: let them say so.
            if !closed {
                let _ = tokio::time::timeout(Duration::from_secs(1), server.as_mut()).await;
            }
        } else {
            tracing::info!(finished = running, "loom serve: shut down");
        }
        Ok(())
    }

    /// Shuts the background runs down (for a [`router`](Service::router) mounted in an app of
    /// your own, once the app stopped accepting requests): new runs are refused (503), the runs
    /// going get `grace` to finish, and those still going after it are stopped — a journaled
    /// run stays resumable, one without a journal is lost (`interrupted`).
    pub async fn drain(&self, grace: Duration) -> Drained {
        self.shared.draining.store(true, Ordering::Relaxed);
        let before = self.shared.runs.running();
        if tokio::time::timeout(grace, self.shared.runs.idle()).await.is_ok() {
            return Drained { finished: before, interrupted: 0 };
        }
        let interrupted = self.shared.runs.interrupt().await;
        Drained { finished: before.saturating_sub(interrupted), interrupted }
    }
}
