//! Loom's tools and outputs as MCP sees them, and MCP's as Loom sees them.

use std::fmt::Write as _;
use std::sync::Arc;

use rmcp::model::{self as mcp, ContentBlock, ResourceContents};
use serde_json::{Map, Value};

use crate::model::{Content, MediaSource, Part};
use crate::tool::{ToolDefinition, ToolHints, ToolOutput};

/// A Loom tool as an MCP tool: its schema as it is, its hints as annotations.
///
/// MCP's defaults are the cautious ones (a tool with no annotations may be destructive), so
/// every hint is written out, `false` included.
pub(crate) fn tool_to_mcp(definition: &ToolDefinition) -> mcp::Tool {
    let schema = match definition.parameters() {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    let hints = definition.hints();
    let annotations = mcp::ToolAnnotations::new()
        .read_only(hints.read_only)
        .destructive(hints.destructive)
        .idempotent(hints.idempotent);
    mcp::Tool::new(definition.name().to_owned(), definition.description().to_owned(), Arc::new(schema))
        .with_annotations(annotations)
}

/// The hints of an MCP tool, read as the specification says: a tool that does not say it
/// only reads may change things, and one that does not say otherwise may destroy them.
pub(crate) fn hints_of(tool: &mcp::Tool) -> ToolHints {
    let annotations = tool.annotations.as_ref();
    let read_only = annotations.and_then(|a| a.read_only_hint).unwrap_or(false);
    let destructive = !read_only && annotations.and_then(|a| a.destructive_hint).unwrap_or(true);
    let idempotent = read_only || annotations.and_then(|a| a.idempotent_hint).unwrap_or(false);
    let mut hints = ToolHints::NONE;
    if read_only {
        hints = hints.read_only();
    }
    if destructive {
        hints = hints.destructive();
    }
    if idempotent {
        hints = hints.idempotent();
    }
    hints
}

/// An MCP tool as a Loom definition, under `name` (the server's name may not follow the
/// providers' naming rules, or may collide with another server's).
pub(crate) fn tool_from_mcp(tool: &mcp::Tool, name: String, server: &str) -> ToolDefinition {
    let description = match (tool.description.as_deref(), tool.title.as_deref()) {
        (Some(d), _) if !d.trim().is_empty() => d.to_owned(),
        (_, Some(t)) if !t.trim().is_empty() => t.to_owned(),
        _ => format!("The `{}` tool of the MCP server `{server}`.", tool.name),
    };
    let mut schema = Value::Object((*tool.input_schema).clone());
    // Some servers leave `type` out of an empty schema; every provider wants an object.
    if let Value::Object(map) = &mut schema {
        map.entry("type").or_insert_with(|| Value::String("object".to_owned()));
        if map.get("type").and_then(Value::as_str) != Some("object") {
            map.insert("type".to_owned(), Value::String("object".to_owned()));
        }
    }
    ToolDefinition::new_unchecked(name, description, schema).with_hints(hints_of(tool))
}

/// A valid provider tool name for `name`: characters outside `[a-zA-Z0-9_-]` become `_`, and
/// a name longer than 64 bytes keeps its head and a hash of the whole.
pub(crate) fn tool_name(name: &str) -> String {
    let mut out: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
    if out.is_empty() {
        out.push('_');
    }
    if out.len() > 64 {
        let hash = fnv(name.as_bytes());
        out.truncate(55);
        let _ = write!(out, "_{:08x}", hash as u32);
    }
    out
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// One block of MCP content as a Loom part: text as text, images and audio as parts,
/// embedded resources as their text (or a document, for binary ones), resource links as a
/// line naming them.
fn part_from_block(block: ContentBlock) -> Part {
    match block {
        ContentBlock::Text(t) => Part::text(t.text),
        ContentBlock::Image(i) => Part::image_base64(i.mime_type, i.data),
        ContentBlock::Audio(a) => Part::Audio { source: MediaSource::Base64 { media_type: a.mime_type, data: a.data } },
        ContentBlock::Resource(r) => match r.resource {
            ResourceContents::TextResourceContents { uri, text, .. } => Part::text(format!("[resource {uri}]\n{text}")),
            ResourceContents::BlobResourceContents { uri, mime_type, blob, .. } => Part::Document {
                source: MediaSource::Base64 {
                    media_type: mime_type.unwrap_or_else(|| "application/octet-stream".to_owned()),
                    data: blob,
                },
                name: Some(uri),
            },
            _ => Part::text("[a resource of a kind Loom does not know]"),
        },
        ContentBlock::ResourceLink(link) => {
            let mut line = format!("[resource link {}", link.uri);
            if !link.name.is_empty() && link.name != link.uri {
                let _ = write!(line, " ({})", link.name);
            }
            if let Some(d) = link.description.as_deref().filter(|d| !d.is_empty()) {
                let _ = write!(line, ": {d}");
            }
            line.push(']');
            Part::text(line)
        }
        _ => Part::text("[content of a kind Loom does not know]"),
    }
}

/// One block of MCP content (a prompt message's) as Loom content.
pub(crate) fn content_from_block(block: ContentBlock) -> Content {
    match part_from_block(block) {
        Part::Text { text } => Content::from(text),
        part => Content::Parts(vec![part]),
    }
}

/// What an MCP tool result says, as the output the model reads ([`part_from_block`]); an
/// error result is the error the model reads.
pub(crate) fn output_from_mcp(result: mcp::CallToolResult) -> Result<ToolOutput, String> {
    let mut parts: Vec<Part> = result.content.into_iter().map(part_from_block).collect();
    // No content but structured content: the structured value is the answer.
    if parts.is_empty()
        && let Some(value) = result.structured_content
    {
        parts.push(Part::text(value.to_string()));
    }
    let all_text = parts.iter().all(|p| p.as_text().is_some());
    let output = if all_text {
        let mut text = String::new();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                text.push('\n');
            }
            text.push_str(part.as_text().unwrap_or_default());
        }
        ToolOutput::text(text)
    } else {
        ToolOutput::parts(parts)
    };
    if result.is_error == Some(true) {
        let text = output.as_text();
        return Err(if text.is_empty() { "the tool failed and said nothing".to_owned() } else { text.into_owned() });
    }
    Ok(output)
}

