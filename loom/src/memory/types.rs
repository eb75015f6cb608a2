//! What memory holds: working blocks, episodes, bi-temporal facts; and what it answers.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::time::Timestamp;
use crate::id::{RunId, SessionId, UserId};
use crate::model::Message;
use crate::session::RunInfo;

/// A new id: `prefix` and a time-ordered unique part.
pub(crate) fn new_id(prefix: &str) -> Arc<str> {
    let run = RunId::generate().to_string();
    Arc::from(format!("{prefix}_{}", run.strip_prefix("run_").unwrap_or(&run)))
}

/// A named block of text kept in the agent's prompt (a persona, what the user prefers, the
/// task at hand), per user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkingBlock {
    /// The block's name.
    pub name: String,
    /// Its text.
    pub text: String,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// Something that happened, kept to be recalled later: a turn of a conversation, a note, an
/// observation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Episode {
    /// Its id.
    pub id: Arc<str>,
    /// Whose it is.
    pub user: UserId,
    /// The session it happened in, if any.
    pub session: Option<SessionId>,
    /// What kind it is (`turn`, `note`, `observation` ...): recall can ask for one kind.
    pub kind: String,
    /// What happened, as text (what recall searches).
    pub text: String,
    /// When it happened.
    pub at: Timestamp,
    /// Anything else about it.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl Episode {
    /// A new episode of `kind` with `text`, now, for `user`.
    pub fn new(user: UserId, kind: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            id: new_id("ep"),
            user,
            session: None,
            kind: kind.into(),
            text: text.into(),
            at: Timestamp::now(),
            metadata: serde_json::Map::new(),
        }
    }

    /// In `session`.
    #[must_use]
    pub fn in_session(mut self, session: SessionId) -> Self {
        self.session = Some(session);
        self
    }

    /// At `at` rather than now.
    #[must_use]
    pub fn at(mut self, at: Timestamp) -> Self {
        self.at = at;
        self
    }

    /// With a metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// What to recall: episodes matching a text, ranked by words (BM25) and by meaning (vector
/// similarity), fused by reciprocal rank.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RecallQuery {
    /// The text to match.
    pub text: String,
    /// Only episodes of this kind.
    pub kind: Option<String>,
    /// Only episodes of this session.
    pub session: Option<SessionId>,
    /// Only episodes at or after this time.
    pub since: Option<Timestamp>,
    /// Only episodes before this time.
    pub until: Option<Timestamp>,
    /// How many, at most.
    pub limit: usize,
    /// How much meaning counts against words, from 0 (words only: BM25) to 1 (meaning only:
    /// vectors); 0.5 by default. Each ranking contributes `weight / (60 + rank)`.
    pub alpha: f64,
}

/// The constant of reciprocal-rank fusion: a result ranked `r` (from 1) by one ranking scores
/// `weight / (RRF_K + r)` from it.
pub const RRF_K: f64 = 60.0;

impl RecallQuery {
    /// Episodes matching `text`: 5 at most, words and meaning weighed alike.
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into(), kind: None, session: None, since: None, until: None, limit: 5, alpha: 0.5 }
    }

    /// Only episodes of `kind`.
    #[must_use]
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// Only episodes of `session`.
    #[must_use]
    pub fn session(mut self, session: SessionId) -> Self {
        self.session = Some(session);
        self
    }

    /// Only episodes in `[since, until)`.
    #[must_use]
    pub fn between(mut self, since: Option<Timestamp>, until: Option<Timestamp>) -> Self {
        self.since = since;
        self.until = until;
        self
    }

    /// At most `limit` episodes.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// How much meaning counts against words (0 to 1).
    #[must_use]
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha.clamp(0.0, 1.0);
        self
    }

    /// Whether `episode` passes the query's filters (kind, session, time range).
    pub fn admits(&self, episode: &Episode) -> bool {
        self.kind.as_ref().is_none_or(|k| *k == episode.kind)
            && self.session.as_ref().is_none_or(|s| episode.session.as_ref() == Some(s))
            && self.since.is_none_or(|t| episode.at >= t)
            && self.until.is_none_or(|t| episode.at < t)
    }
}

