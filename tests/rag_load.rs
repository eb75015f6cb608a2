//! The RAG loaders through the public API, on the fixtures in `fixtures/rag/`: one file of
//! each format, a folder walked with include and exclude globs, failures reported per file
//! and per part of a file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use loomflow::rag::Document;
use loomflow::rag::load::{DirectoryLoader, Format, LoadError, Loader, load};
use serde_json::json;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rag").join(name)
}

fn shown(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn ids(docs: &[Document]) -> Vec<&str> {
    docs.iter().map(|d| d.id.as_str()).collect()
}

/// A folder in the temp directory no other test uses, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(files: &[(&str, &[u8])]) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!("loom-rag-load-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (path, content) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap_or(&root)).unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(&path, content).unwrap_or_else(|e| panic!("{e}"));
        }
        Self(root)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn markdown_keeps_its_headings_and_takes_its_frontmatter_into_metadata() -> anyhow::Result<()> {
    let path = fixture("guide.md");
    let docs = load(&path).await?;
    let [doc] = docs.as_slice() else { panic!("one document expected, got {docs:?}") };
    assert_eq!(doc.id, shown(&path));
    assert!(doc.text.starts_with("# Getting started\n\nLoom wires"), "{}", doc.text);
    assert!(doc.text.contains("\n## Installing\n") && doc.text.contains("\n### Features\n"));
    assert!(doc.text.contains("# this line is a comment, not a heading"));
    assert!(!doc.text.contains("author:"), "the frontmatter stays out of the text");
    assert_eq!(doc.metadata["source"], json!(shown(&path)));
    assert_eq!(doc.metadata["format"], "markdown");
    assert_eq!(doc.metadata["title"], "The Loom guide");
    assert_eq!(doc.metadata["author"], "Ann Weaver");
    assert_eq!(doc.metadata["version"], 2);
    Ok(())
}

#[tokio::test]
async fn html_gives_the_main_text_without_the_page_chrome() -> anyhow::Result<()> {
    let docs = load(fixture("page.html")).await?;
    let [doc] = docs.as_slice() else { panic!("one document expected, got {docs:?}") };
    assert_eq!(
        doc.text,
        "# Warp & weft\n\n\
         A woven cloth has two sets of threads: the warp runs lengthwise, the weft crosses it.\n\n\
         ## Tools of the trade\n\n\
         - Shuttle – carries the weft\n\
         - Heddle\n\n\
         ### Café looms\n\n\
         Prices start at €40 <per day>."
    );
    for chrome in
        ["Subscribe", "Archive", "Home", "analytics", "document.write", "JavaScript", "Related", "Comment", "2026"]
    {
        assert!(!doc.text.contains(chrome), "`{chrome}` is page chrome: {}", doc.text);
    }
    assert_eq!(doc.metadata["title"], "Warp & Weft — Loom Blog");
    assert_eq!(doc.metadata["format"], "html");
    Ok(())
}

#[tokio::test]
async fn csv_gives_a_document_per_row_with_quoted_fields_intact() -> anyhow::Result<()> {
    let path = fixture("table.csv");
    let docs = load(&path).await?;
    let source = shown(&path);
    assert_eq!(ids(&docs), [format!("{source}#row=1"), format!("{source}#row=2"), format!("{source}#row=3")]);
    assert_eq!(docs[0].text, "name: Shuttle\ndescription: Carries the weft, side to side\nprice: 12.50");
    assert_eq!(docs[1].text, "name: Heddle\ndescription: A loop with an \"eye\" for the warp\nprice: 3");
    assert_eq!(docs[2].text, "name: Loom\ndescription: Floor model\nwith treadles\nprice: 900");
    assert_eq!(docs[2].metadata["row"], 3);
    assert_eq!(docs[2].metadata["line"], 4);
    assert_eq!(docs[2].metadata["source"], json!(source));
    Ok(())
}

