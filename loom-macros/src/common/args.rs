//! `key`, `key = value` attribute arguments, with unknown-key suggestions and duplicate checks.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::ext::IdentExt as _;
use syn::parse::{Parse, ParseStream, Parser as _};

use super::{Errors, did_you_mean};

/// One argument: `key` or `key = value` (the value's tokens are kept for the key's own parser).
pub(crate) struct KeyValue {
    pub(crate) key: syn::Ident,
    pub(crate) value: Option<TokenStream>,
}

/// A flag argument (`read_only`), with its span.
#[derive(Clone, Copy)]
pub(crate) struct Flag(pub(crate) Span);

struct RawArgs(Vec<KeyValue>);

impl Parse for RawArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Vec::new();
        while !input.is_empty() {
            let key = syn::Ident::parse_any(input)?;
            let value = if input.peek(syn::Token![=]) {
                let eq: syn::Token![=] = input.parse()?;
                let mut tokens = TokenStream::new();
                while !input.is_empty() && !input.peek(syn::Token![,]) {
                    tokens.extend([input.parse::<TokenTree>()?]);
                }
                if tokens.is_empty() {
                    return Err(syn::Error::new(eq.span, format!("expected a value after `{key} =`")));
                }
                Some(tokens)
            } else if input.peek(syn::token::Paren) || input.peek(syn::token::Bracket) || input.peek(syn::token::Brace)
            {
                let group: TokenTree = input.parse()?;
                return Err(syn::Error::new(
                    group.span(),
                    format!("write `{key} = ...`; `{key}(...)` is not a form this attribute takes"),
                ));
            } else {
                None
            };
            args.push(KeyValue { key, value });
            if !input.is_empty() {
                input.parse::<syn::Token![,]>()?;
            }
        }
        Ok(Self(args))
    }
}

/// The arguments of one attribute, checked against the keys it knows.
pub(crate) struct ArgParser {
    macro_name: &'static str,
    args: Vec<KeyValue>,
}

impl ArgParser {
    /// Parses `tokens`; reports malformed input, unknown keys (with a suggestion) and keys
    /// given twice, and keeps the rest.
    pub(crate) fn parse(
        macro_name: &'static str,
        known: &'static [&'static str],
        tokens: TokenStream,
        errors: &mut Errors,
    ) -> Self {
        let raw = match RawArgs::parse.parse2(tokens) {
            Ok(RawArgs(args)) => args,
            Err(e) => {
                errors.push(e);
                Vec::new()
            }
        };
        let mut args: Vec<KeyValue> = Vec::with_capacity(raw.len());
        for arg in raw {
            let key = arg.key.unraw().to_string();
            if !known.contains(&key.as_str()) {
                let expected = known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
                let hint = did_you_mean(&key, known.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                errors.push_spanned(
                    &arg.key,
                    format!("unknown `#[{macro_name}]` argument `{key}`; expected one of {expected}{hint}"),
                );
                continue;
            }
            if args.iter().any(|a| a.key.unraw() == key) {
                errors.push_spanned(&arg.key, format!("duplicate `#[{macro_name}]` argument `{key}`"));
                continue;
            }
            args.push(arg);
        }
        Self { macro_name, args }
    }

    fn take(&mut self, key: &str) -> Option<KeyValue> {
        let i = self.args.iter().position(|a| a.key.unraw() == key)?;
        Some(self.args.remove(i))
    }

    /// A flag (`key` alone).
    pub(crate) fn flag(&mut self, key: &str, errors: &mut Errors) -> Option<Flag> {
        let arg = self.take(key)?;
        if let Some(value) = &arg.value {
            errors.push_spanned(
                value,
                format!("`{key}` is a flag and takes no value; write `#[{}({key})]`", self.macro_name),
            );
        }
        Some(Flag(arg.key.span()))
    }

    /// A value parsed as `T` (`key = <T>`).
    pub(crate) fn value<T: Parse>(&mut self, key: &str, what: &str, errors: &mut Errors) -> Option<(syn::Ident, T)> {
        let arg = self.take(key)?;
        let Some(value) = arg.value else {
            errors.push_spanned(&arg.key, format!("`{key}` needs a value: `{key} = {what}`"));
            return None;
        };
        match syn::parse2::<T>(value.clone()) {
            Ok(v) => Some((arg.key, v)),
            Err(_) => {
                errors.push_spanned(&value, format!("`{key}` expects {what}"));
                None
            }
        }
    }

    /// A string literal value (`key = "..."`).
    pub(crate) fn string(&mut self, key: &str, errors: &mut Errors) -> Option<syn::LitStr> {
        self.value::<syn::LitStr>(key, "a string literal", errors).map(|(_, s)| s)
    }

    /// A path given as a string literal (`crate = "my_loom"`).
    pub(crate) fn path_string(&mut self, key: &str, errors: &mut Errors) -> Option<syn::Path> {
        let lit = self.string(key, errors)?;
        errors.ok(lit
            .parse::<syn::Path>()
            .map_err(|_| syn::Error::new(lit.span(), format!("`{key}` expects a path such as \"::loomflow\""))))
    }
}
