//! Generates the agent type from a checked [`AgentModel`].

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned as _;

use super::parse::AgentModel;

pub(super) fn agent_impl(model: &AgentModel) -> TokenStream {
    let AgentModel { krate, item, instructions, name, .. } = model;
    let attrs = &item.attrs;
    let vis = &item.vis;
    let ident = &item.ident;
    let out = model.output.clone().unwrap_or_else(|| syn::parse_quote!(::std::string::String));

    let mut build = quote!(#krate::Agent::new(#instructions).name(#name));
    if let Some(m) = &model.model {
        build = quote!(#build.model(#m));
    }
    for path in &model.tools {
        // A `#[tool]` function names its tool type too; any other type that implements `Tool`
        // and `Default` can be listed. Spanned on the user's path: whatever is not a tool is
        // reported there, by the name written.
        build =
            quote_spanned!(path.span()=> #build.tools(::core::iter::once(#krate::__private::listed_tool::<#path>())));
    }
    // `react`, the only loop for now, is the default: nothing to set.
    let _ = &model.architecture;
    if let Some(n) = &model.max_turns {
        build = quote!(#build.max_turns(#n));
    }
    if let Some(ty) = &model.output {
        build = quote_spanned!(ty.span()=> #build.output::<#ty>());
        if let Some(mode) = &model.output_mode {
            build = quote!(#build.output_mode(#krate::OutputMode::#mode));
        }
        if let Some(n) = &model.output_retries {
            build = quote!(#build.output_retries(#n));
        }
        if model.validate {
            build = quote_spanned!(ty.span()=> #build.validated());
        }
    }
    let doc_new = format!("Builds the `{ident}` agent as its `#[agent]` attribute declares it.");

    quote! {
        #(#attrs)*
        #vis struct #ident(#krate::Agent<#out>);

        impl #ident {
            #[doc = #doc_new]
            #vis fn new() -> Self {
                Self(#build)
            }

            /// Changes the agent with its builder methods (another model, more tools, ...).
            #[must_use]
            #vis fn configure(self, f: impl ::core::ops::FnOnce(#krate::Agent<#out>) -> #krate::Agent<#out>) -> Self {
                Self(f(self.0))
            }

            /// The agent itself.
            #vis fn into_agent(self) -> #krate::Agent<#out> {
                self.0
            }
        }

        impl ::core::default::Default for #ident {
            fn default() -> Self {
                Self::new()
            }
        }

        impl ::core::clone::Clone for #ident {
            fn clone(&self) -> Self {
                Self(::core::clone::Clone::clone(&self.0))
            }
        }

        impl ::core::fmt::Debug for #ident {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                ::core::fmt::Debug::fmt(&self.0, f)
            }
        }

        impl ::core::ops::Deref for #ident {
            type Target = #krate::Agent<#out>;
            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        impl ::core::convert::From<#ident> for #krate::Agent<#out> {
            fn from(agent: #ident) -> Self {
                agent.0
            }
        }
    }
}
