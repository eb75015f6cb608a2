//! What goes wrong talking to an MCP server.

use std::time::Duration;

/// An MCP call that failed: the server could not be started or reached, did not answer in
/// time, went away, or answered with a protocol error.
///
/// A tool call that fails this way becomes a tool error the model reads; the run goes on.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum McpError {
    /// A stdio server's program could not be started.
    #[error(
        "the MCP server `{server}` could not be started (`{command}`): {message}; check that the program is installed and on PATH"
    )]
    Spawn {
        /// The server.
        server: String,
        /// The program.
        command: String,
        /// Why.
        message: String,
    },
    /// The handshake with the server failed.
    #[error("could not connect to the MCP server `{server}`: {message}")]
    Connect {
        /// The server.
        server: String,
        /// Why.
        message: String,
    },
    /// The server did not answer in time; the request was cancelled on the server.
    #[error("the MCP server `{server}` did not answer `{operation}` within {after:?}")]
    Timeout {
        /// The server.
        server: String,
        /// What was asked.
        operation: String,
        /// How long the client waited.
        after: Duration,
    },
    /// The connection closed (the server exited or the network dropped); the next call
    /// reconnects.
    #[error("the MCP server `{server}` closed the connection{}", if detail.is_empty() { String::new() } else { format!(" (it wrote: {detail})") })]
    Closed {
        /// The server.
        server: String,
        /// The last lines the server wrote to its standard error, if it is a stdio server.
        detail: String,
    },
    /// The server answered with a JSON-RPC error.
    #[error("the MCP server `{server}` refused `{operation}`: {message} (error {code})")]
    Server {
        /// The server.
        server: String,
        /// What was asked.
        operation: String,
        /// The JSON-RPC error code.
        code: i32,
        /// The server's message.
        message: String,
    },
    /// The server answered something the protocol does not allow.
    #[error("the MCP server `{server}` broke the protocol: {message}")]
    Protocol {
        /// The server.
        server: String,
        /// What was wrong.
        message: String,
    },
    /// The arguments of a call were not a JSON object.
    #[error("bad arguments for the MCP server `{server}`: {message}")]
    InvalidArguments {
        /// The server.
        server: String,
        /// What was wrong.
        message: String,
    },
    /// Two servers of one set have the same name.
    #[error("two MCP servers are named `{server}`; give each server of a set its own name")]
    DuplicateServer {
        /// The name.
        server: String,
    },
    /// Serving MCP failed (binding the address, the transport).
    #[error("serving MCP failed: {message}")]
    Serve {
        /// Why.
        message: String,
    },
    /// A served tool asked its client for input ([`McpCall`](super::McpCall)) on a stateless
    /// call (protocol 2026-07-28): the call ends with an `InputRequiredResult`, and the
    /// client calls again with the answer. A tool lets this error through (`?`).
    #[error("the MCP client was asked for input (`{request}`): the call is made again with the answer")]
    InputRequired {
        /// The key of the input request.
        request: String,
    },
    /// The MCP client does not offer a capability a served tool asked it to use (sampling,
    /// elicitation, roots).
    #[error("the MCP client does not offer {capability}")]
    MissingCapability {
        /// The capability (`sampling`, `elicitation`, `roots`).
        capability: String,
    },
}

impl McpError {
    /// The server the error is about, if it is about one.
    pub fn server(&self) -> Option<&str> {
        match self {
            Self::Spawn { server, .. }
            | Self::Connect { server, .. }
            | Self::Timeout { server, .. }
            | Self::Closed { server, .. }
            | Self::Server { server, .. }
            | Self::Protocol { server, .. }
            | Self::InvalidArguments { server, .. }
            | Self::DuplicateServer { server } => Some(server),
            Self::Serve { .. } | Self::InputRequired { .. } | Self::MissingCapability { .. } => None,
        }
    }

    /// Whether trying again may succeed (a timeout, a dropped connection).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Timeout { .. } | Self::Closed { .. })
    }
}