/// A Loom tool output as MCP content.
/// A tool result the SDK could not read as one, read leniently, as servers write them: `null`
/// for any optional field, and content blocks of types this revision does not know (each
/// becomes a line saying so; the blocks it knows are kept). `None` when it has no `content`
/// list at all.
pub(crate) fn lenient_tool_result(mut value: Value) -> Option<mcp::CallToolResult> {
    let object = value.as_object_mut()?;
    object.retain(|_, v| !v.is_null());
    let blocks = match object.remove("content")? {
        Value::Array(blocks) => blocks,
        _ => return None,
    };
    let is_error = object.get("isError").and_then(Value::as_bool).unwrap_or(false);
    let structured = object.remove("structuredContent");
    let content = blocks
        .into_iter()
        .map(|mut block| {
            if let Some(fields) = block.as_object_mut() {
                fields.retain(|_, v| !v.is_null());
            }
            serde_json::from_value::<ContentBlock>(block.clone()).unwrap_or_else(|_| {
                let kind = block.get("type").and_then(Value::as_str).unwrap_or("(none)");
                let mut kind = kind.to_owned();
                kind.truncate(64);
                ContentBlock::text(format!("[content of type `{kind}` that Loom cannot show was left out]"))
            })
        })
        .collect();
    let mut result = if is_error { mcp::CallToolResult::error(content) } else { mcp::CallToolResult::success(content) };
    result.structured_content = structured;
    Some(result)
}

