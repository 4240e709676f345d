//! Versions of what a node persists and sends, and the cluster version gate.
//!
//! Every encoding has a version. Version 1 ([`LEGACY`]) is what binaries wrote before versions
//! existed, unmarked: a log entry's bare sequence of requests, a `TKTSNAP1` snapshot file, an
//! RPC message without `format` (0 on the wire). Later versions are marked (a `v` field, the
//! snapshot's magic and its header, the messages' `format`). A reader accepts every version it
//! knows and refuses one it does not with an error that says so ([`too_new`]); a node that
//! meets one in its log, in a message from its leader or in a snapshot stops ([`halt`]):
//! the cluster moved past its binary, and guessing would diverge.
//!
//! A writer uses the version the cluster is at ([`ClusterVersion`], the replicated state's),
//! never one some member may not read: an encoding or a command of version `V` appears only
//! once every member and learner runs a binary of `V` or later and the leader raised the
//! cluster version to `V` (`Admin.ClusterVersion`, `ticketctl cluster version --raise`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

pub use ticketd_store::version::{BINARY_VERSION, LEGACY};

/// Highest log entry encoding this binary reads: 1, the bare sequence of requests; 2 (the
/// `next-version` build), `{"v": 2, "requests": [...]}`.
pub const ENTRY_FORMAT_MAX: u32 = if cfg!(feature = "next-version") { 2 } else { 1 };

/// The cluster version from which log entries are written in encoding 2: the `next-version`
/// build's (version 2 of the cluster changed the state, not the entries).
pub const ENTRY_FORMAT_2_SINCE: u32 = 3;

/// Highest snapshot file format this binary reads: 1 (`TKTSNAP1`: meta, records), 2
/// (`TKTSNAP2`: a header naming each column family with its version, then records). Written
/// at 2 only once the cluster is at 2.
pub const SNAPSHOT_FORMAT_MAX: u32 = 2;

/// Highest RPC message format this binary reads and the one it writes: JSON bodies in the
/// protobuf messages' bytes fields.
pub const RPC_FORMAT: u32 = 1;

pub use ticketd_store::version::NEWER_THAN_BINARY;

/// Exit status of a node that stopped because the cluster moved past its binary.
pub const EXIT_VERSION_UNSUPPORTED: i32 = 78;

/// The refusal of `what` at `version`, past `max`.
pub fn too_new(what: &str, version: u32, max: u32) -> String {
    format!(
        "{what} of version {version} is {NEWER_THAN_BINARY} (it reads up to version {max}, \
         binary version {BINARY_VERSION}): upgrade this node's binary"
    )
}

/// True when `error` is a refusal by [`too_new`].
pub fn is_too_new(error: &str) -> bool {
    error.contains(NEWER_THAN_BINARY)
}

/// The log entry encoding a leader writes at cluster version `cluster`.
pub fn entry_format(cluster: u32) -> u32 {
    if cluster >= ENTRY_FORMAT_2_SINCE {
        ENTRY_FORMAT_MAX.min(2)
    } else {
        LEGACY
    }
}

/// The snapshot file format a node writes at cluster version `cluster`.
pub fn snapshot_format(cluster: u32) -> u32 {
    cluster.clamp(LEGACY, SNAPSHOT_FORMAT_MAX)
}

/// Checks an RPC message's `format` (0: a sender that predates formats, version 1).
pub fn check_rpc_format(what: &str, format: u32) -> Result<(), tonic::Status> {
    if format > RPC_FORMAT {
        return Err(tonic::Status::failed_precondition(too_new(
            what, format, RPC_FORMAT,
        )));
    }
    Ok(())
}

/// The cluster version as this node's state machine last applied it; shared by the state
/// machine (which sets it), the proposer and the services (which read it).
#[derive(Debug, Clone)]
pub struct ClusterVersion(Arc<AtomicU32>);

impl Default for ClusterVersion {
    fn default() -> Self {
        ClusterVersion(Arc::new(AtomicU32::new(LEGACY)))
    }
}

impl ClusterVersion {
    /// The cluster version.
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Acquire)
    }

    /// Sets it (the state machine, after applying or installing).
    pub fn set(&self, v: u32) {
        self.0.store(v, Ordering::Release);
    }
}

static HALTED: OnceLock<String> = OnceLock::new();
static HALT_NOTIFY: OnceLock<tokio::sync::Notify> = OnceLock::new();

fn notify() -> &'static tokio::sync::Notify {
    HALT_NOTIFY.get_or_init(tokio::sync::Notify::new)
}

/// Stops this node: the cluster moved past its binary (an entry to apply, an encoding in its
/// log or from its leader, or a snapshot, of a version it does not support). Logged at error
/// level; the node binary shuts down and exits with [`EXIT_VERSION_UNSUPPORTED`]. The first
/// reason is kept; later calls only log.
pub fn halt(reason: String) {
    tracing::error!(
        binary_version = BINARY_VERSION,
        "stopping this node: {reason}"
    );
    if HALTED.set(reason).is_ok() {
        notify().notify_one();
    }
}

/// Why this node halted, if it did.
pub fn halted() -> Option<&'static str> {
    HALTED.get().map(String::as_str)
}

/// Waits until this node halts; the reason.
pub async fn wait_halted() -> &'static str {
    loop {
        if let Some(r) = halted() {
            return r;
        }
        notify().notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_use_the_cluster_version_within_what_the_binary_writes() {
        assert_eq!(entry_format(0), LEGACY);
        assert_eq!(entry_format(1), 1);
        assert_eq!(
            entry_format(2),
            1,
            "version 2 keeps the entries of version 1"
        );
        assert_eq!(entry_format(99), ENTRY_FORMAT_MAX);
        assert_eq!(snapshot_format(1), 1);
        assert_eq!(snapshot_format(2), 2);
        assert!(check_rpc_format("a message", 0).is_ok());
        assert!(check_rpc_format("a message", RPC_FORMAT).is_ok());
        let refused = check_rpc_format("a message", RPC_FORMAT + 1).unwrap_err();
        assert!(is_too_new(refused.message()), "{}", refused.message());
        assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    }
}
