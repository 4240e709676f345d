//! The Raft runtime of ticketd: openraft on RocksDB, gRPC between nodes, and the client and
//! admin services every node serves.
//!
//! `ticketd-store` is the engine (a pure state machine); this crate is the runtime that feeds it
//! committed entries, persists the log, ships snapshots and answers clients.
//!
//! Architecture invariants:
//! - A log append is reported durable to openraft only after the RocksDB WAL holding it is
//!   fsynced; concurrent appends share one fsync (group commit).
//! - A vote is fsynced before `save_vote` returns.
//! - The state machine's data, its applied log id and its membership are written in one
//!   RocksDB batch: a restarted node never sees one without the others.
//! - Only the cluster's own parties speak to a node: every call passes `authz`, which decides
//!   by the identity in the caller's certificate (`identity`), verified by mutual TLS (`tls`),
//!   unless the node runs with `--insecure`.

#![cfg_attr(not(test), deny(clippy::too_many_lines))]
pub mod channels;
pub mod client;
pub mod connector;
pub mod identity;
pub mod pb;
pub mod tls;
pub mod version;

#[cfg(feature = "adapter")]
pub mod apply;
#[cfg(feature = "node")]
pub mod authz;
#[cfg(feature = "node")]
pub mod background;
#[cfg(feature = "adapter")]
pub mod codec;
#[cfg(feature = "node")]
pub mod digest;
#[cfg(feature = "node")]
pub mod incoming;
#[cfg(feature = "node")]
pub mod log_limit;
#[cfg(feature = "node")]
pub mod log_store;
#[cfg(feature = "node")]
pub mod network;
#[cfg(feature = "node")]
pub mod node;
#[cfg(feature = "node")]
pub mod proposer;
#[cfg(feature = "node")]
pub mod redact;
#[cfg(feature = "node")]
pub mod service;
#[cfg(feature = "node")]
pub mod snapshot;
#[cfg(feature = "node")]
pub mod state_machine;
#[cfg(feature = "node")]
/// Column family of state-machine metadata: applied log id and membership (written with the
/// state by `apply::Applier`).
#[cfg(feature = "adapter")]
pub const CF_SM_META: &str = "sm_meta";

pub use runtime::*;

use std::fmt;

use serde::{Deserialize, Serialize};

/// A node's id in the cluster. Never reused for a different node.
pub type NodeId = u64;

/// Whether a restarted leader may resume leadership without an election (openraft's
/// `enable_leader_restore`, on by default there). Off: a leader that lost log entries it had not
/// yet flushed (a power loss) would otherwise reuse log ids its followers hold for other entries
/// and serve linearizable reads from a stale commit index. The deterministic simulation
/// (`jepsen-tests`, `tests/sim.rs`) finds both with it on and runs with this value.
pub const ENABLE_LEADER_RESTORE: bool = false;

/// How to reach a node: its gRPC address (`host:port`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddr {
    /// gRPC address, `host:port`.
    pub addr: String,
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.addr)
    }
}

/// The payload of a normal Raft entry: a batch of client requests for the state machine,
/// applied in order, each on its own (one reply per request). The leader puts every request
/// waiting for a proposal slot into one entry (see `service::Proposer`), so one log append,
/// one replication message and one fsync carry many holds.
///
/// The requests are shared, not copied, between the copies of an entry: the log's cache of
/// recent entries, the replication streams and the state machine read the same batch.
///
/// The second field is the entry's encoding version ([`version::entry_format`]): version 1
/// is the bare sequence of requests (what binaries before versions wrote), version 2 and later
/// `{"v": N, "requests": [...]}`, the version first. A reader refuses a version past
/// [`version::ENTRY_FORMAT_MAX`] before it looks at the requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal(pub std::sync::Arc<[ticketd_store::Request]>, pub u32);

impl Proposal {
    /// An entry carrying these requests, in order, in the version 1 encoding.
    pub fn new(reqs: Vec<ticketd_store::Request>) -> Self {
        Proposal(reqs.into(), version::LEGACY)
    }

    /// An entry carrying these requests, encoded at version `format`.
    pub fn with_format(reqs: Vec<ticketd_store::Request>, format: u32) -> Self {
        Proposal(reqs.into(), format)
    }

