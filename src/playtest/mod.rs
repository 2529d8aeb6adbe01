//! `callbook test`: unit tests for playbooks, run offline.
//!
//! A test file (`*.test.yaml`) names one playbook and holds cases. Each
//! case plans that playbook exactly as `callbook run --dry-run` would, with
//! the case's clock, variables, input, tags and dedup history, plays a
//! page's simulated events on its timeline, and compares the result with
//! what the case expects. Nothing is contacted, no journal is read or
//! written, and the real clock is never used.
//!
//! [`file`] reads and checks a test file against its schema and its
//! playbook, [`run`] plans and compares one case ([`simulate`] plays a
//! page's events), [`walk`] finds the files.

pub mod diff;
pub mod file;
pub mod run;
pub mod simulate;
pub mod walk;

pub use file::{Case, TestFile, is_test_file, load};
pub use run::{Actual, CaseResult, Mismatch, run_case};
