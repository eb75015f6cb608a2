//! The anthropic adapter against a local server (being written).
