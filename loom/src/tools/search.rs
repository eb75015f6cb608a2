//! Tool search, for agents with many tools: each model request carries a few definitions and
//! a `search_tools` tool that finds the others.
//!
//! Hundreds of tool definitions in every request cost tokens on every turn and make models
//! pick worse. With [`Agent::tool_search`], once the agent has more tools than the
//! [`threshold`](ToolSearch::threshold), each request offers only:
//!
//! - the tools named [`always`](ToolSearch::always);
//! - `search_tools`, which finds tools by the words of their names and descriptions (ranked
//!   with BM25) and returns their names, descriptions and argument schemas;
//! - the [`top_k`](ToolSearch::top_k) tools most relevant to the latest user message;
//! - every tool `search_tools` returned, and every tool called, earlier in the conversation:
//!   from the next turn on, the model calls a tool it found like any other.
//!
//! What was found is read from the conversation itself (the `search_tools` results in it), so
//! it needs no state of its own: a run resumed from its journal, or a session continued in
//! another process, offers the same tools again.
//!
//! The definitions sent are a view, not a fence: every tool of the agent stays callable, and
//! a call of one that was not offered (a name the model remembers, or guesses right) runs as
//! usual, its arguments checked against its schema. Architectures' own tools (a supervisor's
//! `delegate`) and the typed output's `final_answer` are always offered.
//!
//! ```
//! use std::sync::Arc;
//! use loomflow::prelude::*;
//! use loomflow::tool::{ToolDefinition, ToolOutput};
//! use loomflow::tools::search::ToolSearch;
//! use serde_json::json;
//!
//! /// A tool that reports the city it is about.
//! struct CityWeather { definition: ToolDefinition }
//!
//! #[loomflow::async_trait]
//! impl Tool for CityWeather {
//!     fn definition(&self) -> &ToolDefinition { &self.definition }
//!     async fn call(&self, _ctx: &RunContext, _arguments: &str) -> Result<ToolOutput, ToolError> {
//!         Ok(ToolOutput::text(format!("sunny in {}", &self.definition.name()[8..])))
//!     }
//! }
//!
//! let cities = ["paris", "tokyo", "lima", "oslo", "cairo", "quito", "perth", "seoul"];
//! let tools: Vec<Arc<dyn Tool>> = cities
//!     .iter()
//!     .map(|city| {
//!         let definition = ToolDefinition::new(
//!             format!("weather_{city}"),
//!             format!("The weather in {city}."),
//!             json!({"type": "object", "properties": {}}),
//!         )?;
//!         Ok(Arc::new(CityWeather { definition }) as Arc<dyn Tool>)
//!     })
//!     .collect::<Result<_, ConfigError>>()?;
//! let model = ScriptedModel::new([
//!     ScriptedTurn::tool_call("search_tools", json!({"query": "oslo"})),
//!     ScriptedTurn::tool_call("weather_oslo", json!({})),
//!     ScriptedTurn::text("Sunny in Oslo."),
//! ]);
//! let agent = Agent::new("You know the weather.")
//!     .model(model.clone())
//!     .tools(tools)
//!     .tool_search(ToolSearch::new().threshold(4).top_k(1));
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! let result = rt.block_on(async { agent.run("Is it raining in Perth?").await })?;
//! assert_eq!(result.output, "Sunny in Oslo.");
//! let requests = model.requests();
//! // The first request: `search_tools` and the one tool that matches the question.
//! assert_eq!(requests[0].tool_names(), ["weather_perth", "search_tools"]);
//! // Once found, `weather_oslo` is offered too (the definitions keep the agent's order).
//! assert_eq!(requests[1].tool_names(), ["weather_oslo", "weather_perth", "search_tools"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, LazyLock};

use serde::Deserialize;

use crate::agent::Agent;
use crate::context::RunContext;
use crate::error::ConfigError;
use crate::memory::rank::{idf, length_norm, term_order, term_weight, words};
use crate::model::{Content, Message, ToolCall};
use crate::tool::{Tool, ToolDefinition, ToolError, ToolHints, ToolOutput, ToolSet};

