//! Integration tests of Loom live in this package's test targets.
