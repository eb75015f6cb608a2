//! Integration tests of Loom live in this package's test targets.

/// The user guide in `docs/`, one item per chapter: every Rust snippet in it is compiled, and
/// run unless marked `no_run`, as a doctest (`cargo test -p loomflow-tests --doc docs::`).
#[cfg(doctest)]
pub mod docs {
    #[doc = include_str!("../docs/quickstart.md")]
    pub struct Quickstart;
    #[doc = include_str!("../docs/concepts.md")]
    pub struct Concepts;
    #[doc = include_str!("../docs/workflows.md")]
    pub struct Workflows;
    #[doc = include_str!("../docs/architectures.md")]
    pub struct Architectures;
    #[doc = include_str!("../docs/tools.md")]
    pub struct Tools;
    #[doc = include_str!("../docs/skills.md")]
    pub struct Skills;
    #[doc = include_str!("../docs/rag.md")]
    pub struct Rag;
    #[doc = include_str!("../docs/workspace.md")]
    pub struct Workspace;
    #[doc = include_str!("../docs/memory.md")]
    pub struct Memory;
    #[doc = include_str!("../docs/production.md")]
    pub struct Production;
    #[doc = include_str!("../docs/mcp.md")]
    pub struct Mcp;
    #[doc = include_str!("../docs/config.md")]
    pub struct Config;
    #[doc = include_str!("../docs/serving.md")]
    pub struct Serving;
    #[doc = include_str!("../docs/migrating-from-langgraph.md")]
    pub struct MigratingFromLangGraph;
}