/// How an agent with many tools shows them to the model: see the [module](self).
///
/// ```
/// use loomflow::tools::search::ToolSearch;
///
/// // Above 40 tools: `lookup_customer`, `search_tools`, the 8 most relevant, and those found.
/// let search = ToolSearch::new().always(["lookup_customer"]).top_k(8).threshold(40);
/// assert_eq!(search.top_k_value(), 8);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ToolSearch {
    always: Vec<String>,
    top_k: usize,
    threshold: usize,
    max_results: usize,
}

impl Default for ToolSearch {
    fn default() -> Self {
        Self::new()
    }
}

impl ToolSearch {
    /// The most results one `search_tools` call may ask for.
    pub const MAX_RESULTS_CAP: usize = 25;

    /// Tool search with the defaults: on above 20 tools, the 5 most relevant tools offered
    /// with each request, up to 5 tools per search.
    pub fn new() -> Self {
        Self { always: Vec::new(), top_k: 5, threshold: 20, max_results: 5 }
    }

    /// Tools offered with every request, whatever the question (the agent's core tools).
    /// Each must be one of the agent's tools, or the agent's [`check`](Agent::check) fails.
    #[must_use]
    pub fn always<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.always.extend(names.into_iter().map(Into::into));
        self
    }

    /// How many of the tools most relevant to the latest user message each request offers
    /// (5 by default; 0 for none: only the tools that are always on and those found).
    #[must_use]
    pub fn top_k(mut self, k: usize) -> Self {
        self.top_k = k;
        self
    }

    /// Tool search is on when the agent has more than `tools` tools (20 by default); with
    /// fewer, every definition is sent as usual and there is no `search_tools`.
    #[must_use]
    pub fn threshold(mut self, tools: usize) -> Self {
        self.threshold = tools;
        self
    }

    /// How many tools one `search_tools` call returns unless it asks for fewer (5 by
    /// default, at most [`MAX_RESULTS_CAP`](Self::MAX_RESULTS_CAP)).
    #[must_use]
    pub fn max_results(mut self, n: usize) -> Self {
        self.max_results = n;
        self
    }

    /// The tools always offered.
    pub fn always_on(&self) -> &[String] {
        &self.always
    }

    /// How many relevant tools each request offers.
    pub fn top_k_value(&self) -> usize {
        self.top_k
    }

    /// Above how many tools search is on.
    pub fn threshold_value(&self) -> usize {
        self.threshold
    }

    /// Refuses a configuration that cannot work with `tools`: an always-on tool the agent
    /// does not have, a tool of the agent's own named `search_tools`, no results per search.
    pub(crate) fn check(&self, tools: &ToolSet) -> Result<(), ConfigError> {
        let invalid = |reason: String| ConfigError::InvalidSetting { setting: "tool_search", reason };
        if self.max_results == 0 || self.max_results > Self::MAX_RESULTS_CAP {
            return Err(invalid(format!(
                "max_results is {}; give between 1 and {}",
                self.max_results,
                Self::MAX_RESULTS_CAP
            )));
        }
        if let Some(missing) = self.always.iter().find(|name| tools.get(name).is_none()) {
            return Err(invalid(format!(
                "the always-on tool `{missing}` is not one of the agent's tools; add it with `.tool(..)` first, or \
                 leave it out of `always`"
            )));
        }
        if tools.len() > self.threshold && tools.get(SEARCH_TOOLS).is_some() {
            return Err(ConfigError::DuplicateTool { name: SEARCH_TOOLS.to_owned() });
        }
        Ok(())
    }

    /// What runs of an agent with `tools` share, when search is on for them.
    pub(crate) fn prepare(&self, tools: &ToolSet) -> Option<Searcher> {
        if tools.len() <= self.threshold || self.check(tools).is_err() {
            return None;
        }
        let index = Arc::new(ToolIndex::new(tools.definitions()));
        let tool = SearchTools { index: Arc::clone(&index), max_results: self.max_results };
        let mut with_search = tools.clone();
        with_search.insert(tool).ok()?;
        let always = self.always.iter().cloned().collect();
        Some(Searcher(Arc::new(Inner { index, always, top_k: self.top_k, tools: with_search })))
    }
}

