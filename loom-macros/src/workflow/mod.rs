//! `#[workflow]` and `#[node]`: a graph of methods, checked and wired at compile time.

mod check;
mod expand;
mod parse;

use proc_macro2::TokenStream;
use quote::quote;

use crate::common::Errors;

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let Some(mut item) = errors.ok(syn::parse2::<syn::ItemImpl>(item.clone()).map_err(|e| {
        syn::Error::new(e.span(), "#[workflow] goes on an `impl` block whose `#[node]` methods form the graph")
    })) else {
        let compile_errors = errors.into_compile_errors();
        return quote! { #item #compile_errors };
    };
    let model = parse::workflow_model(args, &mut item, &mut errors);
    // A graph built from attributes with mistakes would only repeat them: check it once the
    // attributes are right.
    let graph = if errors.is_empty() { check::check(&model, &mut errors) } else { None };
    let generated = match graph {
        Some(graph) if errors.is_empty() => expand::graph_impl(&model, &graph),
        // The methods stay, with a stand-in graph: one mistake does not cascade into every
        // use of the type.
        _ => expand::stub_graph(&model),
    };
    let compile_errors = errors.into_compile_errors();
    quote! { #item #generated #compile_errors }
}

/// `#[node]` outside a `#[workflow]` block.
pub(crate) fn stray_node(item: TokenStream) -> TokenStream {
    let error = syn::Error::new(
        proc_macro2::Span::call_site(),
        "#[node] marks a method of an `impl` block that has `#[workflow]` on it",
    )
    .to_compile_error();
    quote! { #item #error }
}