    /// An entry carrying one request.
    pub fn one(req: ticketd_store::Request) -> Self {
        Proposal::new(vec![req])
    }
}

impl Serialize for Proposal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        if self.1 <= version::LEGACY {
            return self.0.as_ref().serialize(s);
        }
        let mut st = s.serialize_struct("Proposal", 2)?;
        st.serialize_field("v", &self.1)?;
        st.serialize_field("requests", self.0.as_ref())?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for Proposal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ProposalVisitor)
    }
}

struct ProposalVisitor;

impl<'de> serde::de::Visitor<'de> for ProposalVisitor {
    type Value = Proposal;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of requests or a versioned entry")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Proposal, A::Error> {
        let mut reqs = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(r) = seq.next_element()? {
            reqs.push(r);
        }
        Ok(Proposal::new(reqs))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Proposal, A::Error> {
        use serde::de::Error;
        let mut format = None;
        let mut reqs = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "v" => {
                    let v: u32 = map.next_value()?;
                    if v > version::ENTRY_FORMAT_MAX {
                        return Err(A::Error::custom(version::too_new(
                            "a log entry encoding",
                            v,
                            version::ENTRY_FORMAT_MAX,
                        )));
                    }
                    format = Some(v);
                }
                "requests" => {
                    if format.is_none() {
                        return Err(A::Error::custom(
                            "a versioned entry names its version first",
                        ));
                    }
                    reqs = Some(map.next_value::<Vec<ticketd_store::Request>>()?);
                }
                other => return Err(A::Error::unknown_field(other, &["v", "requests"])),
            }
        }
        let format = format.ok_or_else(|| A::Error::missing_field("v"))?;
        let reqs = reqs.ok_or_else(|| A::Error::missing_field("requests"))?;
        Ok(Proposal::with_format(reqs, format))
    }
}

impl fmt::Display for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0[..] {
            [one] => write!(f, "{}/{}", one.client_id, one.idempotency_key),
            many => write!(f, "batch of {}", many.len()),
        }
    }
}

#[cfg(feature = "node")]
mod runtime {
    use super::{state_machine, NodeAddr, Proposal, CF_SM_META};

    openraft::declare_raft_types!(
        /// The Raft type configuration of ticketd.
        pub TypeConfig:
            D = Proposal,
            // One reply per request of the entry's batch; none for blank and membership entries.
            R = Vec<ticketd_store::machine::Reply>,
            Node = NodeAddr,
    );

    /// The openraft instance of a node.
    pub type Raft = openraft::Raft<TypeConfig, state_machine::StateMachine>;

    /// Column family of Raft log entries, keyed by big-endian index.
    pub const CF_LOG: &str = "raft_log";
    /// Column family of Raft metadata: vote, last purged log id.
    pub const CF_RAFT_META: &str = "raft_meta";

    /// Opens (creating when missing) the node's RocksDB with every column family it uses.
    pub fn open_db(path: &std::path::Path) -> Result<rocksdb::DB, rocksdb::Error> {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // Every write goes to the WAL; durability comes from explicit WAL fsyncs (group commit).
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        // The vector memtables below take no concurrent inserts: a write group's leader inserts
        // every batch of the group (the log's appends and the state machine's applies).
        opts.set_allow_concurrent_memtable_write(false);
        let mut cfs: Vec<rocksdb::ColumnFamilyDescriptor> = [CF_LOG, CF_RAFT_META, CF_SM_META]
            .into_iter()
            .map(|name| rocksdb::ColumnFamilyDescriptor::new(name, opts.clone()))
            .collect();
        // The state machine's column families are written on every apply and read only when a
        // node starts (its load), builds a snapshot or installs one: the serving copy is the
        // in-memory machine. A skip-list memtable pays a search per insert, with a cache miss
        // per level on random keys (hold ids, idempotency keys); a vector memtable appends and
        // sorts once, when it is flushed or read.
        let mut sm_opts = opts.clone();
        sm_opts.set_memtable_factory(rocksdb::MemtableFactory::Vector);
        cfs.extend(
            ticketd_store::COLUMN_FAMILIES
                .iter()
                .map(|name| rocksdb::ColumnFamilyDescriptor::new(*name, sm_opts.clone())),
        );
        rocksdb::DB::open_cf_descriptors(&opts, path, cfs)
    }
}
