//! Generates the agent type from a checked [`AgentModel`].

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned as _;

use super::parse::{AgentModel, TeamModel};

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
    if let Some(description) = &model.description {
        build = quote!(#build.description(#description));
    }
    if let Some(arch) = architecture(model) {
        build = quote!(#build.architecture(#arch));
    }
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
    let type_name = name;

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

        impl #krate::__private::AgentType for #ident {
            type Output = #out;
            const NAME: &'static str = #type_name;
            fn build() -> #krate::Agent<#out> {
                Self::new().0
            }
        }
    }
}

/// The `.architecture(..)` argument, when the attribute names one other than the default.
fn architecture(model: &AgentModel) -> Option<TokenStream> {
    let krate = &model.krate;
    let arch = model.architecture.as_ref()?;
    // Each member is added by a call spanned on its path: whatever is wrong with it is
    // reported there, once.
    let add = |p: &syn::Path, text: bool| {
        if text {
            quote_spanned!(p.span()=> let team = #krate::__private::add_peer::<#p>(team);)
        } else {
            quote_spanned!(p.span()=> let team = #krate::__private::add_member::<#p, _>(team);)
        }
    };
    Some(match &model.team {
        TeamModel::None => {
            let name = arch.to_string();
            if name == "react" {
                return None;
            }
            let name = name.replace('_', "-");
            quote!(#name)
        }
        TeamModel::List(kind, paths) => {
            let (ty, text) = match kind.to_string().as_str() {
                "supervisor" => ("Supervisor", false),
                "router" => ("Router", false),
                "swarm" => ("Swarm", true),
                _ => ("Blackboard", false),
            };
            let ty = syn::Ident::new(ty, kind.span());
            let members = paths.iter().map(|p| add(p, text));
            let coordinated = (ty == "Blackboard").then(|| quote!(.coordinated().decided()));
            quote!({
                let team = #krate::arch::#ty::new();
                #(#members)*
                team #coordinated
            })
        }
        TeamModel::Debate(paths, judge) => {
            let members = paths.iter().map(|p| add(p, false));
            let judge =
                judge.as_ref().map(|j| quote_spanned!(j.span()=> let team = #krate::__private::set_judge::<#j>(team);));
            quote!({
                let team = #krate::arch::Debate::new();
                #(#members)*
                #judge
                team
            })
        }
        TeamModel::ActorCritic(actor, critic) => {
            let a = quote_spanned!(actor.span()=> #actor);
            let c = quote_spanned!(critic.span()=> #critic);
            quote_spanned!(critic.span()=> #krate::__private::actor_critic::<#a, #c>())
        }
    })
}
