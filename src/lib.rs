//! campaign-studio: a terminal studio that turns a campaign brief into new marketing images,
//! guided by a library of past campaign images. See docs/ARCHITECTURE.md.
//!
//! stdout belongs to the TUI or to CLI output, never to the library.
#![deny(clippy::print_stdout, clippy::print_stderr)]

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