impl From<&str> for RecallQuery {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl From<String> for RecallQuery {
    fn from(text: String) -> Self {
        Self::new(text)
    }
}

/// An episode recalled, with how it ranked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Recalled {
    /// The episode.
    pub episode: Episode,
    /// Its fused score (higher is better).
    pub score: f64,
    /// Its rank by words (BM25), from 1, if the words matched at all.
    pub word_rank: Option<usize>,
    /// Its rank by meaning (vector similarity), from 1.
    pub meaning_rank: Option<usize>,
}

/// A fact about a subject, with the two times of a bi-temporal record: when it held in the
/// world (`valid_from`, `valid_until`) and when Loom learned and unlearned it
/// (`recorded_at`, `closed_at`, `retracted_at`).
///
/// A fact with the same subject and predicate as one Loom holds and another object ends the
/// other's validity where it begins (or, arriving late about an earlier time, ends where the
/// later one begins): validity is ordered by valid time, not arrival. Queries see the world
/// at a valid time (`valid_at`) as Loom believed it at a record time (`as_of`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Fact {
    /// Its id.
    pub id: Arc<str>,
    /// Whose memory it is in.
    pub user: UserId,
    /// What it is about: `alice`, `project loom`.
    pub subject: String,
    /// The relation, canonical (`works_at`, `name_is`).
    pub predicate: String,
    /// The value: `Acme`, `Paris`.
    pub object: String,
    /// How sure, from 0 to 1.
    pub confidence: f64,
    /// From when it held.
    pub valid_from: Timestamp,
    /// Until when it held (exclusive); `None` while it still does.
    pub valid_until: Option<Timestamp>,
    /// When Loom recorded it.
    pub recorded_at: Timestamp,
    /// When Loom recorded its `valid_until` (a later fact ended it); `None` while it is open.
    pub closed_at: Option<Timestamp>,
    /// When Loom stopped believing it (a correction replaced it); `None` while believed.
    pub retracted_at: Option<Timestamp>,
    /// Where it came from: episode ids, documents, `rectified by ...`.
    #[serde(default)]
    pub sources: Vec<String>,
}

impl Fact {
    /// Whether the fact held at valid time `at`, as Loom believed at record time `as_of`
    /// (`None`: now).
    pub fn holds_at(&self, at: Timestamp, as_of: Option<Timestamp>) -> bool {
        if !self.believed(as_of) || at < self.valid_from {
            return false;
        }
        match (self.valid_until, self.closed_at, as_of) {
            (None, ..) => true,
            // Closed after `as_of`: then, it was still open.
            (Some(_), Some(closed), Some(as_of)) if closed > as_of => true,
            (Some(until), ..) => at < until,
        }
    }

    /// Whether Loom held the fact at record time `as_of` (`None`: now).
    pub fn believed(&self, as_of: Option<Timestamp>) -> bool {
        match as_of {
            None => self.retracted_at.is_none(),
            Some(t) => self.recorded_at <= t && self.retracted_at.is_none_or(|r| r > t),
        }
    }

    /// The fact's valid end as Loom believed it at `as_of`.
    pub fn valid_until_as_of(&self, as_of: Option<Timestamp>) -> Option<Timestamp> {
        match (self.closed_at, as_of) {
            (Some(closed), Some(t)) if closed > t => None,
            _ => self.valid_until,
        }
    }
}

/// A fact to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct NewFact {
    /// What it is about.
    pub subject: String,
    /// The relation (any spelling: `Works-At`, `worksAt` and `works at` are `works_at`).
    pub predicate: String,
    /// The value.
    pub object: String,
    /// How sure, from 0 to 1 (1 by default).
    #[serde(default = "one")]
    pub confidence: f64,
    /// From when it holds (now by default).
    #[serde(default)]
    pub valid_from: Option<Timestamp>,
    /// Where it came from.
    #[serde(default)]
    pub sources: Vec<String>,
}

fn one() -> f64 {
    1.0
}

