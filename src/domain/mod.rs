//! Plain serde types, no I/O.
pub mod asset;
pub mod bedrock_catalog;
pub mod campaign;
pub mod generation;
pub mod index;

pub use asset::*;
pub use campaign::*;
pub use generation::*;
