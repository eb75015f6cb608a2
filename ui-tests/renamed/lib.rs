//! Loom's macros through a renamed dependency; the case is in `tests/renamed_crate.rs`.