impl NewFact {
    /// `subject predicate object`, holding from now.
    pub fn new(subject: impl Into<String>, predicate: impl Into<String>, object: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            predicate: predicate.into(),
            object: object.into(),
            confidence: 1.0,
            valid_from: None,
            sources: Vec::new(),
        }
    }

    /// Holding from `at`.
    #[must_use]
    pub fn valid_from(mut self, at: Timestamp) -> Self {
        self.valid_from = Some(at);
        self
    }

    /// As sure as `confidence` (clamped to 0..1).
    #[must_use]
    pub fn confidence(mut self, confidence: f64) -> Self {
        self.confidence = confidence;
        self
    }

    /// From `source`.
    #[must_use]
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.sources.push(source.into());
        self
    }
}

/// The canonical form of a predicate: lowercase words joined by `_` (`Works-At`, `worksAt`,
/// `works at` → `works_at`).
pub fn canonical_predicate(predicate: &str) -> String {
    let mut out = String::with_capacity(predicate.len() + 4);
    let mut prev_lower = false;
    for c in predicate.trim().chars() {
        if c.is_alphanumeric() {
            if c.is_uppercase() && prev_lower {
                out.push('_');
            }
            out.extend(c.to_lowercase());
            prev_lower = c.is_lowercase() || c.is_ascii_digit();
        } else {
            if !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
            prev_lower = false;
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// Which facts to find.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct FactQuery {
    /// About this subject (case-insensitive).
    pub subject: Option<String>,
    /// With this predicate (any spelling).
    pub predicate: Option<String>,
    /// With this object (case-insensitive).
    pub object: Option<String>,
    /// Holding at this valid time; `None`: every fact, open or closed.
    pub valid_at: Option<Timestamp>,
    /// As Loom believed at this record time; `None`: now.
    pub as_of: Option<Timestamp>,
    /// How many, at most (`None`: all).
    pub limit: Option<usize>,
}

impl FactQuery {
    /// Every fact Loom believes now.
    pub fn new() -> Self {
        Self::default()
    }

    /// About `subject`.
    #[must_use]
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// With `predicate`.
    #[must_use]
    pub fn predicate(mut self, predicate: impl Into<String>) -> Self {
        self.predicate = Some(canonical_predicate(&predicate.into()));
        self
    }

    /// With `object`.
    #[must_use]
    pub fn object(mut self, object: impl Into<String>) -> Self {
        self.object = Some(object.into());
        self
    }

    /// Holding at `at`.
    #[must_use]
    pub fn valid_at(mut self, at: Timestamp) -> Self {
        self.valid_at = Some(at);
        self
    }

    /// As believed at `as_of`.
    #[must_use]
    pub fn as_of(mut self, as_of: Timestamp) -> Self {
        self.as_of = Some(as_of);
        self
    }

    /// At most `limit`.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Whether `fact` answers the query.
    pub fn admits(&self, fact: &Fact) -> bool {
        let same = |want: &Option<String>, have: &str| want.as_ref().is_none_or(|w| w.eq_ignore_ascii_case(have));
        same(&self.subject, &fact.subject)
            && self.predicate.as_ref().is_none_or(|p| *p == fact.predicate)
            && same(&self.object, &fact.object)
            && match self.valid_at {
                Some(at) => fact.holds_at(at, self.as_of),
                None => fact.believed(self.as_of),
            }
    }
}

/// What Loom knows of a user, in a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MemoryProfile {
    /// The user.
    pub user: UserId,
    /// Episodes kept.
    pub episodes: usize,
    /// Facts believed now.
    pub facts: usize,
    /// Working blocks.
    pub blocks: usize,
    /// The latest episode's time.
    pub last_seen: Option<Timestamp>,
    /// The sessions of the latest episodes, latest first.
    pub recent_sessions: Vec<SessionId>,
}

/// Everything a memory store holds for one user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MemoryData {
    /// The working blocks.
    pub blocks: Vec<WorkingBlock>,
    /// The episodes, oldest first.
    pub episodes: Vec<Episode>,
    /// Every fact, retracted and closed ones too, in record order.
    pub facts: Vec<Fact>,
}

