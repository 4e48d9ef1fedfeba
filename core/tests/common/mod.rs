//! Helpers shared by the integration tests that check conformance vectors.

pub(crate) mod vectors;
