//! `callbook test`: unit tests for playbooks, run offline.
//!
//! A test file (`*.test.yaml`) names one playbook and holds cases. [`file`]
//! reads and checks a test file against its schema and its playbook;
//! [`walk`] finds the files.

pub mod file;
pub mod walk;

pub use file::{Case, TestFile, is_test_file, load};