/// Everything Loom holds for a user, across the stores a [`Memory`](super::Memory) manages:
/// what [`Memory::export`](super::Memory::export) returns (GDPR access and portability).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MemoryExport {
    /// The user.
    pub user: UserId,
    /// When it was made.
    pub exported_at: Timestamp,
    /// Memory: working blocks, episodes, facts.
    #[serde(flatten)]
    pub memory: MemoryData,
    /// The user's sessions, with their messages and runs.
    pub sessions: Vec<SessionExport>,
    /// What each store the memory also covers holds for the user
    /// ([`Memory::cover`](super::Memory::cover)), by its name: `documents`, `workspace`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub covered: std::collections::BTreeMap<String, serde_json::Value>,
}

/// One session of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionExport {
    /// The session.
    pub session: SessionId,
    /// Its messages, oldest first.
    pub messages: Vec<Message>,
    /// Its runs, with their journals.
    pub runs: Vec<RunExport>,
}

/// One run of an exported session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunExport {
    /// The run's id.
    pub run: RunId,
    /// Where it stands (`running`, `finished` ...).
    pub status: String,
    /// When it started (ms since the epoch).
    pub started_ms: u64,
    /// Its journal's readable entries, as JSON.
    pub journal: Vec<serde_json::Value>,
    /// How many of its records could not be read.
    pub unreadable_records: usize,
}

impl RunExport {
    pub(crate) fn new(info: &RunInfo, journal: Vec<serde_json::Value>, unreadable_records: usize) -> Self {
        Self {
            run: info.run,
            status: format!("{:?}", info.status).to_lowercase(),
            started_ms: info.started_ms,
            journal,
            unreadable_records,
        }
    }
}

/// What to forget: everything of the user, or only one session's, or only what happened
/// before a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForgetScope {
    /// Only what belongs to this session (its episodes, its messages, runs and journals).
    pub session: Option<SessionId>,
    /// Only episodes before this time, and facts recorded before it.
    pub before: Option<Timestamp>,
}

impl ForgetScope {
    /// Everything of the user.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only `session`'s.
    pub fn session(session: SessionId) -> Self {
        Self { session: Some(session), before: None }
    }

    /// Only what is older than `before`.
    pub fn before(before: Timestamp) -> Self {
        Self { session: None, before: Some(before) }
    }

    /// Whether the whole user is forgotten.
    pub fn is_everything(&self) -> bool {
        self.session.is_none() && self.before.is_none()
    }
}

/// What [`Memory::forget`](super::Memory::forget) removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ForgetReport {
    /// Episodes removed.
    pub episodes: usize,
    /// Facts removed.
    pub facts: usize,
    /// Working blocks removed.
    pub blocks: usize,
    /// Sessions cleared (with their messages, runs, journals and checkpoints).
    pub sessions: usize,
    /// What each store the memory also covers removed ([`Memory::cover`](super::Memory::cover)),
    /// by its name: `documents`, `workspace`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub covered: std::collections::BTreeMap<String, usize>,
}

impl ForgetReport {
    /// Everything removed, counted.
    pub fn total(&self) -> usize {
        self.episodes + self.facts + self.blocks + self.sessions + self.covered.values().sum::<usize>()
    }
}

impl std::ops::AddAssign for ForgetReport {
    fn add_assign(&mut self, rhs: Self) {
        self.episodes += rhs.episodes;
        self.facts += rhs.facts;
        self.blocks += rhs.blocks;
        self.sessions += rhs.sessions;
        for (name, n) in rhs.covered {
            *self.covered.entry(name).or_default() += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates_are_canonical_whatever_their_spelling() {
        for p in ["works_at", "Works-At", "worksAt", "works at", "  WORKS AT ", "works__at"] {
            assert_eq!(canonical_predicate(p), "works_at", "{p}");
        }
        assert_eq!(canonical_predicate("nameIs"), "name_is");
        assert_eq!(canonical_predicate("born in 1990"), "born_in_1990");
    }
}