impl<O> Agent<O> {
    /// Searches the agent's tools instead of sending them all: above the search's
    /// [`threshold`](ToolSearch::threshold), each model request offers the always-on tools,
    /// `search_tools`, the tools most relevant to the latest user message, and the tools
    /// found or used earlier in the conversation; the others stay callable and are found on
    /// demand. See [`tools::search`](crate::tools::search).
    ///
    /// An always-on tool the agent does not have, or a tool of its own named `search_tools`,
    /// is a [`ConfigError`] from [`check`](Agent::check) and every run.
    #[must_use]
    pub fn tool_search(mut self, search: ToolSearch) -> Self {
        self.tool_search = Some(Arc::new(search));
        self.changed()
    }
}

/// The name of the search tool.
pub const SEARCH_TOOLS: &str = "search_tools";

/// Tool search as the runs of one agent configuration share it: the index of the agent's
/// tools, and the tool set with `search_tools` in it.
#[derive(Clone)]
pub(crate) struct Searcher(Arc<Inner>);

struct Inner {
    index: Arc<ToolIndex>,
    always: HashSet<String>,
    top_k: usize,
    tools: ToolSet,
}

impl fmt::Debug for Searcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Searcher")
            .field("tools", &self.0.index.definitions.len())
            .field("always", &self.0.always)
            .field("top_k", &self.0.top_k)
            .finish()
    }
}

impl Searcher {
    /// The agent's tools and `search_tools`: what the run calls.
    pub(crate) fn tools(&self) -> &ToolSet {
        &self.0.tools
    }

    /// The definitions of `all` to send with the next request on `messages`: those that are
    /// not the agent's own (`search_tools`, an architecture's tools, `final_answer`), the
    /// always-on ones, the most relevant to the latest user message, and those found or
    /// called in the conversation; in the order of `all`.
    pub(crate) fn offer(&self, all: &[ToolDefinition], messages: &[Message]) -> Vec<ToolDefinition> {
        let inner = &*self.0;
        let query = messages.iter().rev().find_map(|m| match m {
            Message::User { content } => Some(content.text()),
            _ => None,
        });
        let relevant: Vec<usize> = match &query {
            Some(q) if inner.top_k > 0 => inner.index.rank(q, inner.top_k),
            _ => Vec::new(),
        };
        let mut wanted: HashSet<&str> = relevant.iter().map(|&i| inner.index.definitions[i].name()).collect();
        wanted.extend(inner.always.iter().map(String::as_str));
        found_in(messages, &mut wanted);
        all.iter()
            .filter(|d| !inner.index.by_name.contains_key(d.name()) || wanted.contains(d.name()))
            .cloned()
            .collect()
    }
}

