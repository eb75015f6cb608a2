//! The built-in guardrails: personal data ([`PiiGuard`]), prompt injection in tool output
//! ([`InjectionGuard`]), named regex rules ([`RegexGuard`]) and a model's judgement
//! ([`ModerationGuard`]).
//!
//! Each scans its text in one linear pass with regexes compiled once, when the guard is built.

mod injection;
mod moderation;
mod pii;
mod rules;

pub use injection::InjectionGuard;
pub use moderation::ModerationGuard;
pub use pii::{PiiCounts, PiiGuard, PiiKind, redact_pii};
pub use rules::RegexGuard;

use super::guard::Stage;

/// A guardrail built wrong: a pattern that does not compile. Raised when the guard is built,
/// never while it checks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuardConfigError {
    /// A pattern is not a valid regex (or is too large to compile).
    #[error(
        "guardrail `{guard}`: the pattern `{pattern}` does not compile: {reason}; fix the pattern (escape literal text with `regex::escape`)"
    )]
    InvalidPattern {
        /// The guardrail's name.
        guard: String,
        /// The pattern as given.
        pattern: String,
        /// What the regex compiler said.
        reason: String,
    },
}

impl GuardConfigError {
    pub(crate) fn pattern(guard: &str, pattern: &str, error: &regex::Error) -> Self {
        Self::InvalidPattern { guard: guard.to_owned(), pattern: pattern.to_owned(), reason: error.to_string() }
    }
}

impl From<GuardConfigError> for crate::ConfigError {
    fn from(e: GuardConfigError) -> Self {
        Self::InvalidSetting { setting: "guardrail", reason: e.to_string() }
    }
}

impl From<GuardConfigError> for crate::Error {
    fn from(e: GuardConfigError) -> Self {
        Self::Config(e.into())
    }
}

/// Compiles `pattern` for the guard named `guard`, or says which pattern failed and why.
fn compile(guard: &str, pattern: &str) -> Result<regex::Regex, GuardConfigError> {
    regex::Regex::new(pattern).map_err(|e| GuardConfigError::pattern(guard, pattern, &e))
}

/// The stages a guard looks at, as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stages(u8);

impl Stages {
    const ALL: Self = Self(0b111);

    fn bit(stage: Stage) -> u8 {
        match stage {
            Stage::Input => 1,
            Stage::Output => 2,
            Stage::ToolResult => 4,
        }
    }

    fn of(stages: &[Stage]) -> Self {
        Self(stages.iter().fold(0, |bits, &s| bits | Self::bit(s)))
    }

    fn contains(self, stage: Stage) -> bool {
        self.0 & Self::bit(stage) != 0
    }
}

/// `n` and the noun, singular or plural: `1 email`, `2 emails`.
fn counted(n: usize, singular: &str, plural: &str) -> String {
    if n == 1 { format!("1 {singular}") } else { format!("{n} {plural}") }
}

/// At most `max` bytes of `text`, cut at a character boundary, with `…` when cut.
fn truncated(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_and_words() {
        let s = Stages::of(&[Stage::Input, Stage::ToolResult]);
        assert!(s.contains(Stage::Input) && s.contains(Stage::ToolResult) && !s.contains(Stage::Output));
        assert!(Stages::ALL.contains(Stage::Output));
        assert!(!Stages::of(&[]).contains(Stage::Input));
        assert_eq!(counted(1, "card", "cards"), "1 card");
        assert_eq!(counted(3, "card", "cards"), "3 cards");
        assert_eq!(truncated("héllo", 2), "h…");
        assert_eq!(truncated("hi", 5), "hi");
    }

    #[test]
    fn a_bad_pattern_names_itself() {
        let Err(e) = compile("mine", "a(b") else { panic!("`a(b` compiled") };
        let GuardConfigError::InvalidPattern { guard, pattern, reason } = &e;
        assert_eq!((guard.as_str(), pattern.as_str()), ("mine", "a(b"));
        assert!(!reason.is_empty());
        let config = crate::ConfigError::from(e.clone());
        assert!(config.to_string().contains("`a(b`"), "{config}");
    }
}
