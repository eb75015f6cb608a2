//! Reads `#[workflow(...)]`, the `impl` block and each `#[node(...)]` into a model.

use proc_macro2::Span;
use syn::ext::IdentExt as _;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned as _;

use crate::common::{Errors, attribute_args, erase_lifetimes, runtime_path};

attribute_args! {
    /// The arguments of `#[workflow(...)]`.
    pub(super) struct WorkflowArgs for "workflow" {
        name: string,
        max_steps: value<syn::LitInt> = "a number, e.g. `100`",
        max_visits: value<syn::LitInt> = "a number, e.g. `25`",
        krate as "crate": path,
    }
}

attribute_args! {
    /// The arguments of `#[node(...)]`.
    pub(super) struct NodeArgs for "node" {
        start: flag,
        next: value<syn::Ident> = "the name of the next node, e.g. `next = review`",
        route: value<Arms> = "arms from the variants of the node's output enum to nodes, e.g. `route = { Review::Approve => publish, Review::Revise => revise }`",
        fan_out: value<IdentList> = "a list of branch nodes, e.g. `fan_out = [left, right]`",
        join: flag,
        max_visits: value<syn::LitInt> = "a number, e.g. `max_visits = 3`",
        idempotent: flag,
    }
}

/// A bound given to an attribute: a whole number of at least 1.
fn bound(key: &str, given: Option<(syn::Ident, syn::LitInt)>, errors: &mut Errors) -> Option<u32> {
    let (_, lit) = given?;
    match lit.base10_parse::<u32>() {
        Ok(n) if n > 0 => Some(n),
        _ => {
            errors.push_spanned(&lit, format!("`{key}` must be a whole number of at least 1"));
            None
        }
    }
}

pub(super) struct WorkflowModel {
    pub(super) krate: syn::Path,
    pub(super) name: String,
    /// The run's step bound and the default visit bound, when the attribute sets them.
    pub(super) max_steps: Option<u32>,
    pub(super) max_visits: Option<u32>,
    pub(super) self_ty: syn::Type,
    pub(super) generics: syn::Generics,
    pub(super) nodes: Vec<NodeModel>,
    /// Where to point errors about the whole graph.
    pub(super) span: Span,
}

/// One arm of a route: `Enum::Variant => target`.
pub(super) struct RouteArm {
    pub(super) variant: syn::Path,
    pub(super) target: syn::Ident,
}

#[allow(clippy::enum_variant_names)]
pub(super) enum Out {
    /// The node ends the run.
    End,
    Next(syn::Ident),
    Route {
        keyword: Span,
        arms: Vec<RouteArm>,
    },
    FanOut {
        keyword: Span,
        branches: Vec<syn::Ident>,
    },
}

pub(super) struct NodeModel {
    pub(super) ident: syn::Ident,
    pub(super) is_async: bool,
    pub(super) takes_ctx: bool,
    /// The input parameter's type, if the node takes one.
    pub(super) input: Option<syn::Type>,
    /// The value the node gives (the `T` of a `Result<T, E>`).
    pub(super) output: syn::Type,
    pub(super) returns_result: bool,
    /// Where the return type is written (an unsupported error type is reported there).
    pub(super) ret_span: Span,
    pub(super) start: Option<Span>,
    pub(super) join: Option<Span>,
    pub(super) max_visits: Option<u32>,
    pub(super) idempotent: bool,
    pub(super) out: Out,
}

impl NodeModel {
    pub(super) fn name(&self) -> String {
        self.ident.unraw().to_string()
    }

    /// The input type as the node is fed: its parameter's type, or `()`.
    pub(super) fn input_ty(&self) -> syn::Type {
        self.input.clone().unwrap_or_else(|| syn::parse_quote_spanned!(self.ident.span()=> ()))
    }
}

pub(super) struct Arms(Punctuated<RouteArmSyntax, syn::Token![,]>);

pub(super) struct RouteArmSyntax {
    variant: syn::Path,
    target: syn::Ident,
}

impl Parse for RouteArmSyntax {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let variant = input.parse()?;
        input.parse::<syn::Token![=>]>()?;
        let target = input.parse()?;
        Ok(Self { variant, target })
    }
}

impl Parse for Arms {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let content;
        syn::braced!(content in input);
        Ok(Self(Punctuated::parse_terminated(&content)?))
    }
}

pub(super) struct IdentList(Punctuated<syn::Ident, syn::Token![,]>);

impl Parse for IdentList {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let content;
        syn::bracketed!(content in input);
        Ok(Self(Punctuated::parse_terminated(&content)?))
    }
}

/// `Result<T, ..>` (any path ending in `Result`): the `T`.
fn result_value(ty: &syn::Type) -> Option<syn::Type> {
    let syn::Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else { return None };
    args.args.iter().find_map(|a| match a {
        syn::GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    })
}

