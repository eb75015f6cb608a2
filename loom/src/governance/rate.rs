//! Rate limits: token buckets per user and per model, that throttle or reject.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::bounded::PerUser;
use crate::error::StoreError;
use crate::id::UserId;

/// One token bucket of a shared rate limit, as a [`RateStore`] keeps it.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RateBucket<'a> {
    /// Which bucket: `user:<id>` or `model:<name>`.
    pub key: &'a str,
    /// Tokens added a second.
    pub rate: f64,
    /// The most tokens it holds (the longest burst).
    pub burst: f64,
}

/// Token buckets every worker process shares (SQLite and PostgreSQL stores are ones), so a
/// rate limit holds across processes, not only in each.
#[async_trait::async_trait]
pub trait RateStore: Send + Sync + 'static {
    /// Takes one token from each of `buckets`, all or none (a bucket that is missing starts
    /// full): `Ok(Ok(()))`, or `Ok(Err((wait, i)))` — bucket `i` has no token for `wait` yet,
    /// and nothing was taken.
    async fn take(&self, buckets: &[RateBucket<'_>]) -> Result<Result<(), (Duration, usize)>, StoreError>;
}

/// One token taken, if there is one, from a bucket that held `tokens` `elapsed` ago: the tokens
/// it holds now (after the taking), and `Err(wait)` when there was none to take.
pub(crate) fn refill(tokens: f64, elapsed: Duration, rate: f64, burst: f64) -> (f64, Result<(), Duration>) {
    let tokens = (tokens + elapsed.as_secs_f64() * rate).min(burst);
    if tokens >= 1.0 { (tokens - 1.0, Ok(())) } else { (tokens, Err(Duration::from_secs_f64((1.0 - tokens) / rate))) }
}

/// Why a call may not go now.
#[derive(Debug)]
pub(crate) enum Refused {
    /// A bucket (`user`, `model`) has no token for this long.
    Wait(Duration, &'static str),
    /// The shared store failed.
    Store(StoreError),
}

/// What a rate limit does with a call that comes too soon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RateMode {
    /// Waits until the bucket has room (at most the limit's longest wait, then rejects).
    #[default]
    Throttle,
    /// Ends the run at once with [`RunError::RateLimited`](crate::RunError::RateLimited).
    Reject,
}

/// One token bucket's shape: `rate` calls a second on average, bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Shape {
    rate: f64,
    burst: f64,
}

/// Rate limits on model calls: per user, per model, or both, in this process.
///
/// ```
/// use loomflow::governance::{RateLimit, RateMode};
///
/// // Each user: 2 model calls a second, bursts of 5; each model: 50 a second; reject, don't wait.
/// let limit = RateLimit::new().per_user(2.0, 5).per_model(50.0, 50).mode(RateMode::Reject);
/// ```
pub struct RateLimit {
    per_user: Option<Shape>,
    per_model: Option<Shape>,
    mode: RateMode,
    max_wait: Duration,
    buckets: Mutex<Buckets>,
    max_users: usize,
    idle_ttl: Duration,
    store: Option<Arc<dyn RateStore>>,
}

#[derive(Default)]
struct Buckets {
    users: PerUser<Bucket>,
    models: std::collections::HashMap<String, Bucket>,
}

/// Tokens left, as of `at`.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    tokens: f64,
    at: Option<Instant>,
}

impl Bucket {
    /// Takes a token if one is there now; otherwise how long until one is.
    fn take(&mut self, shape: Shape, now: Instant) -> Result<(), Duration> {
        let (held, elapsed) = match self.at {
            None => (shape.burst, Duration::ZERO),
            Some(at) => (self.tokens, now.saturating_duration_since(at)),
        };
        let (tokens, taken) = refill(held, elapsed, shape.rate, shape.burst);
        *self = Self { tokens, at: Some(now) };
        taken
    }

    /// Gives back a token taken for a call that then did not go (another bucket refused it).
    fn give_back(&mut self, shape: Shape) {
        self.tokens = (self.tokens + 1.0).min(shape.burst);
    }
}

impl fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("per_user", &self.per_user)
            .field("per_model", &self.per_model)
            .field("mode", &self.mode)
            .field("max_wait", &self.max_wait)
            .field("shared", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::new()
    }
}

impl RateLimit {
    /// No limits yet; throttling, waiting at most a minute.
    pub fn new() -> Self {
        Self {
            per_user: None,
            per_model: None,
            mode: RateMode::Throttle,
            max_wait: Duration::from_secs(60),
            buckets: Mutex::new(Buckets::default()),
            max_users: 100_000,
            idle_ttl: Duration::from_secs(3600),
            store: None,
        }
    }

