//! HTML: the page's main readable text, with headings as Markdown `#` lines.
//!
//! The page is parsed by html5ever (through `scraper`), as a browser would: entities are
//! decoded and broken markup is repaired. The text comes from the first `<main>` (or
//! `role="main"`), else the page's only `<article>`, else `<body>`. Left out: `script`,
//! `style`, `noscript`, `template`, `nav`, `aside`, `form` and its controls, embedded media,
//! anything `hidden` or `aria-hidden="true"`, elements with `role` `navigation`, `banner`,
//! `contentinfo` or `complementary`, and `header`/`footer` outside an `article` or `main` (a
//! page's banner and footer, not an article's own heading block).
//!
//! What remains is written as Markdown-like text: `h1`…`h6` as `#`…`######` lines, blocks
//! (paragraphs, `div`s, quotes) separated by blank lines, list items as `- ` lines indented
//! two spaces per nesting level, table rows as cells joined by ` | `, `<pre>` as a fenced
//! code block, `<br>` as a line break. Whitespace is collapsed as the browser collapses it.

use scraper::node::Element;
use scraper::{ElementRef, Html, Node};

use super::Format;
use crate::rag::Document;

/// Elements whose content is never part of the text.
const SKIPPED: &[&str] = &[
    "script", "style", "noscript", "template", "nav", "aside", "form", "button", "select", "textarea", "input",
    "option", "svg", "math", "iframe", "object", "embed", "canvas", "video", "audio", "map", "dialog", "head",
];

/// ARIA landmark roles that mark page chrome.
const CHROME_ROLES: &[&str] = &["navigation", "banner", "contentinfo", "complementary", "search"];

/// Elements that start and end a block of text.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "blockquote",
    "body",
    "center",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "header",
    "hgroup",
    "hr",
    "html",
    "legend",
    "li",
    "main",
    "menu",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tbody",
    "thead",
    "tfoot",
    "tr",
    "caption",
    "ul",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
];

/// The main text of an HTML page, with `title` from `<title>` (or the first `#` heading).
pub(super) fn load(source: &str, html: &str) -> Document {
    let page = Html::parse_document(html);
    let text = main_text(&page);
    let mut document = Document::new(source, "").with("format", Format::Html.name());
    let title = page
        .root_element()
        .descendent_elements()
        .find(|e| e.value().name() == "title")
        .map(|e| collapse(&e.text().collect::<String>()))
        .filter(|t| !t.is_empty())
        .or_else(|| text.lines().find_map(|l| l.strip_prefix("# ")).map(str::to_owned));
    if let Some(title) = title {
        document = document.with("title", title);
    }
    document.text = text;
    document
}

/// Whitespace runs (and no-break spaces) as one space, trimmed.
fn collapse(text: &str) -> String {
    text.split(|c: char| c.is_whitespace()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Where the readable text is: `<main>`, the only `<article>`, `<body>`, or the whole page.
fn content_root(page: &Html) -> ElementRef<'_> {
    let root = page.root_element();
    let is = |e: &ElementRef<'_>, name: &str| e.value().name() == name;
    if let Some(main) = root.descendent_elements().find(|e| is(e, "main") || e.value().attr("role") == Some("main")) {
        return main;
    }
    let mut articles = root.descendent_elements().filter(|e| is(e, "article"));
    if let (Some(article), None) = (articles.next(), articles.next()) {
        return article;
    }
    root.descendent_elements().find(|e| is(e, "body")).unwrap_or(root)
}

fn is_skipped(element: &Element, in_content: bool) -> bool {
    let name = element.name();
    SKIPPED.contains(&name)
        || element.attr("hidden").is_some()
        || element.attr("aria-hidden") == Some("true")
        || element.attr("role").is_some_and(|r| CHROME_ROLES.contains(&r.trim()))
        || (!in_content && (name == "header" || name == "footer"))
}

/// The kind of a block of output, which decides how it is joined to the one before.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Paragraph,
    Item,
    Row,
}

#[derive(Default)]
struct Writer {
    blocks: Vec<(Kind, String)>,
    inline: String,
    space: bool,
    /// `h1`…`h6` open: its level.
    heading: Option<usize>,
    /// Open lists.
    lists: usize,
    /// The open list item has not written its first line yet.
    item_start: bool,
    /// Open `blockquote`s.
    quotes: usize,
    /// Open `pre`s: text is kept as is.
    pre: usize,
    /// The cells of the open table row.
    row: Option<Vec<String>>,
    /// Open cells: 1 inside a cell, more inside a table nested in it (flattened into it).
    cells: usize,
    /// Open `article`s and `main`s.
    content: usize,
}

impl Writer {
    fn text(&mut self, text: &str) {
        if self.pre > 0 {
            self.inline.push_str(text);
            return;
        }
        for c in text.chars() {
            if c.is_whitespace() {
                self.space = true;
                continue;
            }
            if self.space && !self.inline.is_empty() && !self.inline.ends_with('\n') {
                self.inline.push(' ');
            }
            self.space = false;
            self.inline.push(c);
        }
    }

