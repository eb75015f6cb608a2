//! The chunkers, through their public API: exact ranges, no text lost, sizes, overlaps, heading
//! trails, stable ids. Property tests run 256 cases each (`PROPTEST_CASES` for more).

use std::collections::HashSet;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{Chunker, DEFAULT_SEPARATORS, MarkdownChunker, RecursiveChunker};
use crate::error::ConfigError;
use crate::rag::{Chunk, Document, chunk_id};

fn chars(text: &str) -> usize {
    text.chars().count()
}

fn texts(chunks: &[Chunk]) -> Vec<&str> {
    chunks.iter().map(|c| c.text.as_str()).collect()
}

fn paths(chunks: &[Chunk]) -> Vec<Value> {
    chunks.iter().map(|c| c.metadata["heading_path"].clone()).collect()
}

/// What holds for every chunking: exact trimmed ranges in order, indices, every non-whitespace
/// character in some chunk, consecutive chunks sharing at most `overlap`, chunks at most
/// `size` unless `oversize` allows the chunk, unique ids, the document's metadata.
fn check(
    doc: &Document,
    chunks: &[Chunk],
    size: usize,
    overlap: usize,
    len: &dyn Fn(&str) -> usize,
    oversize: &dyn Fn(&str) -> bool,
) -> Result<(), TestCaseError> {
    let mut ids = HashSet::new();
    for (i, chunk) in chunks.iter().enumerate() {
        prop_assert_eq!(doc.text.get(chunk.start..chunk.end), Some(chunk.text.as_str()));
        prop_assert!(!chunk.text.is_empty());
        prop_assert_eq!(chunk.text.trim(), chunk.text.as_str(), "trimmed");
        prop_assert_eq!(chunk.index as usize, i);
        prop_assert_eq!(&chunk.document, &doc.id);
        for (key, value) in &doc.metadata {
            prop_assert_eq!(chunk.metadata.get(key), Some(value));
        }
        let l = len(&chunk.text);
        prop_assert!(l <= size || oversize(&chunk.text), "chunk {} is {} long, size {}: {:?}", i, l, size, chunk.text);
        prop_assert!(ids.insert(chunk.id.clone()), "duplicate id");
        if i > 0 {
            let prev = &chunks[i - 1];
            prop_assert!(prev.start < chunk.start && prev.end < chunk.end, "out of order: {:?} {:?}", prev, chunk);
            if chunk.start < prev.end {
                let shared = &doc.text[chunk.start..prev.end];
                prop_assert!(
                    len(shared) <= overlap,
                    "overlap {:?} is {} long, overlap {}",
                    shared,
                    len(shared),
                    overlap
                );
            }
        }
    }
    let mut k = 0;
    for (i, c) in doc.text.char_indices() {
        if c.is_whitespace() {
            continue;
        }
        while k < chunks.len() && chunks[k].end <= i {
            k += 1;
        }
        let covered = chunks.get(k).is_some_and(|ch| ch.start <= i && i + c.len_utf8() <= ch.end);
        prop_assert!(covered, "byte {} ({:?}) is in no chunk", i, c);
    }
    Ok(())
}

fn never(_: &str) -> bool {
    false
}

#[test]
fn defaults_are_800_and_100_with_the_usual_separators() {
    let chunker = RecursiveChunker::default();
    assert_eq!((chunker.size(), chunker.overlap()), (800, 100));
    assert_eq!(DEFAULT_SEPARATORS, ["\n\n", "\n", ". ", "! ", "? ", "; ", ", ", " ", ""]);
}

#[test]
fn try_new_refuses_and_new_clamps() {
    assert!(matches!(RecursiveChunker::try_new(0, 0), Err(ConfigError::InvalidSetting { setting: "chunk size", .. })));
    let err = RecursiveChunker::try_new(10, 10).err();
    assert!(matches!(err, Some(ConfigError::InvalidSetting { setting: "chunk overlap", .. })), "{err:?}");
    assert!(MarkdownChunker::try_new(10, 12).is_err());
    assert!(RecursiveChunker::try_new(10, 9).is_ok());
    let clamped = RecursiveChunker::new(0, 5);
    assert_eq!((clamped.size(), clamped.overlap()), (1, 0));
    let clamped = RecursiveChunker::new(10, 50);
    assert_eq!((clamped.size(), clamped.overlap()), (10, 9));
}

