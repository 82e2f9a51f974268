//! The studio's state machine (STYLE.md): keys become `Action`s through the keymap, `update`
//! is the only place that changes `State` and returns `Effect`s as data; the runtime runs the
//! effects (engine calls on a worker) and sends results back as `Action`s tagged with job ids.
pub mod action;
pub mod keymap;
pub mod state;
pub mod update;

pub use action::{Action, Effect, JobId};
pub use state::{Pane, State};
pub use update::update;