    /// Keeps the buckets in `store`, which every worker process shares (a
    /// [`SqliteStore`](crate::session::SqliteStore) file or a
    /// [`PostgresStore`](crate::session::PostgresStore) database), instead of in this
    /// process: the limits hold for all of them together.
    #[must_use]
    pub fn store(mut self, store: Arc<dyn RateStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Each user: `rate` model calls a second on average, bursts of up to `burst`.
    #[must_use]
    pub fn per_user(mut self, rate: f64, burst: u32) -> Self {
        self.per_user = Some(Shape { rate, burst: f64::from(burst.max(1)) });
        self
    }

    /// Each model (by name): `rate` calls a second, bursts of up to `burst`.
    #[must_use]
    pub fn per_model(mut self, rate: f64, burst: u32) -> Self {
        self.per_model = Some(Shape { rate, burst: f64::from(burst.max(1)) });
        self
    }

    /// Throttle (the default) or reject.
    #[must_use]
    pub fn mode(mut self, mode: RateMode) -> Self {
        self.mode = mode;
        self
    }

    /// The longest a throttled call waits before it is rejected (a minute by default).
    #[must_use]
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// Keeps the buckets of at most `max_users` users, each until idle for `idle_ttl`.
    #[must_use]
    pub fn bounded(mut self, max_users: usize, idle_ttl: Duration) -> Self {
        self.max_users = max_users;
        self.idle_ttl = idle_ttl;
        self
    }

    pub(crate) fn check(&self) -> Result<(), crate::ConfigError> {
        for shape in [self.per_user, self.per_model].into_iter().flatten() {
            if !(shape.rate.is_finite() && shape.rate > 0.0) {
                return Err(crate::ConfigError::InvalidSetting {
                    setting: "rate_limit",
                    reason: format!("a rate of {} calls a second; give a positive rate", shape.rate),
                });
            }
        }
        Ok(())
    }

    /// Takes a token from `user`'s and `model`'s buckets, or says how long until both have one
    /// (taking nothing).
    fn try_take(&self, user: &UserId, model: &str) -> Result<(), (Duration, &'static str)> {
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let b = &mut *b;
        if let Some(shape) = self.per_user {
            let taken = b.users.with(user, true, self.max_users, self.idle_ttl, |bucket| bucket.take(shape, now));
            if let Some(Err(wait)) = taken {
                return Err((wait, "user"));
            }
        }
        if let Some(shape) = self.per_model {
            if b.models.len() >= 10_000 && !b.models.contains_key(model) {
                b.models.clear();
            }
            // The model's name is copied only for its first call.
            if !b.models.contains_key(model) {
                b.models.insert(model.to_owned(), Bucket::default());
            }
            let taken = b.models.get_mut(model).map_or(Ok(()), |bucket| bucket.take(shape, now));
            if let Err(wait) = taken {
                if let Some(user_shape) = self.per_user {
                    b.users.with(user, false, self.max_users, self.idle_ttl, |bucket| bucket.give_back(user_shape));
                }
                return Err((wait, "model"));
            }
        }
        Ok(())
    }

    /// Takes a token from `user`'s and `model`'s buckets in the shared store.
    async fn try_take_shared(
        &self,
        store: &dyn RateStore,
        user: &UserId,
        model: &str,
    ) -> Result<Result<(), (Duration, &'static str)>, StoreError> {
        let (user_key, model_key) = (format!("user:{user}"), format!("model:{model}"));
        let mut buckets = Vec::with_capacity(2);
        let mut names = Vec::with_capacity(2);
        if let Some(shape) = self.per_user {
            buckets.push(RateBucket { key: &user_key, rate: shape.rate, burst: shape.burst });
            names.push("user");
        }
        if let Some(shape) = self.per_model {
            buckets.push(RateBucket { key: &model_key, rate: shape.rate, burst: shape.burst });
            names.push("model");
        }
        Ok(store.take(&buckets).await?.map_err(|(wait, i)| (wait, names.get(i).copied().unwrap_or("user"))))
    }

    /// Waits for room for one call of `user` to `model` (or refuses it): `Ok(waited)`, or why
    /// not, naming the bucket that refused.
    pub(crate) async fn acquire(&self, user: &UserId, model: &str) -> Result<Duration, Refused> {
        let started = Instant::now();
        let mut waited = false;
        loop {
            let taken = match &self.store {
                Some(store) => self.try_take_shared(&**store, user, model).await.map_err(Refused::Store)?,
                None => self.try_take(user, model),
            };
            match taken {
                // A call that found a token at once waited for nothing.
                Ok(()) => return Ok(if waited { started.elapsed() } else { Duration::ZERO }),
                Err((wait, which)) => {
                    if self.mode == RateMode::Reject || started.elapsed() + wait > self.max_wait {
                        return Err(Refused::Wait(wait, which));
                    }
                    tokio::time::sleep(wait).await;
                    waited = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_bucket_allows_its_burst_then_throttles_to_its_rate() {
        let limit = RateLimit::new().per_user(10.0, 3);
        let user = UserId::anonymous();
        for _ in 0..3 {
            assert!(matches!(limit.acquire(&user, "m").await, Ok(Duration::ZERO)));
        }
        let waited = limit.acquire(&user, "m").await.unwrap_or_default();
        assert!(waited >= Duration::from_millis(99), "the fourth call waits for a token: {waited:?}");
        let reject = RateLimit::new().per_model(1.0, 1).mode(RateMode::Reject);
        assert!(reject.acquire(&user, "m").await.is_ok());
        let refused = reject.acquire(&user, "m").await;
        assert!(matches!(refused, Err(Refused::Wait(_, "model"))), "{refused:?}");
        assert!(reject.acquire(&user, "other").await.is_ok(), "each model has its own bucket");
    }
}
