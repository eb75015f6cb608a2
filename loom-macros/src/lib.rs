//! Attribute macros for [Loom](https://docs.rs/loomflow). Use them through the `loomflow`
//! crate (`use loomflow::prelude::*;`), which documents each one and re-exports it.

mod agent;
mod common;
mod tool;
mod workflow;

use proc_macro::TokenStream;

/// Declares an agent as a type. See `loomflow::agent` for the documentation.
#[proc_macro_attribute]
pub fn agent(args: TokenStream, item: TokenStream) -> TokenStream {
    agent::expand(args.into(), item.into()).into()
}

/// Turns a function into a tool. See `loomflow::tool` for the documentation.
#[proc_macro_attribute]
pub fn tool(args: TokenStream, item: TokenStream) -> TokenStream {
    tool::expand(args.into(), item.into()).into()
}

/// Builds a workflow graph from the `#[node]` methods of an `impl` block. See
/// `loomflow::workflow` for the documentation.
#[proc_macro_attribute]
pub fn workflow(args: TokenStream, item: TokenStream) -> TokenStream {
    workflow::expand(args.into(), item.into()).into()
}

/// Marks a method of a `#[workflow]` block as a node. See `loomflow::workflow`.
#[proc_macro_attribute]
pub fn node(_args: TokenStream, item: TokenStream) -> TokenStream {
    workflow::stray_node(item.into()).into()
}
