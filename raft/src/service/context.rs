//! What every gRPC service of a node shares: the node context, deadlines, reply helpers.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openraft::async_runtime::WatchReceiver;
use openraft::errors::ForwardToLeader;
use tonic::{Response, Status};

use crate::authz::Gate;
use crate::channels::Channels;
use crate::codec::{decode, encode};
use crate::pb;
use crate::state_machine::StateMachine;
use crate::{NodeId, Raft, TypeConfig};

/// Largest snapshot a node accepts from a peer unless configured otherwise.
pub const SNAPSHOT_RECV_MAX_BYTES: u64 = 64 << 30;
/// Free disk a received snapshot needs, as a multiple of its size: the file, and about as much
/// again while it is installed into RocksDB.
pub const SNAPSHOT_DISK_FACTOR: u64 = 2;
/// Free disk left over after that, at least.
pub const SNAPSHOT_DISK_HEADROOM_BYTES: u64 = 64 << 20;
/// Longest a server waits for a write to commit or a read to become linearizable, whatever the
/// client's own deadline.
pub const SERVER_OP_DEADLINE: Duration = Duration::from_secs(10);

/// What every service of a node needs.
#[derive(Clone)]
pub struct NodeContext {
    /// This node's id.
    pub id: NodeId,
    /// This node's advertised gRPC address.
    pub addr: String,
    /// The Raft instance.
    pub raft: Raft,
    /// Where client writes are queued and batched into entries.
    pub proposer: crate::proposer::Proposer,
    /// The state machine.
    pub sm: StateMachine,
    /// Channels to peers, shared with the Raft network.
    pub channels: Channels,
    /// The node's database, for status figures.
    pub db: Arc<rocksdb::DB>,
    /// Where the node serves Prometheus `/metrics`, if it does.
    pub metrics_addr: String,
    /// What `Admin.Reconcile` runs on the leader, once the node's background worker set it.
    pub reconcile: Arc<std::sync::OnceLock<ReconcileHook>>,
    /// Who may call what (see `authz`); the Raft service checks senders with it.
    pub gate: Arc<Gate>,
    /// Largest snapshot this node accepts from a peer, bytes.
    pub snapshot_recv_max_bytes: u64,
}

/// The reconciler's entry point as the admin service calls it: the report as JSON, or why not.
pub type ReconcileHook = Arc<
    dyn Fn() -> Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send>>
        + Send
        + Sync,
>;

/// The client id of the writes the admin service proposes itself.
pub const ADMIN_CLIENT_ID: &str = "ticketd-admin";

/// This node's digest status of `index`.
pub(super) fn digest_reply(ctx: &NodeContext, index: u64) -> pb::DigestReply {
    let digests = ctx.sm.digests();
    let (state, digest) = match digests.status(index) {
        crate::digest::DigestStatus::Unknown => (pb::DigestState::DigestUnknown, String::new()),
        crate::digest::DigestStatus::Pending => (pb::DigestState::DigestPending, String::new()),
        crate::digest::DigestStatus::Computed(d) => (pb::DigestState::DigestComputed, d),
    };
    pb::DigestReply {
        result: Some(pb::digest_reply::Result::Status(pb::DigestStatus {
            node_id: ctx.id,
            index,
            state: state as i32,
            digest,
            diverged_at: digests.diverged_at().unwrap_or(0),
        })),
    }
}

/// Longest an on-demand reconcile may run.
pub const RECONCILE_DEADLINE: Duration = Duration::from_secs(120);

pub(super) fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

pub(super) fn bad_request(e: impl std::fmt::Display) -> Status {
    Status::invalid_argument(e.to_string())
}

pub(super) fn blob<T: serde::Serialize>(v: &T) -> Result<Response<pb::Blob>, Status> {
    Ok(Response::new(pb::Blob {
        payload: encode(v).map_err(internal)?,
        format: crate::version::RPC_FORMAT,
    }))
}

/// Decodes `what`, a peer's message in `payload` of `format`. One of a version past this
/// binary's stops the node ([`crate::version::halt`]): its leader writes what it cannot read.
pub(super) fn decode_peer<T: serde::de::DeserializeOwned>(
    what: &str,
    format: u32,
    payload: &[u8],
) -> Result<T, Status> {
    let refused = match crate::version::check_rpc_format(what, format) {
        Err(s) => s,
        Ok(()) => match decode(payload) {
            Ok(v) => return Ok(v),
            Err(e) => Status::invalid_argument(format!("{what}: {e}")),
        },
    };
    if crate::version::is_too_new(refused.message()) {
        crate::version::halt(format!("a peer sent {}", refused.message()));
        return Err(Status::failed_precondition(refused.message().to_string()));
    }
    Err(refused)
}

/// Fault injection for clock tests: `TICKETD_FAULT_CLOCK_OFFSET_MS` moves this node's clock (the
/// time it stamps on the entries it proposes as leader) by that many ms. Read once; absent or
/// unparsable is 0. The store keeps log time monotonic, so a leader whose clock jumps ahead
/// moves log time forward for everyone: holds lapse early, as they would on a real skewed host.
pub(super) fn clock_offset_ms() -> i64 {
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| {
        let v = std::env::var("TICKETD_FAULT_CLOCK_OFFSET_MS").ok();
        let off = v
            .as_deref()
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0);
        if off != 0 {
            tracing::warn!(
                offset_ms = off,
                "fault injection: this node's clock is offset"
            );
        }
        off
    })
}

pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
        .saturating_add(clock_offset_ms())
}

pub(super) fn hint(f: &ForwardToLeader<TypeConfig>) -> pb::LeaderHint {
    pb::LeaderHint {
        leader_id: f.leader_id.unwrap_or(0),
        leader_addr: f
            .leader_node
            .as_ref()
            .map(|n| n.addr.clone())
            .unwrap_or_default(),
        known: f.leader_id.is_some() && f.leader_node.is_some(),
    }
}

impl NodeContext {
    /// The leader as this node knows it: id and address.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        // Borrowed, not cloned: every write asks, and the metrics hold maps.
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        let id = m.current_leader?;
        let addr = m.membership_config.membership().get_node(&id)?.addr.clone();
        Some((id, addr))
    }

    pub(super) fn leader_hint(&self) -> pb::LeaderHint {
        match self.leader() {
            Some((id, addr)) => pb::LeaderHint {
                leader_id: id,
                leader_addr: addr,
                known: true,
            },
            None => pb::LeaderHint::default(),
        }
    }
}
