//! Reads `#[agent(...)]` and its struct into a checked model.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;

use crate::common::{ArgParser, Errors, did_you_mean, doc_string, runtime_path};

const KEYS: &[&str] = &[
    "instructions",
    "model",
    "tools",
    "architecture",
    "output",
    "output_mode",
    "output_retries",
    "max_turns",
    "name",
    "validate",
    "crate",
];

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
}

struct PathList(Punctuated<syn::Path, syn::Token![,]>);

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
    let mut attr = ArgParser::parse("agent", KEYS, args, errors);
    let instructions = attr.string("instructions", errors);
    let model = attr.value::<syn::Expr>("model", "a model string or a model value, e.g. \"echo\"", errors);
    let tools = attr.value::<PathList>("tools", "a list of #[tool] functions, e.g. `[refund, lookup]`", errors);
    let architecture = attr.value::<syn::Ident>("architecture", "an architecture name, e.g. `react`", errors);
    let output = attr.value::<syn::Type>("output", "a type, e.g. `Weather`", errors);
    let output_mode = attr.value::<syn::Ident>("output_mode", "`auto`, `native`, `tool` or `prompted`", errors);
    let output_retries = attr.value::<syn::LitInt>("output_retries", "a number, e.g. `2`", errors);
    let max_turns = attr.value::<syn::LitInt>("max_turns", "a number, e.g. `10`", errors);
    let name = attr.string("name", errors);
    let validate = attr.flag("validate", errors).is_some();
    let krate = runtime_path(attr.path_string("crate", errors).as_ref());

    if let Some((_, arch)) = &architecture {
        check_choice(arch, "architecture", ARCHITECTURES, errors);
    }
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
    let output_retries = whole_number("output_retries", output_retries);
    let max_turns = whole_number("max_turns", max_turns);
    if key_given(&output_mode, &output) {
        // `output_mode` without `output` has nothing to apply to.
        if let Some(mode) = &output_mode {
            errors.push_spanned(mode, "`output_mode` applies to a typed output; add `output = YourType`");
        }
    }
    if validate && output.is_none() {
        errors.push_at(Span::call_site(), "`validate` checks a typed output; add `output = YourType`");
    }

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

    let instructions = match instructions {
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
        tools: tools.map(|(_, t)| t.0.into_iter().collect()).unwrap_or_default(),
        output: output.map(|(_, t)| t),
        output_mode,
        output_retries,
        max_turns,
        validate,
    }
}

fn key_given(mode: &Option<syn::Ident>, output: &Option<(syn::Ident, syn::Type)>) -> bool {
    mode.is_some() && output.is_none()
}
