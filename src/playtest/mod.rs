//! `callbook test`: unit tests for playbooks, run offline.
//!
//! A test file (`*.test.yaml`) names one playbook and holds cases. Each
//! case plans that playbook exactly as `callbook run --dry-run` would, with
//! the case's clock, variables, input, tags and dedup history, plays a
//! page's simulated events on its timeline, and compares the result with
//! what the case expects. Nothing is contacted, no journal is read or
//! written, and the real clock is never used.
//!
//! The layers, as elsewhere: [`file`] reads and checks a test file against
//! its schema and its playbook, [`run`] plans and compares one case
//! ([`simulate`] plays a page's events), [`output`] and [`junit`] format the
//! results, [`update`] rewrites expectations, [`walk`] finds the files.
//! Nothing here prints or knows a terminal: `cli::test` does. The format
//! and the output are documented in docs/testing.md.

pub mod diff;
pub mod file;
pub mod junit;
pub mod output;
pub mod run;
pub mod simulate;
pub mod update;
pub mod walk;

pub use file::{Case, TestFile, is_test_file, load};
pub use run::{Actual, CaseResult, Mismatch, run_case};
