//! Integration tests: a real server on loopback, driven over HTTP as callbook
//! drives the real API, plus the binary run as a person runs it.

mod auth;
mod binary;
mod callbacks;
mod calls;
mod common;
mod faults;
mod hooks;
mod rate_limit;
mod receiver;
mod simulate;