    fn line_break(&mut self) {
        self.inline.push('\n');
        self.space = false;
    }

    /// Ends the current block of inline text.
    fn flush(&mut self) {
        self.space = false;
        if self.cells > 0 {
            return;
        }
        let text = std::mem::take(&mut self.inline);
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        let (kind, first, rest) = if let Some(level) = self.heading {
            (Kind::Paragraph, format!("{} ", "#".repeat(level)), String::new())
        } else if self.lists > 0 {
            let indent = "  ".repeat(self.lists - 1);
            let first =
                if std::mem::take(&mut self.item_start) { format!("{indent}- ") } else { format!("{indent}  ") };
            (Kind::Item, first, format!("{indent}  "))
        } else {
            (Kind::Paragraph, String::new(), String::new())
        };
        let quote = "> ".repeat(self.quotes);
        let mut block = String::new();
        for (i, line) in text.lines().enumerate() {
            if i > 0 {
                block.push('\n');
            }
            block.push_str(&quote);
            block.push_str(if i == 0 { &first } else { &rest });
            block.push_str(line.trim());
        }
        self.blocks.push((kind, block));
    }

    fn open(&mut self, element: &Element) {
        let name = element.name();
        match name {
            "br" => return self.line_break(),
            "td" | "th" | "tr" if self.cells > 0 => {
                self.cells += usize::from(name != "tr");
                self.space = true;
                return;
            }
            "td" | "th" if self.row.is_some() => {
                self.inline.clear();
                self.space = false;
                self.cells = 1;
                return;
            }
            "tr" => {
                self.flush();
                self.row = Some(Vec::new());
                return;
            }
            _ => {}
        }
        if self.cells > 0 {
            if BLOCKS.contains(&name) {
                self.space = true;
            }
            return;
        }
        if name == "pre" {
            self.flush();
            self.pre += 1;
            return;
        }
        if self.pre > 0 {
            return;
        }
        if BLOCKS.contains(&name) {
            self.flush();
        }
        match name {
            "article" | "main" => self.content += 1,
            "ul" | "ol" | "menu" => self.lists += 1,
            "li" => self.item_start = true,
            "blockquote" => self.quotes += 1,
            _ => {}
        }
        if let Some(level) = heading_level(name) {
            self.heading = Some(level);
        }
    }

    fn close(&mut self, element: &Element) {
        let name = element.name();
        match name {
            "td" | "th" if self.cells > 1 => {
                self.cells -= 1;
                self.space = true;
                return;
            }
            "td" | "th" if self.cells == 1 => {
                self.cells = 0;
                let cell = collapse(&std::mem::take(&mut self.inline));
                if let Some(row) = &mut self.row {
                    row.push(cell);
                }
                return;
            }
            "tr" if self.cells > 0 => {
                self.space = true;
                return;
            }
            "tr" => {
                if let Some(cells) = self.row.take()
                    && cells.iter().any(|c| !c.is_empty())
                {
                    self.blocks.push((Kind::Row, format!("{}{}", "> ".repeat(self.quotes), cells.join(" | "))));
                }
                return;
            }
            _ => {}
        }
        if self.cells > 0 {
            if BLOCKS.contains(&name) {
                self.space = true;
            }
            return;
        }
        if name == "pre" {
            self.pre = self.pre.saturating_sub(1);
            if self.pre == 0 {
                let code = std::mem::take(&mut self.inline);
                let code = code.trim_matches(['\n', '\r']).trim_end();
                if !code.trim().is_empty() {
                    let fence = if code.contains("```") { "~~~" } else { "```" };
                    self.blocks.push((Kind::Paragraph, format!("{fence}\n{code}\n{fence}")));
                }
            }
            return;
        }
        if self.pre > 0 {
            return;
        }
        if BLOCKS.contains(&name) {
            self.flush();
        }
        match name {
            "article" | "main" => self.content = self.content.saturating_sub(1),
            "ul" | "ol" | "menu" => self.lists = self.lists.saturating_sub(1),
            "li" => self.item_start = false,
            "blockquote" => self.quotes = self.quotes.saturating_sub(1),
            _ => {}
        }
        if heading_level(name).is_some() {
            self.heading = None;
        }
    }

    fn finish(mut self) -> String {
        self.flush();
        let mut out = String::new();
        let mut previous: Option<Kind> = None;
        for (kind, block) in self.blocks {
            if let Some(previous) = previous {
                let tight = kind == previous && kind != Kind::Paragraph;
                out.push_str(if tight { "\n" } else { "\n\n" });
            }
            out.push_str(&block);
            previous = Some(kind);
        }
        out
    }
}

fn heading_level(name: &str) -> Option<usize> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

