//! Conversation compaction: what a model is sent, kept within a token budget however long the
//! session and the run grow.

use std::sync::Arc;

use crate::model::{Content, Message, Part};

/// How a long conversation is kept within the model's context
/// ([`Agent::compaction`](crate::Agent::compaction)).
///
/// Before each model call, when the conversation's estimated size (its text at about four
/// characters a token) passes `max_tokens`:
///
/// 1. tool results of earlier turns longer than [`tool_results`](Self::tool_results)
///    characters are cut to that length, with a note of how much was left out;
/// 2. if that is not enough, the oldest exchanges are dropped, whole — from a user message up
///    to the next, so a tool call never loses its result — keeping the system prompt and the
///    current turn (the last user message and what followed it); the system prompt says how
///    many messages were left out;
/// 3. if the current turn alone is still too long, its tool results are cut too: those the
///    model has answered first, then the newest.
///
/// Only what the model is sent changes: the session keeps every message, the journal records
/// the run as it happened, and a resumed run compacts the same way. The
/// [`Compacted`](crate::EventKind::Compacted) event says what was done.
///
/// ```
/// use loomflow::prelude::*;
/// use loomflow::agent::Compaction;
///
/// // At most ~8,000 tokens of conversation; older tool results cut to 2,000 characters.
/// let agent = Agent::new("Help.").model("echo").compaction(Compaction::new(8_000).tool_results(2_000));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Compaction {
    /// The most tokens (estimated) of conversation sent to the model.
    pub max_tokens: usize,
    /// The longest tool result, in characters, kept whole once its turn is over.
    pub tool_result_chars: usize,
}

/// What a compaction did to one request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Compacted {
    pub(crate) messages: Vec<Message>,
    pub(crate) dropped: usize,
    pub(crate) truncated: usize,
    pub(crate) tokens_before: usize,
    pub(crate) tokens_after: usize,
}

impl Compaction {
    /// Conversations of at most `max_tokens` (estimated) tokens; tool results of earlier
    /// turns cut to 4,000 characters when over.
    pub fn new(max_tokens: usize) -> Self {
        Self { max_tokens, tool_result_chars: 4_000 }
    }

    /// Cuts tool results to `chars` characters when the conversation is over its budget.
    #[must_use]
    pub fn tool_results(mut self, chars: usize) -> Self {
        self.tool_result_chars = chars;
        self
    }

    /// `messages` within the budget, or `None` when they already are.
    pub(crate) fn apply(&self, messages: &[Message]) -> Option<Compacted> {
        let tokens_before = tokens(messages);
        if tokens_before <= self.max_tokens {
            return None;
        }
        let mut out = messages.to_vec();
        // The current turn: from the last user message on.
        let current = out.iter().rposition(|m| matches!(m, Message::User { .. })).unwrap_or(0);
        let mut truncated = self.cut_tool_results(&mut out[..current]);
        let mut dropped = 0;
        if tokens(&out) > self.max_tokens {
            let head = out.iter().take_while(|m| matches!(m, Message::System { .. })).count();
            let fixed = tokens(&out[..head]);
            // The earliest user message from which the rest fits (at the latest, the current
            // turn's): the dropped part ends where an exchange begins.
            let mut rest = tokens(&out[head..]);
            let mut cut = head;
            for (i, m) in out.iter().enumerate().take(current).skip(head) {
                if fixed + rest <= self.max_tokens && matches!(m, Message::User { .. }) {
                    break;
                }
                rest -= message_tokens(m);
                cut = i + 1;
            }
            dropped = cut - head;
            if dropped > 0 {
                out.drain(head..cut);
                note_dropped(&mut out, dropped);
            }
            // The current turn alone is too long: its earlier tool results are cut, then (if
            // need be) the newest too.
            let current = out.iter().rposition(|m| matches!(m, Message::User { .. })).unwrap_or(0);
            if tokens(&out) > self.max_tokens {
                let newest = out.iter().rposition(|m| matches!(m, Message::Assistant { .. })).unwrap_or(current);
                truncated += self.cut_tool_results(&mut out[current..newest.max(current)]);
            }
            if tokens(&out) > self.max_tokens {
                truncated += self.cut_tool_results(&mut out[current..]);
            }
        }
        let tokens_after = tokens(&out);
        Some(Compacted { messages: out, dropped, truncated, tokens_before, tokens_after })
    }

    /// Cuts the tool results among `messages` longer than the limit; how many were cut.
    fn cut_tool_results(&self, messages: &mut [Message]) -> usize {
        let mut cut = 0;
        for m in messages {
            if let Message::Tool(result) = m {
                let text = result.content.text();
                let chars = text.chars().count();
                if chars > self.tool_result_chars {
                    let kept: String = text.chars().take(self.tool_result_chars).collect();
                    let left = chars - self.tool_result_chars;
                    result.content =
                        Content::from(format!("{kept}\n[… {left} characters left out to fit the context]"));
                    cut += 1;
                }
            }
        }
        cut
    }
}

