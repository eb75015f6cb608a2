//! Doc comments as text for the model.

/// The text of the `///` comments (`#[doc = "..."]`) among `attrs`, with the common leading
/// whitespace removed and blank lines at the ends trimmed; `None` if there is none.
pub(crate) fn doc_string(attrs: &[syn::Attribute]) -> Option<String> {
    let mut lines = Vec::new();
    for attr in attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let syn::Meta::NameValue(nv) = &attr.meta
            && let syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) = &nv.value
        {
            lines.extend(s.value().lines().map(str::to_owned));
        }
    }
    let indent =
        lines.iter().filter(|l| !l.trim().is_empty()).map(|l| l.len() - l.trim_start().len()).min().unwrap_or(0);
    let lines: Vec<&str> =
        lines.iter().map(|l| if l.len() >= indent { l[indent..].trim_end() } else { l.trim() }).collect();
    let text = lines.join("\n");
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Removes `#[doc]` attributes (rustc rejects doc comments on function parameters).
pub(crate) fn strip_doc_attrs(attrs: &mut Vec<syn::Attribute>) {
    attrs.retain(|a| !a.path().is_ident("doc"));
}