#[test]
fn a_short_text_is_one_trimmed_chunk() {
    let doc = Document::new("a.txt", "\n  Hello there.\n\n").with("lang", "en");
    let chunks = RecursiveChunker::default().chunk(&doc);
    assert_eq!(chunks.len(), 1);
    let chunk = &chunks[0];
    assert_eq!((chunk.text.as_str(), chunk.start, chunk.end), ("Hello there.", 3, 15));
    assert_eq!((chunk.index, chunk.document.as_str()), (0, "a.txt"));
    assert_eq!(chunk.id, chunk_id("a.txt", "Hello there.", 0));
    assert_eq!(chunk.metadata, doc.metadata);
    assert!(!chunk.metadata.contains_key("heading_path"));
}

#[test]
fn empty_and_blank_documents_have_no_chunks() {
    for text in ["", " \n\n\t "] {
        assert!(RecursiveChunker::default().chunk(&Document::new("a", text)).is_empty());
        assert!(MarkdownChunker::default().chunk(&Document::new("a", text)).is_empty());
    }
}

#[test]
fn paragraphs_are_merged_up_to_the_size() {
    let text = "First paragraph here.\n\nSecond one.\n\nThird paragraph is longer.\n\nFour.";
    let chunks = RecursiveChunker::new(40, 0).chunk(&Document::new("a", text));
    assert_eq!(texts(&chunks), ["First paragraph here.\n\nSecond one.", "Third paragraph is longer.\n\nFour."]);
}

#[test]
fn long_pieces_are_split_by_the_next_separator_with_overlap() {
    let text = "alpha beta gamma delta epsilon zeta eta theta iota kappa";
    let chunks = RecursiveChunker::new(20, 10).chunk(&Document::new("a", text));
    assert_eq!(
        texts(&chunks),
        ["alpha beta gamma", "gamma delta epsilon", "epsilon zeta eta", "zeta eta theta iota", "iota kappa"]
    );
    for pair in chunks.windows(2) {
        assert!(pair[1].start < pair[0].end, "consecutive chunks share words");
    }
    let none = RecursiveChunker::new(20, 0).chunk(&Document::new("a", text));
    assert!(none.windows(2).all(|p| p[1].start >= p[0].end));
}

#[test]
fn sentences_keep_their_punctuation() {
    let text = "One two three. Four five six! Seven eight nine? Ten.";
    let chunks = RecursiveChunker::new(30, 0).chunk(&Document::new("a", text));
    // `". "` splits first; the piece after it is too long and is split on its own by `"! "`.
    assert_eq!(texts(&chunks), ["One two three.", "Four five six!", "Seven eight nine? Ten."]);
}

#[test]
fn sizes_count_characters_not_bytes() {
    let text = "ééééé ééééé ééééé";
    // 12 characters (22 bytes): two words with the space after the first.
    let chunks = RecursiveChunker::new(12, 0).chunk(&Document::new("a", text));
    assert_eq!(texts(&chunks), ["ééééé ééééé", "ééééé"]);
    let chunks = RecursiveChunker::new(11, 0).chunk(&Document::new("a", text));
    assert_eq!(texts(&chunks), ["ééééé", "ééééé ééééé"]);
    // No separator but the empty one: runs of characters, never cut inside one.
    let text = "日本語のテキストです";
    let chunks = RecursiveChunker::new(4, 1).chunk(&Document::new("a", text));
    assert_eq!(texts(&chunks), ["日本語の", "のテキス", "ストです"]);
}

#[test]
fn without_the_empty_separator_a_long_word_stays_whole() {
    let text = "short averyveryverylongword end";
    let chunks = RecursiveChunker::new(8, 0).separators([" "]).chunk(&Document::new("a", text));
    assert_eq!(texts(&chunks), ["short", "averyveryverylongword", "end"]);
    let whole = RecursiveChunker::new(8, 0).separators(Vec::<String>::new()).chunk(&Document::new("a", text));
    assert_eq!(texts(&whole), [text]);
}

#[test]
fn repeated_texts_get_distinct_stable_ids() {
    let doc = Document::new("a", "same\n\nsame\n\nother");
    let chunks = RecursiveChunker::new(5, 0).chunk(&doc);
    assert_eq!(texts(&chunks), ["same", "same", "other"]);
    assert_eq!(chunks[0].id, chunk_id("a", "same", 0));
    assert_eq!(chunks[1].id, chunk_id("a", "same", 1));
    assert_eq!(chunks[2].id, chunk_id("a", "other", 0));
    let other_doc = RecursiveChunker::new(5, 0).chunk(&Document::new("b", "same"));
    assert_ne!(other_doc[0].id, chunks[0].id);
}

