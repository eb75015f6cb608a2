//! Budgets: how many tokens, dollars, model calls and tool calls a run, a user and everyone
//! together may spend.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::bounded::PerUser;
use crate::error::StoreError;
use crate::id::UserId;

/// What a budget limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Limit {
    /// Input tokens (cache reads and writes included).
    InputTokens,
    /// Output tokens (reasoning included).
    OutputTokens,
    /// Input and output tokens together.
    TotalTokens,
    /// What the model calls cost, in US dollars (models without a known price count nothing).
    CostUsd,
    /// Model calls.
    ModelCalls,
    /// Tool calls.
    ToolCalls,
    /// How long a run may take.
    WallTime,
}

impl Limit {
    /// The limit as a word: `input_tokens`, `cost_usd`, `wall_time` ...
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InputTokens => "input_tokens",
            Self::OutputTokens => "output_tokens",
            Self::TotalTokens => "total_tokens",
            Self::CostUsd => "cost_usd",
            Self::ModelCalls => "model_calls",
            Self::ToolCalls => "tool_calls",
            Self::WallTime => "wall_time",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose spending a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Scope {
    /// One run, with every run nested in it (sub-agents, workflow nodes).
    Run,
    /// One user, over all their runs (in the budget's period, when it has one).
    User,
    /// Every user together.
    Global,
}

impl Scope {
    /// The scope as a word: `run`, `user`, `global`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Run => "run",
            Self::User => "user",
            Self::Global => "global",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Maximums for one scope; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct Limits {
    /// Input tokens.
    pub input_tokens: Option<u64>,
    /// Output tokens.
    pub output_tokens: Option<u64>,
    /// Input and output tokens together.
    pub total_tokens: Option<u64>,
    /// Cost in US dollars.
    pub cost_usd: Option<f64>,
    /// Model calls.
    pub model_calls: Option<u64>,
    /// Tool calls.
    pub tool_calls: Option<u64>,
}

impl Limits {
    /// No limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `n` input tokens.
    #[must_use]
    pub fn input_tokens(mut self, n: u64) -> Self {
        self.input_tokens = Some(n);
        self
    }

    /// At most `n` output tokens.
    #[must_use]
    pub fn output_tokens(mut self, n: u64) -> Self {
        self.output_tokens = Some(n);
        self
    }

    /// At most `n` tokens, input and output together.
    #[must_use]
    pub fn total_tokens(mut self, n: u64) -> Self {
        self.total_tokens = Some(n);
        self
    }

    /// At most `usd` US dollars.
    #[must_use]
    pub fn cost_usd(mut self, usd: f64) -> Self {
        self.cost_usd = Some(usd);
        self
    }

    /// At most `n` model calls.
    #[must_use]
    pub fn model_calls(mut self, n: u64) -> Self {
        self.model_calls = Some(n);
        self
    }

    /// At most `n` tool calls.
    #[must_use]
    pub fn tool_calls(mut self, n: u64) -> Self {
        self.tool_calls = Some(n);
        self
    }

    fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub(crate) fn each_is_empty(&self) -> bool {
        self.is_empty()
    }

    /// Each limit set, with its maximum.
    fn each(&self) -> impl Iterator<Item = (Limit, f64)> {
        [
            (Limit::InputTokens, self.input_tokens.map(|n| n as f64)),
            (Limit::OutputTokens, self.output_tokens.map(|n| n as f64)),
            (Limit::TotalTokens, self.total_tokens.map(|n| n as f64)),
            (Limit::CostUsd, self.cost_usd),
            (Limit::ModelCalls, self.model_calls.map(|n| n as f64)),
            (Limit::ToolCalls, self.tool_calls.map(|n| n as f64)),
        ]
        .into_iter()
        .filter_map(|(l, max)| Some((l, max?)))
    }
}

/// What has been spent, in one scope.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Spent {
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cost in US dollars, of the calls whose model has a known price.
    pub cost_usd: f64,
    /// Model calls.
    pub model_calls: u64,
    /// Tool calls.
    pub tool_calls: u64,
}

impl Spent {
    /// Nothing spent.
    pub fn new() -> Self {
        Self::default()
    }

