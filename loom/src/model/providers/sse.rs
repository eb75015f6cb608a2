//! Server-sent events: a decoder that takes bytes as they arrive, in chunks of any size.

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
/// decoded. Comment lines (`: keep-alive`) are skipped.
#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    buf: Vec<u8>,
    event: Option<String>,
    data: String,
    has_data: bool,
    /// The previous chunk ended with `\r`: a `\n` opening the next chunk belongs to it.
    pending_cr: bool,
}

impl SseDecoder {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds bytes; complete events go to `out`. A line that is not UTF-8 is an error.
    pub(crate) fn push(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), String> {
        for &b in chunk {
            // `\r\n` is one line end, even when a chunk ends between the two bytes.
            if std::mem::take(&mut self.pending_cr) && b == b'\n' {
                continue;
            }
            match b {
                b'\n' | b'\r' => {
                    let line = std::mem::take(&mut self.buf);
                    self.line(&line, out)?;
                    self.pending_cr = b == b'\r';
                }
                _ => self.buf.push(b),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(input: &[u8], piece: usize) -> Result<Vec<SseEvent>, String> {
        let mut d = SseDecoder::new();
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
    fn invalid_utf8_is_an_error() {
        assert!(decode_in_pieces(b"data: \xff\xfe\n\n", 4).is_err());
    }
}
