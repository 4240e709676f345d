//! The chaos harness of ticketd, over real `ticketd node` processes started by the test kit's
//! [`cluster::TestCluster`]: [`runner`] starts a cluster (in network namespaces when it can), runs
//! concurrent clients, injects faults drawn from a seed ([`nemesis`], [`net`], [`delay`]), heals, runs final
//! reads and writes a history (`ticketd_checker::history`); node data can sit on [`lazyfs`], which loses un-fsynced writes
//! on demand; `ticketd_checker` then replays it against the model, checks
//! real-time order, per-object linearizability and the invariants.

pub mod delay;
pub mod nemesis;
pub mod net;
pub mod runner;

/// The test cluster and the FUSE layer under its nodes live in the test kit.
pub use ticketd_testkit::{cluster, lazyfs};
