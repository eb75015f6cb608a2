//! Generates the typed state machine of a checked workflow graph.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned as _;

use super::check::{Next, Resolved};
use super::parse::{NodeModel, WorkflowModel};

struct Gen<'m> {
    model: &'m WorkflowModel,
    rt: TokenStream,
}

fn slot(i: usize) -> syn::Ident {
    format_ident!("__loom_slot_{i}")
}

impl Gen<'_> {
    fn node(&self, i: usize) -> &NodeModel {
        &self.model.nodes[i]
    }

    /// Runs node `i` on `input`; evaluates to its output, or returns the run's error.
    fn run_node(&self, i: usize, input: TokenStream) -> TokenStream {
        let rt = &self.rt;
        let node = self.node(i);
        let method = &node.ident;
        let mut args = Vec::new();
        if node.takes_ctx {
            args.push(quote!(__loom_started.ctx(__loom_run)));
        }
        if node.input.is_some() {
            args.push(quote!(__loom_input));
        } else {
            args.push(quote!());
            args.pop();
        }
        let call = quote!(self.#method(#(#args),*));
        let call = if node.is_async { quote!(#call.await) } else { call };
        let unwrap = if node.returns_result {
            // Spanned on the return type: an error type that cannot be a node's is reported there.
            let error = quote_spanned!(node.ret_span=> (&&&#rt::ErrWrap::new(e)).__loom_node_error());
            quote! {
                let __loom_out = match __loom_out {
                    ::core::result::Result::Ok(v) => v,
                    ::core::result::Result::Err(e) => {
                        return ::core::result::Result::Err(__loom_run.fail(#i, #error));
                    }
                };
            }
        } else {
            quote!()
        };
        quote! {{
            #[allow(unused_variables)]
            let __loom_input = #input;
            let __loom_started = __loom_run.enter(#i).await?;
            let __loom_out = #call;
            #unwrap
            __loom_run
                .exit(#i, __loom_started, || (&&#rt::Summarize(&__loom_out)).__loom_summary(), || {
                    (&&#rt::ToJson(&__loom_out)).__loom_json()
                })
                .await?;
            __loom_out
        }}
    }

    /// Hands `value` (a node's output, or the value of a route's variant) to node `to`, by the
    /// edge written at `edge`, and moves there. The value goes through `Feeds`, located at the
    /// edge: a type that does not fit is Loom's error there, naming both types.
    fn feed(&self, to: usize, value: &str, edge: Span) -> TokenStream {
        let rt = &self.rt;
        let ty = self.node(to).input_ty();
        let slot = slot(to);
        // The value resolves as the macro's own variable, and is located at the edge: rustc
        // reports an unmet bound on the argument, so there.
        let value = syn::Ident::new(value, Span::call_site().located_at(edge));
        let fed = quote_spanned!(edge=> #rt::Feeds::<#ty>::feed(#value));
        quote! {
            let __loom_next: #ty = #fed;
            #slot = ::core::option::Option::Some(__loom_next);
            __loom_at = #to;
        }
    }

    fn transition(&self, i: usize, next: &Next) -> TokenStream {
        let rt = &self.rt;
        match next {
            Next::End => {
                // Spanned on the node's output type: an end node that gives another type than
                // the workflow's output is reported there.
                let out = &self.node(i).output;
                let ended =
                    quote_spanned!(out.span()=> <#out as #rt::Ends<<Self as #rt::Graph>::Output>>::end(__loom_out));
                quote! {
                    let __loom_result: <Self as #rt::Graph>::Output = #ended;
                    return ::core::result::Result::Ok(__loom_result);
                }
            }
            Next::One(to, edge) => self.feed(*to, "__loom_out", *edge),
            Next::Route(arms) => {
                let arms = arms.iter().map(|(variant, to, edge)| {
                    let target = self.node(*to);
                    if target.input.is_some() {
                        let feed = self.feed(*to, "__loom_value", *edge);
                        quote!(#variant(__loom_value) => { #feed })
                    } else {
                        let slot = slot(*to);
                        quote!(#variant { .. } => { #slot = ::core::option::Option::Some(()); __loom_at = #to; })
                    }
                });
                let keyword = match &self.node(i).out {
                    super::parse::Out::Route { keyword, .. } => *keyword,
                    _ => self.node(i).ident.span(),
                };
                // Spanned on `route`: a variant without an arm is reported there, by name. The
                // last arm never matches (a guard that is false) and has a span of another
                // context than the arms before it, so rustc names the missing variants without
                // suggesting to paste a `todo!()` arm into the attribute.
                let never = quote_spanned!(Span::mixed_site()=> __loom_never if false => ::core::unreachable!());
                quote_spanned! {keyword=> match __loom_out { #(#arms)* #never } }
            }
            Next::FanOut { branches, join } => {
                let keyword = match &self.node(i).out {
                    super::parse::Out::FanOut { keyword, .. } => *keyword,
                    _ => self.node(i).ident.span(),
                };
                let n = branches.len();
                let copies: Vec<syn::Ident> = (0..n).map(|k| format_ident!("__loom_copy_{k}")).collect();
                let mut stmts = Vec::new();
                for (k, copy) in copies.iter().enumerate() {
                    if k + 1 < n {
                        stmts.push(quote_spanned!(keyword=> let #copy = #rt::FansOut::copy(&__loom_out);));
                    } else {
                        stmts.push(quote!(let #copy = __loom_out;));
                    }
                }
                let futures: Vec<TokenStream> = branches
                    .iter()
                    .zip(&copies)
                    .map(|(chain, copy)| {
                        let mut body = quote!(let __loom_value = #copy;);
                        for &node in chain {
                            let run = self.run_node(node, quote!(__loom_value));
                            body = quote!(#body let __loom_value = #run;);
                        }
                        quote! {
                            async move {
                                #body
                                ::core::result::Result::Ok::<_, #rt::WorkflowError>(__loom_value)
                            }
                        }
                    })
                    .collect();
                let results: Vec<syn::Ident> = (0..n).map(|k| format_ident!("__loom_branch_{k}")).collect();
                let mut joined = quote!();
                let mut pattern = quote!();
                for (k, (fut, res)) in futures.iter().zip(&results).enumerate().rev() {
                    if k + 1 == n {
                        joined = fut.clone();
                        pattern = quote!(#res);
                    } else {
                        joined = quote!(#rt::futures::future::try_join(#fut, #joined));
                        pattern = quote!((#res, #pattern));
                    }
                }
                let feed = self.feed_join(i, *join, &results);
                quote! {
                    #(#stmts)*
                    let #pattern = #joined.await?;
                    #feed
                }
            }
        }
    }

    /// Hands the branch outputs, as a tuple in branch order, to the join.
    fn feed_join(&self, fan_out: usize, join: usize, results: &[syn::Ident]) -> TokenStream {
        let target = self.node(join);
        let ty = target.input_ty();
        let slot = slot(join);
        let keyword = match &self.node(fan_out).out {
            super::parse::Out::FanOut { keyword, .. } => *keyword,
            _ => self.node(fan_out).ident.span(),
        };
        let rt = &self.rt;
        // The tuple is located at `fan_out`: rustc reports the unmet bound on it.
        let tuple = quote_spanned!(keyword=> (#(#results,)*));
        let joined = quote_spanned!(keyword=> #rt::JoinsInto::<#ty>::join(#tuple));
        quote! {
            let __loom_next: #ty = #joined;
            #slot = ::core::option::Option::Some(__loom_next);
            __loom_at = #join;
        }
    }
}

fn kind(node: &NodeModel, next: &Next) -> TokenStream {
    match next {
        Next::Route(_) => quote!(Router),
        Next::FanOut { .. } => quote!(FanOut),
        _ if node.join.is_some() => quote!(Join),
        _ => quote!(Step),
    }
}

pub(super) fn graph_impl(model: &WorkflowModel, resolved: &Resolved) -> TokenStream {
    let krate = &model.krate;
    let rt = quote!(#krate::__private);
    let generator = Gen { model, rt: rt.clone() };
    let self_ty = &model.self_ty;
    let (impl_generics, _, where_clause) = model.generics.split_for_impl();
    let name = &model.name;

    let option = |n: Option<u32>| match n {
        Some(n) => quote!(::core::option::Option::Some(#n)),
        None => quote!(::core::option::Option::None),
    };
    let (max_visits, max_steps) = (option(model.max_visits), option(model.max_steps));
    let start = resolved.start;
    let input_ty = model.nodes[start].input_ty();
    let Some(first_end) =
        (0..model.nodes.len()).find(|&i| !resolved.in_branch[i] && matches!(resolved.next[i], Next::End))
    else {
        return quote!();
    };
    let output_ty = &model.nodes[first_end].output;

    // The static graph.
    let add_nodes = model.nodes.iter().zip(&resolved.next).map(|(node, next)| {
        let n = node.name();
        let kind = kind(node, next);
        let max = match node.max_visits {
            Some(m) => quote!(::core::option::Option::Some(#m)),
            None => quote!(::core::option::Option::None),
        };
        let idempotent = node.idempotent.then(|| quote!(spec.set_idempotent(__loom_node);));
        quote! {
            let __loom_node = spec.add_node(#n, #rt::NodeKind::#kind, #max);
            #idempotent
        }
    });
    let mut add_edges = Vec::new();
    for (i, next) in resolved.next.iter().enumerate() {
        match next {
            Next::End => {}
            Next::One(to, _) => add_edges.push(quote!(spec.add_edge(#i, #to, #rt::EdgeKind::Next);)),
            Next::Route(arms) => {
                for (variant, to, _) in arms {
                    let label = variant.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
                    add_edges
                        .push(quote!(spec.add_edge(#i, #to, #rt::EdgeKind::Route(::std::sync::Arc::from(#label)));));
                }
            }
            Next::FanOut { branches, join } => {
                for chain in branches {
                    let first = chain.first().copied().unwrap_or(*join);
                    add_edges.push(quote!(spec.add_edge(#i, #first, #rt::EdgeKind::Branch);));
                }
            }
        }
    }

    // One input slot per node that runs in the main loop.
    let slots = (0..model.nodes.len()).filter(|&i| !resolved.in_branch[i]).map(|i| {
        let slot = slot(i);
        let ty = model.nodes[i].input_ty();
        quote!(let mut #slot: ::core::option::Option<#ty> = ::core::option::Option::None;)
    });
    let start_slot = slot(start);
    let arms = (0..model.nodes.len()).filter(|&i| !resolved.in_branch[i]).map(|i| {
        let slot = slot(i);
        let run = generator.run_node(
            i,
            quote! {
                match #slot.take() {
                    ::core::option::Option::Some(v) => v,
                    ::core::option::Option::None => return ::core::result::Result::Err(#rt::missing_input(__loom_run, #i)),
                }
            },
        );
        let transition = generator.transition(i, &resolved.next[i]);
        quote! {
            #i => {
                let __loom_out = #run;
                #transition
            }
        }
    });

    // Resuming right after a node: its recorded output, restored as its type, takes the
    // transition the node would have taken.
    let main: Vec<usize> = (0..model.nodes.len()).filter(|&i| !resolved.in_branch[i]).collect();
    let restore_arms = main.iter().map(|&i| {
        let out_ty = &model.nodes[i].output;
        let transition = generator.transition(i, &resolved.next[i]);
        quote! {
            #i => {
                let __loom_out: #out_ty = match (&&&#rt::FromJson::<#out_ty>::NEW).__loom_restore(__loom_value) {
                    ::core::option::Option::Some(::core::result::Result::Ok(v)) => v,
                    ::core::option::Option::Some(::core::result::Result::Err(e)) => {
                        return ::core::result::Result::Err(#rt::restore_failed(__loom_run, #i, &e));
                    }
                    ::core::option::Option::None => {
                        return ::core::result::Result::Err(#rt::restore_failed(
                            __loom_run,
                            #i,
                            "its type does not implement `Deserialize`",
                        ));
                    }
                };
                #transition
            }
        }
    });
    let resumable = main.iter().map(|&i| {
        let out_ty = &model.nodes[i].output;
        quote!(#i => (&&&#rt::FromJson::<#out_ty>::NEW).__loom_can_restore(),)
    });

    quote! {
        impl #impl_generics #self_ty #where_clause {
            #[doc(hidden)]
            #[allow(unused_mut, unused_variables, unreachable_code, clippy::let_unit_value, clippy::redundant_locals)]
            async fn __loom_drive(
                &self,
                __loom_run: &#rt::GraphRun<'_>,
                __loom_entry: #rt::Entry<<Self as #rt::Graph>::Input>,
            ) -> ::core::result::Result<<Self as #rt::Graph>::Output, #rt::WorkflowError> {
                #[allow(unused_imports)]
                use #rt::{
                    DebugSummary as _, DisplayNodeError as _, IntoNodeError as _, JsonRecord as _, JsonRestore as _,
                    NoJsonRecord as _, NoJsonRestore as _, PlainSummary as _, UnsupportedNodeError as _,
                };
                #(#slots)*
                let mut __loom_at: usize;
                match __loom_entry {
                    #rt::Entry::Input(input) => {
                        #start_slot = ::core::option::Option::Some(input);
                        __loom_at = #start;
                    }
                    #rt::Entry::After(__loom_node, __loom_value) => match __loom_node {
                        #(#restore_arms)*
                        _ => return ::core::result::Result::Err(#rt::missing_input(__loom_run, __loom_node)),
                    },
                }
                loop {
                    match __loom_at {
                        #(#arms)*
                        _ => return ::core::result::Result::Err(#rt::missing_input(__loom_run, __loom_at)),
                    }
                }
            }
        }

        impl #impl_generics #rt::Graph for #self_ty #where_clause {
            type Input = #input_ty;
            type Output = #output_ty;

            fn spec(&self) -> &#rt::GraphSpec {
                static SPEC: ::std::sync::OnceLock<#rt::GraphSpec> = ::std::sync::OnceLock::new();
                SPEC.get_or_init(|| {
                    let mut spec = #rt::GraphSpec::new(#name);
                    #(#add_nodes)*
                    #(#add_edges)*
                    spec.set_start(#start);
                    spec.set_bounds(#max_visits, #max_steps);
                    spec
                })
            }

            fn execute<'__loom_a>(
                &'__loom_a self,
                __loom_run: &'__loom_a #rt::GraphRun<'_>,
                input: Self::Input,
            ) -> #rt::BoxFuture<'__loom_a, ::core::result::Result<Self::Output, #rt::WorkflowError>> {
                ::std::boxed::Box::pin(self.__loom_drive(__loom_run, #rt::Entry::Input(input)))
            }

            fn resumable_after(&self, node: usize) -> bool {
                #[allow(unused_imports)]
                use #rt::{JsonRestore as _, NoJsonRestore as _};
                match node {
                    #(#resumable)*
                    _ => false,
                }
            }

            fn resume_after<'__loom_a>(
                &'__loom_a self,
                __loom_run: &'__loom_a #rt::GraphRun<'_>,
                node: usize,
                output: #rt::JsonValue,
            ) -> #rt::BoxFuture<'__loom_a, ::core::result::Result<Self::Output, #rt::WorkflowError>> {
                ::std::boxed::Box::pin(self.__loom_drive(__loom_run, #rt::Entry::After(node, output)))
            }
        }
    }
}

/// A stand-in `Graph` for a `#[workflow]` with errors, so that one mistake in the graph does
/// not add an error at every use of the type: its input is the start node's, its output the
/// first end node's (as far as the attributes could be read). Never run: the build fails.
pub(super) fn stub_graph(model: &WorkflowModel) -> TokenStream {
    let krate = &model.krate;
    let rt = quote!(#krate::__private);
    let self_ty = &model.self_ty;
    let (impl_generics, _, where_clause) = model.generics.split_for_impl();
    let name = &model.name;
    let unit: syn::Type = syn::parse_quote!(());
    let input = match model.nodes.iter().filter(|n| n.start.is_some()).collect::<Vec<_>>().as_slice() {
        [start] => start.input_ty(),
        _ => unit.clone(),
    };
    let output = model
        .nodes
        .iter()
        .find(|n| matches!(n.out, super::parse::Out::End))
        .map_or_else(|| unit.clone(), |n| n.output.clone());
    quote! {
        impl #impl_generics #rt::Graph for #self_ty #where_clause {
            type Input = #input;
            type Output = #output;

            fn spec(&self) -> &#rt::GraphSpec {
                static SPEC: ::std::sync::OnceLock<#rt::GraphSpec> = ::std::sync::OnceLock::new();
                SPEC.get_or_init(|| #rt::GraphSpec::new(#name))
            }

            fn execute<'__loom_a>(
                &'__loom_a self,
                __loom_run: &'__loom_a #rt::GraphRun<'_>,
                _input: Self::Input,
            ) -> #rt::BoxFuture<'__loom_a, ::core::result::Result<Self::Output, #rt::WorkflowError>> {
                ::std::boxed::Box::pin(async move { ::core::result::Result::Err(#rt::missing_input(__loom_run, 0)) })
            }
        }
    }
}