/// Adds to `names` the tools the conversation found (`search_tools` results) or called.
fn found_in<'m>(messages: &'m [Message], names: &mut HashSet<&'m str>) {
    #[derive(Deserialize)]
    struct Found<'a> {
        #[serde(borrow, default)]
        tools: Vec<Named<'a>>,
    }
    #[derive(Deserialize)]
    struct Named<'a> {
        #[serde(borrow)]
        name: std::borrow::Cow<'a, str>,
    }
    for message in messages {
        match message {
            Message::Assistant { tool_calls, .. } => {
                names.extend(tool_calls.iter().filter(|c| c.name != SEARCH_TOOLS).map(|c: &ToolCall| c.name.as_str()));
            }
            Message::Tool(result) if result.name == SEARCH_TOOLS && !result.is_error => {
                let Content::Text(text) = &result.content else { continue };
                let Ok(found) = serde_json::from_str::<Found<'_>>(text) else { continue };
                for tool in found.tools {
                    // Names are plain ASCII: borrowed from the result's text, never escaped.
                    if let std::borrow::Cow::Borrowed(name) = tool.name {
                        names.insert(name);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The documents that hold a word, with how often each says it.
type Postings = [(u32, u32)];

/// A BM25 index of tool names and descriptions.
struct ToolIndex {
    definitions: Vec<ToolDefinition>,
    by_name: HashMap<String, usize>,
    /// Each word's documents, with how often the document says it.
    postings: HashMap<String, Vec<(u32, u32)>>,
    lens: Vec<u32>,
    avg_len: f64,
}

impl ToolIndex {
    fn new(definitions: &[ToolDefinition]) -> Self {
        let mut postings: HashMap<String, Vec<(u32, u32)>> = HashMap::new();
        let mut lens = Vec::with_capacity(definitions.len());
        for (doc, d) in definitions.iter().enumerate() {
            let mut tf: HashMap<String, u32> = HashMap::new();
            let mut len = 0u32;
            // The name counts twice: it is the tool's shortest description.
            for word in words(d.name()).chain(words(d.name())).chain(words(d.description())) {
                *tf.entry(word).or_default() += 1;
                len += 1;
            }
            for (word, f) in tf {
                postings.entry(word).or_default().push((doc as u32, f));
            }
            lens.push(len);
        }
        let total: u64 = lens.iter().map(|&l| u64::from(l)).sum();
        let avg_len = if lens.is_empty() { 1.0 } else { (total as f64 / lens.len() as f64).max(1.0) };
        let by_name = definitions.iter().enumerate().map(|(i, d)| (d.name().to_owned(), i)).collect();
        Self { definitions: definitions.to_vec(), by_name, postings, lens, avg_len }
    }

    /// The documents that share a word with `query`, best first (ties: the earlier tool), at
    /// most `k`.
    fn rank(&self, query: &str, k: usize) -> Vec<usize> {
        let query: Vec<String> = words(query).collect();
        let n = self.definitions.len() as f64;
        // Each word of the query: how often the query says it, its IDF, its documents.
        let mut terms: Vec<(&str, f64, f64, &Postings)> = Vec::new();
        for (i, q) in query.iter().enumerate() {
            if query[..i].contains(q) {
                continue;
            }
            let Some(docs) = self.postings.get(q) else { continue };
            let times = query.iter().filter(|w| *w == q).count() as f64;
            terms.push((q.as_str(), times, idf(n, docs.len() as f64), docs));
        }
        terms.sort_by(|a, b| term_order((a.0, a.2), (b.0, b.2)));
        let mut scores = vec![0.0f64; self.definitions.len()];
        for (_, times, idf, docs) in terms {
            for &(doc, f) in docs {
                let norm = length_norm(f64::from(self.lens[doc as usize]), self.avg_len);
                scores[doc as usize] += term_weight(idf, f64::from(f), norm) * times;
            }
        }
        let mut ranked: Vec<(usize, f64)> = scores.into_iter().enumerate().filter(|(_, s)| *s > 0.0).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(k);
        ranked.into_iter().map(|(i, _)| i).collect()
    }

    /// The tools a search for `query` finds: those named in it exactly first, then by BM25.
    fn search(&self, query: &str, limit: usize) -> Vec<usize> {
        let mut found: Vec<usize> = query
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .filter_map(|token| self.by_name.get(token).copied())
            .collect();
        found.dedup();
        for i in self.rank(query, limit) {
            if !found.contains(&i) {
                found.push(i);
            }
        }
        found.truncate(limit);
        found
    }
}

/// The `search_tools` tool.
struct SearchTools {
    index: Arc<ToolIndex>,
    max_results: usize,
}

static DEFINITION: LazyLock<ToolDefinition> = LazyLock::new(|| {
    ToolDefinition::new_unchecked(
        SEARCH_TOOLS.to_owned(),
        "Find tools you have not been shown yet. You have more tools than are listed: search them by what you \
         need to do (words of their names and descriptions, or exact tool names). Returns each match's name, \
         description and argument schema; from your next turn on, you can call the tools it returns."
            .to_owned(),
        serde_json::json!({
            "type": "object",
            "properties": {
                "query": {
                    "type": "string",
                    "description": "What the tool should do, in a few words (e.g. \"refund a charge\"), or tool names."
                },
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": ToolSearch::MAX_RESULTS_CAP,
                    "description": "The most tools to return."
                }
            },
            "required": ["query"]
        }),
    )
    .with_hints(ToolHints::NONE.read_only().idempotent())
});

#[async_trait::async_trait]
impl Tool for SearchTools {
    fn definition(&self) -> &ToolDefinition {
        &DEFINITION
    }

    async fn call(&self, _ctx: &RunContext, arguments: &str) -> Result<ToolOutput, ToolError> {
        #[derive(Deserialize)]
        struct Args {
            query: String,
            #[serde(default)]
            limit: Option<u64>,
        }
        let args: Args = match serde_json::from_str::<serde_json::Value>(arguments) {
            // A bare string is the query.
            Ok(serde_json::Value::String(query)) => Args { query, limit: None },
            Ok(value) => serde_json::from_value(value).map_err(|e| {
                ToolError::invalid_arguments(format!(
                    "{e}; call `search_tools` with {{\"query\": \"what the tool should do\"}}"
                ))
            })?,
            Err(e) => {
                return Err(ToolError::invalid_arguments(format!(
                    "the arguments are not JSON ({e}); call `search_tools` with {{\"query\": \"what the tool should do\"}}"
                )));
            }
        };
        let query = args.query.trim();
        if query.is_empty() {
            return Err(ToolError::invalid_arguments("the query is empty; say in a few words what the tool should do"));
        }
        let limit = args.limit.map_or(self.max_results, |n| n.clamp(1, ToolSearch::MAX_RESULTS_CAP as u64) as usize);
        let found = self.index.search(query, limit);
        if found.is_empty() {
            return Err(ToolError::new(format!(
                "no tool matches `{query}`; search again with other words (tools are found by the words of their \
                 names and descriptions)"
            )));
        }
        let tools: Vec<serde_json::Value> = found
            .into_iter()
            .map(|i| {
                let d = &self.index.definitions[i];
                serde_json::json!({"name": d.name(), "description": d.description(), "parameters": d.parameters()})
            })
            .collect();
        let count = tools.len();
        ToolOutput::json(&serde_json::json!({
            "tools": tools,
            "note": format!("Found {count} tool(s). You can call them from your next turn on."),
        }))
        .map_err(|e| ToolError::new(format!("the results could not be written: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definitions() -> Vec<ToolDefinition> {
        let schema = serde_json::json!({"type": "object", "properties": {}});
        [
            ("refund_charge", "Refund a charge to the customer's card."),
            ("lookup_customer", "Find a customer by email."),
            ("send_email", "Send an email to a customer."),
        ]
        .into_iter()
        .map(|(name, description)| ToolDefinition::new_unchecked(name.into(), description.into(), schema.clone()))
        .collect()
    }

    #[test]
    fn the_best_match_comes_first() {
        let index = ToolIndex::new(&definitions());
        assert_eq!(index.rank("refund the charge", 3), [0]);
        assert_eq!(index.rank("email", 3), [2, 1]);
        assert!(index.rank("weather", 3).is_empty());
    }

    #[test]
    fn a_tool_named_exactly_comes_before_the_ranked_ones() {
        let index = ToolIndex::new(&definitions());
        // `refund_charge` says "customer" too: last.
        assert_eq!(index.search("email lookup_customer", 3), [1, 2, 0]);
        assert_eq!(index.search("email lookup_customer", 1), [1]);
    }
}
