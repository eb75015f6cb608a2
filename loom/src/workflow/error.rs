//! Workflow errors.

use std::fmt;
use std::sync::Arc;

use crate::error::Error;

/// A node failed. It keeps what failed: a Loom error (an agent or a nested workflow), any
/// other error, or a message.
pub struct NodeError(Inner);

enum Inner {
    Loom(Box<Error>),
    Other(Box<dyn std::error::Error + Send + Sync>),
    Message(String),
}

impl NodeError {
    /// A failure described by a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(Inner::Message(message.into()))
    }

    /// A failure described by anything displayable (an `anyhow::Error`, a `String`); the
    /// whole chain of causes goes into the message.
    pub fn from_display(error: impl fmt::Display) -> Self {
        Self(Inner::Message(format!("{error:#}")))
    }

    /// The Loom error behind the failure, when an agent or a nested workflow failed.
    pub fn as_loom(&self) -> Option<&Error> {
        match &self.0 {
            Inner::Loom(e) => Some(e),
            _ => None,
        }
    }

    /// The error behind the failure, if there is one.
    pub fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            Inner::Loom(e) => Some(&**e),
            Inner::Other(e) => Some(&**e),
            Inner::Message(_) => None,
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for NodeError {
    fn from(e: E) -> Self {
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
        match boxed.downcast::<Error>() {
            Ok(loom) => Self(Inner::Loom(loom)),
            Err(other) => Self(Inner::Other(other)),
        }
    }
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Loom(e) => e.fmt(f),
            Inner::Other(e) => e.fmt(f),
            Inner::Message(m) => f.write_str(m),
        }
    }
}

impl fmt::Debug for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Loom(e) => f.debug_tuple("NodeError").field(e).finish(),
            Inner::Other(e) => f.debug_tuple("NodeError").field(e).finish(),
            Inner::Message(m) => f.debug_tuple("NodeError").field(m).finish(),
        }
    }
}

/// A workflow run that could not finish, or a workflow that could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkflowError {
    /// A node failed.
    #[error("node `{node}` failed: {error}")]
    Node {
        /// The node.
        node: Arc<str>,
        /// What went wrong.
        error: NodeError,
    },
    /// A node was entered more often than its visit bound allows.
    #[error(
        "node `{node}` was entered more than {limit} times (its visit bound); a cycle did not converge — \
         raise the bound or change the condition that loops back"
    )]
    VisitLimit {
        /// The node.
        node: Arc<str>,
        /// The bound.
        limit: u32,
    },
    /// The run took more steps than the workflow allows.
    #[error("the run took more than {limit} steps (the workflow's max_steps); it stopped before node `{node}`")]
    StepLimit {
        /// The bound.
        limit: u32,
        /// The node it would have entered next.
        node: Arc<str>,
    },
    /// A router produced a key that no route handles, and there is no default route.
    #[error("node `{node}` produced the route key `{key}`, which no route handles, and there is no default route")]
    NoRoute {
        /// The router node.
        node: Arc<str>,
        /// The key.
        key: String,
    },
    /// The run's journal could not be written or read.
    #[error("the workflow's journal failed: {0}")]
    Journal(Box<crate::Error>),
    /// The graph is malformed (reported by the builder's `build()`).
    #[error(transparent)]
    Invalid(#[from] GraphError),
}

/// Every problem found in a workflow graph by `build()`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("workflow `{workflow}` is malformed: {}", problems.join("; "))]
#[non_exhaustive]
pub struct GraphError {
    /// The workflow's name.
    pub workflow: String,
    /// Each problem, as a sentence.
    pub problems: Vec<String>,
}
