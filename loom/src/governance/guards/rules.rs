//! [`RegexGuard`]: your own rules, as regexes that block or redact.

use std::borrow::Cow;

use regex::{Regex, RegexSet};

use super::{GuardConfigError, Stages, compile, counted};
use crate::governance::guard::{Checked, GuardError, Guardrail, Stage, Verdict};

/// A named set of regex rules: some block the text (with a reason of yours), others replace
/// what they match.
///
/// ```
/// use loomflow::governance::{RegexGuard, Stage};
///
/// let guard = RegexGuard::new("no-internal-hosts")
///     .block(r"\binternal\.corp\b", "mentions an internal host")?
///     .redact(r"\bticket-[0-9]+\b", "[ticket]")?
///     .stages(&[Stage::Output, Stage::ToolResult]);
/// # let _ = guard;
/// # Ok::<(), loomflow::governance::GuardConfigError>(())
/// ```
///
/// The blocking rules are checked first, in one pass: the first rule added that matches gives
/// the reason. Then each redaction applies in the order added, its replacement taken literally
/// (`$1` is not expanded). A pattern that does not compile, or that matches the empty string
/// (and so would match everywhere), is an error when the rule is added.
#[derive(Debug, Clone)]
pub struct RegexGuard {
    name: String,
    stages: Stages,
    blocks: Vec<(String, String)>,
    block_set: Option<RegexSet>,
    redactions: Vec<(Regex, String)>,
}

impl RegexGuard {
    /// A guard named `name` (in events, the audit log and a block's outcome), with no rules
    /// yet, at every stage.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), stages: Stages::ALL, blocks: Vec::new(), block_set: None, redactions: Vec::new() }
    }

    /// Blocks a text that `pattern` matches, saying `reason` (words a user may read).
    pub fn block(mut self, pattern: &str, reason: impl Into<String>) -> Result<Self, GuardConfigError> {
        self.checked(pattern)?;
        self.blocks.push((pattern.to_owned(), reason.into()));
        let set = RegexSet::new(self.blocks.iter().map(|(p, _)| p))
            .map_err(|e| GuardConfigError::pattern(&self.name, pattern, &e))?;
        self.block_set = Some(set);
        Ok(self)
    }

    /// Replaces what `pattern` matches with `replacement` (literally).
    pub fn redact(mut self, pattern: &str, replacement: impl Into<String>) -> Result<Self, GuardConfigError> {
        let regex = self.checked(pattern)?;
        self.redactions.push((regex, replacement.into()));
        Ok(self)
    }

    /// Looks at these stages only.
    #[must_use]
    pub fn stages(mut self, stages: &[Stage]) -> Self {
        self.stages = Stages::of(stages);
        self
    }

    fn checked(&self, pattern: &str) -> Result<Regex, GuardConfigError> {
        let regex = compile(&self.name, pattern)?;
        if regex.is_match("") {
            return Err(GuardConfigError::InvalidPattern {
                guard: self.name.clone(),
                pattern: pattern.to_owned(),
                reason: "it matches the empty string, so it would match every text".to_owned(),
            });
        }
        Ok(regex)
    }
}

#[async_trait::async_trait]
impl Guardrail for RegexGuard {
    fn name(&self) -> &str {
        &self.name
    }

    fn applies_to(&self, stage: Stage) -> bool {
        self.stages.contains(stage)
    }

    async fn check(&self, checked: Checked<'_>) -> Result<Verdict, GuardError> {
        if let Some(set) = &self.block_set
            && let Some(i) = set.matches(checked.text).iter().next()
        {
            let reason = self.blocks.get(i).map_or_else(|| "a blocking rule matched".to_owned(), |(_, r)| r.clone());
            return Ok(Verdict::Block { reason });
        }
        let mut text = Cow::Borrowed(checked.text);
        let mut replaced = 0usize;
        for (regex, replacement) in &self.redactions {
            let changed = match regex.replace_all(&text, |_: &regex::Captures<'_>| {
                replaced += 1;
                replacement.as_str()
            }) {
                Cow::Owned(s) => Some(s),
                Cow::Borrowed(_) => None,
            };
            if let Some(s) = changed {
                text = Cow::Owned(s);
            }
        }
        Ok(match text {
            Cow::Borrowed(_) => Verdict::Pass,
            Cow::Owned(text) => {
                Verdict::Rewrite { text, note: format!("{} redacted", counted(replaced, "match", "matches")) }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::RunContext;
    use crate::id::UserId;

    type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

    #[tokio::test]
    async fn rules_block_then_redact() -> Result {
        let guard = RegexGuard::new("no-internal-hosts")
            .block(r"\binternal\.corp\b", "mentions an internal host")?
            .block(r"(?i)\bconfidential\b", "is marked confidential")?
            .redact(r"\bticket-[0-9]+\b", "[ticket]")?
            .redact(r"\$[0-9]+", "$$")?;
        let ctx = RunContext::new(UserId::new("alice")?);
        let at = |text| Checked::new(Stage::Output, text, &ctx);
        assert_eq!(guard.name(), "no-internal-hosts");
        assert_eq!(
            guard.check(at("see db.internal.corp")).await?,
            Verdict::Block { reason: "mentions an internal host".to_owned() }
        );
        assert_eq!(
            guard.check(at("CONFIDENTIAL: x")).await?,
            Verdict::Block { reason: "is marked confidential".to_owned() }
        );
        assert_eq!(
            guard.check(at("fixed in ticket-12 and ticket-345 for $100")).await?,
            Verdict::Rewrite {
                text: "fixed in [ticket] and [ticket] for $$".to_owned(),
                note: "3 matches redacted".to_owned()
            }
        );
        assert_eq!(guard.check(at("nothing to see")).await?, Verdict::Pass);
        Ok(())
    }

    #[test]
    fn bad_patterns_are_refused_by_name() {
        let e = RegexGuard::new("mine").block("a[", "x").err();
        let Some(GuardConfigError::InvalidPattern { guard, pattern, .. }) = e else { panic!("expected an error") };
        assert_eq!((guard.as_str(), pattern.as_str()), ("mine", "a["));
        let e = RegexGuard::new("mine").redact("x*", "y").err();
        let Some(GuardConfigError::InvalidPattern { reason, .. }) = e else { panic!("expected an error") };
        assert!(reason.contains("empty string"), "{reason}");
    }

    #[test]
    fn stages_are_chosen() {
        let guard = RegexGuard::new("r").stages(&[Stage::Input]);
        assert!(guard.applies_to(Stage::Input) && !guard.applies_to(Stage::ToolResult));
        assert!(RegexGuard::new("r").applies_to(Stage::ToolResult));
    }
}