pub(crate) fn content_to_mcp(content: &Content) -> Vec<ContentBlock> {
    match content {
        Content::Text(t) => vec![ContentBlock::text(t.to_string())],
        Content::Parts(parts) => parts
            .iter()
            .map(|part| match part {
                Part::Text { text } => ContentBlock::text(text.clone()),
                Part::Image { source: MediaSource::Base64 { media_type, data } } => {
                    ContentBlock::image(data.clone(), media_type.clone())
                }
                Part::Audio { source: MediaSource::Base64 { media_type, data } } => {
                    ContentBlock::audio(data.clone(), media_type.clone())
                }
                Part::Document { source: MediaSource::Base64 { media_type, data }, name } => ContentBlock::resource(
                    ResourceContents::blob(data.clone(), name.clone().unwrap_or_else(|| "loom://document".to_owned()))
                        .with_mime_type(media_type.clone()),
                ),
                Part::Image { source: MediaSource::Url { url } }
                | Part::Audio { source: MediaSource::Url { url } }
                | Part::Document { source: MediaSource::Url { url }, .. } => ContentBlock::text(url.clone()),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_with_nulls_and_unknown_blocks_are_read_leniently() {
        let value = serde_json::json!({
            "content": [{"type": "hologram", "data": "AA"}, {"type": "text", "text": "kept", "annotations": null}],
            "isError": null, "_meta": null, "structuredContent": null,
        });
        let result = lenient_tool_result(value).unwrap_or_default();
        assert_eq!(result.is_error, Some(false));
        assert_eq!(result.content.len(), 2);
        assert!(result.content[0].as_text().is_some_and(|t| t.text.contains("`hologram`")));
        assert!(result.content[1].as_text().is_some_and(|t| t.text == "kept"));
        let failed = lenient_tool_result(serde_json::json!({"content": [], "isError": true})).unwrap_or_default();
        assert_eq!(failed.is_error, Some(true));
        assert!(lenient_tool_result(serde_json::json!({"answer": 42})).is_none());
        assert!(lenient_tool_result(serde_json::json!([1])).is_none());
    }

    #[test]
    fn names_become_valid_provider_names() {
        assert_eq!(tool_name("get_weather"), "get_weather");
        assert_eq!(tool_name("files.read"), "files_read");
        assert_eq!(tool_name(""), "_");
        let long = "x".repeat(100);
        let named = tool_name(&long);
        assert_eq!(named.len(), 64);
        assert_ne!(tool_name(&"x".repeat(101)), named);
    }

    #[test]
    fn unannotated_tools_are_destructive_as_the_specification_says() {
        let schema = Arc::new(Map::new());
        let bare = mcp::Tool::new("t", "d", Arc::clone(&schema));
        assert!(hints_of(&bare).destructive);
        let reader = bare.clone().with_annotations(mcp::ToolAnnotations::new().read_only(true));
        let hints = hints_of(&reader);
        assert!(hints.read_only && !hints.destructive && hints.idempotent);
        let additive = bare.with_annotations(mcp::ToolAnnotations::new().destructive(false));
        assert!(!hints_of(&additive).destructive);
    }

    #[test]
    fn results_become_outputs_and_errors() {
        let ok = mcp::CallToolResult::success(vec![ContentBlock::text("a"), ContentBlock::text("b")]);
        assert_eq!(output_from_mcp(ok).map(|o| o.as_text().into_owned()), Ok("a\nb".to_owned()));
        let err = mcp::CallToolResult::error(vec![ContentBlock::text("no such city")]);
        assert_eq!(output_from_mcp(err).err().as_deref(), Some("no such city"));
        let image = mcp::CallToolResult::success(vec![ContentBlock::image("AAAA", "image/png")]);
        let out = output_from_mcp(image).map(ToolOutput::into_content);
        assert!(matches!(out, Ok(Content::Parts(p)) if matches!(p[0], Part::Image { .. })));
    }

    #[test]
    fn definitions_carry_their_hints_both_ways() -> Result<(), crate::ConfigError> {
        let def = ToolDefinition::new("wipe", "Wipe it.", serde_json::json!({"type": "object"}))?
            .with_hints(ToolHints::NONE.destructive());
        let tool = tool_to_mcp(&def);
        let back = tool_from_mcp(&tool, "wipe".to_owned(), "s");
        assert_eq!(back.hints(), def.hints());
        assert_eq!(back.parameters(), def.parameters());
        Ok(())
    }
}