    /// One model call that used `usage` and cost `cost_usd`.
    pub fn model_call(usage: &crate::model::Usage, cost_usd: Option<f64>) -> Self {
        Self {
            input_tokens: usage.total_input_tokens(),
            output_tokens: usage.output_tokens,
            cost_usd: cost_usd.unwrap_or(0.0),
            model_calls: 1,
            tool_calls: 0,
        }
    }

    /// `n` tool calls.
    pub fn tool_calls(n: u64) -> Self {
        Self { tool_calls: n, ..Self::default() }
    }

    /// Input and output tokens together.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// How much of `limit` this is.
    pub fn of(&self, limit: Limit) -> f64 {
        match limit {
            Limit::InputTokens => self.input_tokens as f64,
            Limit::OutputTokens => self.output_tokens as f64,
            Limit::TotalTokens => self.total_tokens() as f64,
            Limit::CostUsd => self.cost_usd,
            Limit::ModelCalls => self.model_calls as f64,
            Limit::ToolCalls => self.tool_calls as f64,
            // Not a sum: a run's wall time is measured, not spent.
            Limit::WallTime => 0.0,
        }
    }

    /// Adds `other`.
    pub fn add(&mut self, other: &Spent) {
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cost_usd += other.cost_usd;
        self.model_calls = self.model_calls.saturating_add(other.model_calls);
        self.tool_calls = self.tool_calls.saturating_add(other.tool_calls);
    }

    fn plus(mut self, other: &Spent) -> Self {
        self.add(other);
        self
    }
}

/// Where users' and global spending is kept: in this process ([`InMemoryUsage`], the
/// default), or in a store every worker process shares.
///
/// `period` numbers the budget's current period (the day, for a daily budget; `0` for a
/// budget without one): spending of another period does not count.
#[async_trait::async_trait]
pub trait UsageStore: Send + Sync + 'static {
    /// What `user` spent in `period` (`None`: every user together).
    async fn spent(&self, user: Option<&UserId>, period: u64) -> Result<Spent, StoreError>;

    /// Adds `spent` to `user`'s total and to the global total of `period`, returning both
    /// totals after the addition (user's, global).
    async fn add(&self, user: &UserId, period: u64, spent: &Spent) -> Result<(Spent, Spent), StoreError>;

    /// Forgets what `user` spent (GDPR erasure); the global totals keep their sums.
    async fn forget(&self, user: &UserId) -> Result<(), StoreError>;
}

/// Users' spending in this process, bounded: past `max_users` the least recently active user
/// is dropped, and a user idle past the idle time is dropped at the next use.
pub struct InMemoryUsage {
    inner: Mutex<UsageMaps>,
    max_users: usize,
    idle_ttl: Duration,
}

#[derive(Default)]
struct UsageMaps {
    users: PerUser<(u64, Spent)>,
    global: (u64, Spent),
}

impl fmt::Debug for InMemoryUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryUsage").field("max_users", &self.max_users).field("idle_ttl", &self.idle_ttl).finish()
    }
}

impl Default for InMemoryUsage {
    fn default() -> Self {
        Self::new(100_000, Duration::from_secs(24 * 3600))
    }
}

impl InMemoryUsage {
    /// Keeps at most `max_users` users, each until idle for `idle_ttl`.
    pub fn new(max_users: usize, idle_ttl: Duration) -> Self {
        Self { inner: Mutex::new(UsageMaps::default()), max_users, idle_ttl }
    }

    /// How many users it holds now.
    pub fn users(&self) -> usize {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).users.len()
    }
}

/// A period's total: what was kept, or nothing when it is of an earlier period.
fn in_period(kept: &(u64, Spent), period: u64) -> Spent {
    if kept.0 == period { kept.1 } else { Spent::default() }
}

fn add_in_period(kept: &mut (u64, Spent), period: u64, spent: &Spent) -> Spent {
    if kept.0 != period {
        *kept = (period, Spent::default());
    }
    kept.1.add(spent);
    kept.1
}

#[async_trait::async_trait]
impl UsageStore for InMemoryUsage {
    async fn spent(&self, user: Option<&UserId>, period: u64) -> Result<Spent, StoreError> {
        let mut maps = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(match user {
            None => in_period(&maps.global, period),
            Some(user) => maps
                .users
                .with(user, false, self.max_users, self.idle_ttl, |kept| in_period(kept, period))
                .unwrap_or_default(),
        })
    }

