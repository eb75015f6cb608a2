//! The gemini adapter against a local server (being written).
