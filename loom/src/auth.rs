//! Who calls Loom's servers: one authentication hook for the HTTP API
//! ([`serve`](crate::serve), feature `serve`) and the MCP server
//! ([`McpService`](crate::mcp::McpService), feature `mcp`), so that one token check guards
//! both.

use http::HeaderMap;

use crate::id::UserId;

/// Who is calling, as an [`Authenticate`] hook sees it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Caller<'a> {
    /// The token of the `Authorization: Bearer <token>` header, if there is one.
    pub bearer: Option<&'a str>,
    /// Every header of the HTTP request, for schemes of your own (an API-key header, a header
    /// a trusted proxy sets); `None` for an MCP server over stdio.
    pub headers: Option<&'a HeaderMap>,
}

impl<'a> Caller<'a> {
    /// The caller of an HTTP request with these headers.
    pub(crate) fn http(headers: &'a HeaderMap) -> Self {
        Self { bearer: bearer(headers), headers: Some(headers) }
    }
}

/// The token of `headers`' `Authorization: Bearer <token>` (the scheme in any case, as HTTP
/// has it), if there is one and it is not empty.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?.trim_start();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// Turns a caller into the Loom user it acts as, or refuses it (`None`: HTTP 401).
///
/// Every request is authenticated on its own; the user it gives is the partition of
/// everything the request touches (sessions, runs, approvals, memory). Closures
/// `Fn(&Caller) -> Option<UserId>` are hooks, and so are the token maps of
/// `Server::bearer_tokens` and `McpService::bearer_tokens`. An MCP session keeps the user it
/// started with: a request of another user on that session is refused.
///
/// ```
/// use loomflow::UserId;
/// use loomflow::auth::Caller;
///
/// // Tokens of the form `user-<name>`, for a demo.
/// let hook = |caller: &Caller<'_>| UserId::new(caller.bearer?.strip_prefix("user-")?).ok();
/// # let _ = hook;
/// ```
#[async_trait::async_trait]
pub trait Authenticate: Send + Sync + 'static {
    /// The user `caller` acts as, or `None` to refuse it.
    async fn authenticate(&self, caller: &Caller<'_>) -> Option<UserId>;
}

#[async_trait::async_trait]
impl<F> Authenticate for F
where
    F: Fn(&Caller<'_>) -> Option<UserId> + Send + Sync + 'static,
{
    async fn authenticate(&self, caller: &Caller<'_>) -> Option<UserId> {
        self(caller)
    }
}