    async fn add(&self, user: &UserId, period: u64, spent: &Spent) -> Result<(Spent, Spent), StoreError> {
        let mut maps = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let global = add_in_period(&mut maps.global, period, spent);
        let user = maps
            .users
            .with(user, true, self.max_users, self.idle_ttl, |kept| add_in_period(kept, period, spent))
            .unwrap_or(*spent);
        Ok((user, global))
    }

    async fn forget(&self, user: &UserId) -> Result<(), StoreError> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).users.remove(user);
        Ok(())
    }
}

/// A budget: limits per run, per user and for everyone, a soft warning threshold, and where
/// users' spending is kept.
///
/// Checked before each model call with its estimated cost (the request's text at about four
/// characters a token, and the `max_tokens` it allows) and before each tool call; enforced
/// after each model call with what it actually used. Reaching `warn_at` of a limit (80 % by
/// default) emits [`EventKind::BudgetWarning`](crate::event::EventKind::BudgetWarning) once
/// per run; going past a limit ends the run with
/// [`RunError::BudgetExceeded`](crate::RunError::BudgetExceeded), its partial run kept.
///
/// ```
/// use std::time::Duration;
/// use loomflow::governance::{Budget, Limits};
///
/// let budget = Budget::new()
///     .per_run(Limits::new().total_tokens(20_000).tool_calls(50))
///     .per_user(Limits::new().cost_usd(5.0))
///     .period(Duration::from_secs(24 * 3600))
///     .wall_time(Duration::from_secs(120));
/// ```
#[derive(Clone)]
pub struct Budget {
    pub(crate) per_run: Limits,
    pub(crate) per_user: Limits,
    pub(crate) global: Limits,
    pub(crate) wall_time: Option<Duration>,
    pub(crate) warn_at: f64,
    period: Option<Duration>,
    pub(crate) store: Arc<dyn UsageStore>,
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("per_run", &self.per_run)
            .field("per_user", &self.per_user)
            .field("global", &self.global)
            .field("wall_time", &self.wall_time)
            .field("warn_at", &self.warn_at)
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

impl Default for Budget {
    fn default() -> Self {
        Self::new()
    }
}

impl Budget {
    /// No limits yet; users' spending in this process ([`InMemoryUsage`]).
    pub fn new() -> Self {
        Self {
            per_run: Limits::default(),
            per_user: Limits::default(),
            global: Limits::default(),
            wall_time: None,
            warn_at: 0.8,
            period: None,
            store: Arc::new(InMemoryUsage::default()),
        }
    }

    /// Limits of one run (its nested runs included).
    #[must_use]
    pub fn per_run(mut self, limits: Limits) -> Self {
        self.per_run = limits;
        self
    }

    /// Limits of each user, over all their runs in the period.
    #[must_use]
    pub fn per_user(mut self, limits: Limits) -> Self {
        self.per_user = limits;
        self
    }

    /// Limits of every user together.
    #[must_use]
    pub fn global(mut self, limits: Limits) -> Self {
        self.global = limits;
        self
    }

    /// How long one run may take (checked before each model and tool call).
    #[must_use]
    pub fn wall_time(mut self, limit: Duration) -> Self {
        self.wall_time = Some(limit);
        self
    }

    /// The share of a limit at which a warning event is emitted (0.8 by default; 1.0 or more
    /// turns warnings off).
    #[must_use]
    pub fn warn_at(mut self, share: f64) -> Self {
        self.warn_at = share;
        self
    }

    /// Users' and global spending counts per period of this length (a day, a month), from the
    /// Unix epoch; without one it counts for as long as the store keeps it.
    #[must_use]
    pub fn period(mut self, period: Duration) -> Self {
        self.period = Some(period);
        self
    }

    /// Keeps users' spending in `store` (a store shared by every worker process).
    #[must_use]
    pub fn store(mut self, store: Arc<dyn UsageStore>) -> Self {
        self.store = store;
        self
    }

    /// What `user` has spent in the current period.
    pub async fn spent_by(&self, user: &UserId) -> Result<Spent, StoreError> {
        self.store.spent(Some(user), self.current_period()).await
    }

