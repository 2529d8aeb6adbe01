#![warn(missing_docs)]
//! callbook: run declarative YAML call playbooks through the FoneStorm API.
//!
//! The layers, each knowing only those below it:
//!
//! - [`model`]: the shared vocabulary (states, statuses, service types,
//!   timestamps, recorded runs and calls);
//! - loading and checking (`playbook`, `schema`, `phone`, `render`, `ssml`,
//!   `rules` → a [`plan::Plan`]), pure and synchronous;
//! - [`store`]: everything durable behind an async trait, with the SQLite
//!   journal and file locks as its implementation;
//! - [`engine`]: async functions that place a plan's calls through
//!   [`provider`] against a store and an observer, cancellable, with no
//!   terminal, signals, runtime or process of their own;
//! - [`listener`]: the HTTP server that receives FoneStorm's callbacks and
//!   hands them to a sink (the escalation ladder);
//! - [`report`]: formats only;
//! - [`playtest`]: `callbook test`, plans checked against expectations,
//!   offline (a dry run per case);
//! - [`cli`]: the command line, the prompt, signals, the progress bar and
//!   exit codes. `main.rs` parses arguments and calls [`cli::main`].
pub mod base_url;
pub mod cli;
pub mod diag;
pub mod engine;
pub mod escape;
pub mod limits;
pub mod listener;
pub mod model;
pub mod phone;
pub mod plan;
pub mod playbook;
pub mod playtest;
pub mod provider;
pub mod render;
pub mod report;
pub mod rules;
pub mod schema;
pub mod serve;
pub mod ssml;
pub mod store;
pub mod suggest;
pub mod timeline;
