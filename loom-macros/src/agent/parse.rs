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
        architecture: value<syn::Ident> = "an architecture name, e.g. `react` or `supervisor`",
        workers: value<PathList> = "a list of #[agent] types, e.g. `[Billing, Tech]`",
        routes: value<PathList> = "a list of #[agent] types, e.g. `[Billing, Tech]`",
        peers: value<PathList> = "a list of #[agent] types, e.g. `[Triage, Billing]`",
        debaters: value<PathList> = "a list of #[agent] types, e.g. `[Optimist, Skeptic]`",
        members: value<PathList> = "a list of #[agent] types, e.g. `[Researcher, Writer]`",
        judge: value<syn::Path> = "an #[agent] type, e.g. `Judge`",
        actor: value<syn::Path> = "an #[agent] type, e.g. `Writer`",
        critic: value<syn::Path> = "an #[agent] type, e.g. `Reviewer`",
        output: value<syn::Type> = "a type, e.g. `Weather`",
        output_mode: value<syn::Ident> = "`auto`, `native`, `tool` or `prompted`",
        output_retries: value<syn::LitInt> = "a number, e.g. `2`",
        max_turns: value<syn::LitInt> = "a number, e.g. `10`",
        name: string,
        description: string,
        validate: flag,
        krate as "crate": path,
    }
}

/// What `#[agent]` implements itself; a `derive` of one of them would clash.
const GENERATED_TRAITS: &[&str] = &["Clone", "Debug", "Default"];

/// The loop styles an agent can use: the key, and the team it needs (none for the
/// single-agent ones).
pub(crate) const ARCHITECTURES: &[(&str, Team)] = &[
    ("react", Team::None),
    ("self_refine", Team::None),
    ("reflexion", Team::None),
    ("plan_and_execute", Team::None),
    ("rewoo", Team::None),
    ("tree_of_thoughts", Team::None),
    ("supervisor", Team::List("workers", 1)),
    ("router", Team::List("routes", 1)),
    ("swarm", Team::List("peers", 2)),
    ("debate", Team::List("debaters", 2)),
    ("blackboard", Team::List("members", 1)),
    ("actor_critic", Team::Pair),
];

/// The team an architecture needs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Team {
    /// None: a single-agent loop.
    None,
    /// A list under this key, of at least this many agents.
    List(&'static str, usize),
    /// An `actor` and a `critic`.
    Pair,
}

/// The team of an `#[agent]`, as written.
pub(super) enum TeamModel {
    None,
    /// The architecture's key (`supervisor` ...) and its members.
    List(syn::Ident, Vec<syn::Path>),
    /// A debate's debaters and judge.
    Debate(Vec<syn::Path>, Option<syn::Path>),
    ActorCritic(syn::Path, syn::Path),
}

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
    /// Its team, checked against what the architecture needs.
    pub(super) team: TeamModel,
    pub(super) description: Option<syn::LitStr>,
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
        description,
        validate,
        krate,
        workers,
        routes,
        peers,
        debaters,
        members,
        judge,
        actor,
        critic,
    } = AgentArgs::parse(args, errors);
    let validate_flag = validate;
    let validate = validate.is_some();
    let krate = runtime_path(krate.as_ref());

    let names: Vec<&str> = ARCHITECTURES.iter().map(|(n, _)| *n).collect();
    let architecture =
        architecture.and_then(|(_, arch)| check_choice(&arch, "architecture", &names, errors).then_some(arch));
    let lists =
        [("workers", workers), ("routes", routes), ("peers", peers), ("debaters", debaters), ("members", members)];
    let singles = [("judge", judge), ("actor", actor), ("critic", critic)];
    let team = team_model(architecture.as_ref(), lists, singles, errors);
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
        team,
        description,
    }
}

/// The architecture that a team key goes with.
fn owner(key: &str) -> &'static str {
    match key {
        "workers" => "supervisor",
        "routes" => "router",
        "peers" => "swarm",
        "debaters" | "judge" => "debate",
        "members" => "blackboard",
        _ => "actor_critic",
    }
}

/// Checks the team keys against the architecture: each key belongs to one architecture, an
/// architecture that needs a team has it, members are listed once.
fn team_model(
    architecture: Option<&syn::Ident>,
    lists: [(&'static str, Option<(syn::Ident, PathList)>); 5],
    singles: [(&'static str, Option<(syn::Ident, syn::Path)>); 3],
    errors: &mut Errors,
) -> TeamModel {
    let arch = architecture.map(ToString::to_string);
    let arch = arch.as_deref();
    let mut lists: Vec<(&'static str, syn::Ident, Vec<syn::Path>)> =
        lists.into_iter().filter_map(|(k, v)| v.map(|(key, l)| (k, key, l.0.into_iter().collect()))).collect();
    let mut singles: Vec<(&'static str, syn::Ident, syn::Path)> =
        singles.into_iter().filter_map(|(k, v)| v.map(|(key, p)| (k, key, p))).collect();
    // A key of another architecture's team.
    let misplaced = |key: &syn::Ident, name: &str, errors: &mut Errors| {
        let owner = owner(name);
        if arch != Some(owner) {
            errors.push_spanned(key, format!("`{name}` goes with `architecture = {owner}`"));
            return true;
        }
        false
    };
    lists.retain(|(name, key, _)| !misplaced(key, name, errors));
    singles.retain(|(name, key, _)| !misplaced(key, name, errors));
    for (name, _, paths) in &lists {
        for (i, path) in paths.iter().enumerate() {
            let written = quote::ToTokens::to_token_stream(path).to_string();
            if paths[..i].iter().any(|p| quote::ToTokens::to_token_stream(p).to_string() == written) {
                errors.push_spanned(path, format!("`{}` is listed twice in `{name}`", written.replace(' ', "")));
            }
        }
    }
    let (Some(arch_ident), Some(arch)) = (architecture, arch) else { return TeamModel::None };
    let need = ARCHITECTURES.iter().find(|(n, _)| *n == arch).map_or(Team::None, |(_, t)| *t);
    match need {
        Team::None => TeamModel::None,
        Team::List(key, min) => {
            let Some((_, key_ident, paths)) = lists.into_iter().find(|(k, ..)| *k == key) else {
                errors.push_spanned(
                    arch_ident,
                    format!("a `{arch}` needs its team: add `{key} = [A, B]`, a list of #[agent] types"),
                );
                return TeamModel::None;
            };
            if paths.len() < min {
                let have = paths.len();
                errors.push_spanned(
                    &key_ident,
                    format!("a `{arch}` needs at least {min} agents in `{key}`, and has {have}"),
                );
                return TeamModel::None;
            }
            if arch == "debate" {
                let judge = singles.into_iter().find(|(k, ..)| *k == "judge").map(|(.., p)| p);
                return TeamModel::Debate(paths, judge);
            }
            TeamModel::List(arch_ident.clone(), paths)
        }
        Team::Pair => {
            let mut take = |name: &str| singles.iter().position(|(k, ..)| *k == name).map(|i| singles.remove(i).2);
            match (take("actor"), take("critic")) {
                (Some(actor), Some(critic)) => TeamModel::ActorCritic(actor, critic),
                (actor, _) => {
                    let missing = if actor.is_none() { "actor" } else { "critic" };
                    errors.push_spanned(
                        arch_ident,
                        format!(
                            "an `actor_critic` needs an `actor` and a `critic` (#[agent] types); add `{missing} = ..`"
                        ),
                    );
                    TeamModel::None
                }
            }
        }
    }
}
