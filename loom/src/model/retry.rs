//! The retry policy for transient model errors.

use std::time::Duration;

use super::ModelError;

/// How failed model calls are retried.
///
/// Only transient errors are retried (rate limits, overload and 5xx, timeouts, dropped
/// connections, broken streams); a permanent one (auth, bad request, context length, content
/// filter) fails at once. Delays grow exponentially from `initial_delay` by `multiplier`, are
/// capped at `max_delay`, and use full jitter (uniform in `[0, delay]`) so many clients do
/// not retry in step. A `Retry-After` from the provider is a floor; one longer than
/// `max_delay` ends the retries with [`RetryDecision::WaitTooLong`]: the error that ends the
/// run stays transient, carries the wait ([`ModelError::retry_after`]) and says so, and the
/// fallback model, if any, takes over.
///
/// A streamed reply is retried only if it failed before its first event reached the run's
/// listeners: text already shown is never silently replaced.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retry).
    pub max_attempts: u32,
    /// The delay bound after the first failure.
    pub initial_delay: Duration,
    /// How much the bound grows with each failure.
    pub multiplier: f64,
    /// The largest delay.
    pub max_delay: Duration,
    /// Whether delays are drawn uniformly from `[0, bound]` (full jitter) or are the bound.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    /// 3 attempts, 1 s doubling to at most 30 s, full jitter.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_delay: Duration::from_secs(1),
            multiplier: 2.0,
            max_delay: Duration::from_secs(30),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn disabled() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// `max_attempts` attempts, otherwise the defaults.
    pub fn attempts(max_attempts: u32) -> Self {
        Self { max_attempts: max_attempts.max(1), ..Self::default() }
    }

    /// Sets the delays: from `initial`, at most `max`.
    #[must_use]
    pub fn with_delays(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_delay = initial;
        self.max_delay = max;
        self
    }

    /// Turns jitter off (delays are exactly the exponential bound), for tests.
    #[must_use]
    pub fn without_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    /// How long to wait after failed attempt number `attempt` (from 1) with `error`, or
    /// `None` to stop retrying.
    pub fn delay(&self, attempt: u32, error: &ModelError) -> Option<Duration> {
        match self.decide(attempt, error) {
            RetryDecision::Retry(delay) => Some(delay),
            _ => None,
        }
    }

    /// What to do after failed attempt number `attempt` (from 1) with `error`.
    pub fn decide(&self, attempt: u32, error: &ModelError) -> RetryDecision {
        if !error.is_transient() || attempt >= self.max_attempts {
            return RetryDecision::Stop;
        }
        let exp = self.multiplier.max(1.0).powi(attempt.saturating_sub(1).min(60) as i32);
        // `mul_f64` panics past `Duration::MAX`: the bound is computed in seconds and capped.
        let max = self.max_delay.as_secs_f64();
        let bound =
            Duration::try_from_secs_f64((self.initial_delay.as_secs_f64() * exp).min(max)).unwrap_or(self.max_delay);
        let delay = if self.jitter { bound.mul_f64(unit_random()) } else { bound };
        match error.retry_after() {
            Some(after) if after > self.max_delay => RetryDecision::WaitTooLong(after),
            Some(after) => RetryDecision::Retry(delay.max(after)),
            None => RetryDecision::Retry(delay),
        }
    }

    /// `error`, with a note that the provider asked to wait `wait`, past `max_delay`, so the
    /// call was not retried.
    pub(crate) fn wait_too_long(&self, error: ModelError, wait: Duration) -> ModelError {
        let max = self.max_delay;
        error.with_note(format!(
            "the provider asked to wait {wait:?}, longer than the retry policy's max_delay ({max:?}): not retried; \
             try again after the wait, or raise max_delay"
        ))
    }
}

/// What the retry policy says after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryDecision {
    /// Wait this long, then try again.
    Retry(Duration),
    /// Do not try again: the error is permanent, or the attempts are used up.
    Stop,
    /// Do not try again now: the provider asked to wait this long, past the policy's
    /// `max_delay`. The error is still transient; come back after the wait.
    WaitTooLong(Duration),
}

/// A uniform number in `[0, 1)`.
fn unit_random() -> f64 {
    (crate::id::random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelErrorKind;

    fn transient() -> ModelError {
        ModelError::new(ModelErrorKind::Overloaded, "test", "busy")
    }

    #[test]
    fn delays_double_up_to_the_cap_without_jitter() {
        let p = RetryPolicy { max_attempts: 10, ..RetryPolicy::default() }.without_jitter();
        let delays: Vec<u64> = (1..=7).filter_map(|a| p.delay(a, &transient())).map(|d| d.as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
    }

    #[test]
    fn jitter_stays_under_the_bound() {
        let p = RetryPolicy::default();
        for _ in 0..100 {
            let d = p.delay(2, &transient()).unwrap_or(Duration::MAX);
            assert!(d <= Duration::from_secs(2));
        }
    }

    #[test]
    fn permanent_errors_and_the_last_attempt_stop() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, &ModelError::new(ModelErrorKind::Authentication, "t", "no")), None);
        assert_eq!(p.delay(3, &transient()), None);
        assert_eq!(RetryPolicy::disabled().delay(1, &transient()), None);
    }

    #[test]
    fn retry_after_is_a_floor_and_too_long_a_wait_stops() {
        let p = RetryPolicy::default().without_jitter();
        let e = transient().with_retry_after(Duration::from_secs(5));
        assert_eq!(p.delay(1, &e), Some(Duration::from_secs(5)));
        let e = transient().with_retry_after(Duration::from_secs(60));
        assert_eq!(p.delay(1, &e), None);
        assert_eq!(p.decide(1, &e), RetryDecision::WaitTooLong(Duration::from_secs(60)));
    }

    #[test]
    fn huge_settings_do_not_overflow() {
        let p =
            RetryPolicy { max_attempts: 100, multiplier: 1e300, max_delay: Duration::MAX, ..RetryPolicy::default() }
                .without_jitter();
        assert!(p.delay(50, &transient()).is_some());
        let e = transient().with_retry_after(Duration::MAX);
        assert_eq!(RetryPolicy::default().decide(1, &e), RetryDecision::WaitTooLong(Duration::MAX));
    }
}
