//! What a user plugs into a service: authentication, resources, prompts, completions.

use super::*;

pub use crate::auth::{Authenticate, Caller};

pub(super) struct Tokens(pub(super) HashMap<String, UserId>);

#[async_trait::async_trait]
impl Authenticate for Tokens {
    async fn authenticate(&self, caller: &Caller<'_>) -> Option<UserId> {
        self.0.get(caller.bearer?).cloned()
    }
}

/// Reads a resource of a template (`test://items/{id}`): the URI asked for, and the values
/// of the template's variables in it.
#[async_trait::async_trait]
pub trait ResourceHandler: Send + Sync + 'static {
    /// The contents at `uri`, or a message saying why there are none.
    async fn read(&self, uri: &str, variables: &HashMap<String, String>) -> Result<Vec<mcp::ResourceContents>, String>;
}

#[async_trait::async_trait]
impl<F> ResourceHandler for F
where
    F: Fn(&str, &HashMap<String, String>) -> Result<Vec<mcp::ResourceContents>, String> + Send + Sync + 'static,
{
    async fn read(&self, uri: &str, variables: &HashMap<String, String>) -> Result<Vec<mcp::ResourceContents>, String> {
        self(uri, variables)
    }
}

/// Fills a prompt with the client's arguments.
#[async_trait::async_trait]
pub trait PromptHandler: Send + Sync + 'static {
    /// The prompt's messages for `arguments`, or a message saying what is wrong with them.
    async fn get(&self, arguments: &HashMap<String, String>) -> Result<Vec<mcp::PromptMessage>, String>;

    /// The prompt's messages for `arguments`, with the request being served: a prompt that
    /// asks its client for input ([`McpCall::elicit`], [`McpCall::create_message`]) implements
    /// this, the same way a tool does (over 2026-07-28 an unanswered question ends the request
    /// with an `InputRequiredResult`, and the prompt is asked for again with the answer).
    /// [`get`](Self::get) by default.
    async fn get_with(
        &self,
        arguments: &HashMap<String, String>,
        call: &McpCall,
    ) -> Result<Vec<mcp::PromptMessage>, String> {
        let _ = call;
        self.get(arguments).await
    }
}

#[async_trait::async_trait]
impl<F> PromptHandler for F
where
    F: Fn(&HashMap<String, String>) -> Result<Vec<mcp::PromptMessage>, String> + Send + Sync + 'static,
{
    async fn get(&self, arguments: &HashMap<String, String>) -> Result<Vec<mcp::PromptMessage>, String> {
        self(arguments)
    }
}

/// Suggests values for an argument of a prompt or a resource template as the client's user
/// types it (MCP completions).
#[async_trait::async_trait]
pub trait CompletionHandler: Send + Sync + 'static {
    /// Values for the argument `argument` of `reference` (a prompt, or a resource template)
    /// that fit its partial value `value`, best first; `context` holds the arguments already
    /// filled in. The first 100 are sent. `Err` is a message saying why there are none.
    async fn complete(
        &self,
        reference: &mcp::Reference,
        argument: &str,
        value: &str,
        context: &HashMap<String, String>,
    ) -> Result<Vec<String>, String>;
}

#[async_trait::async_trait]
impl<F> CompletionHandler for F
where
    F: Fn(&mcp::Reference, &str, &str, &HashMap<String, String>) -> Result<Vec<String>, String> + Send + Sync + 'static,
{
    async fn complete(
        &self,
        reference: &mcp::Reference,
        argument: &str,
        value: &str,
        context: &HashMap<String, String>,
    ) -> Result<Vec<String>, String> {
        self(reference, argument, value, context)
    }
}
