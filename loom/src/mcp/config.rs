//! MCP servers declared as data: the `[[mcp]]` entries of a config file, or any serde format.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::client::{McpServer, Protocol};
use crate::error::ConfigError;

/// One MCP server as a config file declares it: a `command` (with `args`, `env`, `cwd`) for a
/// server Loom starts on stdio, or a `url` (with `headers`) for a streamable-HTTP one.
///
/// ```
/// use loomflow::mcp::McpServerConfig;
///
/// let files: McpServerConfig = serde_json::from_value(serde_json::json!({
///     "name": "files",
///     "command": "npx",
///     "args": ["-y", "@modelcontextprotocol/server-filesystem", "/srv/docs"],
///     "call_timeout_secs": 20,
/// }))?;
/// let server = files.into_server()?;
/// assert_eq!(server.name(), "files");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct McpServerConfig {
    /// The server's name: how its tools are told apart when names collide (`name__tool`).
    pub name: String,
    /// The program to start, for a stdio server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Variables added to its environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Its working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    /// The endpoint, for a streamable-HTTP server (`https://host/mcp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Headers sent with every request (`Authorization`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// `auto` (the default), `initialize` (2025-11-25) or `stateless` (2026-07-28).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<ProtocolName>,
    /// Seconds one call may take (60 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_timeout_secs: Option<f64>,
    /// Seconds connecting may take (30 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_secs: Option<f64>,
}

/// The protocol names a config file may give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ProtocolName {
    /// [`Protocol::Auto`].
    Auto,
    /// [`Protocol::Initialize`].
    Initialize,
    /// [`Protocol::Stateless`].
    Stateless,
}

impl McpServerConfig {
    /// The server to connect to, or what is wrong with the entry.
    pub fn into_server(self) -> Result<McpServer, ConfigError> {
        let invalid = |reason: String| ConfigError::InvalidSetting { setting: "mcp", reason };
        let name = self.name;
        if name.trim().is_empty() {
            return Err(invalid("an MCP server needs a `name`".to_owned()));
        }
        let mut server = match (self.command, self.url) {
            (Some(command), None) => {
                if !self.headers.is_empty() {
                    return Err(invalid(format!("MCP server `{name}`: `headers` go with a `url`, not a `command`")));
                }
                let mut server = McpServer::stdio(&name, command).args(self.args);
                for (key, value) in self.env {
                    server = server.env(key, value);
                }
                if let Some(cwd) = self.cwd {
                    server = server.cwd(cwd);
                }
                server
            }
            (None, Some(url)) => {
                if !self.args.is_empty() || !self.env.is_empty() || self.cwd.is_some() {
                    return Err(invalid(format!(
                        "MCP server `{name}`: `args`, `env` and `cwd` go with a `command`, not a `url`"
                    )));
                }
                let mut server = McpServer::http(&name, url);
                for (key, value) in self.headers {
                    server = server.header(key, value);
                }
                server
            }
            (Some(_), Some(_)) => {
                return Err(invalid(format!("MCP server `{name}` has both a `command` and a `url`: give one")));
            }
            (None, None) => {
                return Err(invalid(format!(
                    "MCP server `{name}` needs a `command` (a stdio server) or a `url` (a streamable-HTTP one)"
                )));
            }
        };
        if let Some(protocol) = self.protocol {
            server = server.protocol(match protocol {
                ProtocolName::Auto => Protocol::Auto,
                ProtocolName::Initialize => Protocol::Initialize,
                ProtocolName::Stateless => Protocol::Stateless,
            });
        }
        let seconds = |setting: &str, secs: f64| {
            Duration::try_from_secs_f64(secs).ok().filter(|d| !d.is_zero()).ok_or_else(|| {
                invalid(format!("MCP server `{name}`: `{setting}` must be a positive number of seconds"))
            })
        };
        if let Some(secs) = self.call_timeout_secs {
            server = server.call_timeout(seconds("call_timeout_secs", secs)?);
        }
        if let Some(secs) = self.connect_timeout_secs {
            server = server.connect_timeout(seconds("connect_timeout_secs", secs)?);
        }
        Ok(server)
    }
}

impl TryFrom<McpServerConfig> for McpServer {
    type Error = ConfigError;

    fn try_from(config: McpServerConfig) -> Result<Self, Self::Error> {
        config.into_server()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::McpTransport;

    fn parse(value: serde_json::Value) -> Result<McpServer, String> {
        let config: McpServerConfig = serde_json::from_value(value).map_err(|e| e.to_string())?;
        config.into_server().map_err(|e| e.to_string())
    }

    #[test]
    fn stdio_and_http_entries_become_servers() -> Result<(), String> {
        let stdio = parse(serde_json::json!({
            "name": "files", "command": "node", "args": ["server.js"], "env": {"A": "1"}, "protocol": "initialize",
            "call_timeout_secs": 1.5,
        }))?;
        match stdio.transport() {
            McpTransport::Stdio { command, args, env, .. } => {
                assert_eq!((command.as_str(), args.as_slice()), ("node", &["server.js".to_owned()][..]));
                assert_eq!(env, &[("A".to_owned(), "1".to_owned())]);
            }
            other => return Err(format!("{other:?}")),
        }
        let http = parse(
            serde_json::json!({"name": "s", "url": "http://127.0.0.1:1/mcp", "headers": {"Authorization": "Bearer x"}}),
        )?;
        assert!(
            matches!(http.transport(), McpTransport::Http { url, headers } if url.ends_with("/mcp") && headers.len() == 1)
        );
        Ok(())
    }

    #[test]
    fn bad_entries_say_what_is_wrong() {
        let error = |value| parse(value).err().unwrap_or_default();
        assert!(error(serde_json::json!({"name": "x"})).contains("needs a `command`"));
        assert!(error(serde_json::json!({"name": "x", "command": "a", "url": "b"})).contains("both"));
        assert!(error(serde_json::json!({"name": "x", "url": "b", "args": ["c"]})).contains("go with a `command`"));
        assert!(error(serde_json::json!({"name": "x", "command": "a", "call_timeout_secs": -1})).contains("positive"));
        assert!(error(serde_json::json!({"name": "x", "command": "a", "comand": "b"})).contains("unknown field"));
        assert!(error(serde_json::json!({"name": "x", "command": "a", "protocol": "v9"})).contains("unknown variant"));
    }
}
