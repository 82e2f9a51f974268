//! Plain serde types, no I/O.
pub mod asset;
pub mod campaign;

pub use asset::*;
pub use campaign::*;