#[tokio::test]
async fn a_csv_row_with_the_wrong_number_of_fields_is_reported_and_the_others_load() -> anyhow::Result<()> {
    let dir = Scratch::new(&[("rows.csv", b"a,b\n1,2\n3,4,5\n\"6\",\"7, 8\"\n")]);
    let path = dir.0.join("rows.csv");
    let report = Loader::new().load_report(&path).await;
    assert_eq!(report.documents.len(), 2);
    assert_eq!(report.documents[1].text, "a: 6\nb: 7, 8");
    assert_eq!(report.documents[1].metadata["row"], 3);
    match report.failed.as_slice() {
        [(p, e @ LoadError::FieldCount { row: 2, line: 3, expected: 2, found: 3, .. })] => {
            assert_eq!(p, &path);
            assert!(e.to_string().contains("row 2 (line 3) has 3 fields but the header has 2"), "{e}");
        }
        other => panic!("expected one field-count failure, got {other:?}"),
    }
    // `load` keeps the good rows too.
    assert_eq!(load(&path).await?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn json_lines_report_a_bad_line_by_number_and_keep_the_others() -> anyhow::Result<()> {
    let path = fixture("records.jsonl");
    let source = shown(&path);
    let report = Loader::new().text_field("body").load_report(&path).await;
    assert_eq!(
        ids(&report.documents),
        [format!("{source}#line=1"), format!("{source}#line=2"), format!("{source}#line=5")]
    );
    assert_eq!(report.documents[2].text, "The self-finished edge.");
    assert_eq!(report.documents[2].metadata["title"], "Selvage");
    assert_eq!(report.documents[2].metadata["id"], 4);
    assert_eq!(report.documents[2].metadata["line"], 5);
    match report.failed.as_slice() {
        [(p, e @ LoadError::Parse { line: Some(3), format: Format::JsonLines, .. })] => {
            assert_eq!(p, &path);
            assert_eq!(e.line(), Some(3));
        }
        other => panic!("expected a parse failure on line 3, got {other:?}"),
    }

    // Without a text field, a record is its fields as lines, in the order written.
    let docs = load(&path).await?;
    assert_eq!(docs.len(), 3);
    assert_eq!(docs[0].text, "id: 1\ntitle: Warp\nbody: The lengthwise threads.");
    Ok(())
}

#[tokio::test]
async fn a_json_array_gives_a_document_per_item_as_readable_lines() -> anyhow::Result<()> {
    let path = fixture("items.json");
    let source = shown(&path);
    let docs = load(&path).await?;
    assert_eq!(ids(&docs), [format!("{source}#item=1"), format!("{source}#item=2")]);
    assert_eq!(docs[0].text, "name: Shuttle\nkind: tool\ntags: weaving, hand\nmaker.name: Ann\nmaker.city: Leeds");
    assert_eq!(docs[1].text, "name: Linen\nkind: fibre\ntags: flax");
    assert_eq!(docs[1].metadata["item"], 2);

    // A text field every item lacks fails the file, saying which field.
    match Loader::new().text_field("body").load(&path).await {
        Err(LoadError::MissingField { record, field, .. }) => {
            assert_eq!((record.as_str(), field.as_str()), ("item 1", "body"))
        }
        other => panic!("expected a missing field, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn plain_text_is_kept_as_is() -> anyhow::Result<()> {
    let path = fixture("notes.txt");
    let docs = load(&path).await?;
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].text, std::fs::read_to_string(&path)?);
    assert_eq!(docs[0].metadata["format"], "text");
    Ok(())
}

#[tokio::test]
async fn a_pdf_gives_a_document_per_page() -> anyhow::Result<()> {
    let path = fixture("two-pages.pdf");
    let source = shown(&path);
    let docs = load(&path).await?;
    assert_eq!(ids(&docs), [format!("{source}#page=1"), format!("{source}#page=2")]);
    assert!(docs[0].text.contains("Page one: the loom weaves warp and weft."), "{}", docs[0].text);
    assert!(docs[0].text.contains("Shuttles carry the weft thread across."), "{}", docs[0].text);
    assert!(!docs[0].text.contains("Page two"), "{}", docs[0].text);
    assert!(docs[1].text.contains("Page two: retrieval finds the right passage."), "{}", docs[1].text);
    assert!(!docs[1].text.contains("Page one"), "{}", docs[1].text);
    assert_eq!(docs[1].metadata["page"], 2);
    assert_eq!(docs[1].metadata["pages"], 2);
    assert_eq!(docs[1].metadata["source"], json!(source));

    // The same from bytes in memory.
    let docs = Loader::new().load_bytes("upload.pdf", std::fs::read(&path)?, Format::Pdf).await?;
    assert_eq!(ids(&docs), ["upload.pdf#page=1", "upload.pdf#page=2"]);
    Ok(())
}

#[tokio::test]
async fn a_damaged_pdf_is_an_error_not_a_crash() {
    let bytes = std::fs::read(fixture("two-pages.pdf")).unwrap_or_else(|e| panic!("{e}"));
    let cut = bytes.get(..bytes.len() / 2).unwrap_or_default().to_vec();
    match Loader::new().load_bytes("cut.pdf", cut, Format::Pdf).await {
        Err(LoadError::Pdf { .. } | LoadError::ExtractorPanicked { .. }) => {}
        Ok(docs) if docs.len() < 2 => {}
        other => panic!("a PDF cut in half cannot load whole: {other:?}"),
    }
}

#[tokio::test]
async fn the_directory_loader_loads_every_fixture_in_path_order() -> anyhow::Result<()> {
    let root = fixture("");
    let report = DirectoryLoader::new(&root).load().await?;
    let files: Vec<String> = report
        .documents
        .iter()
        .map(|d| d.metadata["source"].as_str().unwrap_or_default().to_owned())
        .fold(Vec::new(), |mut files, f| {
            if files.last() != Some(&f) {
                files.push(f);
            }
            files
        });
    let names = ["guide.md", "items.json", "notes.txt", "page.html", "records.jsonl", "table.csv", "two-pages.pdf"];
    assert_eq!(files, names.map(|n| shown(&root.join(n))));
    // 1 + 2 + 1 + 1 + 3 + 3 + 2 documents; the bad JSON Lines line is the one failure.
    assert_eq!(report.documents.len(), 13);
    assert!(
        matches!(report.failed.as_slice(), [(p, LoadError::Parse { line: Some(3), .. })] if p.ends_with("records.jsonl")),
        "{:?}",
        report.failed
    );
    assert!(!report.is_complete());
    Ok(())
}

#[tokio::test]
async fn include_and_exclude_globs_pick_the_files_and_a_failing_file_does_not_stop_the_others() -> anyhow::Result<()> {
    let dir = Scratch::new(&[
        ("docs/intro.md", b"# Intro\n"),
        ("docs/deep/more.md", b"# More\n"),
        ("docs/table.csv", b"a\n1\n"),
        ("docs/broken.md", b"caf\xe9\n"),
        ("docs/data.json", b"{\"ok\": true"),
        ("target/built.md", b"# Built\n"),
        ("crates/x/target/also.md", b"# Also built\n"),
        (".hidden/secret.md", b"# Secret\n"),
        ("README.md", b"# Readme\n"),
    ]);
    let report =
        DirectoryLoader::new(&dir.0).include("**/*.md").include("docs/*.json").exclude("**/target/**").load().await?;
    let titles: Vec<&str> = report.documents.iter().filter_map(|d| d.metadata.get("title")?.as_str()).collect();
    assert_eq!(titles, ["Readme", "More", "Intro"], "sorted by path: README.md, docs/deep/more.md, docs/intro.md");
    let failed: Vec<(&Path, &LoadError)> = report.failed.iter().map(|(p, e)| (p.as_path(), e)).collect();
    match failed.as_slice() {
        [(md, LoadError::NotUtf8 { offset: 3, .. }), (json, LoadError::Parse { format: Format::Json, .. })] => {
            assert_eq!(*md, dir.0.join("docs/broken.md"));
            assert_eq!(*json, dir.0.join("docs/data.json"));
        }
        other => panic!("expected the broken Markdown and JSON to fail, got {other:?}"),
    }

    // Hidden folders are walked when asked.
    let report = DirectoryLoader::new(&dir.0).include(".hidden/*.md").hidden(true).load().await?;
    assert_eq!(report.documents.len(), 1);
    assert_eq!(report.documents[0].metadata["title"], "Secret");
    Ok(())
}

#[tokio::test]
async fn without_includes_unsupported_files_are_skipped_not_failed() -> anyhow::Result<()> {
    let dir = Scratch::new(&[("a.txt", b"text"), ("b.png", b"\x89PNG"), ("c", b"no extension")]);
    let report = DirectoryLoader::new(&dir.0).load().await?;
    assert_eq!(report.documents.len(), 1);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.skipped, [dir.0.join("b.png"), dir.0.join("c")]);

    // Unknown extensions as text: the UTF-8 file loads, the binary one is refused.
    let report = DirectoryLoader::new(&dir.0).loader(Loader::new().unknown_as_text(true)).load().await?;
    assert_eq!(ids(&report.documents), [shown(&dir.0.join("a.txt")), shown(&dir.0.join("c"))]);
    assert!(matches!(report.failed.as_slice(), [(_, LoadError::Unsupported { extension: Some(e), .. })] if e == "png"));
    Ok(())
}

#[cfg(unix)]
#[tokio::test]
async fn a_symbolic_link_cycle_is_walked_once() -> anyhow::Result<()> {
    let dir = Scratch::new(&[("a/note.md", b"# Note\n")]);
    std::os::unix::fs::symlink("..", dir.0.join("a/up"))?;
    std::os::unix::fs::symlink("note.md", dir.0.join("a/link.md"))?;

    let report = DirectoryLoader::new(&dir.0).load().await?;
    assert_eq!(ids(&report.documents), [shown(&dir.0.join("a/note.md"))], "links are not followed by default");

    let report = DirectoryLoader::new(&dir.0).follow_links(true).load().await?;
    assert_eq!(ids(&report.documents), [shown(&dir.0.join("a/link.md")), shown(&dir.0.join("a/note.md"))]);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    Ok(())
}

#[tokio::test]
async fn a_file_over_the_size_limit_is_refused() -> anyhow::Result<()> {
    let path = fixture("page.html");
    let size = std::fs::metadata(&path)?.len();
    match Loader::new().max_file_size(1024).load(&path).await {
        Err(e @ LoadError::TooLarge { .. }) => {
            assert!(matches!(e, LoadError::TooLarge { size: s, limit: 1024, .. } if s == size));
            assert!(e.to_string().contains("Loader::max_file_size"), "{e}");
        }
        other => panic!("expected too large, got {other:?}"),
    }

    // In a folder, the large file fails and the small ones load.
    let report = DirectoryLoader::new(fixture(""))
        .include("*.{md,html,txt}")
        .loader(Loader::new().max_file_size(1024))
        .load()
        .await?;
    assert_eq!(report.documents.len(), 2);
    assert!(matches!(report.failed.as_slice(), [(p, LoadError::TooLarge { .. })] if p.ends_with("page.html")));
    Ok(())
}

#[tokio::test]
async fn what_cannot_be_loaded_says_why() {
    let dir = Scratch::new(&[("guide.docx", b"PK\x03\x04")]);
    match load(dir.0.join("guide.docx")).await {
        Err(e @ LoadError::Unsupported { .. }) => {
            let message = e.to_string();
            assert!(
                message.contains(".docx") && message.contains(".md, .markdown") && message.contains(".pdf"),
                "{message}"
            );
        }
        other => panic!("expected unsupported, got {other:?}"),
    }
    assert!(matches!(load(fixture("missing.md")).await, Err(LoadError::Io { .. })));
    assert!(matches!(load(fixture("")).await, Err(LoadError::Io { .. })), "a folder is not a file");
    assert!(matches!(DirectoryLoader::new(fixture("notes.txt")).load().await, Err(LoadError::NotADirectory { .. })));
    assert!(matches!(
        DirectoryLoader::new(fixture("")).include("[").load().await,
        Err(LoadError::InvalidGlob { pattern, .. }) if pattern == "["
    ));
}
