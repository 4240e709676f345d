//! Test-only infrastructure of ticketd; nothing here ships.
//!
//! - [`cluster::TestCluster`]: real `ticketd node` processes, each with its own data directory
//!   (optionally on [`lazyfs`], which loses un-fsynced writes on demand), driven with the same
//!   client library operators and the HTTP API use;
//! - the provider simulators, served by the `ticketd-sim` binary: [`paysim`] (a Stripe-shaped
//!   payment provider with faults on request) and [`smssim`] (an SMS provider), over HTTP or,
//!   with [`https`], over HTTPS with a secret key;
//! - [`sibling_bin`]: where the workspace's other binaries are, for integration tests that only
//!   get their own package's.
#![cfg_attr(not(test), deny(clippy::too_many_lines))]

pub mod cluster;
pub mod https;
pub mod lazyfs;
pub mod paysim;
pub mod smssim;

use std::path::{Path, PathBuf};

/// The binary `name` of the same build as `bin` (an integration test's `CARGO_BIN_EXE_*`):
/// `cargo build --workspace --bins` and `cargo nextest run --workspace` put every binary of the
/// workspace in one directory. Panics, saying how to build it, when it is not there.
pub fn sibling_bin(bin: &Path, name: &str) -> PathBuf {
    let path = bin.with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace's binaries (cargo build --workspace --bins)",
        path.display()
    );
    path
}
