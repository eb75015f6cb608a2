//! Built-in tools: the filesystem scoped to a root, a sandboxed shell, the living plan, and tool
//! search for large tool sets.

pub mod fs;
pub mod plan;
pub mod search;
pub mod shell;
