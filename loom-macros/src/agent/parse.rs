//! Reads `#[agent(...)]` and its struct into a checked model.

use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;

use crate::common::{Errors, attribute_args, did_you_mean, doc_string, runtime_path};

attribute_args! {
    /// The arguments of `#[agent(...)]`.
    pub(super) struct AgentArgs for "agent" {
        instructions: string,
        model: value<syn::Expr> = "a model string or a model value, e.g. \"echo\"",
        tools: value<PathList> = "a list of tools: #[tool] functions or tool types, e.g. `[refund, lookup]`",
        architecture: value<syn::Ident> = "an architecture name, e.g. `react`",
        output: value<syn::Type> = "a type, e.g. `Weather`",
        output_mode: value<syn::Ident> = "`auto`, `native`, `tool` or `prompted`",
        output_retries: value<syn::LitInt> = "a number, e.g. `2`",
        max_turns: value<syn::LitInt> = "a number, e.g. `10`",
        name: string,
        validate: flag,
        krate as "crate": path,
    }
}

/// What `#[agent]` implements itself; a `derive` of one of them would clash.
const GENERATED_TRAITS: &[&str] = &["Clone", "Debug", "Default"];

/// The loop styles an agent can use; `react` is the one that exists today.
pub(crate) const ARCHITECTURES: &[&str] = &["react"];

const OUTPUT_MODES: &[(&str, &str)] =
    &[("auto", "Auto"), ("native", "Native"), ("tool", "Tool"), ("prompted", "Prompted")];

pub(super) struct AgentModel {
    pub(super) krate: syn::Path,
    pub(super) item: syn::ItemStruct,
    pub(super) instructions: String,
    pub(super) name: String,
    pub(super) model: Option<syn::Expr>,
    pub(super) tools: Vec<syn::Path>,
    pub(super) output: Option<syn::Type>,
    pub(super) output_mode: Option<syn::Ident>,
    pub(super) output_retries: Option<syn::LitInt>,
    pub(super) max_turns: Option<syn::LitInt>,
    pub(super) validate: bool,
    /// The loop style, checked against [`ARCHITECTURES`].
    pub(super) architecture: Option<syn::Ident>,
}

pub(super) struct PathList(Punctuated<syn::Path, syn::Token![,]>);

impl Parse for PathList {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let content;
        syn::bracketed!(content in input);
        Ok(Self(Punctuated::parse_terminated(&content)?))
    }
}

fn check_choice(ident: &syn::Ident, what: &str, choices: &[&str], errors: &mut Errors) -> bool {
    let given = ident.to_string();
    if choices.contains(&given.as_str()) {
        return true;
    }
    let hint =
        did_you_mean(&given, choices.iter().copied()).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
    let list = choices.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
    errors.push_spanned(ident, format!("unknown {what} `{given}`; expected one of {list}{hint}"));
    false
}

