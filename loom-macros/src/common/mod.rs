//! Helpers shared by the macros: error accumulation, attribute parsing, suggestions, docs.

#[macro_use]
mod args;
mod docs;
mod errors;

pub(crate) use args::{Flag, attribute_args, known_args, read};
pub(crate) use docs::{doc_string, strip_doc_attrs};
pub(crate) use errors::Errors;
pub(crate) use loomflow_graph::suggest::did_you_mean;

use proc_macro2::Span;
use syn::visit_mut::VisitMut;

/// The path of the runtime crate: `::loomflow` unless overridden with `crate = "..."`.
pub(crate) fn runtime_path(custom: Option<&syn::Path>) -> syn::Path {
    custom.cloned().unwrap_or_else(|| syn::parse_quote!(::loomflow))
}

/// Replaces every named lifetime except `'static` with `'_`, so a type taken from a function
/// signature can be written inside generated code where those lifetimes are not in scope.
pub(crate) fn erase_lifetimes(ty: &syn::Type) -> syn::Type {
    struct Eraser;
    impl VisitMut for Eraser {
        fn visit_lifetime_mut(&mut self, lt: &mut syn::Lifetime) {
            if lt.ident != "static" {
                *lt = syn::Lifetime::new("'_", lt.span());
            }
        }
    }
    let mut ty = ty.clone();
    Eraser.visit_type_mut(&mut ty);
    ty
}

/// `snake_case` (or any case) to `PascalCase`.
pub(crate) fn pascal_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut upper = true;
    for c in s.chars() {
        if c == '_' || c == '-' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// An identifier with a name derived from user input, spanned at `span`.
pub(crate) fn ident(name: &str, span: Span) -> syn::Ident {
    syn::Ident::new(name, span)
}
