//! The control messages the architectures ask their roles for, as types: each is asked for
//! with its JSON schema (the provider's structured output, or the schema in the prompt),
//! parsed leniently, and asked for once more with what was wrong
//! ([`AgentRun::ask`](super::AgentRun::ask)). What an architecture does with one that is
//! still malformed is documented on the architecture, and reported as a `control.rejected`
//! event.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use super::role::unit_score;

/// A score of an answer (Reflexion's evaluator, Tree of Thoughts' evaluator).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct Evaluation {
    /// How good the answer is, from 0 (wrong) to 1 (fully correct and complete).
    #[serde(deserialize_with = "score")]
    pub score: f64,
    /// Why, in a sentence.
    #[serde(default, deserialize_with = "text_or_null")]
    pub reason: String,
}

/// Candidate next thoughts (Tree of Thoughts' proposer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct Thoughts {
    /// Distinct next steps of reasoning, each a short paragraph.
    pub thoughts: Vec<String>,
}

/// The steps of a plan (Plan-and-Execute's planner).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct Plan {
    /// The steps, in order, each one instruction an executor can carry out.
    pub steps: Vec<String>,
}

/// A ReWOO plan: tool calls whose arguments may use the results of earlier steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct WorkPlan {
    /// The steps. A step's arguments refer to an earlier step's result as `{{E1}}` (or `#E1`,
    /// `{E1}`).
    pub steps: Vec<WorkStep>,
}

/// One step of a ReWOO plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct WorkStep {
    /// The step's id: `E1`, `E2` ...
    pub id: String,
    /// The tool to call.
    pub tool: String,
    /// The tool's arguments; strings may contain `{{E1}}` for step E1's result.
    #[serde(default)]
    pub args: serde_json::Map<String, serde_json::Value>,
}

/// Where a request goes (the Router's classifier).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct RouteChoice {
    /// The route's name, one of those listed.
    pub route: String,
    /// How sure the classifier is, from 0 to 1.
    #[serde(deserialize_with = "score")]
    pub confidence: f64,
}

/// A critic's verdict on a draft (Actor-Critic).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct Critique {
    /// What is wrong with the draft, one problem per item (empty when nothing is).
    #[serde(default)]
    pub issues: Vec<String>,
    /// How good the draft is, from 0 to 1.
    #[serde(deserialize_with = "score")]
    pub score: f64,
    /// The verdict in a sentence.
    #[serde(default, deserialize_with = "text_or_null")]
    pub summary: String,
}

/// A coordinator's decision (Blackboard).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct Pick {
    /// The board holds enough to answer: stop.
    #[serde(default)]
    pub terminate: bool,
    /// Who works next, one of those listed (unless terminating).
    #[serde(default)]
    pub next_agent: Option<String>,
    /// What they should do.
    #[serde(default)]
    pub instruction: Option<String>,
}

/// Whether a goal is reached (`run_until`'s checker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct GoalCheck {
    /// The goal's condition holds for the answer.
    pub met: bool,
    /// Why, or what is still missing.
    #[serde(default, deserialize_with = "text_or_null")]
    pub reason: String,
}

/// A score as models write it: `0.7`, `"0.7"`, `"7/10"`, `"70%"`, or 7 on a ten-point scale.
fn score<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(f64),
        Text(String),
    }
    match Raw::deserialize(deserializer)? {
        Raw::Number(n) => Ok(unit_score(n)),
        Raw::Text(text) => parse_score(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a score; give a number from 0 to 1"))),
    }
}

/// A score written as text.
pub(crate) fn parse_score(text: &str) -> Option<f64> {
    let t = text.trim();
    if let Some((n, d)) = t.split_once('/') {
        let (n, d): (f64, f64) = (n.trim().parse().ok()?, d.trim().parse().ok()?);
        return (d > 0.0).then(|| (n / d).clamp(0.0, 1.0));
    }
    if let Some(p) = t.strip_suffix('%') {
        return p.trim().parse::<f64>().ok().map(|p| (p / 100.0).clamp(0.0, 1.0));
    }
    t.parse::<f64>().ok().map(unit_score)
}

/// A string, or `null` as the empty string.
fn text_or_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_read_as_models_write_them() {
        for (raw, want) in [("0.7", 0.7), ("7/10", 0.7), ("70%", 0.7), ("7", 0.7), ("85", 0.85), ("1", 1.0)] {
            let got = parse_score(raw).unwrap_or(f64::NAN);
            assert!((got - want).abs() < 1e-9, "{raw}: {got}");
        }
        assert_eq!(parse_score("high"), None);
        assert_eq!(parse_score("3/0"), None);
        let e: Evaluation =
            serde_json::from_str(r#"{"score": "9/10", "reason": null}"#).unwrap_or_else(|e| panic!("{e}"));
        assert!((e.score - 0.9).abs() < 1e-9 && e.reason.is_empty());
        assert!(serde_json::from_str::<Evaluation>(r#"{"score": "great"}"#).is_err());
    }
}
