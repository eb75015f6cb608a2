//! MCP, the Model Context Protocol: tools, resources and prompts of any MCP server for Loom's
//! agents, and Loom's own tools, agents and workflows for any MCP client.
//!
//! Built on `rmcp`, the official Rust SDK (re-exported as [`rmcp`]), speaking the protocol
//! revisions 2025-11-25 (with the `initialize` handshake) and 2026-07-28 (stateless).
//!
//! **Client.** An [`McpClient`] is one connection to one server, over stdio (a child process
//! in its own process group, killed with the client) or streamable HTTP (with headers for
//! authentication). [`McpServers`] connects several at once and gives an agent their tools
//! ([`Agent::mcp`](crate::Agent::mcp)):
//!
//! - a tool keeps its name when it is unique across the set, and is called `server__tool`
//!   when two servers share it;
//! - a server that says its tools changed is listed again, and the next run sees the list;
//! - MCP annotations become [`ToolHints`](crate::tool::ToolHints): a tool that does not say
//!   it only reads may change things, and one that does not say otherwise is destructive, as
//!   the specification reads (so approvals apply to it);
//! - every call has a timeout and is cancelled on the server when it runs out; a server that
//!   dies mid-call gives the model a tool error, the run goes on, and the next call
//!   reconnects with backoff;
//! - progress notifications and the server's log messages are
//!   [`EventKind::Mcp`](crate::EventKind::Mcp) events of the run whose call they belong to;
//! - a server's sampling requests are answered by a model you configure, when a policy you
//!   give allows them ([`McpServer::sampling_with`]), and refused otherwise.
//! - a server's elicitation requests (forms for the user) are answered by a handler you give
//!   ([`McpServer::elicitation`]), with the form's defaults filled in, and declined otherwise.
//!
//! **Server.** [`McpService`] exposes a [`ToolSet`](crate::ToolSet), agents and workflows
//! (each as a tool taking its input), resources and prompts, over stdio
//! ([`McpService::serve_stdio`]) or streamable HTTP ([`McpService::router`] to mount in an
//! axum app, [`McpService::serve_http`] to listen). An [`Authenticate`] hook turns each
//! request's bearer token into a Loom [`UserId`](crate::UserId), so one client never acts as
//! another user; a client's cancellation cancels the run, and long runs report progress.
//! A served tool reaches its client through [`McpCall`]: progress, log messages, and input
//! (sampling, elicitation, roots) over both revisions; over the stateless one a call that
//! asks ends with an `InputRequiredResult` and runs again with the answers. Clients may
//! subscribe to resources ([`McpService::notify_resource_updated`]) and have arguments
//! completed ([`McpService::completion`]).

// Logging and sampling are deprecated from 2026-07-28 on, and part of 2025-11-25, which Loom
// speaks as well.
#![allow(deprecated)]

mod client;
mod config;
mod convert;
mod error;
mod server;
mod servers;

pub use client::{
    ElicitationHandler, ElicitationRequest, McpClient, McpServer, McpTransport, Protocol, SamplingPolicy,
    SamplingRequest,
};
pub use config::{McpServerConfig, ProtocolName};
pub use error::McpError;
pub use server::{
    Authenticate, Caller, CompletionHandler, Listen, McpCall, McpService, PromptHandler, ResourceHandler, serve,
};
pub use servers::McpServers;

/// The `rmcp` crate Loom's MCP support is built on, for what Loom does not wrap.
pub use rmcp;

/// The MCP protocol revisions Loom speaks, oldest first.
pub const PROTOCOL_VERSIONS: [&str; 2] = ["2025-11-25", "2026-07-28"];
