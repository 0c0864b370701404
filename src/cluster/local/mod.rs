//! The embedded local runner (see the helper brief).
