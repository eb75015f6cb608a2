//! The retriever tool, and answers that cite their passages by number.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::corpus::{Corpus, Passage, Retrieve};
use crate::agent::{Agent, Citation, RunResult};
use crate::context::RunContext;
use crate::error::Error;
use crate::id::UserId;
use crate::tool::{Arguments, Tool, ToolDefinition, ToolError, ToolHints, ToolOutput};

/// The most passages one call of the tool returns.
const MAX_LIMIT: usize = 20;

/// A tool that searches a [`Corpus`] for the run's user: `retrieve(query, limit?)` returns
/// numbered passages with their source, where in it they are, and their chunk id, plus a
/// `citations` list that [`RunResult::citations`] collects.
///
/// Made by [`Corpus::tool`].
#[derive(Debug, Clone)]
pub struct RetrieverTool {
    corpus: Corpus,
    definition: ToolDefinition,
    limit: usize,
}

/// One passage as the tool returns it.
#[derive(Debug, Serialize)]
struct Shown<'p> {
    n: usize,
    text: &'p str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'p str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    locator: Option<&'p str>,
    chunk_id: &'p str,
}

/// Numbered passages, as a tool result or a prompt shows them.
fn shown(passages: &[Passage]) -> Vec<Shown<'_>> {
    passages
        .iter()
        .enumerate()
        .map(|(i, p)| Shown {
            n: i + 1,
            text: &p.chunk.text,
            source: p.citation.source.as_deref(),
            locator: p.citation.locator.as_deref(),
            chunk_id: &p.chunk.id,
        })
        .collect()
}

impl Corpus {
    /// The retriever tool over this corpus, named `retrieve`, returning 4 passages unless the
    /// model asks for more (up to 20).
    pub fn tool(&self) -> RetrieverTool {
        RetrieverTool::new(self.clone(), "retrieve", "Searches the documents for passages relevant to a query.")
    }
}

impl RetrieverTool {
    fn new(corpus: Corpus, name: &str, description: &str) -> Self {
        let parameters = json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What to look for, in words the documents would use."},
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "description": "How many passages (default 4)."}
            },
            "required": ["query"],
            "additionalProperties": false
        });
        let definition = ToolDefinition::new_unchecked(name.to_owned(), description.to_owned(), parameters)
            .with_hints(ToolHints::NONE.read_only());
        Self { corpus, definition, limit: 4 }
    }

    /// Renames the tool and describes what its corpus holds (the model picks tools by these):
    /// `named("search_handbook", "Searches the employee handbook.")`.
    pub fn named(
        mut self,
        name: impl Into<String>,
        description: impl Into<String>,
    ) -> Result<Self, crate::ConfigError> {
        let parameters = self.definition.parameters().clone();
        self.definition = ToolDefinition::new(name, description, parameters)?.with_hints(ToolHints::NONE.read_only());
        Ok(self)
    }

    /// Returns `n` passages when the model does not say (4 by default, at most 20).
    #[must_use]
    pub fn default_limit(mut self, n: usize) -> Self {
        self.limit = n.clamp(1, MAX_LIMIT);
        self
    }
}

#[async_trait::async_trait]
impl Tool for RetrieverTool {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, ctx: &RunContext, arguments: &str) -> Result<ToolOutput, ToolError> {
        let mut args = Arguments::parse(arguments).map_err(|e| ToolError::invalid_arguments(e.to_string()))?;
        let query: String = args.take("query").map_err(|e| ToolError::invalid_arguments(e.to_string()))?;
        let limit: Option<usize> = args.take("limit").map_err(|e| ToolError::invalid_arguments(e.to_string()))?;
        args.finish(&["query", "limit"]).map_err(|e| ToolError::invalid_arguments(e.to_string()))?;
        if query.trim().is_empty() {
            return Err(ToolError::invalid_arguments("`query` is empty: say what to look for"));
        }
        let limit = limit.unwrap_or(self.limit).clamp(1, MAX_LIMIT);
        let passages = self
            .corpus
            .retrieve(ctx.user(), Retrieve::new(query).limit(limit))
            .await
            .map_err(|e| ToolError::new(format!("the search failed: {e}")))?;
        let citations: Vec<&Citation> = passages.iter().map(|p| &p.citation).collect();
        let body = if passages.is_empty() {
            json!({"passages": [], "note": "nothing matched; try other words", "citations": []})
        } else {
            json!({"passages": shown(&passages), "citations": citations})
        };
        ToolOutput::json(&body).map_err(|e| ToolError::new(e.to_string()))
    }
}