pub(super) fn workflow_model(
    args: proc_macro2::TokenStream,
    item: &mut syn::ItemImpl,
    errors: &mut Errors,
) -> WorkflowModel {
    let args = WorkflowArgs::parse(args, errors);
    let name = args.name.map(|s| {
        if s.value().trim().is_empty() {
            errors.push_spanned(&s, "the workflow's name must not be empty; leave `name` out to use the type's name");
        }
        s.value()
    });
    let max_steps = bound("max_steps", args.max_steps, errors);
    let max_visits = bound("max_visits", args.max_visits, errors);
    let krate = runtime_path(args.krate.as_ref());

    if let Some((trait_path, _)) = &item.trait_ {
        errors.push_spanned(trait_path, "#[workflow] goes on an inherent `impl` block, not a trait impl");
    }

    let name = name.unwrap_or_else(|| match &*item.self_ty {
        syn::Type::Path(p) => p.path.segments.last().map_or_else(|| "workflow".to_owned(), |s| s.ident.to_string()),
        _ => "workflow".to_owned(),
    });

    let mut nodes = Vec::new();
    for impl_item in &mut item.items {
        let syn::ImplItem::Fn(f) = impl_item else { continue };
        let Some(pos) = f.attrs.iter().position(|a| a.path().is_ident("node")) else { continue };
        let attr = f.attrs.remove(pos);
        let tokens = match &attr.meta {
            syn::Meta::Path(_) => proc_macro2::TokenStream::new(),
            syn::Meta::List(l) => l.tokens.clone(),
            syn::Meta::NameValue(nv) => {
                errors.push_spanned(nv, "write `#[node]` or `#[node(...)]`");
                continue;
            }
        };
        if let Some(node) = node_model(tokens, f, errors) {
            nodes.push(node);
        }
    }
    if nodes.is_empty() {
        errors
            .push_spanned(&item.self_ty, "a #[workflow] needs `#[node]` methods: mark the methods that form the graph");
    }

    WorkflowModel {
        krate,
        name,
        max_steps,
        max_visits,
        self_ty: (*item.self_ty).clone(),
        generics: item.generics.clone(),
        nodes,
        span: item.self_ty.span(),
    }
}

fn node_model(tokens: proc_macro2::TokenStream, f: &syn::ImplItemFn, errors: &mut Errors) -> Option<NodeModel> {
    let NodeArgs { start, next, route, fan_out, join, max_visits, idempotent } = NodeArgs::parse(tokens, errors);
    let start = start.map(|f| f.0);
    let join = join.map(|f| f.0);
    let idempotent = idempotent.is_some();
    let max_visits = bound("max_visits", max_visits, errors);

    let mut outs = Vec::new();
    if let Some((_, target)) = next {
        outs.push((target.span(), Out::Next(target)));
    }
    if let Some((keyword, arms)) = route {
        let arms: Vec<RouteArm> =
            arms.0.into_iter().map(|a| RouteArm { variant: a.variant, target: a.target }).collect();
        if arms.is_empty() {
            errors.push_spanned(&keyword, "a route needs at least one arm");
        }
        outs.push((keyword.span(), Out::Route { keyword: keyword.span(), arms }));
    }
    if let Some((keyword, branches)) = fan_out {
        let branches: Vec<syn::Ident> = branches.0.into_iter().collect();
        if branches.is_empty() {
            errors.push_spanned(&keyword, "a fan-out needs at least one branch");
        }
        outs.push((keyword.span(), Out::FanOut { keyword: keyword.span(), branches }));
    }
    if outs.len() > 1 {
        for (span, _) in &outs[1..] {
            errors.push_at(*span, "a node leaves by one way only: `next`, `route` or `fan_out`");
        }
    }
    let out = outs.into_iter().next().map_or(Out::End, |(_, o)| o);

    let sig = &f.sig;
    if let Some(param) = sig.generics.type_params().next() {
        errors.push_spanned(param, "a #[node] method cannot be generic");
    }
    match sig.receiver() {
        Some(r) if matches!(r.kind, syn::ReceiverKind::Reference(_, _, None)) => {}
        Some(r) => errors.push_spanned(r, "a #[node] method takes `&self`: nodes of one run can run at once"),
        None => errors.push_spanned(&sig.ident, "a #[node] method takes `&self`"),
    }
    let params: Vec<&syn::PatType> = sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            syn::FnArg::Typed(t) => Some(t),
            syn::FnArg::Receiver(_) => None,
        })
        .collect();
    let is_ref = |t: &syn::PatType| matches!(*t.ty, syn::Type::Reference(_));
    let (takes_ctx, input) = match params.as_slice() {
        [] => (false, None),
        [one] if is_ref(one) => (true, None),
        [one] => (false, Some(erase_lifetimes(&one.ty))),
        [ctx, input] if is_ref(ctx) && !is_ref(input) => (true, Some(erase_lifetimes(&input.ty))),
        [_, second, ..] => {
            errors.push_spanned(
                second,
                "a #[node] method takes `&self`, then optionally `ctx: &RunContext`, then at most one input (the previous node's output)",
            );
            (false, None)
        }
    };

    let ret_span = match &sig.output {
        syn::ReturnType::Default => sig.ident.span(),
        syn::ReturnType::Type(_, ty) => ty.span(),
    };
    let (output, returns_result) = match &sig.output {
        syn::ReturnType::Default => (syn::parse_quote_spanned!(sig.ident.span()=> ()), false),
        syn::ReturnType::Type(_, ty) => match result_value(ty) {
            Some(v) => (erase_lifetimes(&v), true),
            None => (erase_lifetimes(ty), false),
        },
    };

    Some(NodeModel {
        ident: sig.ident.clone(),
        is_async: sig.asyncness.is_some(),
        takes_ctx,
        input,
        output,
        returns_result,
        ret_span,
        start,
        join,
        max_visits,
        idempotent,
        out,
    })
}
