//! Helpers shared by the integration tests that check conformance vectors.
#![allow(dead_code)] // each test file uses its own subset

pub(crate) mod vectors;
