//! The test-cluster helper and the chaos harness of ticketd.
//!
//! Every integration and chaos test starts real `ticketd node` processes through
//! [`cluster::TestCluster`], each with its own data directory, and drives them with the same
//! client library operators and the HTTP API use.
//!
//! The chaos harness: [`runner`] starts a cluster (in network namespaces when it can), runs
//! concurrent clients, injects faults drawn from a seed ([`nemesis`], [`net`], [`delay`]), heals, runs final
//! reads and writes a [`history`]; node data can sit on [`lazyfs`], which loses un-fsynced writes
//! on demand; [`checker`] then replays it against the [`model`], checks
//! real-time order, per-object linearizability ([`wgl`]) and the invariants.

pub mod checker;
pub mod delay;
pub mod history;
pub mod model;
pub mod nemesis;
pub mod net;
pub mod runner;
pub mod sim;
pub mod simrt;
pub mod wgl;
pub mod workload;

/// The test cluster and the FUSE layer under its nodes live in the test kit.
pub use ticketd_testkit::{cluster, lazyfs};