#[test]
fn chunk_all_indexes_each_document_from_zero() {
    let docs = [Document::new("a", "one two three four"), Document::new("b", "five six")];
    let chunks = RecursiveChunker::new(9, 0).chunk_all(&docs);
    let got: Vec<(&str, u32, &str)> = chunks.iter().map(|c| (c.document.as_str(), c.index, c.text.as_str())).collect();
    assert_eq!(got, [("a", 0, "one two"), ("a", 1, "three"), ("a", 2, "four"), ("b", 0, "five six")]);
}

#[test]
fn chunkers_are_shareable() {
    fn shareable<T: Send + Sync + 'static>(_: &T) {}
    let chunker: Box<dyn Chunker> = Box::new(MarkdownChunker::default());
    shareable(&chunker);
    assert_eq!(chunker.chunk(&Document::new("a", "# T\nx")).len(), 1);
}

#[test]
fn markdown_heading_paths_follow_nesting() {
    let text = "Intro line.\n# Guide\nWelcome.\n## Install ##\nSteps.\n### Linux\napt.\n## Use\nRun it.\n# Appendix #\nMore.\n";
    let chunks = MarkdownChunker::default().chunk(&Document::new("g.md", text));
    assert_eq!(
        texts(&chunks),
        [
            "Intro line.",
            "# Guide\nWelcome.",
            "## Install ##\nSteps.",
            "### Linux\napt.",
            "## Use\nRun it.",
            "# Appendix #\nMore."
        ]
    );
    assert_eq!(
        paths(&chunks),
        [
            json!([]),
            json!(["Guide"]),
            json!(["Guide", "Install"]),
            json!(["Guide", "Install", "Linux"]),
            json!(["Guide", "Use"]),
            json!(["Appendix"]),
        ]
    );
    assert!(chunks.iter().all(|c| c.metadata["source"] == "g.md"));
}

#[test]
fn markdown_skipped_levels_and_lone_headings() {
    let text = "### Deep first\na\n# Top\n#### Skips two\nb\n## Empty\n## Next\nc";
    let chunks = MarkdownChunker::default().chunk(&Document::new("g.md", text));
    assert_eq!(texts(&chunks), ["### Deep first\na", "# Top", "#### Skips two\nb", "## Empty", "## Next\nc"]);
    assert_eq!(
        paths(&chunks),
        [
            json!(["Deep first"]),
            json!(["Top"]),
            json!(["Top", "Skips two"]),
            json!(["Top", "Empty"]),
            json!(["Top", "Next"])
        ]
    );
}

#[test]
fn markdown_lines_that_are_not_headings() {
    let text = "# Real\n#hashtag\n####### seven\n    # indented code\n\\# escaped\nSetext title\n============\ntext";
    let chunks = MarkdownChunker::default().chunk(&Document::new("g.md", text));
    assert_eq!(chunks.len(), 1, "{:?}", texts(&chunks));
    assert_eq!(paths(&chunks), [json!(["Real"])]);
    let indented = MarkdownChunker::default().chunk(&Document::new("g.md", "   ## Three spaces\nx"));
    assert_eq!(paths(&indented), [json!(["Three spaces"])]);
}

#[test]
fn markdown_ignores_headings_in_code_fences() {
    let text = "# Code\n```sh\n# a comment\n~~~\n## still code\n```\nafter\n~~~~\n# tilde code\n```\n~~~\n# a shorter fence does not close\n~~~~~\n````md\n# x\n```\n# y\n````\n## End\nz";
    let chunks = MarkdownChunker::default().chunk(&Document::new("g.md", text));
    assert_eq!(paths(&chunks), [json!(["Code"]), json!(["Code", "End"])]);
    assert!(chunks[0].text.ends_with("# y\n````"), "{:?}", chunks[0].text);
    // A fence never closed runs to the end.
    let open = MarkdownChunker::default().chunk(&Document::new("g.md", "# A\n```\n# B\n"));
    assert_eq!(paths(&open), [json!(["A"])]);
    // Backticks in the info string: not a fence, so the heading after it counts.
    let inline = MarkdownChunker::default().chunk(&Document::new("g.md", "# A\n``` `x` ```\n# B\n"));
    assert_eq!(paths(&inline), [json!(["A"]), json!(["B"])]);
}

