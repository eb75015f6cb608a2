//! Attribute arguments (`key`, `key = value`) parsed into a struct.
//!
//! Each macro declares its arguments once, with [`attribute_args!`]: a struct with one field
//! per key, each with the kind of value it takes. The list of keys (for "unknown argument"
//! errors and their suggestions) comes from the same declaration, and every key that is
//! accepted is stored in its field — a key cannot be accepted and then ignored, and a field
//! that nothing reads is a compiler warning.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::ext::IdentExt as _;
use syn::parse::{Parse, ParseStream, Parser as _};

use super::{Errors, did_you_mean};

/// One argument: `key` or `key = value` (the value's tokens are kept for the key's parser).
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

/// The arguments of one attribute that have a known key, each once: malformed input, unknown
/// keys (with a suggestion) and keys given twice are reported.
pub(crate) fn known_args(
    macro_name: &str,
    known: &[&'static str],
    tokens: TokenStream,
    errors: &mut Errors,
) -> Vec<KeyValue> {
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
    args
}

/// How each kind of argument value is read from a [`KeyValue`].
pub(crate) mod read {
    use syn::parse::Parse;

    use super::{Errors, Flag, KeyValue};

    /// A flag (`key` alone).
    pub(crate) fn flag(macro_name: &str, arg: KeyValue, errors: &mut Errors) -> Option<Flag> {
        if let Some(value) = &arg.value {
            let key = arg.key.to_string();
            errors.push_spanned(value, format!("`{key}` is a flag and takes no value; write `#[{macro_name}({key})]`"));
        }
        Some(Flag(arg.key.span()))
    }

    /// A value parsed as `T` (`key = <T>`), with the key's token.
    pub(crate) fn value<T: Parse>(arg: KeyValue, what: &str, errors: &mut Errors) -> Option<(syn::Ident, T)> {
        let key = arg.key.to_string();
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

    /// A string literal (`key = "..."`).
    pub(crate) fn string(arg: KeyValue, errors: &mut Errors) -> Option<syn::LitStr> {
        value::<syn::LitStr>(arg, "a string literal", errors).map(|(_, s)| s)
    }

    /// A path given as a string literal (`crate = "my_loom"`).
    pub(crate) fn path(arg: KeyValue, errors: &mut Errors) -> Option<syn::Path> {
        let key = arg.key.to_string();
        let lit = string(arg, errors)?;
        errors.ok(lit.parse::<syn::Path>().map_err(|_| {
            syn::Error::new(lit.span(), format!("`{key}` expects a path such as \"::loomflow\", given as a string"))
        }))
    }
}

/// Declares the arguments of an attribute as a struct:
///
/// ```ignore
/// attribute_args! {
///     /// The arguments of `#[tool]`.
///     pub(super) struct ToolArgs for "tool" {
///         name: string,
///         read_only: flag,
///         max_turns: value<syn::LitInt> = "a number, e.g. `10`",
///         krate as "crate": path,
///     }
/// }
/// ```
///
/// Kinds: `flag` (`Option<Flag>`), `string` (`Option<LitStr>`), `path` (a path in a string,
/// `Option<syn::Path>`), `value<T> = "what it expects"` (`Option<(Ident, T)>`, the key's token
/// and the value).
macro_rules! attribute_args {
    (@ty flag) => { ::core::option::Option<$crate::common::Flag> };
    (@ty string) => { ::core::option::Option<::syn::LitStr> };
    (@ty path) => { ::core::option::Option<::syn::Path> };
    (@ty value $t:ty) => { ::core::option::Option<(::syn::Ident, $t)> };
    (@key $field:ident) => { stringify!($field) };
    (@key $field:ident $key:literal) => { $key };
    (@read $m:literal, $arg:ident, $errors:ident, flag) => { $crate::common::read::flag($m, $arg, $errors) };
    (@read $m:literal, $arg:ident, $errors:ident, string) => { $crate::common::read::string($arg, $errors) };
    (@read $m:literal, $arg:ident, $errors:ident, path) => { $crate::common::read::path($arg, $errors) };
    (@read $m:literal, $arg:ident, $errors:ident, value $t:ty, $what:literal) => {
        $crate::common::read::value::<$t>($arg, $what, $errors)
    };
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident for $macro_name:literal {
            $(
                $(#[$fmeta:meta])*
                $field:ident $(as $key:literal)? : $kind:ident $(<$t:ty>)? $(= $what:literal)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Default)]
        $vis struct $name {
            $( $(#[$fmeta])* pub(crate) $field: attribute_args!(@ty $kind $($t)?), )*
        }

        impl $name {
            /// Every key the attribute takes.
            pub(crate) const KEYS: &'static [&'static str] = &[$(attribute_args!(@key $field $($key)?)),*];

            /// Parses the attribute's arguments, reporting every problem to `errors`.
            pub(crate) fn parse(tokens: ::proc_macro2::TokenStream, errors: &mut $crate::common::Errors) -> Self {
                let mut out = Self::default();
                for arg in $crate::common::known_args($macro_name, Self::KEYS, tokens, errors) {
                    let key = ::syn::ext::IdentExt::unraw(&arg.key).to_string();
                    $(
                        if key == attribute_args!(@key $field $($key)?) {
                            out.$field = attribute_args!(@read $macro_name, arg, errors, $kind $($t)? $(, $what)?);
                            continue;
                        }
                    )*
                    // `known_args` lets through only the keys above.
                    errors.push_spanned(&arg.key, "internal error in Loom's macros: an argument was accepted but not read");
                }
                out
            }
        }
    };
}

pub(crate) use attribute_args;
