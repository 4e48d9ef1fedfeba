//! Helpers shared by the integration tests that check conformance vectors.

pub mod vectors;
