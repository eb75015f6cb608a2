//! `#[tool]`: parse the attribute and the function, validate, expand.

mod expand;
mod parse;

use proc_macro2::TokenStream;
use quote::quote;

use crate::common::Errors;

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let Some(mut func) = errors.ok(syn::parse2::<syn::ItemFn>(item.clone()).map_err(|e| {
        syn::Error::new(
            e.span(),
            "#[tool] goes on a function (`fn` or `async fn`); to make another item a tool, implement `loomflow::Tool` for it",
        )
    })) else {
        let compile_errors = errors.into_compile_errors();
        return quote! { #item #compile_errors };
    };
    let model = parse::tool_model(args, &mut func, &mut errors);
    if errors.is_empty() {
        let generated = expand::tool_impl(&model);
        quote! { #func #generated }
    } else {
        // Keep the function and a stand-in tool type, so one mistake here does not cause
        // "cannot find `XTool`" errors wherever the tool is used.
        let stub = (!model.has_receiver).then(|| expand::stub(&model));
        let compile_errors = errors.into_compile_errors();
        quote! { #func #stub #compile_errors }
    }
}
