#![warn(missing_docs)]
//! callbook: run declarative YAML call playbooks through the FoneStorm API.
//!
//! Loading and checking (`playbook`, `schema`, `phone`, `render`, `ssml`,
//! `rules` → a [`plan::Plan`]) is pure and synchronous; the live side
//! (`provider`, `limiter`, `dispatch`) consumes a plan; `report` only formats.
//! `main.rs` parses arguments and calls [`app::main`].
pub mod app;
pub mod cli;
pub mod diag;
pub mod dispatch;
pub mod exit;
pub mod journal;
pub mod limiter;
pub mod limits;
pub mod live;
pub mod lock;
pub mod phone;
pub mod plan;
pub mod playbook;
pub mod provider;
pub mod render;
pub mod report;
pub mod rules;
pub mod schema;
pub mod ssml;
pub mod suggest;
pub mod term;
pub mod vars;