#[test]
fn markdown_long_sections_are_chunked_and_keep_their_path() {
    let body = "This sentence is about trains. ".repeat(12);
    let text = format!("# Travel\n## Rail\n{body}\n## Air\nShort.");
    let doc = Document::new("t.md", text);
    let chunks = MarkdownChunker::new(100, 20).chunk(&doc);
    let rail: Vec<&Chunk> = chunks.iter().filter(|c| c.metadata["heading_path"] == json!(["Travel", "Rail"])).collect();
    assert!(rail.len() > 3, "{:?}", texts(&chunks));
    assert!(rail[0].text.starts_with("## Rail\nThis sentence"), "{:?}", rail[0].text);
    assert!(rail.iter().all(|c| chars(&c.text) <= 100));
    assert_eq!(chunks.last().map(|c| c.text.as_str()), Some("## Air\nShort."));
    if let Err(e) = check(&doc, &chunks, 100, 20, &chars, &never) {
        panic!("{e}");
    }
}

/// `n` paragraphs of about 120 characters under section headings, three per section.
fn long_markdown(edit: Option<usize>) -> (String, Vec<std::ops::Range<usize>>) {
    let mut text = String::from("Preface.\n\n");
    let mut paragraphs = Vec::new();
    for i in 0..30 {
        if i % 3 == 0 {
            text.push_str(&format!("## Section {}\n\n", i / 3));
        }
        let start = text.len();
        if edit == Some(i) {
            text.push_str(&format!("Paragraph {i} was rewritten, and now says something else entirely. "));
        } else {
            text.push_str(&format!("Paragraph {i} tells of the {i}th stop on the line, where trains wait. "));
        }
        text.push_str("It goes on for a while so that it fills most of a chunk by itself.");
        paragraphs.push(start..text.len());
        text.push_str("\n\n");
    }
    // One long paragraph, split into several chunks.
    text.push_str("## Long\n\n");
    let start = text.len();
    for j in 0..8 {
        if edit == Some(30) && j == 5 {
            text.push_str("This sentence changed. ");
        } else {
            text.push_str(&format!("Sentence {j} of the long paragraph runs on. "));
        }
    }
    paragraphs.push(start..text.len());
    (text, paragraphs)
}

#[test]
fn editing_one_paragraph_changes_only_the_ids_of_its_chunks() {
    let chunker = MarkdownChunker::new(160, 40);
    let (before_text, before_paras) = long_markdown(None);
    let before = chunker.chunk(&Document::new("doc.md", before_text.clone()));
    assert!(before.len() > 30);
    assert_eq!(chunker.chunk(&Document::new("doc.md", before_text)), before, "stable");
    for edited in [4, 30] {
        let (after_text, after_paras) = long_markdown(Some(edited));
        let after = chunker.chunk(&Document::new("doc.md", after_text));
        let old: HashSet<&str> = before.iter().map(|c| c.id.as_str()).collect();
        let new: HashSet<&str> = after.iter().map(|c| c.id.as_str()).collect();
        let touches = |c: &Chunk, r: &std::ops::Range<usize>| c.start < r.end && r.start < c.end;
        let changed: Vec<&Chunk> = after.iter().filter(|c| !old.contains(c.id.as_str())).collect();
        assert!(!changed.is_empty());
        assert!(changed.iter().all(|c| touches(c, &after_paras[edited])), "{changed:?}");
        let gone: Vec<&Chunk> = before.iter().filter(|c| !new.contains(c.id.as_str())).collect();
        assert!(gone.iter().all(|c| touches(c, &before_paras[edited])), "{gone:?}");
        // The chunks of the long paragraph before the changed sentence keep their ids.
        if edited == 30 {
            assert!(after.iter().filter(|c| touches(c, &after_paras[30])).count() > changed.len());
        }
    }
}

/// Words, multi-byte words and every kind of separator.
fn fragment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "a",
        "word",
        "Loom",
        "chunk",
        "héllo",
        "wörld",
        "日本語",
        "🦀",
        "ß",
        "x1",
        "\n\n",
        "\n",
        ". ",
        "! ",
        "? ",
        "; ",
        ", ",
        " ",
        "  ",
        "\t",
        "\r\n",
        ".",
        "\u{a0}",
        "\u{2003}",
    ])
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![prop::collection::vec(fragment(), 0..300).prop_map(|v| v.concat()), "(?s).{0,200}", "[a-zé ]{0,300}",]
}

