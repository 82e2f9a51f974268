//! Plain serde types, no I/O.
pub mod asset;

pub use asset::*;