pub(super) fn agent_model(args: proc_macro2::TokenStream, item: &syn::ItemStruct, errors: &mut Errors) -> AgentModel {
    let AgentArgs {
        instructions,
        model,
        tools,
        architecture,
        output,
        output_mode,
        output_retries,
        max_turns,
        name,
        validate,
        krate,
    } = AgentArgs::parse(args, errors);
    let validate_flag = validate;
    let validate = validate.is_some();
    let krate = runtime_path(krate.as_ref());

    let architecture =
        architecture.and_then(|(_, arch)| check_choice(&arch, "architecture", ARCHITECTURES, errors).then_some(arch));
    let output_mode = output_mode.and_then(|(_, mode)| {
        let choices: Vec<&str> = OUTPUT_MODES.iter().map(|(k, _)| *k).collect();
        check_choice(&mode, "output mode", &choices, errors).then(|| {
            let variant = OUTPUT_MODES.iter().find(|(k, _)| mode == k).map_or("Auto", |(_, v)| v);
            syn::Ident::new(variant, mode.span())
        })
    });
    let mut whole_number = |key: &str, lit: Option<(syn::Ident, syn::LitInt)>| {
        let (_, lit) = lit?;
        if lit.base10_parse::<u32>().is_ok() {
            Some(lit)
        } else {
            errors.push_spanned(&lit, format!("`{key}` must be a whole number that fits in a u32"));
            None
        }
    };
    let retries_key = output_retries.as_ref().map(|(key, _)| key.clone());
    let output_retries = whole_number("output_retries", output_retries);
    let max_turns = whole_number("max_turns", max_turns);
    // The keys of a typed output have nothing to apply to without `output`.
    if output.is_none() {
        if let Some(mode) = &output_mode {
            errors.push_spanned(mode, "`output_mode` applies to a typed output; add `output = YourType`");
        }
        if let Some(key) = &retries_key {
            errors.push_spanned(key, "`output_retries` applies to a typed output; add `output = YourType`");
        }
        if let Some(flag) = validate_flag {
            errors.push_at(flag.0, "`validate` checks a typed output; add `output = YourType`");
        }
    }
    let tools: Vec<syn::Path> = tools.map(|(_, t)| t.0.into_iter().collect()).unwrap_or_default();
    for (i, tool) in tools.iter().enumerate() {
        let written = quote::ToTokens::to_token_stream(tool).to_string();
        if tools[..i].iter().any(|t| quote::ToTokens::to_token_stream(t).to_string() == written) {
            errors.push_spanned(tool, format!("`{}` is listed twice in `tools`", written.replace(' ', "")));
        }
    }
    // The type wraps an `Agent`: the traits it has are the ones `#[agent]` implements.
    let mut item = item.clone();
    item.attrs.retain(|attr| {
        if !attr.path().is_ident("derive") {
            return true;
        }
        let derived = attr.parse_args_with(Punctuated::<syn::Path, syn::Token![,]>::parse_terminated);
        for path in derived.into_iter().flatten() {
            let Some(last) = path.segments.last() else { continue };
            let message = if GENERATED_TRAITS.iter().any(|t| last.ident == t) {
                format!("#[agent] implements `{}` itself; remove it from the `derive`", last.ident)
            } else {
                format!(
                    "`{}` cannot be derived for an #[agent] type: it wraps an `Agent`, and has the traits #[agent] \
                     implements (`Clone`, `Debug`, `Default`)",
                    last.ident
                )
            };
            errors.push_spanned(&path, message);
        }
        // Left out of the struct, so the error is not repeated by the derive itself.
        false
    });
    let item = &item;

    match &item.fields {
        syn::Fields::Unit => {}
        syn::Fields::Named(f) if f.named.is_empty() => {}
        fields => errors.push_spanned(
            fields,
            "#[agent] goes on a unit struct (`struct SupportAgent;`): the agent is configured by the attribute",
        ),
    }
    if let Some(param) = item.generics.params.first() {
        errors.push_spanned(param, "an #[agent] struct cannot be generic");
    }

    if let Some(lit) = &name
        && lit.value().trim().is_empty()
    {
        errors.push_spanned(lit, "the agent's name must not be empty; leave `name` out to use the struct's name");
    }
    let instructions = match instructions {
        Some(lit) if lit.value().trim().is_empty() => {
            errors.push_spanned(&lit, "the instructions must not be empty: they are the agent's system prompt");
            String::new()
        }
        Some(lit) => lit.value(),
        None => doc_string(&item.attrs).unwrap_or_else(|| {
            errors.push_spanned(
                &item.ident,
                "an #[agent] needs instructions: add a doc comment (`/// You are ...`) or `instructions = \"...\"`",
            );
            String::new()
        }),
    };

    AgentModel {
        krate,
        item: item.clone(),
        instructions,
        name: name.map_or_else(|| item.ident.to_string(), |n| n.value()),
        model: model.map(|(_, m)| m),
        tools,
        output: output.map(|(_, t)| t),
        output_mode,
        output_retries,
        max_turns,
        validate,
        architecture,
    }
}
