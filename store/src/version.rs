//! Versions: of this binary, and of the cluster.
//!
//! A binary supports every version up to [`BINARY_VERSION`]. The cluster version is
//! replicated state ([`crate::Machine::cluster_version`]): raised by a `SetClusterVersion`
//! entry, once every member and learner supports it, and never lowered. A command or an
//! encoding that version `V` introduced is used only once the cluster is at `V`, so every
//! replica that applies it, and every node that reads it, knows it.
//!
//! Version 1 ([`LEGACY`]) is what binaries wrote before versions existed: the cluster version
//! of a state that never saw a `SetClusterVersion`, and the encodings without a version mark.

use crate::protocol::{Command, Request};

/// The words of every refusal of a version past this binary's.
pub const NEWER_THAN_BINARY: &str = "newer than this binary knows";

/// The version of the encodings and commands of binaries that knew no versions.
pub const LEGACY: u32 = 1;

/// The highest version this binary supports. The `next-version` build (for the rolling
/// upgrade test only, never a release) supports one more: it adds a command and changes the
/// encoding of log entries.
pub const BINARY_VERSION: u32 = if cfg!(feature = "next-version") { 3 } else { 2 };

/// Version 2: the reconciler's cursor and the set of unfinished payments in the store
/// (`AdvanceCursor`, `PaymentsSettled`; `StartPayment` records the payment), and failed
/// deliveries with their next attempt (`NotificationFailed`); three new column families.
pub const PAYMENTS_IN_STORE: u32 = 2;

/// The encoding version of the state column family `name` this binary writes, and the newest
/// it reads; `None` for a column family it does not know. Snapshots carry each column
/// family's version, and a node refuses one with a column family or a version it does not
/// know instead of guessing.
pub fn column_family_version(name: &str) -> Option<u32> {
    if crate::columns::SINCE_VERSION_2.contains(&name) {
        return Some(PAYMENTS_IN_STORE);
    }
    crate::columns::COLUMN_FAMILIES
        .contains(&name)
        .then_some(LEGACY)
}

/// The version a request needs of the binary that applies it: its command's, and for a
/// `SetClusterVersion` the version it raises the cluster to (one past the bound is rejected
/// by every replica alike, so it needs nothing more). A replica whose binary is below it must
/// not apply the entry at all (the Raft runtime stops the node before it), since a binary that
/// knows the version and one that does not would answer it differently.
pub fn needed_version(req: &Request) -> u32 {
    match &req.command {
        Command::SetClusterVersion { version }
            if *version <= crate::limits::CLUSTER_VERSION_MAX =>
        {
            (*version).max(req.command.required_version())
        }
        c => c.required_version(),
    }
}

impl Command {
    /// The cluster version this command needs: the leader refuses to propose it, and `apply`
    /// rejects it, while the cluster version is lower.
    pub fn required_version(&self) -> u32 {
        match self {
            Command::AdvanceCursor { .. }
            | Command::PaymentsSettled { .. }
            | Command::NotificationFailed { .. } => PAYMENTS_IN_STORE,
            #[cfg(feature = "next-version")]
            Command::Echo { .. } => 3,
            _ => LEGACY,
        }
    }
}