/// An answer that cites its passages: `[1]`, `[2]` in the text, each a passage given to the
/// model. The typed output of [`Corpus::answer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CitedAnswer {
    /// The answer, citing passages by number in brackets, as in `Trains leave at nine [2].`
    pub answer: String,
}

impl CitedAnswer {
    /// The numbers cited in the text (`[n]`, and each of `[n, m]` and `[n][m]`), in order,
    /// each once.
    pub fn cited(&self) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        let mut rest = self.answer.as_str();
        while let Some(open) = rest.find('[') {
            rest = &rest[open + 1..];
            let Some(close) = rest.find(']') else { break };
            let inside = &rest[..close];
            let numbers: Option<Vec<usize>> = inside.split(',').map(|n| n.trim().parse::<usize>().ok()).collect();
            if let Some(numbers) = numbers {
                for n in numbers {
                    if !out.contains(&n) {
                        out.push(n);
                    }
                }
            }
            rest = &rest[close + 1..];
        }
        out
    }
}

/// What [`Corpus::answer`] returns: the run, the passages the model was given, and those it
/// cited.
#[derive(Debug)]
pub struct Answer {
    /// The run, its output the validated answer.
    pub run: RunResult<CitedAnswer>,
    /// The passages the model was given, numbered from 1 in this order.
    pub passages: Vec<Passage>,
    /// The passages the answer cites, in the order it first cites them.
    pub sources: Vec<Passage>,
}

impl Answer {
    /// The answer's text.
    pub fn text(&self) -> &str {
        &self.run.output.answer
    }
}

/// Checks that every number `answer` cites is one of the `n` passages, and that it cites one
/// when there are any.
fn check_citations(answer: &CitedAnswer, n: usize) -> Result<(), String> {
    let cited = answer.cited();
    let wrong: BTreeSet<usize> = cited.iter().copied().filter(|&c| c == 0 || c > n).collect();
    if !wrong.is_empty() {
        let wrong: Vec<String> = wrong.iter().map(|c| format!("[{c}]")).collect();
        return Err(format!(
            "the answer cites {}, but only passages [1] to [{n}] exist; cite only those, by their numbers",
            wrong.join(", ")
        ));
    }
    if n > 0 && cited.is_empty() && !answer.answer.trim().is_empty() {
        return Err("the answer cites no passage; cite the passages it rests on as [n]".to_owned());
    }
    Ok(())
}

impl Corpus {
    /// Answers `question` for `user` from this corpus with `agent`, citing: the passages
    /// retrieved for the question are numbered and given to the model with the question, and
    /// the answer is a [`CitedAnswer`] whose every `[n]` must name one of them — an answer
    /// citing a passage that does not exist goes back to the model to correct (within the
    /// agent's output retries).
    pub async fn answer(&self, agent: &Agent, user: &UserId, question: impl Into<Retrieve>) -> Result<Answer, Error> {
        let query = question.into();
        let passages = self.retrieve(user, query.clone()).await?;
        let n = passages.len();
        let mut numbered = String::new();
        for p in shown(&passages) {
            let place: Vec<&str> = [p.source, p.locator].into_iter().flatten().collect();
            numbered.push_str(&format!("[{}] ({})\n{}\n\n", p.n, place.join(", "), p.text));
        }
        let input = format!(
            "Answer the question from these passages only, citing each fact with its passage's number in \
             brackets, like [1]. If the passages do not answer it, say so.\n\nPassages:\n\n{numbered}Question: {}",
            query.text
        );
        let cited = agent.clone().output::<CitedAnswer>().validator(move |a: &CitedAnswer| check_citations(a, n));
        let run = cited.run(input).user(user.clone()).await?;
        let sources = run.output.cited().into_iter().filter_map(|i| passages.get(i.wrapping_sub(1)).cloned()).collect();
        Ok(Answer { run, passages, sources })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(text: &str) -> CitedAnswer {
        CitedAnswer { answer: text.into() }
    }

    #[test]
    fn cited_numbers_are_read_in_every_bracket_form() {
        assert_eq!(answer("A [2]. B [1, 3][2] and [x] [4").cited(), [2, 1, 3]);
        assert!(answer("no citation").cited().is_empty());
    }

    #[test]
    fn citations_must_name_given_passages() {
        assert!(check_citations(&answer("Yes [1][2]."), 2).is_ok());
        let err = check_citations(&answer("Yes [3]."), 2).err().unwrap_or_default();
        assert!(err.contains("[3]") && err.contains("[1] to [2]"), "{err}");
        assert!(check_citations(&answer("Yes [0]."), 2).is_err());
        assert!(check_citations(&answer("Yes."), 2).is_err());
        assert!(check_citations(&answer("Nothing to cite."), 0).is_ok());
    }
}