/// Walks the content root depth-first without recursion (a page may nest elements deeper
/// than the stack would allow), writing what is not skipped.
fn main_text(page: &Html) -> String {
    let root = content_root(page);
    let mut writer = Writer::default();
    let root_name = root.value().name();
    writer.content = usize::from(root_name == "article" || root_name == "main");
    let mut node = *root;
    loop {
        // Enter `node`; descend into its children unless it is skipped.
        let descend = match node.value() {
            Node::Element(element) => {
                if node.id() != root.id() && is_skipped(element, writer.content > 0) {
                    false
                } else {
                    writer.open(element);
                    true
                }
            }
            Node::Text(text) => {
                writer.text(text);
                false
            }
            _ => false,
        };
        if descend && let Some(child) = node.first_child() {
            node = child;
            continue;
        }
        // Leave `node` (and every ancestor whose last child it is) until a next sibling.
        let mut closing = if descend { Some(node) } else { None };
        loop {
            if let Some(done) = closing.take()
                && let Node::Element(element) = done.value()
            {
                writer.close(element);
            }
            if node.id() == root.id() {
                return writer.finish();
            }
            if let Some(next) = node.next_sibling() {
                node = next;
                break;
            }
            match node.parent() {
                Some(parent) => {
                    node = parent;
                    closing = Some(parent);
                }
                None => return writer.finish(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(html: &str) -> String {
        load("page.html", html).text
    }

    #[test]
    fn page_chrome_is_dropped_and_main_is_preferred() {
        let html = r#"<!doctype html><html><head><title> The  Page </title><style>p{}</style></head>
            <body><header><h1>Site</h1></header><nav><a href="/">Home</a></nav>
            <div role="navigation">Crumbs</div>
            <main><h1>Article</h1><p>First <b>bold</b>
            paragraph.</p><script>alert(1)</script><noscript>Enable JS</noscript><p>Second.</p></main>
            <aside>Related</aside><footer>© Us</footer></body></html>"#;
        let doc = load("page.html", html);
        assert_eq!(doc.text, "# Article\n\nFirst bold paragraph.\n\nSecond.");
        assert_eq!(doc.metadata["title"], "The Page");
        assert_eq!(doc.metadata["format"], "html");
    }

    #[test]
    fn without_main_the_body_is_read_without_its_chrome() {
        let html = "<body><header>Top</header><h2>Part</h2><p>Text</p><form><label>Name</label></form>\
                    <footer>Bottom</footer></body>";
        assert_eq!(text(html), "## Part\n\nText");
    }

    #[test]
    fn an_articles_own_header_is_kept() {
        let html = "<body><header>Site</header><article><header><h1>Post</h1><p>by Ann</p></header>\
                    <p>Body</p><footer>Tags: loom</footer></article></body>";
        assert_eq!(text(html), "# Post\n\nby Ann\n\nBody\n\nTags: loom");
    }

    #[test]
    fn entities_are_decoded() {
        let html = "<p>Fish &amp; chips &lt;3 &quot;caf&eacute;&quot; &#8212; &#x263A;&nbsp;ok &copy;</p>";
        assert_eq!(text(html), "Fish & chips <3 \"café\" — ☺ ok ©");
    }

    #[test]
    fn headings_lists_and_nesting() {
        let html = "<h1>One</h1><h3>Three</h3><p>Intro</p><ul><li>a</li><li><p>b</p><ol><li>b1</li></ol></li></ul>\
                    <p>After</p>";
        assert_eq!(text(html), "# One\n\n### Three\n\nIntro\n\n- a\n- b\n  - b1\n\nAfter");
    }

    #[test]
    fn tables_pre_breaks_and_quotes() {
        let html = "<table><tr><th>Name</th><th>Role</th></tr><tr><td><p>Ann</p></td><td>lead</td></tr></table>\
                    <pre>fn main() {\n    # not a heading\n}</pre><p>line one<br>line two</p>\
                    <blockquote><p>Quoted</p></blockquote>\
                    <table><tr><td>outer <table><tr><td>in</td><td>ner</td></tr></table></td><td>last</td></tr></table>";
        assert_eq!(
            text(html),
            "Name | Role\nAnn | lead\n\n```\nfn main() {\n    # not a heading\n}\n```\n\nline one\nline two\n\n> Quoted\n\nouter in ner | last"
        );
    }

    #[test]
    fn hidden_content_and_broken_markup() {
        let html = "<p hidden>secret</p><p aria-hidden=\"true\">icon</p><p>open <i>unclosed<p>next";
        assert_eq!(text(html), "open unclosed\n\nnext");
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        // html5ever takes time quadratic in the nesting depth, so the depth is modest and the
        // stack small: a walker that recursed per element would overflow it.
        let depth = 3000;
        let html = format!("{}deep{}", "<div><span>".repeat(depth), "</span></div>".repeat(depth));
        let walked = std::thread::Builder::new().stack_size(128 * 1024).spawn(move || text(&html));
        let text = walked.map(|t| t.join());
        assert!(matches!(text, Ok(Ok(ref t)) if t == "deep"), "{text:?}");
    }

    #[test]
    fn the_title_falls_back_to_the_first_h1() {
        assert_eq!(load("a.html", "<p>x</p><h1>Heading</h1>").metadata["title"], "Heading");
        assert!(!load("a.html", "<p>x</p>").metadata.contains_key("title"));
    }
}
