//! Server-sent events: a decoder that takes bytes as they arrive, in chunks of any size, and
//! the stream of a provider's events built on it.

use bytes::Bytes;
use futures::{Stream, StreamExt as _};

use crate::model::{ModelError, ModelErrorKind, ModelStream, StreamEvent};

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SseEvent {
    /// The `event:` field, if the event had one.
    pub(crate) event: Option<String>,
    /// The `data:` lines, joined by `\n`.
    pub(crate) data: String,
}

/// Decodes an event stream. Chunks may split a line, a field, or a UTF-8 character
/// anywhere: bytes are buffered until a line is complete, and only complete lines are
/// decoded. Comment lines (`: keep-alive`) are skipped. A line, or an event's data, longer
/// than the limit is an error: the server decides how long a line is, not Loom's memory.
#[derive(Debug)]
pub(crate) struct SseDecoder {
    buf: Vec<u8>,
    event: Option<String>,
    data: String,
    has_data: bool,
    /// The previous chunk ended with `\r`: a `\n` opening the next chunk belongs to it.
    pending_cr: bool,
    /// The most bytes one line or one event's data may have.
    limit: usize,
}

impl SseDecoder {
    /// A decoder whose lines and events may have at most `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Self { buf: Vec::new(), event: None, data: String::new(), has_data: false, pending_cr: false, limit }
    }

    fn too_long(&self) -> String {
        format!(
            "an event of the stream is longer than {} bytes (the limit is `HttpConfig::max_event_bytes`)",
            self.limit
        )
    }

    /// Adds bytes; complete events go to `out`. A line that is not UTF-8 is an error.
    pub(crate) fn push(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), String> {
        let mut rest = chunk;
        while !rest.is_empty() {
            // `\r\n` is one line end, even when a chunk ends between the two bytes.
            if std::mem::take(&mut self.pending_cr) && rest[0] == b'\n' {
                rest = &rest[1..];
                continue;
            }
            match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(end) => {
                    if self.buf.len() + end > self.limit {
                        return Err(self.too_long());
                    }
                    self.pending_cr = rest[end] == b'\r';
                    if self.buf.is_empty() {
                        self.line(&rest[..end], out)?;
                    } else {
                        self.buf.extend_from_slice(&rest[..end]);
                        let line = std::mem::take(&mut self.buf);
                        self.line(&line, out)?;
                    }
                    rest = &rest[end + 1..];
                }
                None => {
                    if self.buf.len() + rest.len() > self.limit {
                        return Err(self.too_long());
                    }
                    self.buf.extend_from_slice(rest);
                    rest = &[];
                }
            }
        }
        Ok(())
    }

    /// The stream ended: a last line without its newline still counts, and a last event
    /// without its blank line is delivered.
    pub(crate) fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), String> {
        if !self.buf.is_empty() {
            let line = std::mem::take(&mut self.buf);
            self.line(&line, out)?;
        }
        self.dispatch(out);
        Ok(())
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), String> {
        let line = std::str::from_utf8(line).map_err(|e| format!("the event stream is not valid UTF-8: {e}"))?;
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.data.len() + value.len() + 1 > self.limit {
                    return Err(self.too_long());
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            // `id` and `retry` matter to reconnecting browsers, not to model replies.
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.has_data {
            out.push(SseEvent { event: self.event.take(), data: std::mem::take(&mut self.data) });
            self.has_data = false;
        } else {
            self.event = None;
        }
    }
}

/// Turns the events of one provider's stream into [`StreamEvent`]s.
pub(crate) trait StreamParser: Send {
    /// Handles one event, pushing what it means to `out`; `Ok(true)` when the reply is
    /// complete.
    fn event(&mut self, event: SseEvent, out: &mut Vec<StreamEvent>) -> Result<bool, ModelError>;