    /// What every user together has spent in the current period.
    pub async fn spent_globally(&self) -> Result<Spent, StoreError> {
        self.store.spent(None, self.current_period()).await
    }

    /// The number of the current period (`0` without a period).
    pub(crate) fn current_period(&self) -> u64 {
        let Some(period) = self.period.filter(|p| !p.is_zero()) else { return 0 };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        (now.as_nanos() / period.as_nanos()) as u64
    }

    /// Whether users' or global spending is limited (so the store is asked).
    pub(crate) fn has_shared_limits(&self) -> bool {
        !self.per_user.is_empty() || !self.global.is_empty()
    }

    pub(crate) fn check(&self) -> Result<(), crate::ConfigError> {
        let bad = |what: &str| {
            Err(crate::ConfigError::InvalidSetting {
                setting: "budget",
                reason: format!("{what}; give a positive value"),
            })
        };
        for limits in [&self.per_run, &self.per_user, &self.global] {
            if limits.cost_usd.is_some_and(|c| !(c.is_finite() && c >= 0.0)) {
                return bad("a cost limit is negative or not a number");
            }
        }
        if !(self.warn_at.is_finite() && self.warn_at > 0.0) {
            return bad("`warn_at` is not a positive share");
        }
        Ok(())
    }
}

/// A limit a call would pass or has passed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Breach {
    pub(crate) scope: Scope,
    pub(crate) limit: Limit,
    pub(crate) max: f64,
    pub(crate) used: f64,
}

/// The first limit of `limits` that `spent` passes.
pub(crate) fn breach(scope: Scope, limits: &Limits, spent: &Spent) -> Option<Breach> {
    limits.each().find_map(|(limit, max)| {
        let used = spent.of(limit);
        (used > max).then_some(Breach { scope, limit, max, used })
    })
}

/// The limits of `limits` that `spent` has reached `share` of (without passing them).
pub(crate) fn near(scope: Scope, limits: &Limits, spent: &Spent, share: f64) -> impl Iterator<Item = Breach> {
    limits.each().filter_map(move |(limit, max)| {
        let used = spent.of(limit);
        (used >= max * share && used <= max).then_some(Breach { scope, limit, max, used })
    })
}

/// What a call about to be made would add: `spent` so far plus the estimate.
pub(crate) fn with_estimate(spent: &Spent, estimate: &Spent) -> Spent {
    spent.plus(estimate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_is_passed_only_beyond_its_maximum() {
        let limits = Limits::new().total_tokens(100).tool_calls(2);
        let at = Spent { input_tokens: 60, output_tokens: 40, ..Spent::default() };
        assert_eq!(breach(Scope::Run, &limits, &at), None, "reaching a limit is allowed");
        let past = Spent { output_tokens: 41, ..at };
        let b = breach(Scope::Run, &limits, &past).map(|b| (b.limit, b.used));
        assert_eq!(b, Some((Limit::TotalTokens, 101.0)));
        let near: Vec<_> = near(Scope::Run, &limits, &at, 0.8).map(|b| b.limit).collect();
        assert_eq!(near, [Limit::TotalTokens]);
    }

    #[tokio::test]
    async fn users_spending_is_kept_per_period_and_bounded() -> Result<(), Box<dyn std::error::Error>> {
        let store = InMemoryUsage::new(2, Duration::from_secs(3600));
        let (a, b, c) = (UserId::new("a")?, UserId::anonymous(), UserId::new("c")?);
        let call = Spent::model_call(&crate::model::Usage::new(10, 5), Some(0.5));
        store.add(&a, 7, &call).await?;
        let (user, global) = store.add(&a, 7, &call).await?;
        assert_eq!((user.total_tokens(), user.model_calls, global.cost_usd), (30, 2, 1.0));
        assert_eq!(store.spent(Some(&a), 8).await?, Spent::default(), "another period starts from nothing");
        store.add(&b, 7, &call).await?;
        store.add(&c, 7, &call).await?;
        assert_eq!(store.users(), 2, "the least recently active user went first");
        assert_eq!(store.spent(Some(&a), 7).await?, Spent::default());
        assert_eq!(store.spent(None, 7).await?.model_calls, 4, "the global total keeps every call");
        store.forget(&c).await?;
        assert_eq!(store.spent(Some(&c), 7).await?, Spent::default());
        Ok(())
    }
}
