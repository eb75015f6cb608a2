//! PDF: one document per page, through `pdf-extract`.
//!
//! The extractor is a dependency that can panic on content it does not expect, so opening the
//! file and extracting each page run under [`std::panic::catch_unwind`]: a panic becomes
//! [`LoadError::ExtractorPanicked`] for that page (or the file), and the other pages load.

use std::panic::{AssertUnwindSafe, catch_unwind};

use pdf_extract::{Document as Pdf, PlainTextOutput, output_doc_page};

use super::{Format, LoadError, Parsed};
use crate::rag::Document;

/// The pages of a PDF as documents `source#page=N`, with metadata `page` (from 1) and
/// `pages`. Pages without text (scans, blank pages) give no document.
pub(super) fn load(source: &str, bytes: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    let pdf = match guarded(|| open(bytes)) {
        Ok(Ok(pdf)) => pdf,
        Ok(Err(message)) => {
            parsed.problems.push(LoadError::Pdf { path: source.into(), page: None, message });
            return parsed;
        }
        Err(message) => {
            parsed.problems.push(LoadError::ExtractorPanicked { path: source.into(), page: None, message });
            return parsed;
        }
    };
    let pages: Vec<u32> = pdf.get_pages().into_keys().collect();
    let count = pages.len();
    for page in pages {
        let text = guarded(|| {
            let mut text = String::new();
            output_doc_page(&pdf, &mut PlainTextOutput::new(&mut text), page).map(|()| text)
        });
        match text {
            Ok(Ok(text)) => {
                let text = text.trim();
                if text.is_empty() {
                    continue;
                }
                parsed.documents.push(
                    Document::new(format!("{source}#page={page}"), text)
                        .with("source", source)
                        .with("format", Format::Pdf.name())
                        .with("page", page)
                        .with("pages", count),
                );
            }
            Ok(Err(e)) => {
                parsed.problems.push(LoadError::Pdf { path: source.into(), page: Some(page), message: e.to_string() })
            }
            Err(message) => {
                parsed.problems.push(LoadError::ExtractorPanicked { path: source.into(), page: Some(page), message })
            }
        }
    }
    parsed
}

/// Parses the file and decrypts it if it is encrypted with an empty password (as PDF
/// viewers do); other encrypted files cannot be read.
fn open(bytes: &[u8]) -> Result<Pdf, String> {
    let mut pdf = Pdf::load_mem(bytes).map_err(|e| format!("{e}; is it a PDF file?"))?;
    if pdf.is_encrypted() {
        pdf.decrypt("").map_err(|e| {
            format!("it is encrypted with a password ({e}); decrypt it first (for example with `qpdf --decrypt`)")
        })?;
    }
    Ok(pdf)
}

/// Runs `f`, turning a panic into its message.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
        panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_that_are_not_a_pdf_are_an_error_not_a_panic() {
        let parsed = load("x.pdf", b"%PDF-1.7\nthis is not really a pdf");
        assert!(parsed.documents.is_empty());
        assert!(
            matches!(
                parsed.problems.as_slice(),
                [LoadError::Pdf { page: None, .. } | LoadError::ExtractorPanicked { page: None, .. }]
            ),
            "{:?}",
            parsed.problems
        );
    }

    #[test]
    fn a_panic_becomes_its_message() {
        assert_eq!(guarded(|| -> u8 { panic!("boom {}", 1) }), Err("boom 1".to_owned()));
        assert_eq!(guarded(|| 7), Ok(7));
    }
}
