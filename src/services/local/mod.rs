//! The embedded default: real models from pinned registry packages, run with candle on CPU.
pub mod bert;
pub mod columns;
pub mod composer;
pub mod describer;
pub mod e5;
pub mod efficientnet;
pub mod exact_index;
pub mod imaging;
pub mod kinds;
pub mod label_space;
pub mod live_index;
pub mod minilm;
pub mod people;
pub mod rephrase;
pub mod smollm;
pub mod snapshot;
pub mod torch_legacy;
