//! Who a request acts for: the authentication hook, and how a request's user is found.

use std::collections::HashMap;
use std::sync::Arc;

use http::HeaderMap;

use super::error::ApiError;
use crate::id::UserId;

/// The header an open server reads the caller's user from (`x-loom-user: alice`).
pub const USER_HEADER: &str = "x-loom-user";

use crate::auth::bearer;
pub use crate::auth::{Authenticate, Caller};

/// How the server finds a request's user.
#[derive(Clone)]
pub(crate) enum Auth {
    /// No authentication: the `x-loom-user` header, or the request's `user` field, names
    /// the user; without either, the anonymous user.
    Open,
    /// Bearer tokens, each the key of one user (a map lookup, no future).
    Tokens(Arc<HashMap<String, UserId>>),
    /// A hook.
    Hook(Arc<dyn Authenticate>),
}

/// Who a request acts for, before its body is read.
pub(crate) enum Identity {
    /// Authenticated (or named by the open server's header): the user is settled.
    User(UserId),
    /// An open server's request without the header: the body's `user` field may name the
    /// user; without one, the anonymous user.
    Open,
}

impl Identity {
    /// The user, given the body's `user` field (read only by an open server).
    pub(crate) fn resolve(self, claimed: Option<&str>) -> Result<UserId, ApiError> {
        match (self, claimed) {
            (Self::User(user), _) => Ok(user),
            (Self::Open, None) => Ok(UserId::anonymous()),
            (Self::Open, Some(name)) => {
                UserId::new(name).map_err(|e| ApiError::invalid_param("user", format!("`user` is not a user id: {e}")))
            }
        }
    }
}

impl Auth {
    /// Who the request with `headers` acts for, or 401.
    pub(crate) async fn identify(&self, headers: &HeaderMap) -> Result<Identity, ApiError> {
        match self {
            Self::Open => match headers.get(USER_HEADER) {
                None => Ok(Identity::Open),
                Some(value) => {
                    let name = value
                        .to_str()
                        .map_err(|_| ApiError::bad_request(format!("the `{USER_HEADER}` header is not text")))?;
                    UserId::new(name)
                        .map(Identity::User)
                        .map_err(|e| ApiError::bad_request(format!("the `{USER_HEADER}` header is not a user id: {e}")))
                }
            },
            Self::Tokens(tokens) => bearer(headers)
                .and_then(|t| tokens.get(t))
                .cloned()
                .map(Identity::User)
                .ok_or_else(ApiError::unauthorized),
            Self::Hook(hook) => {
                let caller = Caller::http(headers);
                hook.authenticate(&caller).await.map(Identity::User).ok_or_else(ApiError::unauthorized)
            }
        }
    }

    /// The user of a request that has no body naming one.
    pub(crate) async fn user(&self, headers: &HeaderMap) -> Result<UserId, ApiError> {
        self.identify(headers).await?.resolve(None)
    }
}
