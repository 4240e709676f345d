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

// The test-cluster helper stays at its old path for now; its users import it from here.
#[path = "../../src/cluster.rs"]
pub mod cluster;
pub mod delay;
pub mod lazyfs;
pub mod nemesis;
pub mod net;
pub mod runner;
