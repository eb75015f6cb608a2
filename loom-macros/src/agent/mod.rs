//! `#[agent]`: declares an agent as a type.

mod expand;
mod parse;

use proc_macro2::TokenStream;
use quote::quote;

use crate::common::Errors;

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let Some(item) = errors.ok(syn::parse2::<syn::ItemStruct>(item.clone())
        .map_err(|e| syn::Error::new(e.span(), "#[agent] goes on a unit struct, e.g. `struct SupportAgent;`")))
    else {
        let compile_errors = errors.into_compile_errors();
        return quote! { #item #compile_errors };
    };
    let model = parse::agent_model(args, &item, &mut errors);
    let generated = expand::agent_impl(&model);
    let compile_errors = errors.into_compile_errors();
    // On errors the type is still emitted (with what could be understood), so uses of it
    // elsewhere do not add errors of their own.
    quote! { #generated #compile_errors }
}
