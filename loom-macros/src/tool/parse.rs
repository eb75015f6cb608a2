//! Reads `#[tool(...)]` and the function into a checked model of the tool.

use syn::ext::IdentExt as _;

use crate::common::{
    Errors, Flag, attribute_args, doc_string, erase_lifetimes, ident, pascal_case, runtime_path, strip_doc_attrs,
};

attribute_args! {
    /// The arguments of `#[tool(...)]`.
    pub(super) struct ToolArgs for "tool" {
        name: string,
        description: string,
        read_only: flag,
        destructive: flag,
        idempotent: flag,
        ends_turn: flag,
        blocking: flag,
        krate as "crate": path,
    }
}

/// Everything the expansion needs, already validated.
pub(super) struct ToolModel {
    pub(super) krate: syn::Path,
    pub(super) vis: syn::Visibility,
    pub(super) fn_ident: syn::Ident,
    pub(super) struct_ident: syn::Ident,
    pub(super) name: String,
    pub(super) description: String,
    pub(super) read_only: bool,
    pub(super) destructive: bool,
    pub(super) idempotent: bool,
    pub(super) ends_turn: bool,
    pub(super) blocking: bool,
    pub(super) is_async: bool,
    pub(super) params: Vec<ParamModel>,
    pub(super) ret: syn::Type,
    /// The function takes `self`: it sits in an `impl` block, where no stand-in type can go.
    pub(super) has_receiver: bool,
}

pub(super) struct ParamModel {
    /// The argument name the model uses (the parameter name, `r#` removed).
    pub(super) name: String,
    /// The type as written, with named lifetimes replaced by `'_`.
    pub(super) ty: syn::Type,
    pub(super) doc: Option<String>,
}

/// The tool's name: the `name` argument, or the function's name.
fn tool_name(custom: Option<syn::LitStr>, func: &syn::ItemFn, errors: &mut Errors) -> String {
    let (name, span) = match custom {
        Some(lit) => (lit.value(), lit.span()),
        None => (func.sig.ident.unraw().to_string(), func.sig.ident.span()),
    };
    if name.is_empty() {
        errors.push_at(span, "the tool name must not be empty; leave `name` out to use the function's name");
        return name;
    }
    let problem = if name.len() > 64 {
        Some(format!("is {} characters long; providers allow at most 64", name.len()))
    } else {
        name.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
            .map(|c| format!("contains {c:?}; providers allow only ASCII letters, digits, `_` and `-`"))
    };
    if let Some(problem) = problem {
        errors.push_at(span, format!("invalid tool name `{name}`: it {problem}"));
    }
    name
}

pub(super) fn tool_model(args: proc_macro2::TokenStream, func: &mut syn::ItemFn, errors: &mut Errors) -> ToolModel {
    let ToolArgs {
        name: custom_name,
        description: custom_description,
        read_only,
        destructive,
        idempotent,
        ends_turn,
        blocking,
        krate,
    } = ToolArgs::parse(args, errors);
    let krate = runtime_path(krate.as_ref());

    if let (Some(_), Some(Flag(span))) = (read_only, destructive) {
        errors.push_at(span, "a tool cannot be both `read_only` and `destructive`");
    }

    let name = tool_name(custom_name, func, errors);

    let description = match custom_description {
        Some(lit) => {
            let d = lit.value();
            if d.trim().is_empty() {
                errors.push_at(lit.span(), "the tool description must not be empty");
            }
            d
        }
        None => doc_string(&func.attrs).unwrap_or_else(|| {
            errors.push_spanned(
                &func.sig.ident,
                "a #[tool] needs a description for the model: add a doc comment (`/// ...`) or `#[tool(description = \"...\")]`",
            );
            String::new()
        }),
    };

    check_signature(&func.sig, blocking, errors);

    let mut params = Vec::with_capacity(func.sig.inputs.len());
    for input in &mut func.sig.inputs {
        match input {
            syn::FnArg::Receiver(r) => errors.push_spanned(
                &*r,
                "#[tool] cannot take `self`: a tool is a free function; put shared state in \
                 `State<T>` (given with `Agent::state`) or implement `loomflow::Tool` for your type",
            ),
            syn::FnArg::Typed(pt) => {
                let doc = doc_string(&pt.attrs);
                strip_doc_attrs(&mut pt.attrs);
                let name = match &*pt.pat {
                    syn::Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => pi.ident.unraw().to_string(),
                    other => {
                        errors.push_spanned(
                            other,
                            "a #[tool] parameter needs a plain name: the name is the argument the model fills in",
                        );
                        continue;
                    }
                };
                if let syn::Type::ImplTrait(it) = &*pt.ty {
                    errors.push_spanned(it, "a #[tool] parameter cannot have an `impl Trait` type; name the type");
                    continue;
                }
                params.push(ParamModel { name, ty: erase_lifetimes(&pt.ty), doc });
            }
        }
    }

    let ret = match &func.sig.output {
        syn::ReturnType::Default => syn::parse_quote!(()),
        syn::ReturnType::Type(_, ty) => {
            if let syn::Type::ImplTrait(it) = &**ty {
                errors.push_spanned(it, "a #[tool] cannot return `impl Trait`; name the return type");
            }
            erase_lifetimes(ty)
        }
    };

    let fn_ident = func.sig.ident.clone();
    ToolModel {
        krate,
        vis: func.vis.clone(),
        struct_ident: struct_ident(&fn_ident),
        fn_ident,
        name,
        description,
        read_only: read_only.is_some(),
        destructive: destructive.is_some(),
        idempotent: idempotent.is_some(),
        ends_turn: ends_turn.is_some(),
        blocking: blocking.is_some(),
        is_async: func.sig.asyncness.is_some(),
        params,
        ret,
        has_receiver: func.sig.receiver().is_some(),
    }
}

fn check_signature(sig: &syn::Signature, blocking: Option<Flag>, errors: &mut Errors) {
    for param in &sig.generics.params {
        match param {
            syn::GenericParam::Lifetime(_) => {}
            syn::GenericParam::Type(t) => errors.push_spanned(
                t,
                "a #[tool] function cannot be generic: the model's arguments need one concrete schema",
            ),
            syn::GenericParam::Const(c) => errors.push_spanned(
                c,
                "a #[tool] function cannot have const generics: the model's arguments need one concrete schema",
            ),
        }
    }
    if let syn::Safety::Unsafe(unsafety) = &sig.safety {
        errors.push_spanned(unsafety, "a #[tool] function cannot be `unsafe`: the model calls it");
    }
    if let Some(variadic) = &sig.variadic {
        errors.push_spanned(variadic, "a #[tool] function cannot be variadic");
    }
    if let Some(abi) = &sig.abi {
        errors.push_spanned(abi, "a #[tool] function cannot declare an ABI");
    }
    if let (Some(_), Some(Flag(span))) = (&sig.asyncness, blocking) {
        errors.push_at(
            span,
            "`blocking` runs a synchronous function on the blocking pool; an `async fn` already runs on the async runtime",
        );
    }
}

fn struct_ident(fn_ident: &syn::Ident) -> syn::Ident {
    ident(&format!("{}Tool", pascal_case(&fn_ident.unraw().to_string())), fn_ident.span())
}