fn markdown() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        (1usize..8, "[a-zé ]{0,12}").prop_map(|(n, t)| format!("{} {t}", "#".repeat(n))),
        prop::collection::vec(fragment(), 0..40).prop_map(|v| v.concat()),
        Just("```".to_owned()),
        Just("~~~".to_owned()),
        Just("    # indented".to_owned()),
        Just("===".to_owned()),
        Just(String::new()),
    ];
    prop::collection::vec(line, 0..40).prop_map(|lines| lines.join("\n"))
}

fn size_and_overlap() -> impl Strategy<Value = (usize, usize)> {
    (1usize..80).prop_flat_map(|size| (Just(size), 0..size))
}

fn config() -> ProptestConfig {
    ProptestConfig { failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn recursive_chunks_are_exact_complete_and_bounded(text in text(), (size, overlap) in size_and_overlap()) {
        let doc = Document::new("doc", text).with("tag", 7);
        let chunker = RecursiveChunker::new(size, overlap);
        let chunks = chunker.chunk(&doc);
        check(&doc, &chunks, size, overlap, &chars, &never)?;
        prop_assert_eq!(chunker.chunk(&doc), chunks);
    }

    #[test]
    fn recursive_without_the_empty_separator_only_words_exceed(text in text(), (size, overlap) in size_and_overlap()) {
        let doc = Document::new("doc", text);
        let chunks = RecursiveChunker::new(size, overlap).separators(["\n", " "]).chunk(&doc);
        check(&doc, &chunks, size, overlap, &chars, &|t: &str| !t.contains([' ', '\n']))?;
    }

    #[test]
    fn markdown_chunks_are_exact_complete_and_bounded(text in markdown(), (size, overlap) in size_and_overlap()) {
        let doc = Document::new("doc.md", text);
        let chunker = MarkdownChunker::new(size, overlap);
        let chunks = chunker.chunk(&doc);
        check(&doc, &chunks, size, overlap, &chars, &never)?;
        for chunk in &chunks {
            let path = chunk.metadata.get("heading_path").and_then(Value::as_array);
            prop_assert!(path.is_some_and(|p| p.iter().all(Value::is_string)), "{:?}", chunk.metadata);
        }
        prop_assert_eq!(chunker.chunk(&doc), chunks);
    }
}

#[cfg(feature = "rag-tokens")]
mod tokens {
    use super::*;
    use crate::rag::chunk::{TokenChunker, TokenCounter};

    #[test]
    fn counts_tokens_in_the_bundled_encodings() {
        let o200k = TokenCounter::o200k();
        assert_eq!(o200k.encoding(), "o200k_base");
        assert_eq!(o200k.count(""), 0);
        assert_eq!(o200k.count("hello world"), 2);
        assert_eq!(TokenCounter::cl100k().count("hello world"), 2);
        assert_eq!(o200k.count("<|endoftext|>"), TokenCounter::o200k().count("<|endoftext|>"));
        assert!(o200k.count("<|endoftext|>") > 1, "special tokens count as text");
        assert_eq!(TokenCounter::for_model("gpt-4o-mini").map(|c| c.encoding()), Ok("o200k_base"));
        let err = TokenCounter::for_model("llama-3").err();
        assert!(matches!(err, Some(ConfigError::InvalidSetting { setting: "token counter model", .. })), "{err:?}");
    }

    #[test]
    fn chunks_are_bounded_in_tokens() {
        let counter = TokenCounter::o200k();
        let text = "Tokens are not characters: a word is often one token. ".repeat(30);
        let doc = Document::new("t", text);
        let chunks = TokenChunker::new(25, 5).chunk(&doc);
        assert!(chunks.len() > 10);
        assert!(chunks.iter().all(|c| counter.count(&c.text) <= 25));
        let by_chars = RecursiveChunker::new(25, 5).chunk(&doc);
        assert!(by_chars.len() > chunks.len(), "25 characters hold less than 25 tokens");
        let markdown = MarkdownChunker::new(25, 5).tokens(counter).chunk(&Document::new("m", "# Title\nshort text"));
        assert_eq!(texts(&markdown), ["# Title\nshort text"]);
        assert!(TokenChunker::try_new(5, 5).is_err());
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn token_chunks_are_exact_complete_and_bounded(text in text(), (size, overlap) in size_and_overlap()) {
            let counter = TokenCounter::cl100k();
            let doc = Document::new("doc", text);
            let chunks = TokenChunker::new(size, overlap).counter(counter).chunk(&doc);
            // Only a single character can be more tokens than the size.
            check(&doc, &chunks, size, overlap, &|t: &str| counter.count(t), &|t: &str| t.chars().count() == 1)?;
        }
    }
}
