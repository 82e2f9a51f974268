//! campaign-studio: a terminal studio that turns a campaign brief into new marketing images,
//! guided by a library of past campaign images. See docs/ARCHITECTURE.md.
//!
//! stdout belongs to the TUI or to CLI output, never to the library.
#![deny(clippy::print_stdout, clippy::print_stderr)]

/// The git commit this binary was built from ("unknown" outside a git checkout).
pub const COMMIT: &str = env!("CAMPAIGN_STUDIO_COMMIT");
/// The backends compiled into this build (all of them: none is behind a cargo feature).
pub const BACKENDS: &[&str] = &[
    "embedded (offline models, exact index)",
    "opensearch (self-managed, Amazon OpenSearch Service, Serverless)",
    "bedrock (Nova, Titan, Stability)",
];

/// `--version`'s long form: version, commit, backends.
pub fn long_version() -> String {
    format!(
        "{} (commit {COMMIT})\nbackends: {}",
        env!("CARGO_PKG_VERSION"),
        BACKENDS.join("; ")
    )
}

pub mod config;
pub mod domain;
pub mod engine;
pub mod errors;
pub mod logging;
pub mod models;
pub mod paths;
pub mod services;
pub mod store;

pub use errors::{Error, Result};
pub mod app;
pub mod tui;
pub mod ui;
