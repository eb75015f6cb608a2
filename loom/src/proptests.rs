//! Property tests of the parsers that read what the network, a model or a file controls: the
//! event-stream decoder, tool arguments, partial JSON and journal records. Arbitrary input
//! never panics; valid input round-trips.
//!
//! They run with the unit tests (256 cases each). As a fuzzer, with many more cases:
//! `PROPTEST_CASES=200000 cargo test -p loomflow --lib --release proptests`.

use proptest::prelude::*;
use serde_json::Value;

use crate::model::Content;
use crate::output::PartialJson;
use crate::session::{JournalEntry, RawRecord};
use crate::tool::Arguments;

/// Any JSON value, small enough to stay quick.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The number of cases comes from `PROPTEST_CASES` (256 by default); a failing case is
/// printed, not written into the source tree.
fn config() -> ProptestConfig {
    ProptestConfig { failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arguments_arbitrary_text_never_panics(text in ".{0,256}", bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        for raw in [text, String::from_utf8_lossy(&bytes).into_owned()] {
            if let Ok(mut args) = Arguments::parse(&raw) {
                let _ = args.take::<Value>("a");
                let _ = args.take::<Option<u32>>("b");
                let _ = args.take::<Vec<String>>("c");
                let _ = args.finish(&["a", "b", "c"]);
            }
        }
    }

    #[test]
    fn arguments_valid_objects_round_trip(object in prop::collection::btree_map("[a-z_]{1,8}", json(), 0..8)) {
        let text = serde_json::to_string(&object).unwrap_or_default();
        let mut args = Arguments::parse(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (key, value) in &object {
            let taken: Value = args.take(key).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&taken, value);
        }
        let keys: Vec<&str> = object.keys().map(String::as_str).collect();
        prop_assert!(args.finish(&keys).is_ok());
    }

    #[test]
    fn partial_json_arbitrary_text_never_panics(text in ".{0,512}", step in 1usize..32) {
        let mut scanner = PartialJson::default();
        let mut end = 0;
        while end < text.len() {
            end = (end + step).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            let _ = scanner.update(&text[..end]);
        }
    }

    #[test]
    fn partial_json_ends_on_the_whole_value(value in json(), step in 1usize..16, prose in "[a-z ]{0,10}") {
        // A partial value is only reported for an object or an array.
        let value = match value {
            v @ (Value::Object(_) | Value::Array(_)) => v,
            other => Value::Array(vec![other]),
        };
        let text = format!("{prose}{value}");
        let mut scanner = PartialJson::default();
        let (mut end, mut last) = (0, None);
        while end < text.len() {
            end = (end + step).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            if let Some(v) = scanner.update(&text[..end]) {
                last = Some(v);
            }
        }
        prop_assert_eq!(last, Some(value));
    }

    #[test]
    fn journal_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256), seq in any::<u64>()) {
        let _ = RawRecord { seq, bytes }.decode();
    }

    #[test]
    fn journal_records_round_trip_and_any_changed_byte_is_caught(
        turn in any::<u32>(),
        text in ".{0,64}",
        call in "[a-z0-9_]{1,12}",
        which in 0usize..4,
        flip in any::<(usize, u8)>(),
    ) {
        let entry = match which {
            0 => JournalEntry::TurnFinished { turn },
            1 => JournalEntry::ToolStarted { turn, call_id: call.clone(), name: text.clone() },
            2 => JournalEntry::RunStarted { input: Content::from(text.clone()), history: turn as usize, window_start: Some(3), name: Some(call.clone()) },
            _ => JournalEntry::RunFailed { error: text.clone() },
        };
        let record = RawRecord::encode(7, &entry).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(record.decode().ok(), Some(Ok(entry)));
        // One byte changed, anywhere: the record is reported damaged, never read as another.
        let (at, xor) = (flip.0 % record.bytes.len(), flip.1.max(1));
        let mut damaged = record.clone();
        damaged.bytes[at] ^= xor;
        prop_assert!(matches!(damaged.decode(), Ok(Err(_))), "byte {} changed and the record still read", at);
    }
}

#[cfg(feature = "http")]
mod sse {
    use proptest::prelude::*;

    use crate::model::providers::sse::{SseDecoder, SseEvent};

    /// Bytes cut into chunks at arbitrary places.
    fn chunked(bytes: Vec<u8>, cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut out = Vec::new();
        let mut at = 0;
        for p in points {
            out.push(bytes[at..p].to_vec());
            at = p;
        }
        out.push(bytes[at..].to_vec());
        out
    }

    fn decode(chunks: &[Vec<u8>], limit: usize) -> Result<Vec<SseEvent>, String> {
        let mut decoder = SseDecoder::new(limit);
        let mut out = Vec::new();
        for c in chunks {
            decoder.push(c, &mut out)?;
        }
        decoder.finish(&mut out)?;
        Ok(out)
    }

    proptest! {
        #![proptest_config(super::config())]

        #[test]
        fn sse_arbitrary_bytes_never_panic_and_chunking_does_not_matter(
            bytes in prop::collection::vec(any::<u8>(), 0..512),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
            limit in 1usize..1024,
        ) {
            let whole = decode(std::slice::from_ref(&bytes), limit);
            let pieces = decode(&chunked(bytes, &cuts), limit);
            // However the bytes arrive, the events (or the failure) are the same.
            prop_assert_eq!(whole.is_ok(), pieces.is_ok());
            if let (Ok(a), Ok(b)) = (whole, pieces) {
                prop_assert_eq!(a, b);
            }
        }

        #[test]
        fn sse_valid_events_round_trip(
            events in prop::collection::vec((prop::option::of("[a-z_]{1,10}"), "[^\r\n]{0,40}"), 0..8),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
            crlf in any::<bool>(),
        ) {
            let nl = if crlf { "\r\n" } else { "\n" };
            let mut text = String::new();
            for (event, data) in &events {
                if let Some(e) = event {
                    text.push_str(&format!("event: {e}{nl}"));
                }
                text.push_str(&format!(": a comment{nl}data: {data}{nl}{nl}"));
            }
            let decoded = decode(&chunked(text.into_bytes(), &cuts), 1 << 20);
            let expected: Vec<SseEvent> = events
                .into_iter()
                .map(|(event, data)| SseEvent { event, data })
                .collect();
            prop_assert_eq!(decoded, Ok(expected));
        }
    }
}