/// Says, in the system prompt (or a new one), that `dropped` earlier messages were left out.
fn note_dropped(messages: &mut Vec<Message>, dropped: usize) {
    let note = format!("[{dropped} earlier messages of this conversation were left out to fit the context.]");
    match messages.iter_mut().rev().find(|m| matches!(m, Message::System { .. })) {
        Some(Message::System { content }) => *content = Arc::from(format!("{content}\n\n{note}")),
        _ => messages.insert(0, Message::System { content: Arc::from(note) }),
    }
}

/// The estimated tokens of `messages`: their text at four characters a token, and a few for
/// each message's framing.
fn tokens(messages: &[Message]) -> usize {
    messages.iter().map(message_tokens).sum()
}

fn message_tokens(m: &Message) -> usize {
    let chars = match m {
        Message::System { content } => content.len(),
        Message::User { content } => content_chars(content),
        Message::Assistant { content, tool_calls } => {
            content_chars(content) + tool_calls.iter().map(|c| c.name.len() + c.arguments.len()).sum::<usize>()
        }
        Message::Tool(result) => content_chars(&result.content),
    };
    chars.div_ceil(4) + 4
}

fn content_chars(content: &Content) -> usize {
    match content {
        Content::Text(t) => t.len(),
        Content::Parts(parts) => parts.iter().map(|p| if let Part::Text { text } = p { text.len() } else { 0 }).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ToolCall, ToolResult};

    fn user(t: &str) -> Message {
        Message::User { content: Content::from(t) }
    }

    fn exchange(i: usize, result: &str) -> Vec<Message> {
        let call = ToolCall { id: format!("c{i}"), name: "look".into(), arguments: "{}".into() };
        vec![
            user(&format!("question {i}")),
            Message::Assistant { content: Content::from(""), tool_calls: vec![call] },
            Message::Tool(ToolResult::ok(format!("c{i}"), "look", result.to_owned())),
            Message::Assistant { content: Content::from(format!("answer {i}")), tool_calls: Vec::new() },
        ]
    }

    fn conversation(exchanges: usize, result: &str) -> Vec<Message> {
        let mut m = vec![Message::System { content: Arc::from("Be brief.") }];
        for i in 0..exchanges {
            m.extend(exchange(i, result));
        }
        m.push(user("the last question"));
        m
    }

    #[test]
    fn a_conversation_within_its_budget_is_left_alone() {
        assert_eq!(Compaction::new(10_000).apply(&conversation(3, "ok")), None);
    }

    #[test]
    fn old_tool_results_are_cut_first() {
        let long = "x".repeat(4_000);
        let c = Compaction::new(1_000).tool_results(100).apply(&conversation(2, &long)).expect("over budget");
        assert_eq!((c.truncated, c.dropped), (2, 0));
        assert!(c.tokens_after <= 1_000, "{}", c.tokens_after);
        assert!(c.messages.iter().any(|m| m.text().contains("3900 characters left out")));
    }

    #[test]
    fn the_oldest_exchanges_go_whole_and_the_current_turn_stays() {
        let c = Compaction::new(120).apply(&conversation(20, "a short result")).expect("over budget");
        assert!(c.tokens_after <= 120, "{}", c.tokens_after);
        assert!(c.dropped > 0 && c.dropped.is_multiple_of(4), "whole exchanges: {}", c.dropped);
        assert!(matches!(&c.messages[0], Message::System { content } if content.contains("earlier messages")));
        assert!(matches!(&c.messages[1], Message::User { .. }), "the kept part begins with a question");
        assert_eq!(c.messages.last().map(|m| m.text().into_owned()).as_deref(), Some("the last question"));
        // Every tool result still follows the call that asked for it.
        for (i, m) in c.messages.iter().enumerate() {
            if matches!(m, Message::Tool(_)) {
                assert!(matches!(&c.messages[i - 1], Message::Assistant { tool_calls, .. } if !tool_calls.is_empty()));
            }
        }
    }

    #[test]
    fn a_current_turn_too_long_alone_has_its_tool_results_cut() {
        let mut m = conversation(0, "");
        m.extend(exchange(9, &"y".repeat(10_000))[1..3].iter().cloned());
        let c = Compaction::new(500).tool_results(200).apply(&m).expect("over budget");
        assert_eq!(c.truncated, 1);
        assert!(c.tokens_after <= 500, "{}", c.tokens_after);
    }
}
