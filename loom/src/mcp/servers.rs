//! Several MCP servers as one set of tools.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::client::{McpClient, McpServer};
use super::{McpError, convert};
use crate::tool::{Tool, ToolSource};

/// Several MCP servers, connected concurrently, whose tools an agent uses as its own.
///
/// A tool keeps its bare name when no other server of the set has one of that name;
/// tools whose names collide are called `server__tool`. When a server says its tools
/// changed, the next run of the agent sees the new list.
///
/// ```no_run
/// use loomflow::prelude::*;
/// use loomflow::mcp::{McpServer, McpServers};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let servers = McpServers::connect([
///     McpServer::stdio("files", "npx").args(["-y", "@modelcontextprotocol/server-filesystem", "/srv/docs"]),
///     McpServer::http("search", "https://search.example.com/mcp").header("Authorization", "Bearer sk-example"),
/// ])
/// .await?;
/// let agent = Agent::new("Answer from the documents.").model("echo").mcp(&servers);
/// let answer = agent.run("What do the documents say about refunds?").await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct McpServers {
    clients: Arc<[McpClient]>,
    /// The tools as last named, and the generation they were named at.
    named: Arc<Mutex<Option<Named>>>,
}

/// The set's tools as named at one generation.
type Named = (u64, Vec<Arc<dyn Tool>>);

impl std::fmt::Debug for McpServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServers").field("clients", &self.clients).finish_non_exhaustive()
    }
}

impl McpServers {
    /// Connects to every server at once; the first that fails to connect fails the set
    /// (every server is tried, and the error names one that failed).
    pub async fn connect(servers: impl IntoIterator<Item = McpServer>) -> Result<Self, McpError> {
        let servers: Vec<McpServer> = servers.into_iter().collect();
        let mut seen = HashSet::new();
        for s in &servers {
            if !seen.insert(s.name().to_owned()) {
                return Err(McpError::DuplicateServer { server: s.name().to_owned() });
            }
        }
        let results = futures::future::join_all(servers.into_iter().map(McpClient::connect)).await;
        let clients = results.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_clients(clients))
    }

    /// A set of clients already connected.
    pub fn from_clients(clients: impl IntoIterator<Item = McpClient>) -> Self {
        Self { clients: clients.into_iter().collect(), named: Arc::new(Mutex::new(None)) }
    }

    /// The clients, in the order the servers were given.
    pub fn clients(&self) -> &[McpClient] {
        &self.clients
    }

    /// The client of the server named `name`.
    pub fn client(&self, name: &str) -> Option<&McpClient> {
        self.clients.iter().find(|c| c.name() == name)
    }

    /// Every server's tools, named apart: bare names when unique across the set,
    /// `server__tool` for names two servers share.
    pub fn tools(&self) -> Vec<Arc<dyn Tool>> {
        let generation = self.generation();
        let mut named = self.named.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((g, tools)) = named.as_ref()
            && *g == generation
        {
            return tools.clone();
        }
        let listed: Vec<_> = self.clients.iter().map(|c| (c, c.mcp_tools())).collect();
        let mut counts: HashMap<String, usize> = HashMap::new();
        for (_, tools) in &listed {
            for t in tools.iter() {
                *counts.entry(convert::tool_name(&t.name)).or_default() += 1;
            }
        }
        let mut tools = Vec::new();
        for (client, listed) in &listed {
            for t in listed.iter() {
                let bare = convert::tool_name(&t.name);
                let name = if counts.get(&bare).copied().unwrap_or(0) > 1 {
                    convert::tool_name(&format!("{}__{}", client.name(), t.name))
                } else {
                    bare
                };
                tools.push(client.tool(t, name));
            }
        }
        *named = Some((generation, tools.clone()));
        tools
    }
}

impl ToolSource for McpServers {
    fn generation(&self) -> u64 {
        // Each client's generation only grows, so their sum changes whenever one does.
        self.clients.iter().map(McpClient::generation).fold(0, u64::wrapping_add)
    }

    fn tools(&self) -> Vec<Arc<dyn Tool>> {
        McpServers::tools(self)
    }
}

impl ToolSource for McpClient {
    fn generation(&self) -> u64 {
        McpClient::generation(self)
    }

    fn tools(&self) -> Vec<Arc<dyn Tool>> {
        McpClient::tools(self)
    }
}