    /// The body ended: pushes what is still due (usage, the end), or fails if the reply was
    /// cut short.
    fn end(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ModelError>;
}

struct SseState<S, P> {
    bytes: S,
    decoder: SseDecoder,
    parser: P,
    pending: std::collections::VecDeque<Result<StreamEvent, ModelError>>,
    done: bool,
    provider: &'static str,
}

/// The [`StreamEvent`]s of an event-stream body: decoded as the bytes arrive, parsed by the
/// provider's `parser`; a broken connection, malformed data or a cut stream ends it with a
/// transient error.
pub(crate) fn sse_events<'a, S, P>(
    provider: &'static str,
    bytes: S,
    parser: P,
    request_id: Option<String>,
    max_event_bytes: usize,
) -> ModelStream<'a>
where
    S: Stream<Item = Result<Bytes, ModelError>> + Send + 'a,
    P: StreamParser + 'a,
{
    let mut pending = std::collections::VecDeque::new();
    if let Some(id) = request_id {
        pending.push_back(Ok(StreamEvent::RequestId(id)));
    }
    let state = SseState {
        bytes: Box::pin(bytes),
        decoder: SseDecoder::new(max_event_bytes),
        parser,
        pending,
        done: false,
        provider,
    };
    Box::pin(futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.pending.pop_front() {
                return Some((item, st));
            }
            if st.done {
                return None;
            }
            let mut sse = Vec::new();
            let mut events = Vec::new();
            match st.bytes.next().await {
                Some(Ok(chunk)) => {
                    if let Err(e) = st.decoder.push(&chunk, &mut sse) {
                        st.done = true;
                        st.pending.push_back(Err(ModelError::new(ModelErrorKind::Stream, st.provider, e)));
                        continue;
                    }
                }
                Some(Err(e)) => {
                    st.done = true;
                    st.pending.push_back(Err(e));
                    continue;
                }
                None => {
                    st.done = true;
                    let ended = st
                        .decoder
                        .finish(&mut sse)
                        .map_err(|e| ModelError::new(ModelErrorKind::Stream, st.provider, e))
                        .and_then(|()| {
                            for event in sse.drain(..) {
                                if st.parser.event(event, &mut events)? {
                                    return Ok(());
                                }
                            }
                            st.parser.end(&mut events)
                        });
                    st.pending.extend(events.into_iter().map(Ok));
                    if let Err(e) = ended {
                        st.pending.push_back(Err(e));
                    }
                    continue;
                }
            }
            for event in sse {
                match st.parser.event(event, &mut events) {
                    Ok(false) => {}
                    Ok(true) => {
                        st.done = true;
                        break;
                    }
                    Err(e) => {
                        st.done = true;
                        st.pending.extend(events.drain(..).map(Ok));
                        st.pending.push_back(Err(e));
                        break;
                    }
                }
            }
            st.pending.extend(events.into_iter().map(Ok));
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(input: &[u8], piece: usize) -> Result<Vec<SseEvent>, String> {
        let mut d = SseDecoder::new(1 << 20);
        let mut out = Vec::new();
        for chunk in input.chunks(piece) {
            d.push(chunk, &mut out)?;
        }
        d.finish(&mut out)?;
        Ok(out)
    }

    #[test]
    fn events_survive_any_chunking() -> Result<(), String> {
        let input = "event: message_start\ndata: {\"a\":\"héllo 🌍\"}\n\n: keep-alive\n\ndata: line1\ndata: line2\r\n\r\ndata: [DONE]\n\n".as_bytes();
        let expected = vec![
            SseEvent { event: Some("message_start".into()), data: "{\"a\":\"héllo 🌍\"}".into() },
            SseEvent { event: None, data: "line1\nline2".into() },
            SseEvent { event: None, data: "[DONE]".into() },
        ];
        for piece in 1..input.len() {
            assert_eq!(decode_in_pieces(input, piece)?, expected, "pieces of {piece} bytes");
        }
        Ok(())
    }

    #[test]
    fn a_last_event_without_its_blank_line_is_delivered() -> Result<(), String> {
        assert_eq!(decode_in_pieces(b"data: x", 3)?, vec![SseEvent { event: None, data: "x".into() }]);
        Ok(())
    }

    #[test]
    fn lines_and_events_are_bounded() {
        let mut d = SseDecoder::new(16);
        let mut out = Vec::new();
        // A line that never ends, fed in pieces: refused once past the limit.
        assert!(d.push(b"data: 0123456789", &mut out).is_ok());
        assert!(d.push(b"abcdef", &mut out).is_err());
        // Many short data lines that add up to one huge event.
        let mut d = SseDecoder::new(16);
        assert!(d.push(b"data: 12345\ndata: 67890\ndata: abcde\n", &mut out).is_err());
        // Within the limit, fine.
        let mut d = SseDecoder::new(16);
        assert!(d.push(b"data: 12345\n\n", &mut out).is_ok());
        assert_eq!(out, [SseEvent { event: None, data: "12345".into() }]);
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        assert!(decode_in_pieces(b"data: \xff\xfe\n\n", 4).is_err());
    }
}
